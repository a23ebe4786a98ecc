"""Fit the child-face classifier of a model and measure the grouping penalty it drives (issue 10).

    python bench/family_sets.py --make                     # once: the development sets' embeddings
    python bench/child_direction.py                        # out-of-fold AUC, penalty x threshold tables (~2 min)
    python bench/child_direction.py --write                # also refit on all faces -> resources/models/

The classifier (engine/grouping/children.py; fitted by evals/family.py, as ``facenet-photos calibrate`` fits
one for any model) is a logistic regression on the model's unit embeddings:
lag-dev's "young" faces against its adults and the degraded LFW people (adults). For the tables every face's
likelihood comes from a classifier fitted on the *other* identity folds (the five folds of
bench/family_sets.py), so no library is scored with a classifier that saw its people. Each development
library is then grouped with the stable method at every threshold T and penalty (squared L2 added to an edge
between two faces, times both likelihoods), and scored as bench/calibrate_grouping.py scores it: BCubed
P / R / F1, corrections per 100 faces, lag-dev cross-age recall and false merges per million pairs.
``--write`` fits once more on every face and stores weights, bias and ``--penalty`` for the cache's model
(a cache made with ``--model`` adds that model's entry); the file's new SHA-256, printed, then goes into
``engine/grouping/children.py`` and ``resources/models/checksums.sha256``, as a new weight file's would.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchlib import REPO  # noqa: E402
from calibrate_grouping import KINDS, _fmt, _grid, cross_age, cross_validate, false_pairs, summarise  # noqa: E402
from family_sets import DEFAULT_CACHE, libraries, load_cache  # noqa: E402

from evals.family import child_training_set, fit_child_classifier, out_of_fold_child  # noqa: E402


def evaluate(libs, lib_child, penalties, thresholds, log=print) -> list[dict]:
    from engine.grouping.density import cluster_faces_stable
    from evals.metrics import cluster_scores, corrections

    rows = []
    t0 = time.time()
    for pen in penalties:
        for t in thresholds:
            for li, (lib, child) in enumerate(zip(libs, lib_child, strict=True)):
                pred = cluster_faces_stable(lib.emb, t, child=child, child_penalty=pen)
                s, c = cluster_scores(pred, lib.truth), corrections(pred, lib.truth)
                hit, tot = cross_age(pred, lib)
                fp, fp_all = false_pairs(pred, lib.truth)
                rows.append({"method": f"penalty {pen:g}", "threshold": t, "library": li, "kind": lib.kind,
                             "fold": lib.fold, "faces": len(lib.truth), "people": lib.n_people, **s.as_dict(),
                             "corrections_per_100": c.per_100_faces, "moves": c.moves, "merges": c.merges,
                             "cross_age_hit": hit, "cross_age_pairs": tot, "false_pairs": fp, "diff_pairs": fp_all})
        log(f"penalty {pen:g} ({time.time() - t0:.0f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--penalties", default="0,0.05,0.1,0.15,0.2,0.3,0.45")
    ap.add_argument("--at", type=float, default=1.20, help="the threshold of the per-penalty table (the default T)")
    ap.add_argument("--grid", default="0.95,1.50", help="lowest,highest threshold T of the tables (step 0.05)")
    ap.add_argument("--write", action="store_true", help="refit on all faces and write resources/models/"
                                                         "child_direction.json for the cache's model")
    ap.add_argument("--penalty", type=float, default=0.1, help="the penalty --write stores")
    args = ap.parse_args(argv)

    from sklearn.metrics import roc_auc_score

    cache = load_cache(args.cache)
    x, y, fold = child_training_set(cache)
    c = out_of_fold_child(x, y, fold)
    n_lag = len(cache["lag_identity"])
    print(f"out-of-fold ROC AUC, young against everyone else: {roc_auc_score(y, c):.3f} "
          f"(lag-dev alone: {roc_auc_score(y[:n_lag], c[:n_lag]):.3f}); likelihood >= 0.5 on "
          f"{(c[:n_lag][y[:n_lag]] >= 0.5).mean():.1%} of young faces, {(c[:n_lag][~y[:n_lag]] >= 0.5).mean():.1%}"
          f" of lag-dev adults, {(c[n_lag:] >= 0.5).mean():.1%} of LFW faces")

    libs = libraries(cache)
    lib_child = [c[lib.index] for lib in libs]
    penalties = [float(p) for p in args.penalties.split(",")]
    lo, hi = (float(v) for v in args.grid.split(","))
    rows = evaluate(libs, lib_child, penalties, _grid(lo, hi))

    full = summarise(rows)
    print(f"\n#### At T = {args.at:.2f}, all folds: BCubed P / R / F1 / corrections per 100 faces\n")
    print("| penalty | lag-dev | LFW phone | mixed | all | lag cross-age recall / false merges per 10^6 |")
    print("|---|---|---|---|---|---|")
    for pen in penalties:
        v = full[(f"penalty {pen:g}", round(args.at, 2))]
        print(f"| {pen:g} | " + " | ".join(_fmt(v[k]) for k in (*KINDS, "all"))
              + f" | {v['lag']['cross_age_recall']:.3f} / {v['lag']['false_per_million']:.0f} |")
    print("\n#### Threshold chosen per held-out fold (pooled precision floor 0.98), per penalty\n")
    print("| penalty | T chosen | lag-dev | LFW phone | mixed | all |")
    print("|---|---|---|---|---|---|")
    for pen in penalties:
        cv = cross_validate(rows, (f"penalty {pen:g}",))
        m = cv["mean_held_out"]
        chosen = ", ".join(f"{f['threshold']:.2f}" for f in cv["folds"])
        print(f"| {pen:g} | {chosen} | "
              + " | ".join(_fmt(m[k]) for k in (*KINDS, "all")) + " |")
    print("\n#### Most cross-age recall at <= 50 false merges per million pairs (lag-dev, all folds)\n")
    best: dict[float, tuple] = {}
    for (name, t), v in full.items():
        pen = float(name.split()[1])
        lag = v["lag"]
        if lag["false_per_million"] <= 50 and (pen not in best or lag["cross_age_recall"] > best[pen][1]):
            best[pen] = (t, lag["cross_age_recall"], lag["false_per_million"], v["all"]["bcubed_f1"])
    print("| penalty | T | cross-age recall | false merges per 10^6 | F1 all |")
    print("|---|---|---|---|---|")
    for pen in penalties:
        if pen in best:
            t, r, f, f1 = best[pen]
            print(f"| {pen:g} | {t:.2f} | {r:.3f} | {f:.0f} | {f1:.3f} |")

    if args.write:
        model = fit_child_classifier(x, y)
        model_id = str(cache["model_id"])
        out = REPO / "resources" / "models" / "child_direction.json"
        doc = json.loads(out.read_text()) if out.exists() else {"models": {}}
        doc["about"] = ("Child-face classifiers per embedding model (engine/grouping/children.py), fitted by "
                        "bench/child_direction.py on lag-dev young faces against its adults and degraded LFW people.")
        doc["models"][model_id] = {"weights": [round(float(v), 6) for v in model.coef_[0]],
                                   "bias": round(float(model.intercept_[0]), 6), "penalty": args.penalty,
                                   "faces": int(len(x)), "young": int(y.sum())}
        out.write_text(json.dumps(doc, indent=1) + "\n")
        from engine.checksums import sha256_file

        print(f"\nwrote {out.relative_to(REPO)} for {model_id}: sha256 {sha256_file(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
