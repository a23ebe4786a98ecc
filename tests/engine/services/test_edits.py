"""Corrections through the service API: what the database holds after each edit, undo and redo."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.errors import EditError
from engine.store.schema import Constraint, Face, Person


def person_of(lib, stem: str) -> int:
    for p in lib.people(include_hidden=True):
        if any(f.path.endswith(stem) for f in lib.faces_of(p.id)):
            return p.id
    raise AssertionError(stem)


def face_of(lib, stem: str) -> int:
    with lib.store.session() as s:
        from engine.store.schema import Photo

        return s.scalar(select(Face.id).join(Photo).where(Photo.path.like(f"%{stem}")))


def snapshot(lib):
    with lib.store.session() as s:
        faces = sorted(s.execute(select(Face.id, Face.person_id, Face.assignment)).all())
        people = sorted(s.execute(select(Person.id, Person.name, Person.hidden)).all())
        cons = sorted(s.execute(select(Constraint.face_id, Constraint.person_id, Constraint.kind)).all())
    return faces, people, cons


def test_merge_undo_redo(imported):
    lib = imported
    a, b = person_of(lib, "obama.jpg"), person_of(lib, "sunak.jpg")
    lib.rename(b, "Rishi")
    before = snapshot(lib)
    lib.merge(a, [b])
    merged = lib.person(a)
    assert merged.faces == 2 and merged.name == "Rishi"
    with pytest.raises(EditError):
        lib.person(b)
    after = snapshot(lib)
    assert lib.undo().startswith("Merge")
    assert snapshot(lib) == before
    assert lib.person(b).name == "Rishi"
    assert lib.redo().startswith("Merge")
    assert snapshot(lib) == after
    assert lib.redo() is None


def test_split_move_and_their_undo(imported):
    lib = imported
    macron = person_of(lib, "macron_2014.jpg")
    f14, f25 = face_of(lib, "macron_2014.jpg"), face_of(lib, "macron_2025.jpg")
    before = snapshot(lib)
    new = lib.split([f14], name="Young Macron")
    assert lib.person(new).faces == 1 and lib.person(macron).faces == 1
    assert lib.face(f14).assignment == "user"
    lib.move_faces([f25], new)
    assert lib.person(new).faces == 2
    with pytest.raises(EditError):
        lib.person(macron)  # an unnamed person left empty disappears
    lib.undo()
    lib.undo()
    assert snapshot(lib) == before


def test_rename_hide_and_errors(imported):
    lib = imported
    pid = person_of(lib, "ardern_2018.jpg")
    lib.rename(pid, "  Jacinda   Ardern ")
    assert lib.find_person("jacinda ardern").id == pid
    lib.set_hidden([pid], True)
    assert pid not in [p.id for p in lib.people()]
    assert pid in [p.id for p in lib.people(only_hidden=True)]
    lib.undo()
    assert pid in [p.id for p in lib.people()]
    with pytest.raises(EditError, match="no person"):
        lib.rename(99999, "x")
    with pytest.raises(EditError, match="no faces"):
        lib.split([])
    with pytest.raises(EditError, match="two different"):
        lib.merge(pid, [pid])


def test_not_this_person_survives_reclustering(imported):
    lib = imported
    pid = person_of(lib, "ardern_2018.jpg")
    lib.rename(pid, "Jacinda")
    f22 = face_of(lib, "ardern_2022.jpg")
    lib.not_this_person([f22])
    assert lib.person(pid).faces == 1
    with lib.store.session() as s:
        assert s.scalar(select(Constraint.kind).where(Constraint.face_id == f22)) == "is_not"
    lib.recluster()
    assert lib.face(f22).person_id != pid
    assert lib.find_person("Jacinda").faces == 1
    lib.undo()  # the "no" is withdrawn; a fresh regrouping may join them again
    lib.recluster()
    assert lib.face(f22).person_id == lib.find_person("Jacinda").id


def test_names_and_confirmed_faces_survive_reclustering(imported):
    lib = imported
    ardern = person_of(lib, "ardern_2018.jpg")
    lib.rename(ardern, "Jacinda Ardern")
    obama_face = face_of(lib, "obama.jpg")
    # The user insists Obama's face belongs to Ardern's group (a wrong but deliberate label).
    lib.move_faces([obama_face], ardern)
    lib.recluster()
    p = lib.find_person("Jacinda Ardern")
    paths = sorted(f.path.rsplit("/", 1)[-1] for f in lib.faces_of(p.id))
    assert paths == ["ardern_2018.jpg", "ardern_2022.jpg", "obama.jpg"]
    # A threshold that splits every group splits unnamed ones (Macron's two photos), while a named
    # person keeps its faces and the user's placement.
    lib.recluster(threshold=0.01)
    assert lib.find_person("Jacinda Ardern").faces == 3
    assert sorted(p.faces for p in lib.people()) == [1, 1, 1, 3]


def test_confirm_records_constraint_and_new_edit_clears_redo(imported):
    lib = imported
    f = face_of(lib, "sunak.jpg")
    lib.confirm([f])
    assert lib.face(f).assignment == "user"
    lib.undo()
    assert lib.face(f).assignment == "cluster"
    lib.rename(lib.face(f).person_id, "Sunak")
    assert lib.redo() is None  # a new edit after undo drops the redo stack
    assert [d for _, d, _ in lib.history()][0].startswith("Rename")
