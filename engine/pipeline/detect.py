"""YuNet face detection (box, 5 landmarks, score).

YuNet runs on onnxruntime (the CPU provider, or CUDA when asked for, see ``engine.models.accel``), not
through OpenCV's FaceDetectorYN: on one thread onnxruntime runs the same graph 2.5-2.7x faster
(34 ms against 91 ms at 1280x960). The published graph is fixed at 640x640; it is constant-folded
and given a dynamic batch and size once (``onnx_rewrite.yunet_any_size``), so each image runs at
its own size, padded to a multiple of 32, and several images of one size run as one batch. The
anchor decoding and non-maximum suppression are OpenCV's (``FaceDetectorYN``), written in numpy.
The weights file is hash-checked first like every model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from engine.config import DetectConfig
from engine.errors import ModelError
from engine.models.accel import make_session
from engine.models.onnx_rewrite import yunet_any_size
from engine.models.prepared import prepared_bytes
from engine.models.registry import YUNET, ModelSpec, fold_constants, verified_path

STRIDES = (8, 16, 32)


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

    def moved(self, dx: float, dy: float) -> Detection:
        x, y, w, h = self.box
        return Detection((x + dx, y + dy, w, h), self.landmarks + np.float32([dx, dy]), self.score)


@lru_cache(maxsize=4)
def _graph(path_str: str, sha: str) -> bytes:
    try:
        # Kept on disk between runs (engine.models.prepared): the rewrite needs the onnx package, ~1 s to load.
        return prepared_bytes("detect-any-size", sha, lambda: yunet_any_size(
            fold_constants(Path(path_str).read_bytes(), keep_inputs=("input",))))
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot prepare detector {Path(path_str).name}: {exc}") from exc


def centre_offset(box: tuple[float, float, float, float], width: float, height: float) -> float:
    """Distance of a box's (x, y, w, h) centre from the image centre, as a fraction of the long side:
    the rule every "which face is the labelled one" choice uses (benchmark photos are centred on it)."""
    x, y, w, h = box
    return float(np.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2)) / max(width, height, 1)


class FaceDetector:
    """Not thread-safe by design of its callers: give each worker thread its own instance."""

    def __init__(self, config: DetectConfig | None = None, spec: ModelSpec = YUNET, path: Path | None = None):
        import onnxruntime as ort

        self.config = config or DetectConfig()
        model_path = verified_path(spec, path)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # One thread: the importer runs one detector per worker, one worker per core.
        opts.intra_op_num_threads = max(1, self.config.threads)
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._sess, self.fallback_message = make_session(
                _graph(str(model_path), spec.sha256), opts, self.config.use_gpu
            )
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"cannot load detector {model_path.name}: {exc}") from exc
        self._input = self._sess.get_inputs()[0].name
        self._outputs = [o.name for o in self._sess.get_outputs()]

    def detect(self, rgb: np.ndarray, min_face_px: float = 0.0) -> list[Detection]:
        """Faces in an RGB uint8 image, best first."""
        return self.detect_batch([rgb], min_face_px)[0]

    def detect_batch(
        self, images: list[np.ndarray], min_face_px: float = 0.0, *, bgr: bool = False,
        score_threshold: float | None = None,
    ) -> list[list[Detection]]:
        """Faces in each of several uint8 images (RGB, or BGR with ``bgr``), best first, run as one
        batch: each is padded at its bottom and right to the largest with zeros (as OpenCV pads to a
        multiple of 32); a face near that edge may move by a fraction of a pixel. ``score_threshold``
        overrides the configured one (the coarse pass of ``FaceFinder`` looks at weak candidates too)."""
        ok = [i for i, im in enumerate(images) if im.shape[0] >= 8 and im.shape[1] >= 8]
        out: list[list[Detection]] = [[] for _ in images]
        if not ok:
            return out
        ph = max(-(-images[i].shape[0] // 32) * 32 for i in ok)
        pw = max(-(-images[i].shape[1] // 32) * 32 for i in ok)
        x = np.zeros((len(ok), 3, ph, pw), np.float32)
        for j, i in enumerate(ok):
            im = images[i]
            h, w = im.shape[:2]
            x[j, :, :h, :w] = (im if bgr else im[:, :, ::-1]).transpose(2, 0, 1)  # the network wants BGR, 0-255
        res = dict(zip(self._outputs, self._sess.run(self._outputs, {self._input: x}), strict=True))
        for j, i in enumerate(ok):
            h, w = images[i].shape[:2]
            out[i] = self._decode(res, j, pw, w, h, min_face_px, score_threshold)
        return out

    def _decode(
        self, res: dict, j: int, pw: int, w: int, h: int, min_face_px: float, score_threshold: float | None
    ) -> list[Detection]:
        cfg = self.config
        threshold = cfg.score_threshold if score_threshold is None else score_threshold
        boxes, kps, scores = [], [], []
        for s in STRIDES:
            cols = pw // s
            score = np.sqrt(np.clip(res[f"cls_{s}"][j, :, 0], 0, 1) * np.clip(res[f"obj_{s}"][j, :, 0], 0, 1))
            idx = np.nonzero(score >= threshold)[0]
            if not len(idx):
                continue
            c, r = (idx % cols).astype(np.float32), (idx // cols).astype(np.float32)
            bb = res[f"bbox_{s}"][j, idx]
            cx, cy = (c + bb[:, 0]) * s, (r + bb[:, 1]) * s
            bw, bh = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], 1))
            k = res[f"kps_{s}"][j, idx].reshape(-1, 5, 2)
            kps.append(np.stack([(k[:, :, 0] + c[:, None]) * s, (k[:, :, 1] + r[:, None]) * s], 2))
            scores.append(score[idx])
        if not boxes:
            return []
        b, k, sc = np.concatenate(boxes), np.concatenate(kps).astype(np.float32), np.concatenate(scores)
        keep = cv2.dnn.NMSBoxes(b.tolist(), sc.tolist(), threshold, cfg.nms_threshold, top_k=cfg.top_k)
        out = []
        for i in np.asarray(keep, dtype=np.int64).reshape(-1):
            x, y, fw, fh = (float(v) for v in b[i])
            if min(fw, fh) < min_face_px:
                continue
            # Clip to the image: YuNet may predict boxes partly outside.
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(w), x + fw), min(float(h), y + fh)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            out.append(Detection((x0, y0, x1 - x0, y1 - y0), k[i], float(sc[i])))
        out.sort(key=lambda d: -d.score)
        return out
