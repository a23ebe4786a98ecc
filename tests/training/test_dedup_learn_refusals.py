"""Both learners (the adapter and the fine-tune) refuse, in the same words, a library with too few named
faces to learn from or to check a new model on, and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLE_PEOPLE
from conftest import library_labels as _state  # noqa: E402

pytest.importorskip("torch")

from training.adapter import AdapterConfig, learn_adapter  # noqa: E402
from training.personalise import PersonaliseConfig, learn_from_corrections  # noqa: E402

LEARNERS = {
    "adapter": lambda lib: learn_adapter(lib, config=AdapterConfig(lfw=False)),
    "finetune": lambda lib: learn_from_corrections(lib, config=PersonaliseConfig(lfw=False)),
}


@pytest.mark.parametrize("learner", sorted(LEARNERS))
def test_nobody_named_is_refused(imported, learner):
    before = _state(imported)
    last = list(LEARNERS[learner](imported))[-1]
    assert last.stage == "refused" and not last.result.activated
    assert last.message == "refused: need at least 2 named people with 2 or more faces each"
    assert _state(imported) == before


@pytest.mark.parametrize("learner", sorted(LEARNERS))
def test_two_faces_each_leave_nothing_to_check_on(imported, learner):
    for p in imported.people():  # Ardern x2, Macron x2, Obama, Sunak: nobody has the 3 faces a check needs
        names = {SAMPLE_PEOPLE[Path(f.path).name] for f in imported.faces_of(p.id)}
        imported.rename(p.id, "/".join(sorted(names)))
    before = _state(imported)
    last = list(LEARNERS[learner](imported))[-1]
    assert last.stage == "refused" and not last.result.activated
    assert last.message == "refused: need a named person with at least 3 faces to check a new model"
    assert _state(imported) == before
