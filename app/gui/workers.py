"""Background jobs: every database, model and disk operation runs here, never on the GUI thread.

A :class:`Job` is a QRunnable on the global QThreadPool that calls a plain function (or drains one of
the engine's progress generators) and reports back through Qt signals, which Qt delivers on the GUI
thread. :class:`Jobs` keeps the running jobs alive, cancels them and waits for them on shutdown.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.errors import FacenetPhotosError

from . import pyside_compat  # noqa: F401  (must run before any Qt call)
from .garbage_collection import GuiThreadCollector

log = logging.getLogger(__name__)

# How long a pool thread running Python may keep the GIL when the GUI thread asks for it (Python's default is
# 5 ms). The GUI thread takes the GIL back at every Python call of a paint (a delegate, a model's data()):
# with a pool thread building the photo grid's timeline or a folder summary in Python, 5 ms a time made the
# window stall for several hundred milliseconds while the photo grid opened; 1 ms keeps it smooth and costs
# the pool threads next to nothing (the heavy work, decoding and the network, runs outside the GIL).
GUI_SWITCH_INTERVAL_S = 0.001


class JobSignals(QObject):
    progress = Signal(object)
    result = Signal(object)
    error = Signal(str)
    finished = Signal()


class Job(QRunnable):
    """Runs ``fn(*args, **kwargs)`` on a pool thread.

    With ``stream=True`` the function returns an iterator: each item is sent as ``progress`` (at most
    every ``min_interval`` seconds, the last one always) and the last item is also the ``result``.
    With ``pass_cancel=True`` the function gets ``cancel=<threading.Event>``, set by :meth:`cancel`.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple = (),
        kwargs: dict | None = None,
        *,
        stream: bool = False,
        pass_cancel: bool = False,
        min_interval: float = 0.0,
        name: str = "",
    ):
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, dict(kwargs or {})
        self.stream, self.min_interval = stream, min_interval
        self.name = name or getattr(fn, "__name__", "job")
        self.signals = JobSignals()
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        if pass_cancel:
            self.kwargs["cancel"] = self.cancel_event

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:  # pool thread
        try:
            if self.stream:
                result = None
                pending, last_emit = False, 0.0
                for item in self.fn(*self.args, **self.kwargs):
                    result, pending = item, True
                    now = time.monotonic()
                    if now - last_emit >= self.min_interval:
                        self.signals.progress.emit(item)
                        pending, last_emit = False, now
                if pending:
                    self.signals.progress.emit(result)
            else:
                result = self.fn(*self.args, **self.kwargs)
            self.signals.result.emit(result)
        except FacenetPhotosError as exc:
            self.signals.error.emit(str(exc))
        except Exception as exc:  # a bug must not kill the app; say what happened
            log.exception("background job %s failed", self.name)
            self.signals.error.emit(f"unexpected error in {self.name}: {exc.__class__.__name__}: {exc}")
        finally:
            self.signals.finished.emit()
            self.done.set()


class Jobs(QObject):
    """Starts jobs on the global thread pool and keeps track of them.

    Callbacks run on the GUI thread; after :meth:`shutdown` no callback runs any more."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool.globalInstance()
        if sys.getswitchinterval() > GUI_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
        # Imports and thumbnail loading each hold a thread for a while; queries must not wait behind them.
        if self.pool.maxThreadCount() < 6:
            self.pool.setMaxThreadCount(6)
        self._active: set[Job] = set()
        self._closed = False
        # Cycles holding Qt wrappers must be freed on the GUI thread, never by a pool thread that happened to
        # allocate past a threshold (see garbage_collection.py): collection runs on this thread until shutdown.
        self.collector = GuiThreadCollector(self)
        self.collector.set_busy(False)
        self.collector.start()
        self.busy_changed.connect(self.collector.set_busy)

    @property
    def active(self) -> list[Job]:
        return list(self._active)

    def start(
        self,
        fn: Callable[..., Any],
        *args,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        stream: bool = False,
        pass_cancel: bool = False,
        min_interval: float = 0.0,
        name: str = "",
        **kwargs,
    ) -> Job | None:
        if self._closed:
            return None
        job = Job(fn, args, kwargs, stream=stream, pass_cancel=pass_cancel, min_interval=min_interval, name=name)
        sig = job.signals
        if on_progress is not None:
            sig.progress.connect(self._guard(on_progress))
        if on_result is not None:
            sig.result.connect(self._guard(on_result))
        if on_error is not None:
            sig.error.connect(self._guard(on_error))
        else:
            sig.error.connect(lambda msg, n=job.name: log.warning("%s: %s", n, msg))
        if on_finished is not None:
            sig.finished.connect(self._guard(on_finished))
        sig.finished.connect(lambda j=job: self._finished(j))
        was_busy = bool(self._active)
        self._active.add(job)
        self.pool.start(job)
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    def _guard(self, fn: Callable) -> Callable:
        def call(*a):
            if not self._closed:
                fn(*a)

        return call

    def _finished(self, job: Job) -> None:
        self._active.discard(job)
        if not self._active and not self._closed:
            self.busy_changed.emit(False)

    def cancel_all(self) -> None:
        for job in list(self._active):
            job.cancel()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every job has returned (the GIL is released while waiting)."""
        deadline = time.monotonic() + timeout
        for job in list(self._active):
            if not job.done.wait(max(0.0, deadline - time.monotonic())):
                return False
        return self.pool.waitForDone(int(max(0.0, deadline - time.monotonic()) * 1000) + 1)

    def all_done(self) -> bool:
        return all(j.done.is_set() for j in self._active)

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Cancel everything, wait for it, and ignore whatever the jobs still report. Once no job runs, garbage
        collection is automatic again (a job still running past ``timeout`` keeps it on this thread)."""
        self.cancel_all()
        ok = self.wait(timeout)
        self._closed = True
        self._active.clear()
        if ok:
            self.collector.stop()
        return ok
