"""Embedding storage on LFW: float32 vs float16 vs 128-byte int8 vs PCA / truncation to fewer dimensions
(see docs/evaluation.md). Uses the embeddings of facenet-photos eval lfw; nothing is re-embedded.

    python bench/eval_storage.py                  # -> results/storage/
"""

from __future__ import annotations

import benchlib  # noqa: E402

benchlib.pin_blas_threads()

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from benchlib import LFW, REPO  # noqa: E402

DEFAULT_LFW = LFW


def main(argv: list[str] | None = None) -> int:
    from evals.storage import run_storage_eval

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--embeddings", type=Path, default=REPO / "results" / "lfw" / "lfw_embeddings.npz")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "storage")
    ap.add_argument("--dims", default="64,32,16")
    args = ap.parse_args(argv)
    res = run_storage_eval(args.lfw, args.out, args.embeddings, dims=[int(d) for d in args.dims.split(",")])
    print("| variant | bytes/face | accuracy (10-fold) | VAL @ FAR=1e-3 | FAR | AUC | threshold |")
    for name, v in res["variants"].items():
        print(f"| {name} | {v['bytes_per_face']} | {100 * v['accuracy_mean']:.2f} ± {100 * v['accuracy_std']:.2f} % | "
              f"{100 * v['val_mean']:.2f} ± {100 * v['val_std']:.2f} % | {v['far_mean']:.4f} | {v['auc']:.5f} | "
              f"{v['threshold_mean']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
