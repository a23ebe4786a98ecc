"""Faces from boxes the detector did not give: a region read from XMP, or a box the user drew.

Landmarks are looked for inside the box (the detector, run on a crop around it at a lower score
threshold, often finds a face it missed in the whole photo); when none is there (the back of a
head, a face in profile), the box itself is mapped onto the alignment template.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from engine.config import DetectConfig

from .align import TEMPLATE_112, align_face
from .decode import crop_scale_for, decode
from .detect import FaceDetector
from .faces import FoundFace, face_thumbnail
from .xmp import box_iou

# Score threshold for finding landmarks inside a given box: the box already says "a face is here".
BOX_SCORE_THRESHOLD = 0.3
# The crop around a box is scaled so that the box is this wide (YuNet's sweet spot for one face).
_BOX_PX = 160
_MARGIN = 0.6

_local = threading.local()


def _detector(config: DetectConfig) -> FaceDetector:
    det = getattr(_local, "det", None)
    if det is None:
        det = _local.det = FaceDetector(replace(config, score_threshold=BOX_SCORE_THRESHOLD))
    return det


def template_landmarks(box: tuple[float, float, float, float]) -> np.ndarray:
    """The template's five points placed in ``box`` as if the box were the 112x112 crop's face."""
    x, y, w, h = box
    return (TEMPLATE_112 / 112.0 * np.array([w, h]) + np.array([x, y])).astype(np.float32)


def landmarks_in_box(
    rgb: np.ndarray, box: tuple[float, float, float, float], config: DetectConfig | None = None
) -> tuple[np.ndarray, float] | None:
    """Five landmarks (pixels of ``rgb``) and a score of the face the detector finds inside ``box``,
    or None when it finds none that matches the box."""
    cfg = config or DetectConfig()
    x, y, w, h = box
    if w < 4 or h < 4:
        return None
    ih, iw = rgb.shape[:2]
    side = max(w, h) * (1 + 2 * _MARGIN)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(iw, cx + side / 2)), int(min(ih, cy + side / 2))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    f = _BOX_PX / max(w, h)
    crop = rgb[y0:y1, x0:x1]
    crop = cv2.resize(crop, (max(8, round(crop.shape[1] * f)), max(8, round(crop.shape[0] * f))),
                      interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    local_box = ((x - x0) * f, (y - y0) * f, w * f, h * f)
    best, best_iou = None, 0.0
    for d in _detector(cfg).detect(crop):
        iou = box_iou(d.box, local_box)
        dcx, dcy = d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2
        lx, ly, lw, lh = local_box
        inside = lx <= dcx <= lx + lw and ly <= dcy <= ly + lh
        if (iou >= 0.25 or inside) and iou > best_iou:
            best, best_iou = d, iou
    if best is None:
        return None
    lm = best.landmarks / f + np.array([x0, y0], np.float32)
    return lm.astype(np.float32), float(best.score)


def faces_from_boxes(
    path: Path,
    boxes: list[tuple[float, float, float, float]],
    config: DetectConfig | None = None,
    max_pixels: int = 200_000_000,
    rgb: np.ndarray | None = None,
    scale: float | None = None,
) -> list[FoundFace]:
    """One face per box (pixels of the displayed photo, after EXIF orientation): aligned from the
    landmarks found inside it, else from the box; score 0 marks a box-aligned face.

    ``rgb``/``scale`` may pass a decode the caller already has (scale = photo pixels per pixel)."""
    cfg = config or DetectConfig()
    boxes = [b for b in boxes if b[2] >= 2 and b[3] >= 2]
    if not boxes:
        return []
    if rgb is None or scale is None:
        info_side = None
        reduce = crop_scale_for([b[2] for b in boxes], cfg.crop_face_px)
        if reduce > 1:
            # Decode only as sharply as the smallest box needs (as the importer does for faces).
            probe, probe_scale = decode(path, 256, max_pixels)
            full = max(probe.shape[:2]) * probe_scale
            info_side = max(1, round(full / reduce))
        rgb, scale = decode(path, info_side, max_pixels)
    out = []
    inv = 1.0 / scale
    for b in boxes:
        local = tuple(v * inv for v in b)
        found = landmarks_in_box(rgb, local, cfg)
        if found is not None:
            lm_local, score = found
        else:
            lm_local, score = template_landmarks(local), 0.0
        out.append(
            FoundFace(
                box=tuple(float(v) for v in b),
                landmarks=(lm_local * scale).astype(np.float32),
                score=score,
                crop=align_face(rgb, lm_local),
                thumb=face_thumbnail(rgb, local),
            )
        )
    return out
