"""User corrections. Each runs in one transaction and is journaled for undo/redo.

Faces the user placed get assignment "user" and never move when clustering runs again. A regroup
(a new threshold) is journaled too, with the threshold, so undo brings back both the groups and the
setting they were made with.

Descriptions are what the Edit menu shows after "Undo"/"Redo", so they are written as a person would
say them, with names cut and lists counted, and never longer than ``DESCRIPTION_CHARS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select

from engine.config import ClusterConfig
from engine.errors import EditError
from engine.store.database import LibraryStore
from engine.store.dates import photo_date
from engine.store.journal import TRACKED, ChangeSet, apply_states, encode, record
from engine.store.schema import (
    BY_CLUSTER,
    BY_SUGGESTION,
    BY_USER,
    IS,
    IS_NOT,
    NOT_A_FACE,
    NOT_KNOWN,
    CannotLink,
    Constraint,
    Face,
    JournalEntry,
    Person,
    Photo,
    Setting,
)

NAME_CHARS = 30  # a longer name is cut in a description
LISTED = 3  # up to this many people are named in a description; more are counted
DESCRIPTION_CHARS = 80


def count(n: int, word: str, many: str | None = None) -> str:
    """'1 face', '3,015 people'."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def cut(text: str, limit: int = NAME_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _label(p: Person) -> str:
    # The same words the app shows for a person.
    return cut(p.name) if p.name else f"Unnamed #{p.id}"


def _names(people: Sequence[Person]) -> str:
    """'Tom', 'Tom and Anna', 'Tom, Anna and Unnamed #4', '3,015 people'."""
    labels = [_label(p) for p in people]
    if len(labels) > LISTED:
        return count(len(labels), "person", "people")
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _of(s, person_ids) -> str:
    """' of Tom', ' of 3 people', or '' for faces in no person."""
    pids = sorted({p for p in person_ids if p is not None})
    if not pids:
        return ""
    if len(pids) > 1:
        return f" of {count(len(pids), 'person', 'people')}"
    p = s.get(Person, pids[0])
    return f" of {_label(p)}" if p is not None else ""


def _done(cs: ChangeSet, action: str, text: str):
    return cs.commit(action, cut(text, DESCRIPTION_CHARS))


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
    sources = list(dict.fromkeys(int(x) for x in source_ids if int(x) != int(target_id)))
    if not sources:
        raise EditError("choose at least two different people to merge")
    with store.transaction() as s:
        cs = ChangeSet(s)
        target = _person(s, target_id)
        srcs = [_person(s, pid) for pid in sources]
        target_label = _label(target)
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
        _done(cs, "merge", f"Merge {_names(srcs)} into {target_label}")
        return target.id


def split(store: LibraryStore, face_ids: list[int], name: str | None = None) -> int:
    """Move the selected faces into a new person."""
    with store.transaction() as s:
        cs = ChangeSet(s)
        faces = _faces(s, face_ids)
        old = {f.person_id for f in faces if f.person_id is not None}
        owners = _of(s, old)
        person = Person(name=_clean_name(name) if name else None, cover_face_id=faces[0].id)
        s.add(person)
        cs.created(person)
        _move(cs, faces, person.id)
        for pid in old:
            _drop_if_empty(cs, s, s.get(Person, pid))
        named = f" named {_label(person)}" if person.name else ""
        _done(cs, "split", f"Split {count(len(faces), 'face')}{owners} into a new person{named}")
        return person.id


def move_faces(store: LibraryStore, face_ids: list[int], person_id: int) -> None:
    with store.transaction() as s:
        cs = ChangeSet(s)
        target = _person(s, person_id)
        faces = _faces(s, face_ids)
        old = {f.person_id for f in faces if f.person_id not in (None, target.id)}
        owners = _of(s, old)
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
        _done(cs, "move", f"Move {count(len(faces), 'face')}{owners} to {_label(target)}")


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
        _done(cs, "rename", f"Rename {old} to {_label(p)}" if p.name else f"Remove the name {old}")


def set_hidden(store: LibraryStore, person_ids: list[int], hidden: bool) -> None:
    with store.transaction() as s:
        cs = ChangeSet(s)
        people = [_person(s, pid) for pid in dict.fromkeys(int(x) for x in person_ids)]
        if not people:
            raise EditError("no people selected")
        for p in people:
            cs.touch(p)
            p.hidden = bool(hidden)
        verb = "Hide" if hidden else "Unhide"
        _done(cs, "hide" if hidden else "unhide", f"{verb} {_names(people)}")


