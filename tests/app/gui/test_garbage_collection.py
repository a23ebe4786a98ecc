"""Cycles are freed on the GUI thread while the app's pool threads run (app/gui/garbage_collection.py)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc
import threading

import pytest

pytest.importorskip("pytestqt")

import app.gui.pyside_compat  # noqa: E402, F401  (before pytest-qt makes any Qt call: see that module)
from app.gui.garbage_collection import GuiThreadCollector, collect_due  # noqa: E402
from app.gui.workers import Jobs  # noqa: E402

WAIT = 10_000


class Node:
    """One half of a reference cycle; records the thread its finaliser ran on."""

    freed_on: list[int] = []

    def __init__(self):
        self.other: Node | None = None

    def __del__(self):
        Node.freed_on.append(threading.get_ident())


def make_cycle_then_allocate(keep: list | None = None) -> list:
    """What a pool thread does: leave a cycle behind, then allocate far past the youngest threshold (on its
    own, CPython would now collect on this thread and run the cycle's finalisers here). What it allocated is
    returned (and kept in ``keep``): CPython counts allocations net of deallocations."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    made = [[] for _ in range(20 * gc.get_threshold()[0])]
    if keep is not None:
        keep.append(made)
    return made


@pytest.fixture(autouse=True)
def automatic_gc():
    assert gc.isenabled(), "an earlier test left automatic garbage collection off"
    Node.freed_on.clear()
    yield
    assert gc.isenabled()


def test_without_the_collector_a_pool_thread_frees_the_cycle_itself():
    # The premise of the module: this is what made Qt objects die off their thread.
    gc.collect()
    t = threading.Thread(target=make_cycle_then_allocate)
    t.start()
    t.join()
    assert Node.freed_on and set(Node.freed_on) == {t.ident}


def test_cycles_left_by_a_pool_thread_are_freed_on_the_gui_thread(qtbot):
    gc.collect()
    collector = GuiThreadCollector(interval_ms=20)
    collector.start()
    try:
        assert not gc.isenabled()
        kept: list = []
        t = threading.Thread(target=make_cycle_then_allocate, args=(kept,))
        t.start()
        t.join()
        assert kept and Node.freed_on == []  # nothing collected on the pool thread
        qtbot.waitUntil(lambda: len(Node.freed_on) == 2, timeout=WAIT)  # the timer collected
        assert set(Node.freed_on) == {threading.get_ident()}
    finally:
        collector.stop()
    assert gc.isenabled()


def test_collections_follow_the_thresholds():
    gc.collect()
    collector = GuiThreadCollector()
    collector.start()
    try:
        assert collect_due() is None  # nothing allocated since the full collection
        keep = [[] for _ in range(2 * gc.get_threshold()[0])]
        assert collect_due() == 0
        assert gc.get_count()[0] < gc.get_threshold()[0]
        while gc.get_count()[1] <= gc.get_threshold()[1]:
            keep.append([[] for _ in range(gc.get_threshold()[0] + 1)])
            assert collect_due() == 0
        assert collect_due() == 1
    finally:
        collector.stop()


def test_automatic_collection_comes_back_when_the_last_holder_stops():
    first, second = GuiThreadCollector(), GuiThreadCollector()
    first.start()
    second.start()
    second.start()  # a second start of one collector holds nothing more
    first.stop()
    assert not gc.isenabled()  # another window's jobs still run
    second.stop()
    assert gc.isenabled()
    second.stop()  # a second stop gives nothing back twice
    assert gc.isenabled()


def test_jobs_free_what_their_functions_leave_on_the_gui_thread(qtbot):
    gc.collect()
    jobs = Jobs()
    try:
        assert not gc.isenabled()
        done = []
        jobs.start(make_cycle_then_allocate, on_result=done.append)
        qtbot.waitUntil(lambda: bool(done) and len(Node.freed_on) == 2, timeout=WAIT)
        assert set(Node.freed_on) == {threading.get_ident()}
    finally:
        assert jobs.shutdown()
    assert gc.isenabled()


def test_the_collector_checks_often_only_while_jobs_run(qtbot):
    jobs = Jobs()
    try:
        timer = jobs.collector._timer
        assert timer.isActive() and timer.interval() == jobs.collector.idle_interval_ms
        release = threading.Event()
        jobs.start(release.wait, 10)
        assert timer.interval() == jobs.collector.interval_ms
        release.set()
        qtbot.waitUntil(lambda: not jobs.active, timeout=WAIT)
        assert timer.interval() == jobs.collector.idle_interval_ms
    finally:
        assert jobs.shutdown()
    assert not jobs.collector._timer.isActive()
