"""Aligned face crops cut again from a photo for faces whose landmarks are known (re-embedding,
training examples). Crops are re-aligned from the original photo with the stored landmarks (photo
pixels), decoded at a scale just sharp enough for the smallest face of the photo, as the importer does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.config import DetectConfig
from engine.errors import FacenetPhotosError

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


def cut_crops(rows, out: dict[int, np.ndarray]) -> None:
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
