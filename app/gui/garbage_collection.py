"""Python's cyclic garbage collector, run on the GUI thread only, while the app's pool threads run.

CPython collects on whichever thread happens to allocate past a threshold. In the app that is often a pool
thread (an import, the photo grid's timeline), and a collection there frees whatever Qt wrappers a cycle held,
widgets and signal objects included, off the thread that owns them. Qt objects must be destroyed on their own
thread: now and then that crashed the process (a segmentation fault in a pool thread, inside the collector,
while the GUI thread painted). So while :class:`GuiThreadCollector` holds, automatic collection is off and a
timer on the GUI thread runs the same collections CPython's thresholds would have asked for, at most every
``interval_ms``. Reference counting, which frees nearly everything, is untouched; only cycles wait (at most
that long).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

from . import pyside_compat  # noqa: F401  (must run before any Qt call)

INTERVAL_MS = 100  # young cycles from a busy pool thread wait at most this long; a check costs ~1 µs
IDLE_INTERVAL_MS = 1000  # no job running: only the GUI thread allocates; an idle app wakes up once a second

_holders = 0  # collectors holding automatic collection off (several windows may be open at once)
_was_enabled = True


def collect_due() -> int | None:
    """Run the collection that the collector's thresholds ask for now, as CPython would on an allocation
    (the oldest generation due, with the younger ones); the generation collected, or None when none is due."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in range(len(counts) - 1, -1, -1):
        limit = thresholds[generation] if generation < len(thresholds) else 0
        if limit and counts[generation] > limit:
            gc.collect(generation)
            return generation
    return None


class GuiThreadCollector(QObject):
    """While started: no automatic collection on any thread; this object's timer collects on its own thread
    (create it on the GUI thread). Stopping it the last time gives automatic collection back."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS,
                 idle_interval_ms: int = IDLE_INTERVAL_MS):
        super().__init__(parent)
        self.interval_ms, self.idle_interval_ms = interval_ms, idle_interval_ms
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(collect_due)
        self._holding = False

    def set_busy(self, busy: bool) -> None:
        """Pool threads running (check often) or not (check seldom, after collecting what is due now)."""
        self._timer.setInterval(self.interval_ms if busy else self.idle_interval_ms)
        if not busy:
            collect_due()

    @property
    def holding(self) -> bool:
        return self._holding

    def start(self) -> None:
        global _holders, _was_enabled
        if self._holding:
            return
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
        self._holding = True
        self._timer.start()

    def stop(self) -> None:
        """Call once no pool thread runs any more: from then on a collection may run on any thread again."""
        global _holders
        if not self._holding:
            return
        self._timer.stop()
        self._holding = False
        _holders -= 1
        if _holders == 0 and _was_enabled:
            gc.enable()
        collect_due()
