"""Per-photo face analysis: decode -> detect -> align (-> embed, batched by the caller)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine.config import DetectConfig
from engine.pipeline.decode import Pixels

from .align import align_face, align_footprint
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


def _reads(d: Detection, width: int, height: int) -> tuple[int, int, int, int]:
    """The photo pixels (x0, y0, x1, y1), clipped, that a face's crop and thumbnail are made from."""
    ax0, ay0, ax1, ay1 = align_footprint(d.landmarks)
    tx0, ty0, side = thumbnail_square(d.box, width, height)
    return (max(0, min(ax0, tx0)), max(0, min(ay0, ty0)),
            min(width, max(ax1, tx0 + side)), min(height, max(ay1, ty0 + side)))


def merge_windows(windows: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Overlapping fine-pass windows (x0, y0, x1, y1) joined wherever their bounding rectangle has no
    more pixels than the two apart, so no pixel is searched twice for nothing. Textured photos give
    dozens of weak candidates close together (46 windows, 114 ms of detector on one bench photo,
    more pixels than the whole fine level). Every window lies inside the rectangle it joins, so a face
    whole in its own window is whole in the joined one and the edge rule still holds."""
    rects = sorted(windows)
    merged = True
    while merged and len(rects) > 1:
        merged = False
        for i in range(len(rects)):
            a = rects[i]
            for j in range(i + 1, len(rects)):
                b = rects[j]
                u = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                area = (u[2] - u[0]) * (u[3] - u[1])
                if area <= (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]):
                    rects[i] = u
                    del rects[j]
                    merged = True
                    break
            if merged:
                break
    return rects


class FaceFinder:
    """Thread-safe: each thread gets its own detector.

    A photo up to ``max_side`` is searched whole. A larger one (a 12 MP phone photo) is decoded once
    at the "fine" level (the smallest JPEG DCT scale with a long side >= ``max_side``: 1/2 for 4032
    px), searched whole at ``coarse_side``, and looked at again on the fine level only in small
    windows around the coarse pass's weak candidates, run as one or two network batches. Faces are
    cropped from the fine level when it gives them ``sharp_face_px`` of width, otherwise from a
    full decode made only then.
    """

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
        """Faces of an RGB image that is 1/``scale`` of the photo, in photo pixels."""
        min_px = self.config.min_face_px / scale
        return [d.scaled(scale) for d in self.detector.detect(small, min_face_px=min_px)]

    def find(self, path: Path, data: bytes | None = None) -> PhotoFaces:
        """``data``: the file's bytes when the caller has read them already (a JPEG is then decoded
        from them, not read again)."""
        cfg = self.config
        px = Pixels(path, self.max_pixels, data=data)
        result = PhotoFaces(path, px.width, px.height)
        if px.long_side <= cfg.max_side:
            level = px.level(1)
            dets = self.detector.detect_batch([level], cfg.min_face_px, bgr=True)[0]
        else:
            reduce = max(r for r in (1, 2, 4, 8) if -(-px.long_side // r) >= cfg.max_side)
            level = px.level(reduce)
            dets = self._coarse_then_fine(level, px.scale(level))
        if not dets:
            return result
        level_scale = px.scale(level)
        small = [level_scale > 1 and d.box[2] / level_scale < cfg.sharp_face_px for d in dets]
        full = None
        if any(small):
            # One full-size decode for all small faces, exact where their crops and thumbnails read
            # (a JPEG is then decoded only down to the lowest of them).
            rects = [_reads(d, px.width, px.height) for d, sm in zip(dets, small, strict=True) if sm]
            full = px.full_around((min(r[0] for r in rects), min(r[1] for r in rects),
                                   max(r[2] for r in rects), max(r[3] for r in rects)))
        for d, sm in zip(dets, small, strict=True):
            src, s = (full, 1.0) if sm else (level, level_scale)
            local = d.scaled(1.0 / s)
            result.faces.append(
                FoundFace(
                    box=d.box,
                    landmarks=d.landmarks,
                    score=d.score,
                    crop=cv2.cvtColor(align_face(src, local.landmarks), cv2.COLOR_BGR2RGB),
                    thumb=cv2.cvtColor(face_thumbnail(src, local.box), cv2.COLOR_BGR2RGB),
                )
            )
        return result

    def _coarse_then_fine(self, fine: np.ndarray, fine_scale: float) -> list[Detection]:
        """Faces of the BGR ``fine`` level (1/``fine_scale`` of the photo), in photo pixels."""
        cfg = self.config
        det = self.detector
        fh, fw = fine.shape[:2]
        if cfg.coarse_side >= cfg.max_side:  # one pass at max_side, as the plain loop does
            g = cfg.max_side / max(fh, fw)
            one = cv2.resize(fine, (round(fw * g), round(fh * g)), interpolation=cv2.INTER_AREA) if g < 1 else fine
            s = fine_scale / g if g < 1 else fine_scale
            return [d.scaled(s) for d in det.detect_batch([one], cfg.min_face_px / s, bgr=True)[0]]
        coarse = fine
        while max(coarse.shape[:2]) >= 2 * cfg.coarse_side:
            # Exact halvings by 2x2 area averaging (OpenCV's fast path: 1.2 ms for a 2016 px level against
            # 7 ms for pyrDown's 5x5 Gaussian), then one small bilinear step.
            ch, cw = coarse.shape[:2]
            coarse = cv2.resize(coarse, ((cw + 1) // 2, (ch + 1) // 2), interpolation=cv2.INTER_AREA)
        g = cfg.coarse_side / max(coarse.shape[:2])
        if g < 1:
            coarse = cv2.resize(coarse, (max(1, round(coarse.shape[1] * g)), max(1, round(coarse.shape[0] * g))),
                                interpolation=cv2.INTER_LINEAR)
        k = fw / coarse.shape[1]  # fine pixels per coarse pixel
        found: list[Detection] = []
        windows: list[tuple[int, int, int, int]] = []
        for d in det.detect_batch([coarse], 0.0, bgr=True, score_threshold=cfg.cue_threshold)[0]:
            if d.score >= cfg.score_threshold and min(d.box[2], d.box[3]) >= cfg.sure_face_px:
                found.append(d.scaled(k * fine_scale))
                continue
            if max(d.box[2], d.box[3]) >= 1.5 * cfg.sure_face_px:
                continue  # a face this large scores high already at the coarse size: this is not one
            x, y, w, h = (v * k for v in d.box)
            # Two window sizes, so that a photo's windows run as one or two batches.
            side = min(max(fw, fh), 128 if 4 * max(w, h) <= 128 else 256)
            cx, cy = x + w / 2, y + h / 2
            if any(wx0 + side / 4 <= cx <= wx1 - side / 4 and wy0 + side / 4 <= cy <= wy1 - side / 4
                   and wx1 - wx0 >= side for wx0, wy0, wx1, wy1 in windows):
                continue  # already well inside a window at least as large
            x0 = int(min(max(0, round(cx - side / 2)), max(0, fw - side)))
            y0 = int(min(max(0, round(cy - side / 2)), max(0, fh - side)))
            windows.append((x0, y0, min(fw, x0 + side), min(fh, y0 + side)))
        by_shape: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
        for win in merge_windows(windows):
            by_shape.setdefault((win[2] - win[0], win[3] - win[1]), []).append(win)
        for group in by_shape.values():
            crops = [fine[y0:y1, x0:x1] for x0, y0, x1, y1 in group]
            for (x0, y0, x1, y1), dets in zip(group, det.detect_batch(crops, 0.0, bgr=True), strict=True):
                for d in dets:
                    bx, by, bw, bh = d.box
                    # A face cut by the window's edge (not the photo's) is a part: its own window has it whole.
                    if (bx <= 1 and x0 > 0) or (by <= 1 and y0 > 0) or (bx + bw >= x1 - x0 - 1 and x1 < fw) \
                            or (by + bh >= y1 - y0 - 1 and y1 < fh):
                        continue
                    found.append(d.moved(x0, y0).scaled(fine_scale))
        found = [d for d in found if min(d.box[2], d.box[3]) >= cfg.min_face_px]
        if len(found) > 1:
            keep = cv2.dnn.NMSBoxes([list(d.box) for d in found], [d.score for d in found], 0.0, cfg.nms_threshold)
            found = [found[i] for i in np.asarray(keep, dtype=np.int64).reshape(-1)]
        found.sort(key=lambda d: -d.score)
        return found
