"""Face verification metrics (LFW protocol) and embedding helpers.

* :func:`verification` - 10-fold accuracy: the squared-L2 threshold is chosen on 9 folds (best
  accuracy) and applied to the 10th; plus VAL@FAR: on 9 folds the largest threshold whose false
  accept rate is at most ``far`` (default 1e-3), and the true accept rate it gives on the 10th.
  The arithmetic is the engine's (:mod:`evals.protocol`); this module adds the pair
  lists and torch embedding.
* :func:`lfw_pairs` / :func:`identity_fold_pairs` - the pair lists to evaluate: the official
  pairs.txt entries, or every same pair and every different pair inside groups of identities
  (folds by identity, so no identity is in both a threshold-choosing and a test fold).

Embeddings are compared with the squared L2 distance of unit vectors (2 - 2 cos).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from evals.protocol import PairEvaluation, evaluate_distances

from .data import Pair


@dataclass(frozen=True)
class VerificationResult:
    accuracy: float
    accuracy_std: float
    threshold: float  # mean of the per-fold thresholds
    val: float  # VAL at FAR <= far (mean over folds)
    val_std: float
    far: float  # FAR actually measured on the test folds at those thresholds
    far_target: float
    auc: float
    pairs: int
    same_pairs: int
    evaluation: PairEvaluation | None = field(default=None, repr=False, compare=False)

    def line(self) -> str:
        return (
            f"acc {100 * self.accuracy:.2f}% ± {100 * self.accuracy_std:.2f}  thr {self.threshold:.3f}  "
            f"VAL@FAR={self.far_target:g} {100 * self.val:.2f}% ± {100 * self.val_std:.2f} "
            f"(FAR {100 * self.far:.3f}%)  AUC {self.auc:.4f}  [{self.pairs} pairs, {self.same_pairs} same]"
        )


def stratified_folds(same: np.ndarray, n_folds: int = 10, seed: int = 0) -> np.ndarray:
    """Random fold id per pair, same and different pairs spread evenly over the folds."""
    same = np.asarray(same, bool)
    rng = np.random.default_rng(seed)
    folds = np.empty(len(same), np.int64)
    for val in (True, False):
        idx = rng.permutation(np.flatnonzero(same == val))
        folds[idx] = np.arange(len(idx)) % n_folds
    return folds


def verification(
    dist, same, folds=None, n_folds: int = 10, far: float = 1e-3, seed: int = 0
) -> VerificationResult:
    """k-fold verification with the engine's protocol (:func:`evals.evaluate_distances`:
    ``dist <= t`` is "same", thresholds on a fine grid chosen on the other folds). ``folds``: a fold
    id per pair (e.g. LFW's); when absent or all equal, a stratified random split into ``n_folds``."""
    same = np.asarray(same, bool)
    if folds is None or len(np.unique(folds)) < 2:
        folds = stratified_folds(same, n_folds, seed)
    ev = evaluate_distances(dist, same, np.asarray(folds), far_target=far)
    return VerificationResult(
        accuracy=ev.accuracy_mean,
        accuracy_std=ev.accuracy_std,
        threshold=ev.threshold_mean,
        val=ev.val_mean,
        val_std=ev.val_std,
        far=ev.far_mean,
        far_target=far,
        auc=ev.auc,
        pairs=ev.n_pairs,
        same_pairs=ev.n_same,
        evaluation=ev,
    )


def pair_sq_dist(
    emb1: np.ndarray, i1: np.ndarray, emb2: np.ndarray | None = None, i2: np.ndarray | None = None
):
    """Squared L2 between emb1[i1] and emb2[i2] (emb2 defaults to emb1: cross-model when it differs)."""
    emb2 = emb1 if emb2 is None else emb2
    return ((emb1[i1] - emb2[i2]) ** 2).sum(1)


@dataclass(frozen=True)
class PairIndex:
    i1: np.ndarray
    i2: np.ndarray
    same: np.ndarray
    folds: np.ndarray


def lfw_pairs(keys: Sequence[str], pairs: Sequence[Pair]) -> PairIndex:
    """Index the pairs whose two images are both among ``keys`` (others are skipped)."""
    pos = {k: i for i, k in enumerate(keys)}
    kept = [p for p in pairs if p.key1 in pos and p.key2 in pos]
    return PairIndex(
        np.array([pos[p.key1] for p in kept], np.int64),
        np.array([pos[p.key2] for p in kept], np.int64),
        np.array([p.same for p in kept], bool),
        np.array([p.fold for p in kept], np.int64),
    )


def identity_fold_pairs(labels: np.ndarray, n_folds: int = 10, seed: int = 0) -> PairIndex:
    """Every same and every different pair within each of ``n_folds`` random groups of identities."""
    labels = np.asarray(labels)
    ids = np.unique(labels)
    group = dict(
        zip(np.random.default_rng(seed).permutation(ids), np.arange(len(ids)) % n_folds, strict=True)
    )
    g = np.array([group[lab] for lab in labels])
    i1s, i2s, sames, folds = [], [], [], []
    for f in range(n_folds):
        idx = np.flatnonzero(g == f)
        a, b = np.triu_indices(len(idx), k=1)
        i1s.append(idx[a])
        i2s.append(idx[b])
        sames.append(labels[idx[a]] == labels[idx[b]])
        folds.append(np.full(len(a), f))
    return PairIndex(*(np.concatenate(x) for x in (i1s, i2s, sames, folds)))


def evaluate_pairs(
    emb: np.ndarray, pairs: PairIndex, emb2: np.ndarray | None = None, far: float = 1e-3
) -> VerificationResult:
    d = pair_sq_dist(emb, pairs.i1, emb2, pairs.i2)
    return verification(d, pairs.same, pairs.folds, far=far)


# ---------------------------------------------------------------------------------------------
# Embedding


def embed_torch(
    model, crops: np.ndarray, batch_size: int = 64, device: str | None = None, flip: bool = False
) -> np.ndarray:
    """(N, 112, 112, 3) uint8 -> (N, D) unit float32 with a torch model in eval mode.
    ``flip`` adds the embedding of the mirrored crop before normalising."""
    import torch

    from .losses import normalise

    dev = torch.device(device) if device else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(crops), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(crops[i : i + batch_size])).to(dev)
            x = x.permute(0, 3, 1, 2).float()
            e = model(x)
            if flip:
                e = e + model(torch.flip(x, dims=[3]))
            out.append(normalise(e).float().cpu().numpy())
    model.train(was_training)
    dim = getattr(model, "embedding_dim", 128)
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def embed_onnx(crops: np.ndarray, path=None, spec=None) -> np.ndarray:
    """Embeddings through the engine's onnxruntime embedder (the bundled SFace by default)."""
    from engine.pipeline.embed import Embedder

    if spec is None:
        return Embedder(path=path).embed(crops)
    return Embedder(spec=spec, path=path).embed(crops)


EmbedFn = Callable[[np.ndarray], np.ndarray]
