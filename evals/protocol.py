"""Pair-verification protocol of the FaceNet paper (Schroff et al. 2015, section 4/5.7) on k folds.

Two faces are judged "same" when the squared L2 distance of their unit embeddings is at most a
threshold t (``D(x_i, x_j) <= t``, as in the paper). Everything is computed on a fixed, fine grid of
thresholds (``DEFAULT_THRESHOLDS``: 0 to 4 in steps of 0.0005; squared distances of unit vectors lie in
[0, 4]) so the answer never depends on the order of the pairs.

* Accuracy: for each fold, t is chosen on the other k-1 folds as the grid value of maximal accuracy
  (ties: the middle one of the tied grid values, so a plateau does not bias t to its low end), and the
  accuracy of that t is measured on the held-out fold. Reported: mean and (population) standard
  deviation over the folds, and the mean of the chosen thresholds.
* VAL@FAR: VAL(t) = |same pairs with D <= t| / |same pairs|, FAR(t) = |different pairs with D <= t| /
  |different pairs|. For each fold, t is the largest grid value whose FAR on the other k-1 folds is at
  most the target (1e-3), and VAL and FAR are then measured on the held-out fold. Reported: mean and
  standard deviation of both over the folds. With 2,700 training mismatched pairs per LFW fold a FAR of
  1e-3 allows exactly 2 false accepts, so the test-fold FAR is measured in steps of 1/300.
* ROC: TPR and FPR over all pairs at every distinct distance, and its area (AUC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GRID_STEP = 0.0005
DEFAULT_THRESHOLDS = np.round(np.arange(0.0, 4.0 + GRID_STEP / 2, GRID_STEP), 6)


def squared_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise squared Euclidean distance between two (N, D) arrays."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"embedding arrays differ in shape: {a.shape} vs {b.shape}")
    return ((a - b) ** 2).sum(axis=-1)


def fold_ids(n_pairs: int, folds: int | np.ndarray) -> np.ndarray:
    """Per-pair fold index. An int k splits the pairs into k contiguous, equal folds (the order of
    LFW's pairs.txt); an array is taken as given."""
    if isinstance(folds, (int, np.integer)):
        k = int(folds)
        if k < 2 or n_pairs % k:
            raise ValueError(f"cannot split {n_pairs} pairs into {k} equal folds")
        return np.repeat(np.arange(k), n_pairs // k)
    ids = np.asarray(folds)
    if ids.shape != (n_pairs,):
        raise ValueError(f"folds has shape {ids.shape}, expected ({n_pairs},)")
    if len(np.unique(ids)) < 2:
        raise ValueError("need at least two folds")
    return ids


def _counts_at_or_below(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold t, how many values are <= t."""
    return np.searchsorted(sorted_values, thresholds, side="right")


def accuracy_curve(dist: np.ndarray, issame: np.ndarray, thresholds: np.ndarray = DEFAULT_THRESHOLDS) -> np.ndarray:
    """Accuracy of the rule ``dist <= t`` for every t in ``thresholds``."""
    dist = np.asarray(dist, np.float64)
    issame = np.asarray(issame, bool)
    same = np.sort(dist[issame])
    diff = np.sort(dist[~issame])
    tp = _counts_at_or_below(same, thresholds)
    fp = _counts_at_or_below(diff, thresholds)
    return (tp + (len(diff) - fp)) / max(1, len(dist))


def val_far_curve(
    dist: np.ndarray, issame: np.ndarray, thresholds: np.ndarray = DEFAULT_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """(VAL, FAR) of the rule ``dist <= t`` for every t in ``thresholds``."""
    dist = np.asarray(dist, np.float64)
    issame = np.asarray(issame, bool)
    same = np.sort(dist[issame])
    diff = np.sort(dist[~issame])
    val = _counts_at_or_below(same, thresholds) / max(1, len(same))
    far = _counts_at_or_below(diff, thresholds) / max(1, len(diff))
    return val, far


def best_accuracy_threshold(
    dist: np.ndarray, issame: np.ndarray, thresholds: np.ndarray = DEFAULT_THRESHOLDS
) -> tuple[float, float]:
    """(threshold, accuracy): the grid value of maximal accuracy; the middle one of ties."""
    acc = accuracy_curve(dist, issame, thresholds)
    ties = np.flatnonzero(acc >= acc.max() - 1e-12)
    i = int(ties[len(ties) // 2])
    return float(thresholds[i]), float(acc[i])


def threshold_for_far(
    dist: np.ndarray, issame: np.ndarray, far_target: float, thresholds: np.ndarray = DEFAULT_THRESHOLDS
) -> float:
    """The largest grid threshold whose FAR is at most ``far_target`` (the smallest grid value if none)."""
    _, far = val_far_curve(dist, issame, thresholds)
    ok = np.flatnonzero(far <= far_target + 1e-12)
    return float(thresholds[ok[-1]] if len(ok) else thresholds[0])


def roc_curve(dist: np.ndarray, issame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(fpr, tpr, thresholds, auc) of ``dist <= t`` with t at every distinct distance (plus -inf)."""
    dist = np.asarray(dist, np.float64)
    issame = np.asarray(issame, bool)
    order = np.argsort(dist, kind="stable")
    d = dist[order]
    s = issame[order]
    tp = np.cumsum(s)
    fp = np.cumsum(~s)
    last = np.r_[d[1:] != d[:-1], True]  # one point per distinct distance
    n_same, n_diff = max(1, int(s.sum())), max(1, int((~s).sum()))
    tpr = np.r_[0.0, tp[last] / n_same]
    fpr = np.r_[0.0, fp[last] / n_diff]
    thr = np.r_[-np.inf, d[last]]
    auc = float(np.trapezoid(tpr, fpr)) if hasattr(np, "trapezoid") else float(np.trapz(tpr, fpr))
    return fpr, tpr, thr, auc


@dataclass
class PairEvaluation:
    """Result of ``evaluate_pairs``. Per-fold arrays are in fold order."""

    n_pairs: int
    n_same: int
    n_folds: int
    accuracy: np.ndarray  # per fold, held-out accuracy
    threshold: np.ndarray  # per fold, chosen on the other folds
    val: np.ndarray  # per fold, held-out VAL at the FAR-target threshold
    far: np.ndarray  # per fold, held-out FAR at that threshold
    val_threshold: np.ndarray  # per fold
    far_target: float
    auc: float
    distances: np.ndarray = field(repr=False)
    issame: np.ndarray = field(repr=False)
    fold_index: np.ndarray = field(repr=False)  # per pair, 0..n_folds-1 (position in the per-fold arrays)

    def errors(self) -> np.ndarray:
        """Indices of the pairs answered wrongly with their own fold's (held-out) threshold."""
        t = self.threshold[self.fold_index]
        return np.flatnonzero((self.distances <= t) != self.issame)

    @property
    def accuracy_mean(self) -> float:
        return float(self.accuracy.mean())

    @property
    def accuracy_std(self) -> float:
        return float(self.accuracy.std())

    @property
    def threshold_mean(self) -> float:
        return float(self.threshold.mean())

    @property
    def val_mean(self) -> float:
        return float(self.val.mean())

    @property
    def val_std(self) -> float:
        return float(self.val.std())

    @property
    def far_mean(self) -> float:
        return float(self.far.mean())

    @property
    def far_std(self) -> float:
        return float(self.far.std())

    def roc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        return roc_curve(self.distances, self.issame)

    def tpr_at_fpr(self, fpr_target: float) -> float:
        """Highest TPR over all pairs whose FPR is at most ``fpr_target`` (not cross-validated)."""
        fpr, tpr, _, _ = self.roc()
        return float(tpr[fpr <= fpr_target + 1e-12].max())

    def to_dict(self) -> dict:
        r = lambda x: round(float(x), 6)  # noqa: E731
        return {
            "n_pairs": self.n_pairs,
            "n_same": self.n_same,
            "n_folds": self.n_folds,
            "accuracy_mean": r(self.accuracy_mean),
            "accuracy_std": r(self.accuracy_std),
            "accuracy_per_fold": [r(x) for x in self.accuracy],
            "threshold_mean": r(self.threshold_mean),
            "threshold_std": r(self.threshold.std()),
            "threshold_per_fold": [r(x) for x in self.threshold],
            "far_target": self.far_target,
            "val_mean": r(self.val_mean),
            "val_std": r(self.val_std),
            "far_mean": r(self.far_mean),
            "far_std": r(self.far_std),
            "val_per_fold": [r(x) for x in self.val],
            "far_per_fold": [r(x) for x in self.far],
            "val_threshold_mean": r(self.val_threshold.mean()),
            "val_threshold_per_fold": [r(x) for x in self.val_threshold],
            "auc": r(self.auc),
            "tpr_at_fpr_1e-3_all_pairs": r(self.tpr_at_fpr(1e-3)),
        }


def evaluate_distances(
    dist: np.ndarray,
    issame: np.ndarray,
    folds: int | np.ndarray = 10,
    *,
    far_target: float = 1e-3,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
) -> PairEvaluation:
    """k-fold accuracy and VAL@FAR from precomputed squared L2 distances (see the module docstring)."""
    dist = np.asarray(dist, np.float64).reshape(-1)
    issame = np.asarray(issame, bool).reshape(-1)
    if dist.shape != issame.shape:
        raise ValueError(f"{len(dist)} distances but {len(issame)} labels")
    if not np.all(np.isfinite(dist)):
        raise ValueError("distances must be finite")
    thresholds = np.asarray(thresholds, np.float64)
    ids = fold_ids(len(dist), folds)
    uniq, fold_index = np.unique(ids, return_inverse=True)
    acc, thr, val, far, vthr = (np.zeros(len(uniq)) for _ in range(5))
    for k, f in enumerate(uniq):
        test = ids == f
        train = ~test
        t, _ = best_accuracy_threshold(dist[train], issame[train], thresholds)
        thr[k] = t
        pred = dist[test] <= t
        acc[k] = float((pred == issame[test]).mean())
        vt = threshold_for_far(dist[train], issame[train], far_target, thresholds)
        vthr[k] = vt
        ts, td = issame[test], ~issame[test]
        val[k] = float((dist[test][ts] <= vt).mean()) if ts.any() else 0.0
        far[k] = float((dist[test][td] <= vt).mean()) if td.any() else 0.0
    _, _, _, auc = roc_curve(dist, issame)
    return PairEvaluation(
        n_pairs=len(dist),
        n_same=int(issame.sum()),
        n_folds=len(uniq),
        accuracy=acc,
        threshold=thr,
        val=val,
        far=far,
        val_threshold=vthr,
        far_target=far_target,
        auc=auc,
        distances=dist,
        issame=issame,
        fold_index=fold_index.reshape(-1),
    )


def evaluate_pairs(
    emb_a: np.ndarray,
    emb_b: np.ndarray,
    issame: np.ndarray,
    folds: int | np.ndarray = 10,
    *,
    far_target: float = 1e-3,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
) -> PairEvaluation:
    """k-fold verification metrics for pairs of embeddings (rows of ``emb_a`` vs rows of ``emb_b``)."""
    return evaluate_distances(
        squared_l2(emb_a, emb_b), issame, folds, far_target=far_target, thresholds=thresholds
    )
