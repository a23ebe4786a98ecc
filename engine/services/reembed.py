"""Re-embedding a library after a new embedding model was activated.

Only ``Face.embedding`` and ``Face.model_id`` change: people, names, confirmations and constraints stay
as they are (a harmonic model's embeddings are comparable with the old ones while the library is
mixed). Faces are processed photo by photo and committed in batches, so a cancelled or killed run
resumes where it stopped: the next run picks up the faces whose model_id still differs.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import or_, select

from engine.errors import FacenetPhotosError
from engine.models.quantize import to_bytes
from engine.pipeline.crops import FaceRef, photo_crops
from engine.store.schema import Face, Photo

from .progress import ProgressRate, Stage


@dataclass
class ReEmbedProgress(ProgressRate):
    stage: Stage  # RE_EMBED, then DONE or CANCELLED
    done: int = 0  # faces
    total: int = 0
    failed: int = 0  # faces whose photo could not be read (they keep their old embedding)
    elapsed: float = 0.0
    model_id: str = ""
    current: str = ""
    failures: list[tuple[str, str]] = field(default_factory=list)


def stale_face_count(lib) -> int:
    model_id = lib.embedder().model_id
    with lib.store.session() as s:
        return len(s.scalars(select(Face.id).where(or_(Face.model_id.is_(None), Face.model_id != model_id))).all())


def re_embed(lib, cancel: threading.Event | None = None, commit_every: int = 32) -> Iterator[ReEmbedProgress]:
    """Generator of progress; re-computes embeddings of faces whose model_id is not the active model's.
    The last item has stage Stage.DONE or Stage.CANCELLED."""
    embedder = lib.embedder()
    model_id = embedder.model_id
    t0 = time.perf_counter()
    with lib.store.session() as s:
        rows = s.execute(
            select(Face.id, Face.landmarks, Face.w, Photo.path, Photo.width, Photo.height)
            .join(Photo, Photo.id == Face.photo_id)
            .where(or_(Face.model_id.is_(None), Face.model_id != model_id), Face.landmarks.is_not(None))
            .order_by(Photo.id, Face.id)
        ).all()
    by_photo: dict[str, list] = defaultdict(list)
    for r in rows:
        by_photo[r.path].append(r)
    prog = ReEmbedProgress(Stage.RE_EMBED, total=len(rows), model_id=model_id)
    yield prog
    pending: dict[int, bytes] = {}

    def flush() -> None:
        if not pending:
            return
        with lib.store.transaction() as s:
            for face in s.scalars(select(Face).where(Face.id.in_(list(pending)))):
                face.embedding, face.model_id = pending[face.id], model_id
        pending.clear()

    for path, faces in by_photo.items():
        if cancel is not None and cancel.is_set():
            flush()
            prog.stage, prog.elapsed = Stage.CANCELLED, time.perf_counter() - t0
            yield prog
            return
        prog.current = path
        side = max(faces[0].width or 0, faces[0].height or 0) or None
        try:
            crops = photo_crops(Path(path), [FaceRef(r.id, r.landmarks, float(r.w)) for r in faces], side)
        except (FacenetPhotosError, OSError) as exc:
            prog.failed += len(faces)
            prog.failures.append((path, str(exc)))
        else:
            for r, e in zip(faces, embedder.embed(crops), strict=True):
                pending[r.id] = to_bytes(e)
            prog.done += len(faces)
        if len(pending) >= commit_every:
            flush()
        prog.elapsed = time.perf_counter() - t0
        yield prog
    flush()
    prog.stage, prog.elapsed, prog.current = Stage.DONE, time.perf_counter() - t0, ""
    yield prog


def switch_model(lib, model_id: str, cancel: threading.Event | None = None,
                 commit_every: int = 32) -> Iterator[ReEmbedProgress]:
    """Make ``model_id`` the active embedder (hash-checked; ModelError in one line when it is missing,
    not installed or altered) and bring every face to it: the settings dialog's model switch, run as one
    background job. The first item comes before the activation (which loads the model, a few seconds),
    so the caller can show that something started. Activating the model that is already active just
    finishes a re-embed that was stopped before. People, names, confirmations, "not this person" and
    covers are untouched (``re_embed`` changes only ``Face.embedding`` and ``Face.model_id``)."""
    yield ReEmbedProgress(Stage.RE_EMBED, model_id=model_id, current="loading the model")
    previous = lib.active_model_id()
    if previous != model_id:
        # One journaled step, which also drops a saved grouping threshold of the previous model's space
        # (Library.activate_model); undo makes the previous model active again.
        lib.activate_model(model_id)
    yield from re_embed(lib, cancel, commit_every)


def transform_embeddings(lib, from_model: str, to_model: str, weight: np.ndarray, bias: np.ndarray,
                         cancel: threading.Event | None = None, batch: int = 2000) -> Iterator[ReEmbedProgress]:
    """Move every face embedded by ``from_model`` to ``to_model`` when the new model is the old one followed
    by a linear map (``normalise(W x + b)``, what "Learn from my corrections" trains): the stored
    embedding is mapped directly, so no photo is decoded and faces whose photo is gone move too. The
    stored vector is the int8 copy of the old one, so the result differs from embedding the face again
    by about one storage step. Only ``Face.embedding`` and ``Face.model_id`` change; committed in
    batches, a cancelled run leaves the rest to ``re_embed``."""
    from engine.models.quantize import from_bytes

    weight = np.asarray(weight, np.float32)
    bias = np.asarray(bias, np.float32)
    t0 = time.perf_counter()
    with lib.store.session() as s:
        ids = list(s.scalars(select(Face.id).where(Face.model_id == from_model, Face.embedding.is_not(None))
                             .order_by(Face.id)))
    prog = ReEmbedProgress(Stage.RE_EMBED, total=len(ids), model_id=to_model)
    yield prog
    for i in range(0, len(ids), batch):
        if cancel is not None and cancel.is_set():
            prog.stage, prog.elapsed = Stage.CANCELLED, time.perf_counter() - t0
            yield prog
            return
        with lib.store.transaction() as s:
            faces = list(s.scalars(select(Face).where(Face.id.in_(ids[i : i + batch]))))
            x = np.stack([from_bytes(f.embedding) for f in faces]).astype(np.float32)
            y = x @ weight.T + bias
            y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
            for f, e in zip(faces, y, strict=True):
                f.embedding, f.model_id = to_bytes(e), to_model
        prog.done += len(faces)
        prog.elapsed = time.perf_counter() - t0
        yield prog
    prog.stage, prog.elapsed = Stage.DONE, time.perf_counter() - t0
    yield prog
