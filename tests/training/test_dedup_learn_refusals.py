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


def test_usable_negatives_skip_statements_about_people_left_out_and_held_out_faces():
    """A "not this person" statement may name someone the learner left out (hidden, or too few faces): the
    adapter looked that person up directly and stopped with a KeyError; both learners now skip it."""
    import numpy as np

    from training.personalise import usable_negatives

    person_ids = [10, 20]
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    counts = np.array([2, 2])  # training faces each learnt person has
    held = np.array([2, 5])
    statements = [(6, 10), (6, 99), (0, 20), (2, 20), (3, 20), (4, 10)]
    assert usable_negatives(statements, person_ids, labels, counts, held) == [(6, 0), (0, 1), (4, 0)]
    assert usable_negatives(statements, person_ids, labels, np.array([1, 2]), held) == [(0, 1)]
