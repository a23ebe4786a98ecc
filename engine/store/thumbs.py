"""Face thumbnail cache: small square JPEGs in the library's thumbs/ folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def thumbnail_path(thumbs_dir: Path, face_id: int) -> Path:
    return thumbs_dir / f"{face_id % 256:02x}" / f"{face_id}.jpg"


def write_thumbnail(thumbs_dir: Path, face_id: int, rgb: np.ndarray) -> Path:
    p = thumbnail_path(thumbs_dir, face_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    Image.fromarray(rgb).save(tmp, "JPEG", quality=88)
    tmp.replace(p)
    return p
