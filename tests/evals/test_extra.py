"""The evaluation harness's dependencies are an extra: without it `eval lfw` says in one line what to
install, and its plots never switch the process's matplotlib backend."""

from __future__ import annotations

import pytest

from app.cli import main


def test_eval_without_the_extra_is_one_line(monkeypatch, tmp_path, capsys):
    import evals.extra

    monkeypatch.setattr(evals.extra, "missing_extra", lambda modules=evals.extra.EXTRA_MODULES: ["matplotlib"])
    assert main(["eval", "lfw", "--lfw", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "pip install 'facenet-photos[eval]'" in lines[0] and "matplotlib" in lines[0]


def test_plots_leave_the_backend_alone(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    from evals import plots

    before = matplotlib.get_backend()
    fig, axes = plots.subplots(2, (4, 3))
    axes[0].plot([0, 1], [1, 0])
    path = plots.save(fig, tmp_path / "p.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == before
