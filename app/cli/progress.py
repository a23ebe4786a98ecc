"""The one progress display of the command line: a rich bar on stderr fed by progress records.

Every long operation of the engine yields records with a ``stage`` (engine.services.progress.Stage),
a count (``done``, or ``step`` for training) out of ``total``, and maybe a ``rate``; this shows any of
them the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engine.services.progress import Stage, stage_title

P = TypeVar("P")


class ProgressBar:
    """``with ProgressBar(console) as bar: ... bar.show(record)``."""

    def __init__(self, console: Console, *, title: str | None = None, unit: str = "",
                 note: Callable[[object], str] | None = None, transient: bool = False, disable: bool = False):
        self.title, self.unit, self.note = title, unit, note
        cols = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[note]}", markup=False), TimeElapsedColumn(), TimeRemainingColumn())
        self._progress = Progress(*cols, console=console, transient=transient, disable=disable)
        self._task = None

    def __enter__(self) -> ProgressBar:
        self._progress.__enter__()
        self._task = self._progress.add_task(self.title or "Starting", total=None, note="")
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def show(self, p) -> None:
        stage = getattr(p, "stage", None)
        done = getattr(p, "done", None)
        if done is None:
            done = getattr(p, "step", 0)
        total = getattr(p, "total", 0) or None
        if stage == Stage.SCAN:  # the number of photos is not known while scanning
            total = None
        rate = getattr(p, "rate", 0.0) or 0.0
        parts = [f"{rate:.1f} {self.unit}/s" if rate and self.unit else ""]
        if self.note is not None:
            parts.append(self.note(p))
        description = self.title or (stage_title(stage) if stage is not None else "Working")
        self._progress.update(self._task, description=description, total=total, completed=done,
                              note="  ".join(x for x in parts if x))


def drive(items: Iterable[P], console: Console, **options) -> P | None:
    """Show ``items`` (a job's progress records) on a bar; the last record, or None when there was none."""
    last = None
    with ProgressBar(console, **options) as bar:
        for p in items:
            last = p
            bar.show(p)
    return last
