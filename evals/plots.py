"""Figures for the evaluation reports, drawn without pyplot.

``matplotlib.use("Agg")`` would switch the backend of the whole process (a GUI or a notebook that
imported this would lose its own); a bare ``Figure`` renders through Agg by itself when saved."""

from __future__ import annotations

from pathlib import Path

from evals.extra import require_extra


def subplots(ncols: int, figsize: tuple[float, float]):
    """(figure, axes): one row of ``ncols`` axes (a single axes when ncols is 1)."""
    require_extra("matplotlib")
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    axes = fig.subplots(1, ncols)
    return fig, axes


def save(fig, path: Path | str, dpi: int = 120) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
