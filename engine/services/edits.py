"""User corrections. Each runs in one transaction and is journaled for undo/redo.

Faces the user placed get assignment "user" and never move when clustering runs again.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from engine.errors import EditError
from engine.store.database import LibraryStore
from engine.store.dates import photo_date
from engine.store.journal import ChangeSet, apply_states
from engine.store.schema import (
    BY_CLUSTER,
    BY_SUGGESTION,
    BY_USER,
    IS,
    IS_NOT,
    Constraint,
    Face,
    JournalEntry,
    Person,
    Photo,
)


def _person(s, pid: int) -> Person:
    p = s.get(Person, pid)
    if p is None:
        raise EditError(f"no person with id {pid}")
    return p


def _faces(s, face_ids) -> list[Face]:
    ids = sorted({int(f) for f in face_ids})
    if not ids:
        raise EditError("no faces selected")
    faces = s.scalars(select(Face).where(Face.id.in_(ids))).all()
    if len(faces) != len(ids):
        missing = sorted(set(ids) - {f.id for f in faces})
        raise EditError(f"no face with id {missing[0]}")
    return list(faces)


def _label(p: Person) -> str:
    return p.name or f"person {p.id}"


def _move(cs: ChangeSet, faces: list[Face], pid: int) -> None:
    for f in faces:
        cs.touch(f)
        f.person_id, f.assignment, f.confidence = pid, BY_USER, None


def _drop_if_empty(cs: ChangeSet, s, person: Person) -> None:
    s.flush()
    left = s.scalar(select(func.count(Face.id)).where(Face.person_id == person.id))
    if not left and not person.name:
        for c in s.scalars(select(Constraint).where(Constraint.person_id == person.id)):
            cs.delete(c)
        cs.delete(person)
    elif person.cover_face_id is not None:
        cover = s.get(Face, person.cover_face_id)
        if cover is None or cover.person_id != person.id:
            cs.touch(person)
            person.cover_face_id = s.scalar(
                select(Face.id).where(Face.person_id == person.id).order_by(Face.score.desc()).limit(1)
            )


def merge(store: LibraryStore, target_id: int, source_ids: list[int]) -> int:
    """Move every face of the sources into the target; sources disappear. The target keeps its
    name, or takes the first source's name if it has none."""
    sources = [int(x) for x in source_ids if int(x) != int(target_id)]
    if not sources:
        raise EditError("choose at least two different people to merge")
    with store.transaction() as s:
        cs = ChangeSet(s)
        target = _person(s, target_id)
        srcs = [_person(s, pid) for pid in sources]
        if not target.name:
            named = next((p for p in srcs if p.name), None)
            if named is not None:
                cs.touch(target)
                target.name = named.name
        face_ids = list(s.scalars(select(Face.id).where(Face.person_id.in_([target.id, *sources]))))
        cs.bulk_faces(face_ids, person_id=target.id, assignment=BY_USER, confidence=None)
        for c in s.scalars(select(Constraint).where(Constraint.person_id.in_(sources))):
            cs.touch(c)
            c.person_id = target.id
        for p in srcs:
            cs.delete(p)
        if target.cover_face_id is None:
            cs.touch(target)
            target.cover_face_id = face_ids[0] if face_ids else None
        names = ", ".join(_label(p) for p in srcs)
        cs.commit("merge", f"Merge {names} into {_label(target)}")
        return target.id


def split(store: LibraryStore, face_ids: list[int], name: str | None = None) -> int:
    """Move the selected faces into a new person."""
    with store.transaction() as s:
        cs = ChangeSet(s)
        faces = _faces(s, face_ids)
        old = {f.person_id for f in faces if f.person_id is not None}
        person = Person(name=_clean_name(name) if name else None, cover_face_id=faces[0].id)
        s.add(person)
        cs.created(person)
        _move(cs, faces, person.id)
        for pid in old:
            _drop_if_empty(cs, s, s.get(Person, pid))
        cs.commit("split", f"Split {len(faces)} face(s) into {_label(person)}")
        return person.id


def move_faces(store: LibraryStore, face_ids: list[int], person_id: int) -> None:
    with store.transaction() as s:
        cs = ChangeSet(s)
        target = _person(s, person_id)
        faces = _faces(s, face_ids)
        old = {f.person_id for f in faces if f.person_id not in (None, target.id)}
        _move(cs, faces, target.id)
        # Moving a face to a person overrides an earlier "not this person" for that pair.
        for c in s.scalars(
            select(Constraint).where(
                Constraint.face_id.in_([f.id for f in faces]),
                Constraint.person_id == target.id,
                Constraint.kind == IS_NOT,
            )
        ):
            cs.delete(c)
        if target.cover_face_id is None:
            cs.touch(target)
            target.cover_face_id = faces[0].id
        for pid in old:
            _drop_if_empty(cs, s, s.get(Person, pid))
        cs.commit("move", f"Move {len(faces)} face(s) to {_label(target)}")


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = " ".join(str(name).split())
    if len(name) > 200:
        raise EditError("name is too long (200 characters at most)")
    return name or None


def rename(store: LibraryStore, person_id: int, name: str | None) -> None:
    with store.transaction() as s:
        cs = ChangeSet(s)
        p = _person(s, person_id)
        old = _label(p)
        cs.touch(p)
        p.name = _clean_name(name)
        cs.commit("rename", f"Rename {old} to {_label(p)}")


