"""A quiet terminal during long work: what image libraries print goes to a log file in the library.

Pillow raises Python warnings (UserWarning on odd EXIF, DecompressionBombWarning); libtiff, libjpeg
and libpng print straight to the process's standard error from C ("TIFFFillStrip: Read error on
strip 0", "ZIPDecode: Decoding error", "JPEGLib: Unsupported marker type"), which no Python setting
reaches. ``library_log`` sends both, and this program's own decode and import log records, to
``<library>/logs/facenet-photos.log``; the program's own output (progress, messages) still reaches the
terminal, because Python's ``sys.stderr`` is moved to a copy of the original descriptor first.

It changes process-wide state (file descriptor 2, the warnings filters), so it belongs to a front end
that owns the process and runs one long job at a time: the CLI uses it around imports and rescans.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

LOG_NAME = "facenet-photos.log"


def log_path(library_root: Path) -> Path:
    return Path(library_root) / "logs" / LOG_NAME


@contextmanager
def library_log(library_root: Path, what: str = "import") -> Iterator[Path]:
    path = log_path(library_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    logf = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    logf.write(f"---- {what} {datetime.now().isoformat(timespec='seconds')}\n")
    handler = logging.StreamHandler(logf)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("facenet_photos")
    old_level, old_propagate = root.level, root.propagate
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    # C libraries write to descriptor 2: point it at the log, keep Python's stderr on the terminal.
    saved_fd = _dup(2)
    saved_stderr = sys.stderr
    moved = saved_fd is not None
    if moved:
        sys.stderr.flush()
        sys.stderr = open(saved_fd, "w", buffering=1, encoding=getattr(saved_stderr, "encoding", None) or "utf-8",  # noqa: SIM115
                          errors="backslashreplace", closefd=False)
        os.dup2(logf.fileno(), 2)
    old_showwarning = warnings.showwarning

    def to_log(message, category, filename, lineno, file=None, line=None):
        logf.write(f"warning: {category.__name__}: {message} ({Path(filename).name}:{lineno})\n")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = to_log
            yield path
    finally:
        warnings.showwarning = old_showwarning
        if moved:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved_fd, 2)
                sys.stderr = saved_stderr
                os.close(saved_fd)
        root.removeHandler(handler)
        root.setLevel(old_level)
        root.propagate = old_propagate
        logf.close()


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:  # no standard error at all (a windowed app): nothing to move
        return None
