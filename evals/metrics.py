"""Clustering quality against ground truth: BCubed and pairwise precision/recall/F1.

Everything is computed from the contingency counts n_ij (items in predicted cluster i with true class j),
so it is linear in the number of items (plus one sort) and never forms pairs explicitly:

* BCubed (Bagga & Baldwin 1998; Amigo et al. 2009): per item, precision = share of its predicted cluster
  that has its true label, recall = share of its true class that is in its predicted cluster; both averaged
  over items: P = sum_ij n_ij^2 / a_i / N, R = sum_ij n_ij^2 / b_j / N (a_i, b_j: cluster and class sizes).
* Pairwise: over all unordered pairs of items, precision = same-cluster pairs that are same-class,
  recall = same-class pairs that are same-cluster: TP = sum_ij C(n_ij, 2).

F1 is the harmonic mean of the averaged precision and recall. When there are no pairs to judge (every item
alone in its cluster, or in its class) the corresponding pairwise score is 1.0 (nothing wrong was claimed /
nothing was missed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def _codes(labels: np.ndarray, noise_as_singletons: bool) -> np.ndarray:
    """Labels of any dtype -> int64 codes 0..K-1. Negative integer labels (noise) become singletons."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError("labels must be one-dimensional")
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    if noise_as_singletons and labels.dtype.kind in "iu":
        noise = labels < 0
        if noise.any():
            codes = codes.copy()
            codes[noise] = codes.max(initial=-1) + 1 + np.arange(int(noise.sum()))
            codes = np.unique(codes, return_inverse=True)[1].reshape(-1).astype(np.int64)  # close the gap
    return codes


def contingency(pred: np.ndarray, truth: np.ndarray, *, noise_as_singletons: bool = True):
    """Non-zero contingency cells: (n_ij, a_i of each cell, b_j of each cell, #clusters, #classes)."""
    p = _codes(pred, noise_as_singletons)
    t = _codes(truth, False)
    if len(p) != len(t):
        raise ValueError(f"pred has {len(p)} items, truth {len(t)}")
    if len(p) == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, 0, 0
    n_p, n_t = int(p.max()) + 1, int(t.max()) + 1
    a = np.bincount(p, minlength=n_p)
    b = np.bincount(t, minlength=n_t)
    cell = p * n_t + t  # < n_p * n_t <= N^2: fits int64 for any realistic N
    if n_p * n_t <= 4 * len(p) + 1024:
        counts = np.bincount(cell, minlength=n_p * n_t)
        keys = np.flatnonzero(counts)
        n_ij = counts[keys]
    else:
        keys, n_ij = np.unique(cell, return_counts=True)
    return n_ij.astype(np.int64), a[keys // n_t], b[keys % n_t], n_p, n_t


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def bcubed(pred, truth, *, noise_as_singletons: bool = True) -> tuple[float, float, float]:
    """BCubed (precision, recall, F1)."""
    n_ij, a, b, _, _ = contingency(pred, truth, noise_as_singletons=noise_as_singletons)
    n = n_ij.sum()
    if n == 0:
        return 1.0, 1.0, 1.0
    sq = n_ij.astype(np.float64) ** 2
    p = float((sq / a).sum() / n)
    r = float((sq / b).sum() / n)
    return p, r, _f1(p, r)


def _pairs(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float((x * (x - 1) / 2).sum())


def pairwise(pred, truth, *, noise_as_singletons: bool = True) -> tuple[float, float, float]:
    """Pairwise (precision, recall, F1) over all unordered item pairs."""
    p_codes = _codes(pred, noise_as_singletons)
    t_codes = _codes(truth, False)
    n_ij, _, _, _, _ = contingency(p_codes, t_codes, noise_as_singletons=False)
    tp = _pairs(n_ij)
    pred_pairs = _pairs(np.bincount(p_codes)) if len(p_codes) else 0.0
    true_pairs = _pairs(np.bincount(t_codes)) if len(t_codes) else 0.0
    p = tp / pred_pairs if pred_pairs else 1.0
    r = tp / true_pairs if true_pairs else 1.0
    return p, r, _f1(p, r)


def n_clusters(labels, *, noise_as_singletons: bool = True) -> int:
    codes = _codes(labels, noise_as_singletons)
    return int(codes.max()) + 1 if len(codes) else 0


@dataclass(frozen=True)
class ClusterScores:
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    n_clusters: int
    n_classes: int
    n_singletons: int  # predicted clusters of one item

    def as_dict(self) -> dict:
        return asdict(self)


def cluster_scores(pred, truth, *, noise_as_singletons: bool = True) -> ClusterScores:
    """All scores at once. Negative predicted labels (e.g. HDBSCAN noise) count as singleton clusters
    unless ``noise_as_singletons`` is False, when -1 is one cluster like any other label."""
    p_codes = _codes(pred, noise_as_singletons)
    t_codes = _codes(truth, False)
    bp, br, bf = bcubed(p_codes, t_codes, noise_as_singletons=False)
    pp, pr, pf = pairwise(p_codes, t_codes, noise_as_singletons=False)
    sizes = np.bincount(p_codes) if len(p_codes) else np.zeros(0, np.int64)
    return ClusterScores(
        bp, br, bf, pp, pr, pf,
        n_clusters=len(sizes),
        n_classes=int(t_codes.max()) + 1 if len(t_codes) else 0,
        n_singletons=int((sizes == 1).sum()),
    )


@dataclass(frozen=True)
class Corrections:
    """Edits a user needs to turn a grouping into the truth (see :func:`corrections`)."""

    moves: int  # faces moved out of a group where the majority is someone else
    merges: int  # groups merged into another group of the same person
    faces: int

    @property
    def total(self) -> int:
        return self.moves + self.merges

    @property
    def per_100_faces(self) -> float:
        return 100.0 * self.total / self.faces if self.faces else 0.0


def corrections(pred, truth, *, noise_as_singletons: bool = True) -> Corrections:
    """The merges plus face moves that turn the predicted groups into the true people, counted the way a
    user fixes them by hand: every group belongs to the person most of its faces show (ties: the larger
    true person, then the lower label); each face of somebody else in it is one move (to that person's
    group, or out on its own); then all groups of one person but one are merges.

    This is what a person with the people page would do, not a proven minimum (a group of two equal halves
    may be cheaper to fix one way than the other), and it is the number we report as "corrections per 100
    faces" (docs/clustering.md)."""
    p = _codes(pred, noise_as_singletons)
    t = _codes(truth, False)
    if len(p) != len(t):
        raise ValueError(f"pred has {len(p)} items, truth {len(t)}")
    if len(p) == 0:
        return Corrections(0, 0, 0)
    n_t = int(t.max()) + 1
    class_size = np.bincount(t, minlength=n_t)
    keys, n_ij = np.unique(p * n_t + t, return_counts=True)
    ci, tj = keys // n_t, keys % n_t
    # Per cluster the majority cell: sort by cluster, then count desc, class size desc, class asc.
    order = np.lexsort((tj, -class_size[tj], -n_ij, ci))
    ci, tj, n_ij = ci[order], tj[order], n_ij[order]
    first = np.r_[True, ci[1:] != ci[:-1]]
    moves = int(len(p) - n_ij[first].sum())
    owners = np.bincount(tj[first], minlength=n_t)  # groups each person owns after the moves
    merges = int(np.maximum(owners - 1, 0).sum())
    return Corrections(moves, merges, len(p))
