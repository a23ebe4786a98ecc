"""Training examples from a library: the user's named people as aligned crops, re-cut from the photos.

Torch-free (the engine never imports torch); ``training.personalise`` turns these arrays into a FaceSet.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sqlalchemy import select

from engine.pipeline.crops import cut_crops
from engine.store.schema import BY_CLUSTER, BY_USER, IS_NOT, Constraint, Face, Person, Photo


def library_examples(lib, min_faces: int = 2) -> tuple[np.ndarray, np.ndarray, list[int], list[tuple[int, int]]]:
    """(crops uint8 N x 112 x 112 x 3, labels int N, person_ids, negatives).

    Named, not hidden people with at least ``min_faces`` usable faces assigned by the user or by
    clustering (suggestions are skipped). ``labels[i]`` indexes ``person_ids``, or is -1 for a face that
    is here only because the user said it is *not* one of these people (it belongs to nobody named, or
    to someone left out): such faces come after the labelled ones. ``negatives`` are the user's "is not"
    statements as (index into crops, person id): every statement about a face among the crops (whatever
    the person), and the statements about the other faces when the person is one of ``person_ids``.
    Photos that cannot be read any more are skipped."""
    store = lib.store
    cols = (Face.id.label("face_id"), Face.landmarks, Face.w, Photo.path, Photo.width, Photo.height)
    with store.session() as s:
        rows = s.execute(
            select(*cols, Face.person_id)
            .join(Photo, Photo.id == Face.photo_id)
            .join(Person, Person.id == Face.person_id)
            .where(
                Person.name.is_not(None),
                Person.hidden.is_(False),
                Face.assignment.in_((BY_USER, BY_CLUSTER)),
                Face.landmarks.is_not(None),
            )
            .order_by(Face.person_id, Face.id)
        ).all()
        is_not = s.execute(
            select(*cols, Constraint.person_id)
            .join(Face, Face.id == Constraint.face_id)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Constraint.kind == IS_NOT)
            .order_by(Constraint.id)
        ).all()

    counts: dict[int, int] = defaultdict(int)
    for r in rows:
        counts[r.person_id] += 1
    crops: dict[int, np.ndarray] = {}
    cut_crops([r for r in rows if counts[r.person_id] >= min_faces], crops)
    person_of = {r.face_id: r.person_id for r in rows if r.face_id in crops}

    # Re-apply min_faces after skipping unreadable photos.
    have: dict[int, int] = defaultdict(int)
    for pid in person_of.values():
        have[pid] += 1
    face_ids = sorted((f for f in person_of if have[person_of[f]] >= min_faces), key=lambda f: (person_of[f], f))
    person_ids = sorted({person_of[f] for f in face_ids})
    index = {p: i for i, p in enumerate(person_ids)}
    labelled = set(face_ids)

    # Faces the user took away from one of these people: their crops are needed as negatives.
    wanted = set(person_ids)
    extra = {r.face_id: r for r in is_not if r.face_id not in labelled and r.person_id in wanted and r.landmarks}
    cut_crops([r for f, r in extra.items() if f not in crops], crops)
    extra_ids = sorted(f for f in extra if f in crops)

    all_ids = face_ids + extra_ids
    out = np.stack([crops[f] for f in all_ids]) if all_ids else np.zeros((0, 112, 112, 3), np.uint8)
    labels = np.asarray([index[person_of[f]] for f in face_ids] + [-1] * len(extra_ids), dtype=np.int64)
    pos = {f: i for i, f in enumerate(all_ids)}
    negatives = list(dict.fromkeys((pos[r.face_id], r.person_id) for r in is_not if r.face_id in pos))
    return out.astype(np.uint8), labels, person_ids, negatives


def library_embedding_examples(lib, model_id: str, min_faces: int = 2
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], list[tuple[int, int]]]:
    """(face ids, stored embeddings N x D float32, labels, person_ids, negatives): the faces
    :func:`library_examples` would give, as the embeddings the library already holds for ``model_id``
    (no photo is decoded). For learning on top of a model's embeddings (``training.adapter``). Faces
    embedded by another model (a re-embed not finished) are left out, so every row is in one space."""
    from engine.models.quantize import from_bytes

    with lib.store.session() as s:
        rows = s.execute(
            select(Face.id, Face.person_id, Face.embedding)
            .join(Person, Person.id == Face.person_id)
            .where(
                Person.name.is_not(None),
                Person.hidden.is_(False),
                Face.assignment.in_((BY_USER, BY_CLUSTER)),
                Face.model_id == model_id,
                Face.embedding.is_not(None),
            )
            .order_by(Face.person_id, Face.id)
        ).all()
        is_not = s.execute(
            select(Constraint.face_id, Constraint.person_id, Face.embedding)
            .join(Face, Face.id == Constraint.face_id)
            .where(Constraint.kind == IS_NOT, Face.model_id == model_id, Face.embedding.is_not(None))
            .order_by(Constraint.id)
        ).all()
    counts: dict[int, int] = defaultdict(int)
    for r in rows:
        counts[r.person_id] += 1
    rows = [r for r in rows if counts[r.person_id] >= min_faces]
    person_ids = sorted({r.person_id for r in rows})
    index = {p: i for i, p in enumerate(person_ids)}
    labelled = {r.id for r in rows}
    wanted = set(person_ids)
    extra: dict[int, bytes] = {}
    for face_id, person_id, blob in is_not:
        if face_id not in labelled and person_id in wanted:
            extra.setdefault(face_id, blob)
    ids = [r.id for r in rows] + sorted(extra)
    blobs = [r.embedding for r in rows] + [extra[f] for f in sorted(extra)]
    emb = np.stack([from_bytes(b) for b in blobs]).astype(np.float32) if blobs else np.zeros((0, 0), np.float32)
    labels = np.asarray([index[r.person_id] for r in rows] + [-1] * len(extra), dtype=np.int64)
    pos = {f: i for i, f in enumerate(ids)}
    negatives = list(dict.fromkeys((pos[f], p) for f, p, _ in is_not if f in pos and p in wanted))
    return np.asarray(ids, np.int64), emb, labels, person_ids, negatives
