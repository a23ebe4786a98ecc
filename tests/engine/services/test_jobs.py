"""The job API: jobs are found by name (registered in-process or through entry points), yield
progress, honour the cancel token, and say in words when they cannot run."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.errors import FacenetPhotosError
from engine.services.jobs import (
    CancelToken,
    JobSpec,
    find_job,
    job_names,
    job_unavailable,
    register,
    run_job,
    unregister,
)
from engine.services.progress import Stage


@dataclass
class Tick:
    stage: Stage
    done: int
    total: int


def _count(library, cancel, upto: int = 5):
    """Counts faces in the library, one progress item per step; stops early when cancelled."""
    for i in range(upto):
        if cancel.is_set():
            yield Tick(Stage.CANCELLED, i, upto)
            return
        yield Tick(Stage.ANALYSE, i + 1, upto)
        if i == 1 and library == "cancel-after-two":
            cancel.set()
    yield Tick(Stage.DONE, upto, upto)


@pytest.fixture
def counting_job():
    spec = register(JobSpec("count-test", "Count", _count))
    yield spec
    unregister(spec.name)


def test_a_registered_job_runs_by_name_with_its_options(counting_job):
    assert "count-test" in job_names()
    items = list(run_job("count-test", "library", upto=3))
    assert [i.done for i in items] == [1, 2, 3, 3]
    assert items[-1].stage == Stage.DONE == "done"


def test_a_job_stops_at_the_cancel_token(counting_job):
    cancel = CancelToken()
    items = list(run_job("count-test", "cancel-after-two", cancel, upto=5))
    assert items[-1].stage == Stage.CANCELLED and items[-1].done == 2


def test_an_unknown_job_is_a_plain_error():
    with pytest.raises(FacenetPhotosError, match="No job called 'nope'"):
        find_job("nope")
    assert "No job called" in job_unavailable("nope")


def test_an_unavailable_job_says_why_and_does_not_start():
    started = []
    register(JobSpec("blocked-test", "Blocked", lambda lib, cancel: started.append(1) or iter(()),
                     available=lambda: "it needs a GPU"))
    try:
        assert job_unavailable("blocked-test") == "it needs a GPU"
        with pytest.raises(FacenetPhotosError, match="Blocked is not available: it needs a GPU"):
            list(run_job("blocked-test", None))
        assert started == []
    finally:
        unregister("blocked-test")


def test_the_training_package_registers_learning_through_an_entry_point():
    # Found without importing the training package by hand: the installed entry point names it.
    spec = find_job("learn-from-corrections")
    assert spec.title == "Learn from my corrections"
    assert spec.run.__module__ == "training.jobs"
