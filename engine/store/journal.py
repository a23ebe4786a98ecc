"""Undo/redo of user edits as row snapshots.

An edit records, for every row it touches, the row's columns before and after (``None`` for a row
that did not exist). Undo writes the "before" states back, redo the "after" states, in an order
that keeps foreign keys valid: upsert people, then faces and constraints, then delete rows.

Two rules keep a replay from ever producing groups nobody saw (docs/gui.md, "Undo and redo"):

* A row is written only while it still holds the state the replay expects (the entry's "after" for
  an undo, its "before" for a redo). Journaled edits are replayed strictly in order, so only a
  change made outside the journal (an import grouping new faces) can make them differ, and that
  change is kept rather than overwritten.
* A person is deleted only when no face points at it any more, so a replay never leaves a face
  in no person.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from .schema import CannotLink, Constraint, Face, JournalEntry, ModelRecord, Person, Photo, Setting

TABLES = {"people": Person, "faces": Face, "constraints": Constraint, "cannot_links": CannotLink,
          "settings": Setting, "models": ModelRecord}
# Columns an edit may change; anything else (embeddings, boxes) is never journaled.
TRACKED = {
    "people": ("name", "hidden", "cover_face_id", "created_at", "birth_date"),
    "faces": ("person_id", "assignment", "confidence"),
    "constraints": ("face_id", "person_id", "kind", "created_at"),
    "cannot_links": ("faces_a", "faces_b", "created_at"),  # a "no" to "same person?"
    "settings": ("value",),  # a regroup's threshold
    # Which face model is active (a model switch); its faces' embeddings are never journaled: after undo
    # the faces are brought back to the model by a re-embed (engine.services.reembed).
    "models": ("active",),
}
_KEY = {"settings": "key"}  # primary key column when it is not "id"
# Faces before constraints: a constraint may name a face the replay brings back (a drawn face).
_ORDER = ("people", "faces", "constraints", "cannot_links", "settings", "models")
# A face the user drew is created by the edit itself: its whole row is journaled, so redo can bring
# it back after undo removed it (other faces come from imports and are never journaled whole).
FACE_ROW = ("photo_id", "x", "y", "w", "h", "landmarks", "score", "embedding", "model_id")


def encode(v: Any) -> Any:
    return v.isoformat() if isinstance(v, (datetime, date)) else v


def _dec(col: str, v: Any) -> Any:
    if col == "created_at" and isinstance(v, str):
        return datetime.fromisoformat(v)
    if col == "birth_date" and isinstance(v, str):
        return date.fromisoformat(v)
    if col == "embedding" and isinstance(v, str):
        return base64.b64decode(v)
    return v


def _face_row(face: Face) -> dict:
    row = {c: getattr(face, c) for c in FACE_ROW}
    if row["embedding"] is not None:
        row["embedding"] = base64.b64encode(row["embedding"]).decode("ascii")
    return row


def _table(obj) -> str:
    return obj.__tablename__


def _state(obj) -> dict:
    return {c: encode(getattr(obj, c)) for c in TRACKED[_table(obj)]}


class ChangeSet:
    """Collects before/after states of the rows an edit touches."""

    def __init__(self, session: Session):
        self.session = session
        self._before: dict[tuple[str, int], dict | None] = {}
        self._objs: dict[tuple[str, int], Any] = {}
        self._deleted: set[tuple[str, int]] = set()
        self._whole: set[tuple[str, int]] = set()

    def touch(self, obj) -> None:
        """Call before modifying an existing row."""
        key = (_table(obj), obj.id)
        if key not in self._before:
            self._before[key] = _state(obj)
        self._objs[key] = obj

    def created(self, obj) -> None:
        """Call after adding a new row (it is flushed here to get its id)."""
        self.session.flush()
        key = (_table(obj), obj.id)
        self._before.setdefault(key, None)
        self._objs[key] = obj

    def created_face(self, face: Face) -> None:
        """Call after adding a face the edit itself makes (a drawn face): undo deletes it, redo
        writes the whole row back."""
        self.created(face)
        self._whole.add(("faces", face.id))

    def delete(self, obj) -> None:
        self.touch(obj)
        self._deleted.add((_table(obj), obj.id))
        self.session.delete(obj)

    def bulk_faces(self, face_ids: list[int], **values) -> None:
        """Update many faces at once (merge of large people) while journaling them."""
        if not face_ids:
            return
        rows = self.session.execute(
            select(Face.id, Face.person_id, Face.assignment, Face.confidence).where(Face.id.in_(face_ids))
        ).all()
        for fid, pid, asg, conf in rows:
            key = ("faces", fid)
            if key not in self._before:
                self._before[key] = {"person_id": pid, "assignment": asg, "confidence": conf}
        # identity map objects would be stale after a bulk update
        self.session.flush()
        for i in range(0, len(face_ids), 900):
            self.session.execute(
                update(Face).where(Face.id.in_(face_ids[i : i + 900])).values(**values),
                execution_options={"synchronize_session": "fetch"},
            )
        for fid, pid, asg, conf in rows:
            after = {"person_id": pid, "assignment": asg, "confidence": conf}
            after.update({k: v for k, v in values.items() if k in after})
            self._objs[("faces", fid)] = after

    def changes(self) -> dict:
        self.session.flush()
        out: dict[str, list] = {t: [] for t in TABLES}
        for key, before in self._before.items():
            table, rid = key
            if key in self._deleted:
                after = None
            else:
                obj = self._objs[key]
                after = dict(obj) if isinstance(obj, dict) else _state(obj)
                if key in self._whole:
                    after.update(_face_row(obj))
            if before != after:
                out[table].append([rid, before, after])
        return {t: rows for t, rows in out.items() if rows}

    def commit(self, action: str, description: str) -> JournalEntry | None:
        return record(self.session, action, description, self.changes())


def drop_redo(session: Session) -> None:
    """Forget every undone edit: after any other change their "after" states are out of date."""
    session.execute(JournalEntry.__table__.delete().where(JournalEntry.undone.is_(True)))


def record(session: Session, action: str, description: str, changes: dict) -> JournalEntry | None:
    """Journal one edit (nothing when it changed nothing). A new edit makes the redo stack meaningless."""
    if not changes:
        return None
    drop_redo(session)
    entry = JournalEntry(action=action, description=description, changes=changes, undone=False)
    session.add(entry)
    return entry


def extend(entry: JournalEntry, changes: dict) -> None:
    """Fold ``changes`` (made right after ``entry``'s edit, e.g. the regrouping an answer starts) into
    ``entry``, so that one undo takes both back and one redo brings both: a row keeps the entry's
    "before" (else the new one's) and takes the new "after"; a row back where it began is dropped."""
    merged = {t: {r[0]: [r[1], r[2]] for r in rows} for t, rows in (entry.changes or {}).items()}
    for table, rows in changes.items():
        mine = merged.setdefault(table, {})
        for rid, before, after in rows:
            mine[rid] = [mine[rid][0] if rid in mine else before, after]
    out = {t: [[rid, b, a] for rid, (b, a) in rows.items() if b != a] for t, rows in merged.items()}
    # A new dict: the JSON column notices a reassignment, not an edit in place.
    entry.changes = {t: rows for t, rows in out.items() if rows}


def _current(obj, table: str) -> dict | None:
    return None if obj is None else {c: encode(getattr(obj, c)) for c in TRACKED[table]}


def apply_states(session: Session, changes: dict, which: str) -> None:
    """Write the 'before' (undo) or 'after' (redo) states of a journal entry (see the module doc for
    the rows it leaves alone). A regroup's entry holds thousands of rows: they are read a few hundred
    at a time and written in bulk, not one query per row."""
    idx, expect = (1, 2) if which == "before" else (2, 1)
    deletes: dict[str, list] = {t: [] for t in _ORDER}
    for table in _ORDER:
        model = TABLES[table]
        rows = changes.get(table, [])
        if table == "faces":
            deletes[table] += _apply_faces(session, rows, idx, expect)
            continue
        objs = _prefetch(session, model, [r[0] for r in rows])
        with session.no_autoflush:
            for row in rows:
                rid, state, expected = row[0], row[idx], row[expect]
                obj = objs.get(rid)
                if _current(obj, table) != expected:
                    # Changed since, outside the journal (an import's grouping): keep that change. A person
                    # the replay removes still goes if it is left without faces (checked below).
                    if state is None and table == "people":
                        deletes[table].append(rid)
                    continue
                if state is None:
                    deletes[table].append(rid)
                    continue
                vals = {c: _dec(c, v) for c, v in state.items()}
                if obj is None:
                    objs[rid] = obj = model(**{_KEY.get(table, "id"): rid}, **vals)
                    session.add(obj)
                else:
                    for c, v in vals.items():
                        setattr(obj, c, v)
        session.flush()
    for table in reversed(_ORDER):
        ids = deletes[table]
        if not ids:
            continue
        objs = _prefetch(session, TABLES[table], ids)
        busy: set = set()
        if table == "people":
            # Faces landed on it since (an import): deleting it would leave them in no person.
            for i in range(0, len(ids), _CHUNK):
                busy |= set(session.scalars(
                    select(Face.person_id).where(Face.person_id.in_(ids[i:i + _CHUNK])).distinct()))
        for rid in ids:
            obj = objs.get(rid)
            if obj is not None and rid not in busy and inspect(obj).persistent:
                session.delete(obj)
        session.flush()


_CHUNK = 900  # ids per IN (...) query, below SQLite's variable limit


def _prefetch(session: Session, model, ids: list) -> dict:
    """The rows with these keys, by key, in a few queries."""
    name = _KEY.get(model.__tablename__, "id")
    key = getattr(model, name)
    return {getattr(o, name): o for i in range(0, len(ids), _CHUNK)
            for o in session.scalars(select(model).where(key.in_(ids[i:i + _CHUNK])))}


def _apply_faces(session: Session, rows: list, idx: int, expect: int) -> list[int]:
    """The faces of an entry in bulk (a regroup holds thousands): read their groups in a few queries,
    write those that still hold the expected state in one executemany. A drawn face (journaled as a
    whole row) is created again on redo; the ids of faces to delete (a drawn face, undone) are returned
    so they go after the constraints that name them."""
    tracked = TRACKED["faces"]
    ids = [r[0] for r in rows]
    current: dict[int, dict] = {}
    for i in range(0, len(ids), _CHUNK):
        q = select(Face.id, Face.person_id, Face.assignment, Face.confidence).where(Face.id.in_(ids[i:i + _CHUNK]))
        for fid, pid, asg, conf in session.execute(q):
            current[fid] = {"person_id": pid, "assignment": asg, "confidence": conf}
    params, creates, deletes = [], [], []
    for rid, *states in rows:
        state, expected = states[idx - 1], states[expect - 1]
        if rid not in current:
            # Gone (its photo removed): nothing to restore; unless it is a drawn face that undo removed.
            if (state is not None and expected is None and "photo_id" in state
                    and session.get(Photo, state["photo_id"]) is not None):
                creates.append({c: _dec(c, v) for c, v in state.items()})
                creates[-1]["id"] = rid
            continue
        if expected is None or current[rid] != {c: expected.get(c) for c in tracked}:
            continue  # changed since, outside the journal (an import's grouping): keep that change
        if state is None:
            deletes.append(rid)
        else:
            params.append({"id": rid, **{c: state.get(c) for c in tracked}})
    people = {p["person_id"] for p in params + creates if p.get("person_id") is not None}
    existing = {pid for pid, in _prefetch_ids(session, sorted(people))}
    for pid in sorted(people - existing):
        # A face goes back to a person that an import's grouping removed since: bring back an unnamed one
        # with that id rather than fail (or leave the face in no person).
        session.add(Person(id=pid))
    session.flush()
    for row in creates:
        session.add(Face(**row))
    session.flush()
    if params:
        session.execute(update(Face), params)  # ORM bulk update by primary key
    session.expire_all()
    return deletes


def _prefetch_ids(session: Session, ids: list[int]) -> list[tuple[int]]:
    return [r for i in range(0, len(ids), _CHUNK)
            for r in session.execute(select(Person.id).where(Person.id.in_(ids[i:i + _CHUNK])))]
