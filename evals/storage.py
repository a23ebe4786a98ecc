"""Embedding storage: float32 vs 128-byte int8 vs fewer dimensions (FaceNet's Table 5 asks the same of
the embedding size; section 5.4 notes that 128 bytes per face lose nothing).

Variants, all evaluated with the pair protocol of ``protocol.py`` on the same pairs:

* ``float32`` (512 bytes), ``float16`` (256 bytes), ``int8`` (128 bytes: ``engine.models.quantize``, the app's
  storage).
* ``pca<d>``: PCA to d dimensions, **learned per test fold on the images of the people of the other
  folds** (LFW's view-2 folds have disjoint people), then L2-normalised. ``pca<d>_int8``: the same, stored
  as d signed bytes with one scale per fold (127 / the largest |component| on the training images).
* ``trunc<d>``: the first d components of the embedding, L2-normalised; no learning.

Distances stay squared L2 between unit vectors, so the threshold grid [0, 4] applies to every variant.
For the learned variants each fold has its own projection: the fold's threshold is chosen on the other
folds' pairs *in that fold's projection*, then tested on the fold's pairs.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .protocol import (
    DEFAULT_THRESHOLDS,
    PairEvaluation,
    best_accuracy_threshold,
    evaluate_distances,
    roc_curve,
    squared_l2,
    threshold_for_far,
)

DIMS = (64, 32, 16)

Transform = Callable[[np.ndarray], np.ndarray]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class Pca:
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (d, D), rows orthonormal, by decreasing variance
    explained: np.ndarray  # (d,) share of the training variance of each component

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Projection onto the components, L2-normalised."""
        return _unit((np.asarray(x, np.float64) - self.mean) @ self.components.T)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS / LAPACK to one thread: these matrices are small, and a multi-threaded OpenBLAS on a busy
    machine can take seconds for a 128-column SVD that needs milliseconds."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(1):
        yield


def fit_pca(x: np.ndarray, dim: int) -> Pca:
    """PCA of the rows of ``x`` (centred; SVD) keeping ``dim`` components."""
    x = np.asarray(x, np.float64)
    if not 1 <= dim <= x.shape[1]:
        raise ValueError(f"dim must be 1..{x.shape[1]}, got {dim}")
    if len(x) < 2:
        raise ValueError("need at least two training rows")
    mean = x.mean(0)
    with one_blas_thread():
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2
    return Pca(mean, vt[:dim], var[:dim] / var.sum())


def truncate(x: np.ndarray, dim: int) -> np.ndarray:
    """The first ``dim`` components, L2-normalised."""
    return _unit(np.asarray(x)[..., :dim])


def int8_roundtrip(x: np.ndarray, scale: float) -> np.ndarray:
    """Symmetric int8 storage (round(x * scale) clipped to +-127) and back, L2-normalised."""
    q = np.clip(np.rint(np.asarray(x, np.float64) * scale), -127, 127)
    return _unit(q)


def int8_scale(train: np.ndarray) -> float:
    """127 / the largest |component| of the (transformed) training rows."""
    return 127.0 / max(float(np.abs(train).max()), 1e-12)


def evaluate_per_fold_transform(
    emb: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    issame: np.ndarray,
    fold: np.ndarray,
    fit: Callable[[np.ndarray], Transform],
    train_rows: Callable[[int], np.ndarray],
    *,
    far_target: float = 1e-3,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
) -> PairEvaluation:
    """The k-fold protocol when the embedding transform itself is learned per test fold.

    For each fold f: ``fit(emb[train_rows(f)])`` gives a transform; the distances of all pairs under it
    choose the thresholds on the other folds' pairs (accuracy and FAR target) and are tested on fold f's
    pairs. ``train_rows(f)``: a boolean mask or indices of the embedding rows it may learn from.
    The returned ``distances`` are each pair's distance under its own fold's transform.
    """
    emb = np.asarray(emb)
    issame = np.asarray(issame, bool)
    fold = np.asarray(fold)
    uniq, fold_index = np.unique(fold, return_inverse=True)
    k = len(uniq)
    acc, thr, val, far, vthr = (np.zeros(k) for _ in range(5))
    dist_own = np.zeros(len(ia))
    for j, f in enumerate(uniq):
        tf = fit(emb[train_rows(int(f))])
        e = tf(emb)
        d = squared_l2(e[ia], e[ib])
        test = fold == f
        train = ~test
        t, _ = best_accuracy_threshold(d[train], issame[train], thresholds)
        thr[j] = t
        acc[j] = float(((d[test] <= t) == issame[test]).mean())
        vt = threshold_for_far(d[train], issame[train], far_target, thresholds)
        vthr[j] = vt
        ts, td = issame[test], ~issame[test]
        val[j] = float((d[test][ts] <= vt).mean()) if ts.any() else 0.0
        far[j] = float((d[test][td] <= vt).mean()) if td.any() else 0.0
        dist_own[test] = d[test]
    _, _, _, auc = roc_curve(dist_own, issame)
    return PairEvaluation(len(ia), int(issame.sum()), k, acc, thr, val, far, vthr, far_target, auc,
                          dist_own, issame, fold_index.reshape(-1))


