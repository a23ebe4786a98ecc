"""Per-photo face analysis: decode -> detect -> align (-> embed, batched by the caller)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine.config import DetectConfig

from .align import align_face
from .decode import crop_scale_for, decode
from .detect import Detection, FaceDetector

THUMB_PX = 160


@dataclass
class FoundFace:
    box: tuple[float, float, float, float]  # original-image pixels (after EXIF orientation)
    landmarks: np.ndarray  # (5, 2) original-image pixels
    score: float
    crop: np.ndarray  # aligned 112x112x3 RGB
    thumb: np.ndarray  # square face thumbnail, THUMB_PX, RGB
    embedding: np.ndarray | None = None


@dataclass
class PhotoFaces:
    path: Path
    width: int
    height: int
    faces: list[FoundFace] = field(default_factory=list)


# Where a face's square would reach past the photo, the shortfall is filled with this grey: stretched edge
# pixels (what the thumbnails had before) smear across the cover and look like a broken picture.
THUMB_PAD_RGB = (128, 128, 128)


def thumbnail_square(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int]:
    """The (x0, y0, side) square of the photo a face's thumbnail shows, in photo pixels.

    The square has some margin around the face (1.6x its larger side) and is shifted to lie inside the photo
    where it fits, so a face near an edge sits off-centre rather than next to invented pixels. Only where the
    photo is narrower than the square (a face filling a small photo) does it reach outside, centred on that
    axis; the outside is padded with :data:`THUMB_PAD_RGB`."""
    x, y, w, h = box
    side = max(1, int(round(max(w, h) * 1.6)))
    # Give up margin before going outside the photo, but never cut the face itself.
    side = max(min(side, width, height), int(round(max(w, h))), 1)

    def place(centre: float, extent: int) -> int:
        start = int(round(centre - side / 2))
        if side <= extent:
            return min(max(start, 0), extent - side)
        return int(round((extent - side) / 2))  # wider than the photo: centre it, pad both sides

    return place(x + w / 2, width), place(y + h / 2, height), side


def square_reached_outside(box: tuple[float, float, float, float], width: int, height: int) -> bool:
    """Whether the centred square thumbnails used before :func:`thumbnail_square` reached past the photo
    (those were padded with stretched edge pixels and are regenerated)."""
    x, y, w, h = box
    cx, cy, half = x + w / 2, y + h / 2, max(w, h) * 0.8
    return (round(cx - half) < 0 or round(cy - half) < 0
            or round(cx + half) > width or round(cy + half) > height)


def face_thumbnail(rgb: np.ndarray, box: tuple[float, float, float, float], size: int = THUMB_PX) -> np.ndarray:
    """A square crop around the face box with some margin, for the people grid (see :func:`thumbnail_square`)."""
    ih, iw = rgb.shape[:2]
    x0, y0, side = thumbnail_square(box, iw, ih)
    x1, y1 = x0 + side, y0 + side
    pad = max(0, -x0, -y0, x1 - iw, y1 - ih)
    src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=THUMB_PAD_RGB) if pad else rgb
    crop = src[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    if crop.size == 0:
        return np.full((size, size, 3), THUMB_PAD_RGB, np.uint8)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


class FaceFinder:
    """Thread-safe: each thread gets its own detector."""

    def __init__(self, config: DetectConfig | None = None, max_pixels: int = 200_000_000):
        self.config = config or DetectConfig()
        self.max_pixels = max_pixels
        self._local = threading.local()

    @property
    def detector(self) -> FaceDetector:
        det = getattr(self._local, "det", None)
        if det is None:
            det = self._local.det = FaceDetector(self.config)
        return det

    def detections(self, small: np.ndarray, scale: float) -> list[Detection]:
        min_px = self.config.min_face_px / scale
        return [d.scaled(scale) for d in self.detector.detect(small, min_face_px=min_px)]

    def find(self, path: Path) -> PhotoFaces:
        """Decode at reduced scale, detect, then align crops from a decode sharp enough for them."""
        cfg = self.config
        small, scale = decode(path, cfg.max_side, self.max_pixels)
        full_h, full_w = round(small.shape[0] * scale), round(small.shape[1] * scale)
        dets = self.detections(small, scale)
        result = PhotoFaces(path, full_w, full_h)
        if not dets:
            return result
        # Re-decode only when the detection image is too coarse for a sharp crop of the smallest face.
        reduce = crop_scale_for([d.box[2] for d in dets], cfg.crop_face_px)
        if reduce >= scale - 1e-6:
            src, src_scale = small, scale
        else:
            src, src_scale = decode(path, max(1, round(max(full_w, full_h) / reduce)), self.max_pixels)
        inv = 1.0 / src_scale
        for d in dets:
            local = d.scaled(inv)
            result.faces.append(
                FoundFace(
                    box=d.box,
                    landmarks=d.landmarks,
                    score=d.score,
                    crop=align_face(src, local.landmarks),
                    thumb=face_thumbnail(src, local.box),
                )
            )
        return result
