"""5-point similarity alignment to the standard 112x112 ArcFace/SFace template."""

from __future__ import annotations

import cv2
import numpy as np

# Right eye, left eye (as seen in the image: image-left first), nose tip, mouth corners.
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray = TEMPLATE_112) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst
    (Umeyama 1991). Returns a 2x3 matrix for cv2.warpAffine."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1
    rot = u @ np.diag(d) @ vt
    var_s = (s_c**2).sum() / len(src)
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_footprint(landmarks: np.ndarray, size: int = 112) -> tuple[int, int, int, int]:
    """The pixels (x0, y0, x1, y1; end exclusive, not clipped to the image) that :func:`align_face`
    reads for these landmarks: the crop's corners mapped back, with room for the bilinear taps."""
    m = similarity_transform(landmarks, TEMPLATE_112 * (size / 112.0))
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inv.T
    lo, hi = corners.min(0), corners.max(0)
    return (int(np.floor(lo[0])) - 3, int(np.floor(lo[1])) - 3, int(np.ceil(hi[0])) + 3, int(np.ceil(hi[1])) + 3)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp the face given by 5 landmarks (pixel coords in ``image``) to a size x size crop.

    A face more than twice the crop's size is first reduced with area averaging (only the region the
    crop covers): a bilinear warp alone would sample every second or third pixel and alias."""
    dst = TEMPLATE_112 * (size / 112.0)
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    m = similarity_transform(landmarks, dst)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    if scale < 0.5:
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inv.T
        ih, iw = image.shape[:2]
        x0, y0 = (max(0, int(np.floor(v)) - 2) for v in corners.min(0))
        x1, y1 = min(iw, int(np.ceil(corners[:, 0].max())) + 2), min(ih, int(np.ceil(corners[:, 1].max())) + 2)
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            f = scale * 1.5  # leaves the warp a reduction of 1.5x, which bilinear sampling handles
            region = image[y0:y1, x0:x1]
            small = cv2.resize(region, (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))),
                               interpolation=cv2.INTER_AREA)
            fx, fy = small.shape[1] / (x1 - x0), small.shape[0] / (y1 - y0)
            local = (landmarks - (x0, y0)) * (fx, fy)
            image, m = small, similarity_transform(local, dst)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
