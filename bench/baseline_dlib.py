"""Side-by-side baseline: dlib (face_recognition: HOG + ResNet) vs ours on the same LFW images
(see docs/evaluation.md, engine/evaluation/baseline.py).

    python bench/baseline_dlib.py --budget 480     # embeds dlib in pieces (cached in .cache/); rerun until complete
    python bench/baseline_dlib.py                  # pairs, clustering and throughput -> results/baseline/
    python bench/baseline_dlib.py --throughput 0   # without the throughput part

Needs results/lfw/lfw_embeddings.npz (facenet-photos eval lfw) for our side. All BLAS / OpenMP pools are
limited to one thread before anything is imported.
"""

from __future__ import annotations

import benchlib  # noqa: E402

benchlib.pin_blas_threads()

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from benchlib import LFW, REPO  # noqa: E402

DEFAULT_LFW = LFW


def main(argv: list[str] | None = None) -> int:
    from evals.baseline import run_dlib_baseline

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "baseline")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache")
    ap.add_argument("--ours", type=Path, default=REPO / "results" / "lfw" / "lfw_embeddings.npz")
    ap.add_argument("--budget", type=float, default=None, help="seconds of dlib embedding per run")
    ap.add_argument("--throughput", type=int, default=500, help="images for the throughput part (0: skip)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)

    res = run_dlib_baseline(args.lfw, args.out, args.cache, args.ours, time_budget_s=args.budget,
                            throughput_images=args.throughput, throughput_rounds=args.rounds,
                            on_progress=lambda s: print(s, flush=True))
    if not res["complete"]:
        print(f"dlib embeddings: {res['dlib_embedded']} done, {res['dlib_missing']} to go; run again")
        return 3
    p = res["pairs"]
    print(f"LFW {res['dataset']['n_pairs']} pairs, {res['dataset']['n_images']} images")
    for k in ("ours", "dlib", "dlib_unit_normalised"):
        print(f"  {k:22s} accuracy {100 * p[k]['accuracy_mean']:.2f} ± {100 * p[k]['accuracy_std']:.2f} %  "
              f"VAL@1e-3 {100 * p[k]['val_mean']:.2f} %  threshold {p[k]['threshold_mean']:.4f}  AUC {p[k]['auc']}")
    print(f"  dlib detection {res['detection']['dlib']}")
    for k, v in res["clustering"].items():
        b = v["best"]
        print(f"  {k:24s} best t={b['threshold']:g}: BCubed F1 {b['bcubed_f1']:.4f} (P {b['bcubed_precision']:.4f} "
              f"R {b['bcubed_recall']:.4f}) pairwise F1 {b['pairwise_f1']:.4f} groups {b['n_clusters']} "
              f"(identities {b['n_classes']})")
    t = res["throughput"]
    if t:
        for k in ("ours", "dlib"):
            print(f"  {k}: {t[k]['images_per_second']} img/s, {t[k]['faces_per_second']} faces/s "
                  f"(cpu/wall {t[k]['cpu_over_wall']}, {t[k]['images_per_cpu_second']} img per CPU-s)")
        print(f"  ours/dlib: {t['ratio_ours_over_dlib_images_per_second']} (images/s), "
              f"{t['ratio_ours_over_dlib_images_per_cpu_second']} (images per CPU-second)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
