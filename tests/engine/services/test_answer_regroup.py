"""An answer regroups the free faces near the answered groups (``edits.regroup_near``), in the same undo step:
on the bundled sample portraits grouped strictly (every face its own group, at 0.3), a "no" about Ardern (2018) and
Sunak lets the library's own threshold join the two Ardern photos; undo brings back exactly the groups, people
and statements the user saw before the answer, redo the ones after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.grouping.same_person import QuestionConfig
from engine.store.schema import BY_USER, CannotLink, Constraint, Face, JournalEntry, Person

ON = QuestionConfig(regroup_every=1)  # the default is off (docs/clustering.md): these tests switch it on


def _groups(lib) -> list[list[str]]:
    return sorted(sorted(Path(f.path).stem for f in lib.faces_of(p.id)) for p in lib.people(include_hidden=True))


def _pid(lib, stem: str) -> int:
    return next(f.person_id for p in lib.people(include_hidden=True) for f in lib.faces_of(p.id)
                if Path(f.path).stem == stem)


def _state(lib) -> dict:
    """Everything an answer or a regrouping may change, row by row."""
    with lib.store.session() as s:
        return {
            "faces": s.execute(select(Face.id, Face.person_id, Face.assignment, Face.confidence)
                               .order_by(Face.id)).all(),
            "people": s.execute(select(Person.id, Person.name, Person.hidden, Person.cover_face_id)
                                .order_by(Person.id)).all(),
            "constraints": s.execute(select(Constraint.face_id, Constraint.person_id, Constraint.kind)
                                     .order_by(Constraint.id)).all(),
            "links": s.execute(select(CannotLink.faces_a, CannotLink.faces_b).order_by(CannotLink.id)).all(),
        }


@pytest.fixture
def singles(imported):
    """Every face its own group (a strict one-off grouping at 0.3, not saved): the library's threshold (1.20)
    puts the two Ardern photos and the two Macron photos together."""
    imported.recluster(0.3)
    assert all(len(g) == 1 for g in _groups(imported))
    return imported


def test_an_answer_regroups_near_it_and_one_undo_takes_both_back(singles):
    before = _state(singles)
    entries = len(singles.history(500))
    a, b = _pid(singles, "ardern_2018"), _pid(singles, "sunak")
    assert singles.answer(f"{a}-{b}", "no", ON) is None
    after = _state(singles)
    groups = _groups(singles)
    # The regrouping near the answer joined the Ardern photos; Sunak stays apart (the "no").
    assert ["ardern_2018", "ardern_2022"] in groups and ["sunak"] in groups
    # One journal step: the answer with its regrouping.
    assert len(singles.history(500)) == entries + 1
    assert singles.history(1)[0][1].startswith("Not the same person")
    assert singles.undo().startswith("Not the same person")
    assert _state(singles) == before
    assert all(len(g) == 1 for g in _groups(singles))
    singles.redo()
    assert _state(singles) == after


def test_a_yes_then_its_regrouping_undone_and_redone(singles):
    before = _state(singles)
    a, b = _pid(singles, "macron_2014"), _pid(singles, "macron_2025")
    kept = singles.answer(f"{a}-{b}", "yes", ON)
    assert ["macron_2014", "macron_2025"] in _groups(singles)
    # The merged faces are the user's; the Ardern photos, near them? only if the regrouping reached them.
    assert {f.assignment for f in singles.faces_of(kept)} == {BY_USER}
    after = _state(singles)
    singles.undo()
    assert _state(singles) == before
    singles.redo()
    assert _state(singles) == after


def test_without_regrouping_the_answer_changes_only_its_groups(singles):
    a, b = _pid(singles, "ardern_2018"), _pid(singles, "sunak")
    singles.answer(f"{a}-{b}", "no", QuestionConfig(regroup_every=0))
    assert all(len(g) == 1 for g in _groups(singles))


def test_every_few_answers_the_regrouping_waits_for_the_last(singles):
    cfg = QuestionConfig(regroup_every=2)
    a, b = _pid(singles, "ardern_2018"), _pid(singles, "sunak")
    singles.answer(f"{a}-{b}", "no", cfg)
    assert all(len(g) == 1 for g in _groups(singles))
    before_second = _state(singles)
    c, d = _pid(singles, "obama"), _pid(singles, "sunak")
    singles.answer(f"{c}-{d}", "no", cfg)
    assert ["ardern_2018", "ardern_2022"] in _groups(singles)
    # Undo of the second answer takes back the regrouping folded into it, and nothing of the first.
    singles.undo()
    assert _state(singles) == before_second


def test_named_and_confirmed_faces_never_move(singles):
    # Name the Ardern 2022 photo's group and confirm the Macron 2014 face: the regrouping after an answer
    # may suggest free faces to a named person, but never moves those two.
    ardern = _pid(singles, "ardern_2022")
    singles.rename(ardern, "Jacinda")
    m14 = next(f for f in singles.faces_of(_pid(singles, "macron_2014")))
    singles.confirm([m14.id])
    a, b = _pid(singles, "obama"), _pid(singles, "sunak")
    singles.answer(f"{a}-{b}", "no", ON)
    assert singles.face(m14.id).person_id == m14.person_id
    assert {Path(f.path).stem for f in singles.faces_of(ardern)} >= {"ardern_2022"}
    assert singles.person(ardern).name == "Jacinda"


def test_nothing_is_folded_into_an_edit_that_is_not_the_answer(singles):
    # An answer that records nothing (here: none newer than the entry given) leaves older steps alone.
    from engine.services import edits

    a, b = _pid(singles, "ardern_2018"), _pid(singles, "ardern_2022")
    singles.merge(a, [b])
    with singles.store.session() as s:
        newest = s.scalar(select(JournalEntry.id).order_by(JournalEntry.id.desc()).limit(1))
    before = _state(singles)
    out = edits.regroup_near(singles.store, [a], singles.cluster_config(), since=newest)
    assert out["changed"] == 0 and _state(singles) == before


def test_an_answer_after_an_undo_still_regroups(singles):
    """Undo, then answer again: the new edit forgets the undone entry and the journal may give the new one the
    same id, so "newer than before the answer" must not count undone entries (it skipped the regrouping)."""
    a, b = _pid(singles, "ardern_2018"), _pid(singles, "sunak")
    singles.answer(f"{a}-{b}", "no", ON)
    singles.undo()
    assert all(len(g) == 1 for g in _groups(singles))
    singles.answer(f"{a}-{b}", "no", ON)
    assert ["ardern_2018", "ardern_2022"] in _groups(singles)
    assert singles.undo().startswith("Not the same person")
    assert all(len(g) == 1 for g in _groups(singles))
