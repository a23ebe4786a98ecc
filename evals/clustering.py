"""Clustering quality against known identities: a threshold sweep of ``engine.grouping.cluster.cluster_faces``.

Each threshold gives BCubed and pairwise precision / recall / F1 (``evals.metrics``) and the number of
groups, against the true number of identities. ``run_cluster_sweep`` does this on every face of the LFW
embedding cache (one face per image, so no same-photo constraint applies) and marks the app's default
(``ClusterConfig.threshold``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SWEEP = tuple(round(0.70 + 0.05 * i, 2) for i in range(15))  # 0.70 .. 1.40


def threshold_sweep(
    emb: np.ndarray,
    truth: Sequence,
    thresholds: Sequence[float],
    *,
    method: str = "average",
    k: int = 30,
    photo_ids: np.ndarray | None = None,
    cluster_fn=None,
) -> list[dict]:
    """One row per threshold: ``threshold``, the ``ClusterScores`` fields, ``seconds``.

    ``cluster_fn(emb, threshold) -> labels`` replaces ``cluster_faces`` (used for other algorithms)."""
    from engine.grouping.cluster import cluster_faces

    from .metrics import cluster_scores

    truth = np.asarray(truth)
    rows = []
    for t in thresholds:
        t0 = time.perf_counter()
        if cluster_fn is None:
            labels = cluster_faces(emb, float(t), photo_ids=photo_ids, k=k, method=method)
        else:
            labels = cluster_fn(emb, float(t))
        secs = time.perf_counter() - t0
        s = cluster_scores(labels, truth).as_dict()
        rows.append({"threshold": round(float(t), 6), **{kk: (round(v, 6) if isinstance(v, float) else v)
                                                           for kk, v in s.items()},
                     "seconds": round(secs, 3)})
    return rows


def best_row(rows: Sequence[dict], key: str = "bcubed_f1") -> dict:
    """The row with the highest ``key`` (the lowest threshold among ties)."""
    return max(rows, key=lambda r: (r[key], -r["threshold"]))


def plot_sweep(rows: Sequence[dict], path: Path, *, default: float | None, n_classes: int, title: str,
               xlabel: str = "threshold (squared L2)") -> None:
    from evals import plots

    t = [r["threshold"] for r in rows]
    fig, (ax, gx) = plots.subplots(2, figsize=(11, 4.2))
    for key, style, label in (("bcubed_precision", "--", "BCubed P"), ("bcubed_recall", ":", "BCubed R"),
                              ("bcubed_f1", "o-", "BCubed F1"), ("pairwise_f1", "s-", "pairwise F1")):
        ax.plot(t, [r[key] for r in rows], style, label=label, ms=4)
    gx.plot(t, [r["n_clusters"] for r in rows], "o-", ms=4, label="groups found")
    gx.axhline(n_classes, color="k", lw=0.8, label=f"identities ({n_classes:,})")
    for a in (ax, gx):
        if default is not None:
            a.axvline(default, color="C3", lw=1, label=f"default {default:g}")
        a.set_xlabel(xlabel)
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8)
    ax.set_ylabel("score")
    gx.set_ylabel("groups")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_cluster_sweep(
    embeddings: Path,
    out_dir: Path,
    *,
    thresholds: Sequence[float] = SWEEP,
    method: str = "average",
    k: int | None = None,
    default_threshold: float | None = None,
) -> dict:
    """Sweep ``cluster_faces`` over ``thresholds`` on an embedding cache with ``emb`` and ``names`` (or
    ``paths`` "Name/Name_0001.jpg"), e.g. ``.cache/lfw_embeddings.npz``. Writes ``cluster_sweep.json`` and
    ``cluster_sweep.png``; the default threshold (``ClusterConfig``) is always included and marked."""
    from engine.config import ClusterConfig

    cfg = ClusterConfig()
    k = cfg.k if k is None else k
    default = cfg.threshold if default_threshold is None else default_threshold
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with np.load(embeddings, allow_pickle=False) as z:
        emb = z["emb"].astype(np.float32)
        names = z["names"] if "names" in z else np.array([str(p).split("/")[0] for p in z["paths"]])
        detected = z["detected"] if "detected" in z else None
    ts = sorted({round(float(t), 6) for t in thresholds} | {round(float(default), 6)})
    t0 = time.perf_counter()
    rows = threshold_sweep(emb, names, ts, method=method, k=k)
    for r in rows:
        r["default"] = abs(r["threshold"] - default) < 1e-9
    best = best_row(rows)
    n_classes = rows[0]["n_classes"] if rows else 0
    result = {
        "dataset": {"name": "LFW", "faces": len(emb), "identities": n_classes,
                    "not_detected": None if detected is None else int((~detected.astype(bool)).sum())},
        "method": method,
        "k": k,
        "default_threshold": default,
        "default": next(r for r in rows if r["default"]),
        "best_bcubed_f1": best,
        "sweep": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out_dir / "cluster_sweep.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot_sweep(rows, out_dir / "cluster_sweep.png", default=default, n_classes=n_classes,
               title=f"LFW, all {len(emb):,} faces: cluster_faces ({method}, k={k})")
    return result
