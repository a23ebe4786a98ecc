"""Undo/redo of user edits as row snapshots.

An edit records, for every row it touches, the row's columns before and after (``None`` for a row
that did not exist). Undo writes the "before" states back, redo the "after" states, in an order
that keeps foreign keys valid: upsert people, then faces, then constraints, then delete rows.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from .schema import Constraint, Face, JournalEntry, Person, Photo

TABLES = {"people": Person, "faces": Face, "constraints": Constraint}
# Columns an edit may change; anything else (embeddings, boxes) is never journaled.
TRACKED = {
    "people": ("name", "hidden", "cover_face_id", "created_at", "birth_date"),
    "faces": ("person_id", "assignment", "confidence"),
    "constraints": ("face_id", "person_id", "kind", "created_at"),
}
_ORDER = ("people", "faces", "constraints")
# A face the user drew is created by the edit itself: its whole row is journaled, so redo can bring
# it back after undo removed it (other faces come from imports and are never journaled whole).
FACE_ROW = ("photo_id", "x", "y", "w", "h", "landmarks", "score", "embedding", "model_id")


def _enc(v: Any) -> Any:
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
    return {c: _enc(getattr(obj, c)) for c in TRACKED[_table(obj)]}


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
        ch = self.changes()
        if not ch:
            return None
        # A new edit makes the redo stack meaningless.
        for e in self.session.scalars(select(JournalEntry).where(JournalEntry.undone.is_(True))):
            self.session.delete(e)
        entry = JournalEntry(action=action, description=description, changes=ch, undone=False)
        self.session.add(entry)
        return entry


def apply_states(session: Session, changes: dict, which: str) -> None:
    """Write the 'before' (undo) or 'after' (redo) states of a journal entry."""
    idx = 1 if which == "before" else 2
    deletes: list[tuple[str, int]] = []
    for table in _ORDER:
        model = TABLES[table]
        for row in changes.get(table, []):
            rid, state = row[0], row[idx]
            if state is None:
                deletes.append((table, rid))
                continue
            obj = session.get(model, rid)
            vals = {c: _dec(c, v) for c, v in state.items()}
            if obj is None:
                if table == "faces" and ("photo_id" not in vals or session.get(Photo, vals["photo_id"]) is None):
                    continue  # the face itself is gone (photo removed): nothing to restore
                obj = model(id=rid, **vals)
                session.add(obj)
            else:
                for c, v in vals.items():
                    setattr(obj, c, v)
        session.flush()
    for table in reversed(_ORDER):
        for t, rid in deletes:
            if t != table:
                continue
            obj = session.get(TABLES[t], rid)
            if obj is not None and inspect(obj).persistent:
                session.delete(obj)
        session.flush()