def set_hidden(store: LibraryStore, person_ids: list[int], hidden: bool) -> None:
    with store.transaction() as s:
        cs = ChangeSet(s)
        people = [_person(s, pid) for pid in person_ids]
        if not people:
            raise EditError("no people selected")
        for p in people:
            cs.touch(p)
            p.hidden = bool(hidden)
        verb = "Hide" if hidden else "Unhide"
        cs.commit("hide" if hidden else "unhide", f"{verb} {', '.join(_label(p) for p in people)}")


def set_cover(store: LibraryStore, person_id: int, face_id: int) -> None:
    with store.transaction() as s:
        cs = ChangeSet(s)
        p = _person(s, person_id)
        f = _faces(s, [face_id])[0]
        if f.person_id != p.id:
            raise EditError("the cover must be one of the person's faces")
        cs.touch(p)
        p.cover_face_id = f.id
        cs.commit("cover", f"Set cover of {_label(p)}")


def not_this_person(store: LibraryStore, face_ids: list[int]) -> list[int]:
    """Take faces out of their person and remember the user's "no". Each face becomes a person of
    its own (so it is not lost); clustering will never put it back with that person."""
    new_ids = []
    with store.transaction() as s:
        cs = ChangeSet(s)
        faces = _faces(s, face_ids)
        old = set()
        for f in faces:
            if f.person_id is None:
                continue
            old.add(f.person_id)
            c = Constraint(face_id=f.id, person_id=f.person_id, kind=IS_NOT)
            s.add(c)
            cs.created(c)
            lone = Person(cover_face_id=f.id)
            s.add(lone)
            cs.created(lone)
            new_ids.append(lone.id)
            cs.touch(f)
            f.person_id, f.assignment, f.confidence = lone.id, "cluster", None
        for pid in old:
            _drop_if_empty(cs, s, s.get(Person, pid))
        cs.commit("not_this_person", f"Not this person: {len(faces)} face(s)")
    return new_ids


def confirm(store: LibraryStore, face_ids: list[int]) -> None:
    """The user says yes: these faces are their current person."""
    with store.transaction() as s:
        cs = ChangeSet(s)
        faces = _faces(s, face_ids)
        for f in faces:
            if f.person_id is None:
                raise EditError(f"face {f.id} has no person to confirm")
            cs.touch(f)
            f.assignment, f.confidence = BY_USER, None
            exists = s.scalar(
                select(Constraint.id).where(
                    Constraint.face_id == f.id, Constraint.person_id == f.person_id, Constraint.kind == IS
                )
            )
            if exists is None:
                c = Constraint(face_id=f.id, person_id=f.person_id, kind=IS)
                s.add(c)
                cs.created(c)
        cs.commit("confirm", f"Confirm {len(faces)} face(s)")


def set_birthday(store: LibraryStore, person_id: int, birth: date | None) -> list[int]:
    """Set (or with None, clear) a person's birth date. Faces the program put with them (suggested
    or grouped, not the user's own) from photos taken before that day leave them; returns their ids
    so the caller can group them again."""
    if birth is not None and birth > date.today():
        raise EditError(f"{birth} is in the future")
    with store.transaction() as s:
        cs = ChangeSet(s)
        p = _person(s, person_id)
        cs.touch(p)
        p.birth_date = birth
        freed = []
        if birth is not None:
            rows = s.execute(
                select(Face, Photo.taken_at, Photo.mtime)
                .join(Photo, Photo.id == Face.photo_id)
                .where(Face.person_id == p.id, Face.assignment.in_([BY_SUGGESTION, BY_CLUSTER]))
            ).all()
            for face, taken, mtime in rows:
                if photo_date(taken, mtime)[0].date() < birth:
                    cs.touch(face)
                    face.person_id, face.assignment, face.confidence = None, None, None
                    freed.append(face.id)
            if freed:
                _drop_if_empty(cs, s, p)
        what = f"born {birth.isoformat()}" if birth else "no birth date"
        cs.commit("birthday", f"{_label(p)}: {what}" + (f" ({len(freed)} earlier face(s) removed)" if freed else ""))
        return freed


def _replay(store: LibraryStore, undoing: bool) -> str | None:
    """Undo the newest done edit, or redo the oldest undone one; None when there is none."""
    order = JournalEntry.id.desc() if undoing else JournalEntry.id.asc()
    with store.transaction() as s:
        e = s.scalars(
            select(JournalEntry).where(JournalEntry.undone.is_(not undoing)).order_by(order).limit(1)
        ).first()
        if e is None:
            return None
        apply_states(s, e.changes, "before" if undoing else "after")
        e.undone = undoing
        return e.description


def undo(store: LibraryStore) -> str | None:
    """Undo the latest edit; returns its description, or None when there is nothing to undo."""
    return _replay(store, undoing=True)


def redo(store: LibraryStore) -> str | None:
    """Redo the edit undone first of those still undone; None when there is nothing to redo."""
    return _replay(store, undoing=False)


def history(store: LibraryStore, limit: int = 50) -> list[tuple[int, str, bool]]:
    with store.session() as s:
        rows = s.execute(
            select(JournalEntry.id, JournalEntry.description, JournalEntry.undone)
            .order_by(JournalEntry.id.desc())
            .limit(limit)
        ).all()
        return [(r[0], r[1], bool(r[2])) for r in rows]
