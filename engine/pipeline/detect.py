"""YuNet face detection (box, 5 landmarks, score).

YuNet runs through OpenCV's FaceDetectorYN, which re-sizes the network input to each image
(the ONNX graph is fixed at 640x640) and does the anchor decoding and NMS; the weights file is
hash-checked first like every model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.config import DetectConfig
from engine.errors import ModelError
from engine.models.registry import YUNET, ModelSpec, verified_path


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x, y, w, h
    landmarks: np.ndarray  # (5, 2) float32
    score: float

    def scaled(self, factor: float) -> Detection:
        x, y, w, h = self.box
        return Detection(
            (x * factor, y * factor, w * factor, h * factor), self.landmarks * factor, self.score
        )


def centre_offset(box: tuple[float, float, float, float], width: float, height: float) -> float:
    """Distance of a box's (x, y, w, h) centre from the image centre, as a fraction of the long side:
    the rule every "which face is the labelled one" choice uses (benchmark photos are centred on it)."""
    x, y, w, h = box
    return float(np.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2)) / max(width, height, 1)


class FaceDetector:
    """Not thread-safe: give each worker thread its own instance."""

    def __init__(self, config: DetectConfig | None = None, spec: ModelSpec = YUNET, path: Path | None = None):
        self.config = config or DetectConfig()
        model_path = verified_path(spec, path)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(model_path),
                "",
                (320, 320),
                self.config.score_threshold,
                self.config.nms_threshold,
                self.config.top_k,
            )
        except cv2.error as exc:
            raise ModelError(f"cannot load detector {model_path.name}: {exc}") from exc
        self._size: tuple[int, int] = (320, 320)

    def detect(self, rgb: np.ndarray, min_face_px: float = 0.0) -> list[Detection]:
        """Faces in an RGB uint8 image, best first."""
        h, w = rgb.shape[:2]
        if h < 8 or w < 8:
            return []
        if (w, h) != self._size:
            self._net.setInputSize((w, h))
            self._size = (w, h)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        _, faces = self._net.detect(bgr)
        if faces is None:
            return []
        out = []
        for f in faces:
            x, y, fw, fh = (float(v) for v in f[:4])
            if min(fw, fh) < min_face_px:
                continue
            # Clip to the image: YuNet may predict boxes partly outside.
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(w), x + fw), min(float(h), y + fh)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            out.append(Detection((x0, y0, x1 - x0, y1 - y0), f[4:14].reshape(5, 2).astype(np.float32), float(f[14])))
        out.sort(key=lambda d: -d.score)
        return out
