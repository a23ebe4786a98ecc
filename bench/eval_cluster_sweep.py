"""Clustering quality on all LFW faces: threshold sweep of cluster_faces, BCubed and pairwise P/R/F1 and the
number of groups (see docs/evaluation.md).

    python bench/eval_cluster_sweep.py            # .cache/lfw_embeddings.npz -> results/cluster_sweep/

The cache is written by ``python bench/cluster_lfw.py --make-cache``.
"""

from __future__ import annotations

import benchlib  # noqa: E402

benchlib.pin_blas_threads()

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from benchlib import REPO  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from evals.clustering import SWEEP, run_cluster_sweep

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embeddings", type=Path, default=REPO / ".cache" / "lfw_embeddings.npz")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "cluster_sweep")
    ap.add_argument("--method", default="average")
    ap.add_argument("--thresholds", default=",".join(str(t) for t in SWEEP))
    args = ap.parse_args(argv)
    res = run_cluster_sweep(args.embeddings, args.out, method=args.method,
                            thresholds=[float(t) for t in args.thresholds.split(",")])
    ds = res["dataset"]
    print(f"{ds['faces']} faces, {ds['identities']} identities, method {res['method']}, k {res['k']}")
    print("| threshold | BCubed P | BCubed R | BCubed F1 | pairwise P | pairwise R | pairwise F1 | groups |")
    for r in res["sweep"]:
        mark = " (default)" if r["default"] else ""
        print(f"| {r['threshold']:.2f}{mark} | {r['bcubed_precision']:.4f} | {r['bcubed_recall']:.4f} | "
              f"{r['bcubed_f1']:.4f} | {r['pairwise_precision']:.4f} | {r['pairwise_recall']:.4f} | "
              f"{r['pairwise_f1']:.4f} | {r['n_clusters']:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