def storage_variants(dims: Sequence[int] = DIMS) -> list[str]:
    names = ["float32", "float16", "int8"]
    for d in dims:
        names += [f"pca{d}", f"pca{d}_int8", f"trunc{d}"]
    return names


def evaluate_storage_full(
    emb: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
    issame: np.ndarray,
    fold: np.ndarray,
    row_fold: np.ndarray,
    *,
    dims: Sequence[int] = DIMS,
    far_target: float = 1e-3,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
) -> tuple[dict[str, dict], dict[str, PairEvaluation]]:
    """Every variant of ``storage_variants(dims)``: (name -> ``PairEvaluation.to_dict()`` plus ``dims``,
    ``bytes_per_face``, ``learned``; name -> ``PairEvaluation``).

    ``row_fold``: per embedding row, the fold its person belongs to; a fold's PCA is learned only on rows of
    other folds (rows with fold -1, people in no test fold, are always allowed).
    """
    from engine.models.quantize import dequantize, quantize

    emb = np.asarray(emb, np.float32)
    row_fold = np.asarray(row_fold)
    full_dim = emb.shape[1]
    kw = dict(far_target=far_target, thresholds=thresholds)

    def plain(e: np.ndarray) -> PairEvaluation:
        return evaluate_distances(squared_l2(e[ia], e[ib]), issame, fold, **kw)

    def rows_for(f: int) -> np.ndarray:
        return row_fold != f

    evals: dict[str, PairEvaluation] = {}
    meta: dict[str, dict] = {}
    evals["float32"] = plain(emb)
    meta["float32"] = {"dims": full_dim, "bytes_per_face": 4 * full_dim, "learned": False}
    evals["float16"] = plain(_unit(emb.astype(np.float16).astype(np.float32)))
    meta["float16"] = {"dims": full_dim, "bytes_per_face": 2 * full_dim, "learned": False}
    evals["int8"] = plain(dequantize(quantize(emb)))
    meta["int8"] = {"dims": full_dim, "bytes_per_face": full_dim, "learned": False}
    for d in dims:
        explained: list[float] = []

        def fit_pca_d(x: np.ndarray, d: int = d, explained: list[float] = explained) -> Transform:
            p = fit_pca(x, d)
            explained.append(float(p.explained.sum()))
            return p

        def fit_pca_int8(x: np.ndarray, d: int = d) -> Transform:
            p = fit_pca(x, d)
            s = int8_scale(p(x))
            return lambda e: int8_roundtrip(p(e), s)

        evals[f"pca{d}"] = evaluate_per_fold_transform(emb, ia, ib, issame, fold, fit_pca_d, rows_for, **kw)
        meta[f"pca{d}"] = {"dims": d, "bytes_per_face": 4 * d, "learned": True,
                           "explained_variance_mean": round(float(np.mean(explained)), 4)}
        evals[f"pca{d}_int8"] = evaluate_per_fold_transform(emb, ia, ib, issame, fold, fit_pca_int8, rows_for,
                                                            **kw)
        meta[f"pca{d}_int8"] = {"dims": d, "bytes_per_face": d, "learned": True}
        evals[f"trunc{d}"] = plain(truncate(emb, d))
        meta[f"trunc{d}"] = {"dims": d, "bytes_per_face": 4 * d, "learned": False}
    out = {}
    base = evals["float32"]
    t = base.threshold_mean
    for name, ev in evals.items():
        r = ev.to_dict()
        r.update(meta[name])
        r["accuracy_minus_float32"] = round(ev.accuracy_mean - base.accuracy_mean, 6)
        if not meta[name]["learned"] and meta[name]["dims"] == full_dim:
            r["decision_flips_at_float32_threshold"] = int(((ev.distances <= t) != (base.distances <= t)).sum())
        out[name] = r
    return out, evals


