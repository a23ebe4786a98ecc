"""Training examples from a library: the user's named people as aligned crops, re-cut from the photos.

Torch-free (the engine never imports torch); ``training.personalise`` turns these arrays into a FaceSet.
Crops are re-aligned from the original photos with the stored landmarks (photo pixels), decoded at a
scale sharp enough for the smallest face of the photo, like the importer does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from engine.config import DetectConfig
from engine.errors import FacenetPhotosError
from engine.store.schema import BY_CLUSTER, BY_USER, IS_NOT, Constraint, Face, Person, Photo

from .align import align_face
from .decode import crop_scale_for, decode


@dataclass(frozen=True)
class FaceRef:
    face_id: int
    landmarks: list  # [[x, y] * 5] in photo pixels
    width: float  # face box width in photo pixels


def photo_crops(path: Path, faces: list[FaceRef], full_side: int | None = None) -> np.ndarray:
    """Aligned 112x112 RGB crops of ``faces`` in one photo. Raises FacenetPhotosError/OSError if unreadable.

    ``full_side``: the photo's long side in pixels when known (decodes only as much as needed)."""
    reduce = crop_scale_for([f.width for f in faces], DetectConfig().crop_face_px)
    max_side = max(1, round(full_side / reduce)) if full_side and reduce > 1 else None
    rgb, scale = decode(Path(path), max_side)
    inv = 1.0 / scale
    return np.stack([align_face(rgb, np.asarray(f.landmarks, np.float64) * inv) for f in faces])


def _cut_crops(rows, out: dict[int, np.ndarray]) -> None:
    """Align the faces of ``rows`` (face id, landmarks, w, path, width, height) into ``out`` by face id,
    one decode per photo; photos that cannot be read are skipped."""
    by_photo: dict[str, list] = defaultdict(list)
    for r in rows:
        by_photo[r.path].append(r)
    for path, faces in by_photo.items():
        refs = [FaceRef(r.face_id, r.landmarks, float(r.w)) for r in faces]
        side = max(faces[0].width or 0, faces[0].height or 0) or None
        try:
            cut = photo_crops(Path(path), refs, side)
        except (FacenetPhotosError, OSError):
            continue  # the photo vanished or became unreadable
        for r, c in zip(faces, cut, strict=True):
            out[r.face_id] = c


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
    _cut_crops([r for r in rows if counts[r.person_id] >= min_faces], crops)
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
    _cut_crops([r for f, r in extra.items() if f not in crops], crops)
    extra_ids = sorted(f for f in extra if f in crops)

    all_ids = face_ids + extra_ids
    out = np.stack([crops[f] for f in all_ids]) if all_ids else np.zeros((0, 112, 112, 3), np.uint8)
    labels = np.asarray([index[person_of[f]] for f in face_ids] + [-1] * len(extra_ids), dtype=np.int64)
    pos = {f: i for i, f in enumerate(all_ids)}
    negatives = list(dict.fromkeys((pos[r.face_id], r.person_id) for r in is_not if r.face_id in pos))
    return out.astype(np.uint8), labels, person_ids, negatives
