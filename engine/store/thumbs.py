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


# Version of the way thumbnails are cut, written to thumbs/format. Format 1 (no file) padded faces near a
# photo's edge with stretched edge pixels; format 2 shifts the square inside the photo (see
# engine.pipeline.faces.thumbnail_square).
THUMBS_FORMAT = 2
FORMAT_FILE = "format"


def thumbs_format(thumbs_dir: Path) -> int:
    try:
        return int((thumbs_dir / FORMAT_FILE).read_text().strip() or 1)
    except (OSError, ValueError):
        return 1


def drop_thumbnails(thumbs_dir: Path, face_ids) -> int:
    """Delete these faces' cached thumbnails (they are cut again from the photo when next shown)."""
    n = 0
    for fid in face_ids:
        try:
            thumbnail_path(thumbs_dir, int(fid)).unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n


def mark_thumbs_format(thumbs_dir: Path, version: int = THUMBS_FORMAT) -> None:
    tmp = thumbs_dir / (FORMAT_FILE + ".tmp")
    tmp.write_text(f"{version}\n")
    tmp.replace(thumbs_dir / FORMAT_FILE)


# Thumbnails of whole photos, for the photo grid: the long side at most PHOTO_THUMB_PX, in thumbs/photos/.
# Kept apart from the face thumbnails (whose names are face ids) so that neither ever overwrites the other.
PHOTO_THUMB_PX = 320


def photo_thumbnail_path(thumbs_dir: Path, photo_id: int) -> Path:
    return thumbs_dir / "photos" / f"{photo_id % 256:02x}" / f"{photo_id}.jpg"


def write_photo_thumbnail(thumbs_dir: Path, photo_id: int, rgb: np.ndarray, max_side: int = PHOTO_THUMB_PX) -> Path:
    """Scale the (already oriented) photo down to ``max_side`` and cache it as a JPEG."""
    p = photo_thumbnail_path(thumbs_dir, photo_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(rgb)
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    tmp = p.with_suffix(".tmp")
    img.save(tmp, "JPEG", quality=85)
    tmp.replace(p)
    return p
