"""SQLAlchemy 2.0 models of a library. Changes go through Alembic migrations (engine/migrations)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# File names that are not valid UTF-8 reach Python as lone surrogates (U+DC80..U+DCFF, PEP 383),
# which SQLite's UTF-8 text cannot hold. They are stored shifted into a private-use plane and
# shifted back on reading, so every path round-trips exactly.
_SURROGATE_SHIFT = 0x10FC80 - 0xDC80


def _to_db(s: str) -> str:
    if not any("\udc80" <= c <= "\udcff" for c in s):
        return s
    return "".join(chr(ord(c) + _SURROGATE_SHIFT) if "\udc80" <= c <= "\udcff" else c for c in s)


def _from_db(s: str) -> str:
    # max() runs in C: a per-character generator here was half the time of reading 100,000 paths.
    if not s or max(s) < "\U0010fc80":
        return s
    return "".join(
        chr(ord(c) - _SURROGATE_SHIFT) if "\U0010fc80" <= c <= "\U0010fcff" else c for c in s
    )


class PathText(TypeDecorator):
    """TEXT column for file-system paths, lossless for any file name."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else _to_db(str(value))

    def process_result_value(self, value, dialect):
        return None if value is None else _from_db(value)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


# Photo.status values
PENDING, DONE, FAILED, MISSING = "pending", "done", "error", "missing"
# Face.assignment values: how the face got its person
BY_CLUSTER, BY_USER, BY_SUGGESTION = "cluster", "user", "suggestion"
# A detection the user deleted as "not a face": in no person, never grouped, shown or counted again.
NOT_A_FACE = "not_a_face"
# A face the user marked "not someone I know" (a stranger in the background): in no person, never grouped,
# suggested or asked about again, but still a face of its photo (shown and counted there).
NOT_KNOWN = "not_known"
# Constraint.kind values
IS, IS_NOT = "is", "is_not"


class Photo(Base):
    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(PathText, unique=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    mtime: Mapped[float] = mapped_column(Float, default=0.0)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    # Set when this file's content is already in the library under another path.
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"))
    imported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), index=True)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    cover_face_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # No face in a photo taken before this day is ever suggested for the person.
    birth_date: Mapped[date | None] = mapped_column(Date)


class Face(Base):
    __tablename__ = "faces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    landmarks: Mapped[list] = mapped_column(JSON)  # [[x, y] * 5] in photo pixels
    score: Mapped[float] = mapped_column(Float)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # int8, one byte per dimension (128 or 512)
    model_id: Mapped[str | None] = mapped_column(String(100), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    assignment: Mapped[str | None] = mapped_column(String(16))
    # Squared L2 distance to the evidence that put it there (recognition), for the review queue.
    confidence: Mapped[float | None] = mapped_column(Float)


class Constraint(Base):
    """A user statement: this face is / is not this person."""

    __tablename__ = "constraints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CannotLink(Base):
    """A user's "no" to "same person?" between two groups: no face of ``faces_a`` is ever grouped with a face
    of ``faces_b`` (face ids, as the groups were when the user answered; lists of ints)."""

    __tablename__ = "cannot_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    faces_a: Mapped[list] = mapped_column(JSON)
    faces_b: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ModelRecord(Base):
    __tablename__ = "models"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    dim: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    # Harmonic lineage: the model whose embeddings this one's are compatible with.
    compatible_with: Mapped[str | None] = mapped_column(String(100))
    # Squared-L2 thresholds belong to the model that made the embeddings (another model's distances mean
    # something else): "same person?", grouping, and recognition. NULL until calibrated
    # (``facenet-photos calibrate``); the bundled SFace gets the values measured for it.
    verify_threshold: Mapped[float | None] = mapped_column(Float)
    cluster_threshold: Mapped[float | None] = mapped_column(Float)
    recognise_threshold: Mapped[float | None] = mapped_column(Float)
    # The model's child-face classifier (engine/grouping/children.py: weights, bias, penalty and how it was
    # fitted), chosen with the thresholds by ``facenet-photos calibrate``. NULL: the one shipped for the
    # model (SFace's, resources/models/child_direction.json) or the compatible model's, else none.
    child_classifier: Mapped[dict | None] = mapped_column(JSON)
    # The "same person?" queue's weights fitted for this model (evals/questions.py: the pair curves and the
    # face doubt model, relative to its grouping threshold) by ``facenet-photos calibrate``. NULL: the shipped
    # ones (fitted on SFace), or the compatible model's.
    question_weights: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JournalEntry(Base):
    """One user edit with the row states before and after it, for undo/redo."""

    __tablename__ = "journal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict] = mapped_column(JSON)
    undone: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ImportRun(Base):
    __tablename__ = "imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    roots: Mapped[list] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|done|cancelled|failed
    stats: Mapped[dict] = mapped_column(JSON, default=dict)


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict | list | str | float | int | None] = mapped_column(JSON)


Index("ix_faces_person_assignment", Face.person_id, Face.assignment)


def set_active_embedder(session, model_id: str) -> None:
    """Mark ``model_id`` as the one active embedder in the models table (no file check here)."""
    for row in session.scalars(select(ModelRecord).where(ModelRecord.kind == "embedder")):
        row.active = row.id == model_id