def set_cover(store: LibraryStore, person_id: int, face_id: int) -> None:
    with store.transaction() as s:
        cs = ChangeSet(s)
        p = _person(s, person_id)
        f = _faces(s, [face_id])[0]
        if f.person_id != p.id:
            raise EditError("the cover must be one of the person's faces")
        cs.touch(p)
        p.cover_face_id = f.id
        _done(cs, "cover", f"Change the cover of {_label(p)}")


def not_this_person(store: LibraryStore, face_ids: list[int]) -> list[int]:
    """Take faces out of their person and remember the user's "no". Each face becomes a person of
    its own (so it is not lost); clustering will never put it back with that person."""
    new_ids = []
    with store.transaction() as s:
        cs = ChangeSet(s)
        faces = _faces(s, face_ids)
        owners = _of(s, [f.person_id for f in faces])
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
        _done(cs, "not_this_person", f"Take {count(len(faces), 'face')} out{owners}")
    return new_ids


def confirm(store: LibraryStore, face_ids: list[int]) -> None:
    """The user says yes: these faces are their current person."""
    with store.transaction() as s:
        cs = ChangeSet(s)
        faces = _faces(s, face_ids)
        owners = _of(s, [f.person_id for f in faces])
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
        _done(cs, "confirm", f"Confirm {count(len(faces), 'face')}{owners}")


def delete_faces(store: LibraryStore, face_ids: list[int]) -> None:
    """The detector was wrong: these are not faces. They leave their person and are never grouped,
    shown or counted again; re-importing the photo does not bring them back (the importer keeps the
    mark on a detection in the same place). Undo restores them where they were."""
    with store.transaction() as s:
        cs = ChangeSet(s)
        faces = _faces(s, face_ids)
        owners = _of(s, [f.person_id for f in faces])
        old = {f.person_id for f in faces if f.person_id is not None}
        for f in faces:
            cs.touch(f)
            f.person_id, f.assignment, f.confidence = None, NOT_A_FACE, None
        # "is" / "is not" statements about something that is not a face mean nothing any more.
        for c in s.scalars(select(Constraint).where(Constraint.face_id.in_([f.id for f in faces]))):
            cs.delete(c)
        for pid in old:
            _drop_if_empty(cs, s, s.get(Person, pid))
        _done(cs, "delete_face", f"Delete {count(len(faces), 'false face')}{owners.replace(' of ', ' from ', 1)}")


def not_the_same(store: LibraryStore, person_a: int, person_b: int) -> None:
    """The user's "no" to "same person?": the two groups stay apart in every later grouping. Beside a named
    person, each face of the other group gets a "not this person" statement (recognition and grouping keep
    those already); between two unnamed groups, one cannot-link row holds both sides' faces."""
    with store.transaction() as s:
        cs = ChangeSet(s)
        a, b = _person(s, person_a), _person(s, person_b)
        if a.id == b.id:
            raise EditError("a person cannot be asked about themselves")
        faces = {p.id: list(s.scalars(select(Face.id).where(Face.person_id == p.id).order_by(Face.id)))
                 for p in (a, b)}
        if not faces[a.id] or not faces[b.id]:
            raise EditError("one of the two groups has no faces any more; list the questions again")
        if a.name and b.name:
            raise EditError(f"{_label(a)} and {_label(b)} are both named: they are already two people")
        named, other = (a, b) if a.name else (b, a) if b.name else (None, None)
        if named is not None:
            for fid in faces[other.id]:
                c = Constraint(face_id=fid, person_id=named.id, kind=IS_NOT)
                s.add(c)
                cs.created(c)
        else:
            link = CannotLink(faces_a=faces[a.id], faces_b=faces[b.id])
            s.add(link)
            cs.created(link)
        _done(cs, "not_same", f"Not the same person: {_names([a, b])}")


def not_one_of(store: LibraryStore, face_id: int, person_id: int, shown_face_ids: list[int]) -> int:
    """The user's "no" to "is this face one of them?": the face leaves ``person_id`` for a group of its own
    (so it is not lost, and a later grouping may still put it with its real person) and one cannot-link row
    keeps it apart from the faces the user was shown (``shown_face_ids``, the group's strip) in every later
    grouping; beside a named person, also a "not this person" statement (recognition keeps those). Returns
    the face's new person."""
    with store.transaction() as s:
        cs = ChangeSet(s)
        person = _person(s, person_id)
        face = _faces(s, [face_id])[0]
        if face.person_id != person.id:
            raise EditError("this question is out of date (the face changed group); list the questions again")
        shown = sorted({int(f) for f in shown_face_ids} - {face.id})
        if not shown:
            raise EditError("no faces of the group to keep the face apart from")
        link = CannotLink(faces_a=[face.id], faces_b=shown)
        s.add(link)
        cs.created(link)
        if person.name:
            c = Constraint(face_id=face.id, person_id=person.id, kind=IS_NOT)
            s.add(c)
            cs.created(c)
        lone = Person(cover_face_id=face.id)
        s.add(lone)
        cs.created(lone)
        cs.touch(face)
        face.person_id, face.assignment, face.confidence = lone.id, BY_CLUSTER, None
        _drop_if_empty(cs, s, person)
        _done(cs, "not_one_of", f"Take 1 face out of {_label(person)}")
        return lone.id


