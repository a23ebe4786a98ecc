"""The ``facenet-photos`` command line: one typer app (``common``), the user's commands
(``commands``), learning (``train``) and the benchmark runs (``evals``), one progress display
(``progress``)."""

from app.cli import commands, evals, train  # noqa: F401  (each registers its commands)
from app.cli.common import main

__all__ = ["main"]
