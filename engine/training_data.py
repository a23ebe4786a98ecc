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

from .align import align_face
from .config import DetectConfig
from .errors import FacenetPhotosError
from .imageio import crop_scale_for, decode
from .store.schema import BY_CLUSTER, BY_USER, IS_NOT, Constraint, Face, Person, Photo


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


def library_examples(lib, min_faces: int = 2) -> tuple[np.ndarray, np.ndarray, list[int], list[tuple[int, int]]]:
    """(crops uint8 N x 112 x 112 x 3, labels int N, person_ids, negatives).

    Named, not hidden people with at least ``min_faces`` usable faces assigned by the user or by
    clustering (suggestions are skipped). ``labels[i]`` indexes ``person_ids``. ``negatives`` are the
    user's "is not" statements as (index into crops, person id) for faces that are in the examples.
    Photos that cannot be read any more are skipped."""
    store = lib.store
    with store.session() as s:
        rows = s.execute(
            select(Face.id, Face.person_id, Face.landmarks, Face.w, Photo.path, Photo.width, Photo.height)
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
        is_not = s.execute(select(Constraint.face_id, Constraint.person_id).where(Constraint.kind == IS_NOT)).all()

    counts: dict[int, int] = defaultdict(int)
    for r in rows:
        counts[r.person_id] += 1
    by_photo: dict[str, list] = defaultdict(list)
    for r in rows:
        if counts[r.person_id] >= min_faces:
            by_photo[r.path].append(r)

    crops: dict[int, np.ndarray] = {}
    person_of: dict[int, int] = {}
    for path, faces in by_photo.items():
        refs = [FaceRef(r.id, r.landmarks, float(r.w)) for r in faces]
        side = max(faces[0].width or 0, faces[0].height or 0) or None
        try:
            cut = photo_crops(Path(path), refs, side)
        except (FacenetPhotosError, OSError):
            continue  # the photo vanished or became unreadable
        for r, c in zip(faces, cut, strict=True):
            crops[r.id] = c
            person_of[r.id] = r.person_id

    # Re-apply min_faces after skipping unreadable photos.
    have: dict[int, int] = defaultdict(int)
    for pid in person_of.values():
        have[pid] += 1
    face_ids = sorted((f for f in crops if have[person_of[f]] >= min_faces), key=lambda f: (person_of[f], f))
    person_ids = sorted({person_of[f] for f in face_ids})
    index = {p: i for i, p in enumerate(person_ids)}
    out = np.stack([crops[f] for f in face_ids]) if face_ids else np.zeros((0, 112, 112, 3), np.uint8)
    labels = np.asarray([index[person_of[f]] for f in face_ids], dtype=np.int64)
    pos = {f: i for i, f in enumerate(face_ids)}
    negatives = [(pos[f], p) for f, p in is_not if f in pos]
    return out.astype(np.uint8), labels, person_ids, negatives
