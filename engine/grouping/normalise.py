"""Per-library normalisation of embeddings before grouping (issue 10).

A family library's faces share more than identity: one camera, one home's light, and many children, whom
SFace puts close together. Part of that is a direction every face of the library shares, and the library's
own mean embedding estimates it. :func:`centre_library` removes a share of that mean and puts the vectors
back on the unit sphere, so distances between the library's people are measured with less of what they all
have in common. It is learnt from the faces being grouped only (nothing trained elsewhere is shipped), is
used for grouping only (the stored embeddings, recognition and "same person?" distances are unchanged), and
a grouping threshold means something else in the centred space: ``facenet-photos calibrate`` and
bench/calibrate_grouping.py choose T for it (docs/clustering.md, "Per-library normalisation").
"""

from __future__ import annotations

import numpy as np


def centre_library(emb: np.ndarray, share: float) -> np.ndarray:
    """``emb`` (N, d) unit vectors minus ``share`` x their mean, renormalised (float32).

    ``share`` 0 returns the vectors unchanged (as float32); 1 removes the whole mean. A face whose vector
    is the removed mean itself (possible only when the library is one face or identical faces at share 1)
    keeps its original direction instead of becoming a zero vector."""
    share = float(share)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the share of the library mean to remove must be between 0 and 1, not {share}")
    x = np.asarray(emb, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected an (N, d) array of embeddings, got shape {x.shape}")
    if share == 0.0 or len(x) == 0:
        return x
    y = x - np.float32(share) * x.mean(axis=0, dtype=np.float64).astype(np.float32)
    norm = np.linalg.norm(y, axis=1, keepdims=True)
    tiny = norm[:, 0] < 1e-6
    y[tiny], norm[tiny] = x[tiny], 1.0
    return (y / norm).astype(np.float32)