def not_known(store: LibraryStore, face_ids: list[int]) -> None:
    """"Not someone I know": the faces leave their person, and no people list, question or later grouping
    shows them again (they stay faces of their photos). Undo puts them back where they were."""
    with store.transaction() as s:
        cs = ChangeSet(s)
        faces = [f for f in _faces(s, face_ids) if f.assignment != NOT_A_FACE]
        if not faces:
            raise EditError("no faces selected")
        owners = _of(s, [f.person_id for f in faces])
        old = {f.person_id for f in faces if f.person_id is not None}
        for f in faces:
            cs.touch(f)
            f.person_id, f.assignment, f.confidence = None, NOT_KNOWN, None
        # "is" statements about a stranger mean nothing any more; a "not this person" stays true.
        for c in s.scalars(select(Constraint).where(Constraint.face_id.in_([f.id for f in faces]),
                                                    Constraint.kind == IS)):
            cs.delete(c)
        for pid in old:
            _drop_if_empty(cs, s, s.get(Person, pid))
        _done(cs, "not_known", f"Mark {count(len(faces), 'face')}{owners} as not someone I know")


def _grouping_state(s, with_faces: bool = True) -> tuple[dict, dict]:
    """Every face's group and every person's row, as the journal stores them (its TRACKED columns);
    ``with_faces=False``: the people only."""
    faces = {
        fid: {"person_id": pid, "assignment": asg, "confidence": conf}
        for fid, pid, asg, conf in s.execute(select(Face.id, Face.person_id, Face.assignment, Face.confidence))
    } if with_faces else {}
    cols = TRACKED["people"]
    people = {
        row[0]: {c: encode(v) for c, v in zip(cols, row[1:], strict=True)}
        for row in s.execute(select(Person.id, *(getattr(Person, c) for c in cols)))
    }
    for state in people.values():
        state["hidden"] = bool(state["hidden"])
    return faces, people


