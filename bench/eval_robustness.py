"""FaceNet Table 4 style robustness on LFW: JPEG quality and image width (see docs/evaluation.md).

    python bench/eval_robustness.py                       # folds 1-3, all conditions -> results/robustness/
    python bench/eval_robustness.py --budget 480          # stop starting new conditions after 8 min; rerun to go on
    python bench/eval_robustness.py --conditions jpeg_10,width_40 --folds 1,2,3
    python bench/eval_robustness.py --baseline dlib --budget 1800   # dlib on the same degraded files too

Per-condition embeddings are cached in .cache/robustness/ (dlib's in .cache/robustness/dlib/, saved as they
progress), so reruns only compute what is missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchlib import LFW, REPO  # noqa: E402

DEFAULT_LFW = LFW


def main(argv: list[str] | None = None) -> int:
    from engine.config import EmbedConfig
    from evals.robustness import Condition, default_conditions, run_robustness_eval

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "robustness")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "robustness")
    ap.add_argument("--reference", type=Path, default=REPO / "results" / "lfw" / "lfw_embeddings.npz",
                    help="lfw_embeddings.npz of facenet-photos eval lfw (original images; reused when it matches)")
    ap.add_argument("--folds", default="1,2,3", help="1-based folds of pairs.txt to test on")
    ap.add_argument("--conditions", default="", help="comma-separated, e.g. jpeg_10,width_40 (default: all)")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds after which no new condition starts (dlib: stops and saves)")
    ap.add_argument("--baseline", choices=["dlib"], default=None,
                    help="also run face_recognition/dlib on the same degraded files (needs the bench extra)")
    ap.add_argument("--baseline-reference", type=Path, default=REPO / ".cache" / "dlib_lfw.npz",
                    help="dlib_lfw.npz of bench/baseline_dlib.py (original images; reused when it matches)")
    args = ap.parse_args(argv)

    conds = [Condition.parse(c) for c in args.conditions.split(",") if c] or default_conditions()
    last = [None]

    def show(cond, p) -> None:
        if p.done % 250 == 0 or p.done == p.total:
            odd = sum(v for k, v in p.counts.items() if k != "detected")
            print(f"  {cond.name}: {p.done}/{p.total} {p.rate:.1f} img/s, {odd} not detected", flush=True)
        last[0] = p

    def show_dlib(cond, done: int, total: int, secs: float) -> None:
        if done % 200 == 0 or done == total:
            print(f"  dlib {cond.name}: {done}/{total} new images, {done / max(secs, 1e-9):.1f} img/s", flush=True)

    res = run_robustness_eval(
        args.lfw, args.out, args.cache, conditions=conds, folds=[int(f) - 1 for f in args.folds.split(",")],
        embed_config=EmbedConfig(threads=args.threads), time_budget_s=args.budget,
        reference_embeddings=args.reference, on_progress=show,
        baseline=args.baseline, baseline_reference=args.baseline_reference, on_baseline_progress=show_dlib,
    )
    print(res["dataset"]["note"])
    print(f"clean thresholds (other folds): {res['clean_thresholds']}")
    print("| condition | acc (k-fold) | acc @ clean t | VAL @ clean FAR t | FAR | acc deg-vs-orig | not detected |")
    for name, r in res["conditions"].items():
        dd, do = r["degraded_vs_degraded"], r["degraded_vs_original"]
        fx = dd["fixed_clean_threshold"]
        print(f"| {name} | {100 * dd['accuracy_mean']:.2f} ± {100 * dd['accuracy_std']:.2f} | "
              f"{100 * fx['accuracy']:.2f} | {100 * fx['val']:.2f} | {fx['far']:.4f} | "
              f"{100 * do['accuracy_mean']:.2f} | {r['not_detected_with_defaults']} {r['detection']} |")
    if args.baseline:
        print(f"dlib clean thresholds (other folds): {res['baseline']['clean_thresholds']}")
        print("| condition | ours acc (k-fold) | dlib acc (k-fold) | dlib acc @ its clean t | dlib acc deg-vs-orig "
              "| dlib not detected | files |")
        for name, r in res["conditions"].items():
            if "dlib" not in r:
                continue
            dd, do = r["dlib"]["degraded_vs_degraded"], r["dlib"]["degraded_vs_original"]
            fx = dd["fixed_clean_threshold"]
            at_clean = "-" if fx is None else f"{100 * fx['accuracy']:.2f}"
            ours = r["degraded_vs_degraded"]
            print(f"| {name} | {100 * ours['accuracy_mean']:.2f} ± {100 * ours['accuracy_std']:.2f} | "
                  f"{100 * dd['accuracy_mean']:.2f} ± {100 * dd['accuracy_std']:.2f} | "
                  f"{at_clean} | "
                  f"{100 * do['accuracy_mean']:.2f} | {r['dlib']['not_detected_with_defaults']} "
                  f"{r['dlib']['detection']} | {r['dlib']['files_check']} |")
    if not res["complete"]:
        if res["missing"]:
            print(f"not yet embedded (run again): {', '.join(res['missing'])}")
        if res.get("baseline_missing"):
            print(f"dlib not yet embedded (run again): {', '.join(res['baseline_missing'])}")
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