def evaluate_storage(emb, ia, ib, issame, fold, row_fold, **kwargs) -> dict[str, dict]:
    """``evaluate_storage_full`` without the ``PairEvaluation`` objects."""
    with one_blas_thread():
        return evaluate_storage_full(emb, ia, ib, issame, fold, row_fold, **kwargs)[0]


def _plot(out: dict[str, dict], path: Path, title: str) -> None:
    from evals import plots

    fig, axes = plots.subplots(2, figsize=(11, 4.2))
    families = {
        "PCA (float32)": [k for k in out if k.startswith("pca") and not k.endswith("_int8")],
        "PCA (int8)": [k for k in out if k.startswith("pca") and k.endswith("_int8")],
        "truncation (float32)": [k for k in out if k.startswith("trunc")],
        "full 128-D": ["float32", "float16", "int8"],
    }
    for ax, key, label in ((axes[0], "accuracy_mean", "accuracy (10-fold) %"),
                           (axes[1], "val_mean", "VAL @ FAR=1e-3 (10-fold) %")):
        for (fam, names), style in zip(families.items(), ("o-", "s--", "^:", "D"), strict=True):
            names = sorted(names, key=lambda n: out[n]["bytes_per_face"])
            ax.plot([out[n]["bytes_per_face"] for n in names], [100 * out[n][key] for n in names], style,
                    label=fam)
            for n in names:
                ax.annotate(n, (out[n]["bytes_per_face"], 100 * out[n][key]), fontsize=6,
                            textcoords="offset points", xytext=(3, 3))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bytes per face")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_storage_eval(
    lfw_root: Path,
    out_dir: Path,
    embeddings: Path,
    *,
    pairs_file: str = "pairs.txt",
    people_file: str = "people.txt",
    dims: Sequence[int] = DIMS,
    far_target: float = 1e-3,
) -> dict:
    """Storage variants on all pairs of ``pairs_file`` from an existing ``lfw_embeddings.npz`` (written by
    ``run_lfw_eval``; nothing is re-embedded). Writes ``storage_result.json`` and ``storage.png``."""
    from .lfw import LfwEmbeddings, pair_arrays, parse_pairs, parse_people

    t0 = time.perf_counter()
    lfw_root, out_dir = Path(lfw_root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = parse_pairs(lfw_root / pairs_file)
    e = LfwEmbeddings.load(Path(embeddings))
    index = {p: i for i, p in enumerate(e.paths)}
    missing = {p.a for p in pairs if p.a not in index} | {p.b for p in pairs if p.b not in index}
    if missing:
        raise ValueError(f"{embeddings} lacks {len(missing)} images of {pairs_file}")
    ia, ib, same, fold = pair_arrays(pairs, index)
    # Person -> fold: people.txt (view 2, disjoint people per fold) when present, else the pairs' folds.
    person_fold: dict[str, int] = {}
    if (lfw_root / people_file).exists():
        for f, people in enumerate(parse_people(lfw_root / people_file)):
            for name, _ in people:
                person_fold[name] = f
    for p in pairs:
        for r in (p.a, p.b):
            person_fold.setdefault(r.split("/")[0], p.fold)
    row_fold = np.array([person_fold.get(p.split("/")[0], -1) for p in e.paths], np.int64)
    clash = sum(1 for p in pairs for r in (p.a, p.b) if person_fold[r.split("/")[0]] != p.fold)
    with one_blas_thread():
        out, _ = evaluate_storage_full(e.emb, ia, ib, same, fold, row_fold, dims=dims, far_target=far_target)
    train_sizes = [int((row_fold != f).sum()) for f in np.unique(fold)]
    result = {
        "dataset": {"name": "LFW", "pairs_file": pairs_file, "n_pairs": len(pairs), "n_same": int(same.sum()),
                    "n_folds": int(len(np.unique(fold))), "n_images": len(e.paths)},
        "protocol": (
            "squared L2 of unit vectors, 10-fold accuracy and VAL@FAR as in lfw_result.json; every variant is "
            "re-normalised to unit length; pca<d>: PCA learned per test fold on the embeddings of the images of "
            "the other 9 folds' people (people.txt folds are disjoint), thresholds chosen on the other folds' "
            "pairs in that projection; pca<d>_int8: plus symmetric int8 with a per-fold scale (127 / max "
            "|component| on the training images); trunc<d>: first d components, no learning"
        ),
        "pca_training_images_per_fold": {"min": min(train_sizes), "max": max(train_sizes)},
        "pair_images_outside_their_people_fold": clash,
        "variants": out,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out_dir / "storage_result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _plot(out, out_dir / "storage.png", f"LFW {len(pairs)} pairs: embedding storage")
    return result