def _diff(before: dict, after: dict) -> list:
    return [[k, before.get(k), after.get(k)] for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


def regroup(store: LibraryStore, config: ClusterConfig, save_threshold: bool = False) -> dict:
    """Group every face again with ``config`` (names, confirmed faces and "not this person" are kept),
    as one undoable step. With ``save_threshold`` the threshold becomes the library's setting in the
    same step, so undo and redo always bring back groups together with the threshold that made them."""
    from engine.grouping.people import THRESHOLD_SETTING, group_faces, reclusterable_faces

    with store.transaction() as s:
        faces_before, people_before = _grouping_state(s)
        row = s.get(Setting, THRESHOLD_SETTING)
        setting_before = None if row is None else {"value": row.value}
        if save_threshold:
            if row is None:
                s.add(Setting(key=THRESHOLD_SETTING, value=float(config.threshold)))
            else:
                row.value = float(config.threshold)
        result = group_faces(s, reclusterable_faces(s), config)
        s.flush()
        faces_after, people_after = _grouping_state(s)
        row = s.get(Setting, THRESHOLD_SETTING)
        setting_after = None if row is None else {"value": row.value}
        changes = {
            "people": _diff(people_before, people_after),
            "faces": _diff(faces_before, faces_after),
            "settings": _diff({THRESHOLD_SETTING: setting_before} if setting_before else {},
                              {THRESHOLD_SETTING: setting_after} if setting_after else {}),
        }
        changes = {t: rows for t, rows in changes.items() if rows}
        record(s, "regroup", f"Regroup all faces at threshold {config.threshold:.2f}", changes)
        return result


# The journal entries an answer to a "same person?" question makes (merge, not_same, confirm, not_one_of):
# the regrouping it starts is folded into them.
ANSWER_ACTIONS = ("merge", "not_same", "confirm", "not_one_of")


def regroup_near(store: LibraryStore, person_ids: list[int], config: ClusterConfig, since: int | None = None,
                 neighbours: int = 12) -> dict:
    """Group again the free faces of ``person_ids`` and of their nearest unnamed groups
    (``engine.grouping.people.near_faces``), right after an answer: a yes makes a group the user's, and
    its neighbours may now join it; a no frees a face to join its real person. Nothing named, confirmed,
    placed or "not known" moves, and cannot-links hold, as in a full regrouping. The changes are folded
    into the answer's journal entry (the newest one), so one undo brings back exactly what the user saw
    before the answer; with no answer to fold into (none newer than entry ``since``), nothing is done."""
    from engine.grouping.people import group_faces, near_faces
    from engine.store.journal import extend

    with store.transaction() as s:
        entry = _next_to_replay(s, undoing=True)
        if entry is None or entry.action not in ANSWER_ACTIONS or (since is not None and entry.id <= since):
            return {"faces": 0, "groups": 0, "changed": 0}
        if neighbours > 0:
            only = near_faces(s, person_ids, config.threshold, neighbours)
        else:
            from engine.grouping.people import reclusterable_faces

            only = reclusterable_faces(s)
        if not only:
            return {"faces": 0, "groups": 0, "changed": 0}
        loose = list(s.scalars(select(Face.id).where(Face.person_id.is_(None))))
        watched = sorted(set(only) | set(loose))
        faces_before = _face_states(s, watched)
        people_before = _grouping_state(s, with_faces=False)[1]
        result = group_faces(s, [], config, only=only)
        s.flush()
        changes = {"people": _diff(people_before, _grouping_state(s, with_faces=False)[1]),
                   "faces": _diff(faces_before, _face_states(s, watched))}
        extend(entry, {t: rows for t, rows in changes.items() if rows})
        return result


def _face_states(s, face_ids: list[int]) -> dict:
    out = {}
    for i in range(0, len(face_ids), 900):
        q = select(Face.id, Face.person_id, Face.assignment, Face.confidence).where(Face.id.in_(face_ids[i:i + 900]))
        out.update({fid: {"person_id": pid, "assignment": asg, "confidence": conf}
                    for fid, pid, asg, conf in s.execute(q)})
    return out


def set_birthday(
    store: LibraryStore, person_id: int, birth: date | None, config: ClusterConfig | None = None
) -> list[int]:
    """Set (or with None, clear) a person's birth date, as one undoable step. Faces the program put with
    them (suggested or grouped, not the user's own) from photos taken before that day leave them and
    are grouped again in the same step (never back with them), so undo brings back both the date and
    the groups; returns those faces' ids."""
    from engine.grouping.people import group_faces, saved_config

    if birth is not None and birth > date.today():
        raise EditError(f"{birth} is in the future")
    with store.transaction() as s:
        faces_before, people_before = _grouping_state(s)
        p = _person(s, person_id)
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
                    face.person_id, face.assignment, face.confidence = None, None, None
                    freed.append(face.id)
        s.flush()
        if freed:
            group_faces(s, freed, config or saved_config(s))
            s.flush()
        faces_after, people_after = _grouping_state(s)
        changes = {"people": _diff(people_before, people_after), "faces": _diff(faces_before, faces_after)}
        what = f"born {birth.isoformat()}" if birth else "no birth date"
        taken_away = f" ({count(len(freed), 'earlier face')} taken away)" if freed else ""
        record(s, "birthday", cut(f"{_label(p)}: {what}{taken_away}", DESCRIPTION_CHARS),
               {t: rows for t, rows in changes.items() if rows})
        return freed


def _next_to_replay(s, undoing: bool) -> JournalEntry | None:
    """The entry the next undo (the newest done one) or redo (the oldest undone one) replays."""
    order = JournalEntry.id.desc() if undoing else JournalEntry.id.asc()
    return s.scalars(select(JournalEntry).where(JournalEntry.undone.is_(not undoing)).order_by(order).limit(1)).first()


def _replay(store: LibraryStore, undoing: bool) -> str | None:
    """Undo the newest done edit, or redo the oldest undone one; None when there is none."""
    with store.transaction() as s:
        e = _next_to_replay(s, undoing)
        if e is None:
            return None
        apply_states(s, e.changes, "before" if undoing else "after")
        e.undone = undoing
        return e.description


def pending_model_switch(store: LibraryStore, undoing: bool) -> str | None:
    """The face model that the next undo (or redo) makes active, when that step is a model switch
    (``Library.activate_model``); None otherwise."""
    with store.session() as s:
        e = _next_to_replay(s, undoing)
        if e is None or e.action != "model":
            return None
        idx = 1 if undoing else 2
        return next((r[0] for r in e.changes.get("models", []) if r[idx] and r[idx].get("active")), None)


def newest_entry(store: LibraryStore) -> int:
    """The id of the newest journal entry not undone (0 when there is none). Undone entries do not count: the
    next edit forgets them, and its entry may then take the same id."""
    with store.session() as s:
        return s.scalar(select(func.max(JournalEntry.id)).where(JournalEntry.undone.is_(False))) or 0


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
