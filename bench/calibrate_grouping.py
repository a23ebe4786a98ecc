"""Choose the grouping defaults on family-shaped libraries, with cross-validation over identities.

    python bench/family_sets.py --make          # once: embeds lag-dev and the degraded LFW people
    python bench/calibrate_grouping.py          # sweep + cross-validation -> markdown tables (docs/clustering.md)

Libraries (``bench/family_sets.py``): 20-40 people each, drawn inside five disjoint identity folds; per fold
four libraries of each kind (lag-dev, LFW people with >= 10 photos degraded like phone photos, a mixture).
Every method and parameter is run on every library. Cross-validation: for each fold, the setting is chosen
on the libraries of the other four folds (highest mean BCubed F1 among the settings whose mean BCubed
precision is at least ``MIN_PRECISION``, over all those libraries or on each kind separately: ``RULES``),
and reported on the held-out fold's libraries, whose people were never seen while choosing. The held-out
numbers of the five folds are averaged.

Methods: average and single linkage and the stable-groups method (the app's default since issue 10,
engine/grouping/density.py) on the k-NN graph (``engine.grouping.cluster.cluster_faces``), complete
linkage over the full distance matrix (scipy; fine at family size) and HDBSCAN (the hdbscan package;
min_cluster_size 2, min_samples 1, cluster_selection_epsilon = sqrt(threshold); noise faces are singletons).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from family_sets import DEFAULT_CACHE, DevLibrary, libraries, load_cache  # noqa: E402

MIN_PRECISION = 0.98
KINDS = ("lag", "lfw-phone", "mixed")
OLD_DEFAULT = ("average", 1.05)  # ClusterConfig before issue 10 (chosen on all of LFW)


def _grid(a: float, b: float, step: float = 0.05) -> list[float]:
    return [round(a + step * i, 2) for i in range(int(round((b - a) / step)) + 1)]


SETTINGS: list[tuple[str, float]] = (
    [("average", t) for t in _grid(0.90, 1.60)]
    + [("single", t) for t in _grid(0.70, 1.20)]
    + [("complete", t) for t in _grid(1.10, 1.90, 0.10)]
    + [("hdbscan", t) for t in (0.0, 0.8, 1.0, 1.2, 1.4)]
    + [("stable", t) for t in _grid(0.70, 1.45)]
)


def run_method(method: str, t: float, emb: np.ndarray) -> np.ndarray:
    if method in ("average", "single", "stable"):
        from engine.grouping.cluster import cluster_faces

        return cluster_faces(emb, t, method=method)
    if method == "complete":
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import pdist

        if len(emb) < 2:
            return np.zeros(len(emb), np.int64)
        z = linkage(pdist(emb.astype(np.float64), "sqeuclidean"), "complete")
        return fcluster(z, t, "distance").astype(np.int64)
    if method == "hdbscan":
        import hdbscan

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hdbscan.HDBSCAN(min_cluster_size=2, min_samples=1, cluster_selection_epsilon=float(np.sqrt(t))
                                   ).fit_predict(emb.astype(np.float64)).astype(np.int64)
    raise ValueError(method)


def cross_age(pred: np.ndarray, lib: DevLibrary) -> tuple[int, int]:
    """(child-adult pairs of one person in one group, all child-adult pairs of one person)."""
    hit = tot = 0
    for person in set(lib.truth[lib.young].tolist()):
        sel = lib.truth == person
        y, a = pred[sel & lib.young], pred[sel & ~lib.young]
        tot += len(y) * len(a)
        hit += int((y[:, None] == a[None, :]).sum())
    return hit, tot


def false_pairs(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(pairs of different people in one group, all pairs of different people)."""
    from evals.metrics import contingency

    n_ij, a, b, _, _ = contingency(pred, truth)
    n = len(truth)
    same_group = float((np.bincount(np.unique(pred, return_inverse=True)[1].reshape(-1)).astype(float) ** 2
                        ).sum() - n) / 2
    same_both = float(((n_ij.astype(float) ** 2).sum() - n) / 2)
    class_sizes = np.bincount(np.unique(truth, return_inverse=True)[1].reshape(-1)).astype(float)
    diff_all = (n * n - (class_sizes ** 2).sum()) / 2
    return int(round(same_group - same_both)), int(round(diff_all))


def expand_neighbours(emb: np.ndarray, k: int, radius: float = 1.4) -> np.ndarray:
    """Each face plus its ``k`` nearest faces within squared L2 ``radius``, weighted by cosine, renormalised
    (database-side query expansion, as image retrieval uses it). An experiment of issue 10 (``--expand``,
    docs/clustering.md "Per-library normalisation"); not in the app."""
    x = emb.astype(np.float64)
    s = x @ x.T
    np.fill_diagonal(s, -2.0)
    kk = min(k, len(x) - 1)
    out = x.copy()
    if kk > 0:
        idx = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        sim = np.take_along_axis(s, idx, axis=1)
        w = np.where(2 - 2 * sim < radius, np.maximum(sim, 0.0), 0.0)
        out += np.einsum("nk,nkd->nd", w, x[idx])
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def add_strangers(libs: list[DevLibrary], lfw_cache: Path, share: float, seed: int = 7) -> list[DevLibrary]:
    """Each library plus ``share`` x its faces of strangers: LFW people with one photo (the clean LFW cache
    of bench/cluster_lfw.py, the same detector, alignment and model), as the faces in the background of a
    family's photos are. Strangers are split into the same five folds by identity, so a held-out fold's
    strangers were never seen while choosing."""
    from evals.family import identity_folds

    with np.load(lfw_cache, allow_pickle=True) as z:
        names, emb = z["names"], z["emb"].astype(np.float32)
    _, inv, cnt = np.unique(names, return_inverse=True, return_counts=True)
    one = np.flatnonzero(cnt[inv.reshape(-1)] == 1)
    s_emb, s_names = emb[one], names[one]
    fold_of = identity_folds(s_names, 5, 0)
    s_fold = np.array([fold_of[n] for n in s_names])
    rng = np.random.default_rng(seed)
    out = []
    for lib in libs:
        pick = rng.choice(np.flatnonzero(s_fold == lib.fold), int(round(share * len(lib.truth))), replace=False)
        out.append(DevLibrary(kind=lib.kind, fold=lib.fold, emb=np.concatenate([lib.emb, s_emb[pick]]),
                              truth=np.concatenate([lib.truth, np.char.add("stranger:", s_names[pick].astype(str))]),
                              young=np.concatenate([lib.young, np.zeros(len(pick), bool)])))
    return out


def evaluate(libs: list[DevLibrary], settings=SETTINGS, log=print) -> list[dict]:
    from evals.metrics import cluster_scores, corrections

    rows = []
    t0 = time.time()
    for si, (method, t) in enumerate(settings):
        for li, lib in enumerate(libs):
            pred = run_method(method, t, lib.emb)
            s = cluster_scores(pred, lib.truth)
            c = corrections(pred, lib.truth)
            hit, tot = cross_age(pred, lib)
            fp, fp_all = false_pairs(pred, lib.truth)
            rows.append({"method": method, "threshold": t, "library": li, "kind": lib.kind, "fold": lib.fold,
                         "faces": len(lib.truth), "people": lib.n_people, **s.as_dict(),
                         "corrections_per_100": c.per_100_faces, "moves": c.moves, "merges": c.merges,
                         "cross_age_hit": hit, "cross_age_pairs": tot, "false_pairs": fp,
                         "diff_pairs": fp_all})
        log(f"{si + 1}/{len(settings)} {method} {t}  ({time.time() - t0:.0f} s)", flush=True)
    return rows


def summarise(rows: list[dict], folds: set[int] | None = None) -> dict:
    """Per (method, threshold): mean scores over the libraries (of the given folds), per kind and all."""
    out: dict = {}
    for r in rows:
        if folds is not None and r["fold"] not in folds:
            continue
        for kind in (r["kind"], "all"):
            d = out.setdefault((r["method"], r["threshold"]), {}).setdefault(kind, {"n": 0})
            d["n"] += 1
            for k in ("bcubed_precision", "bcubed_recall", "bcubed_f1", "pairwise_f1", "corrections_per_100",
                      "n_clusters", "people"):
                d[k] = d.get(k, 0.0) + r[k]
            for k in ("cross_age_hit", "cross_age_pairs", "false_pairs", "diff_pairs"):
                d[k] = d.get(k, 0) + r[k]
    for per_kind in out.values():
        for d in per_kind.values():
            n = d.pop("n")
            for k in ("bcubed_precision", "bcubed_recall", "bcubed_f1", "pairwise_f1", "corrections_per_100",
                      "n_clusters", "people"):
                d[k] /= n
            d["cross_age_recall"] = d["cross_age_hit"] / d["cross_age_pairs"] if d["cross_age_pairs"] else None
            d["false_per_million"] = 1e6 * d["false_pairs"] / d["diff_pairs"] if d["diff_pairs"] else 0.0
            d["libraries"] = n
    return out


# Where the precision floor applies: "pooled" = the mean over all libraries (the app's rule); "every kind" =
# each kind's mean separately (stricter: lag-dev, with 3.8 photos per person and only child and adult ones,
# then decides alone).
RULES = {"pooled": ("all",), "every kind": KINDS}


def choose(summary: dict, methods: tuple[str, ...] | None = None, rule: str = "pooled") -> tuple[str, float]:
    """Highest mean F1 over all libraries among settings with mean precision >= MIN_PRECISION where the
    ``rule`` says (if none qualifies: the most precise)."""
    cands = [(k, v) for k, v in summary.items() if methods is None or k[0] in methods]
    ok = [(k, v) for k, v in cands if all(v[kind]["bcubed_precision"] >= MIN_PRECISION for kind in RULES[rule])]
    if ok:
        return max(ok, key=lambda kv: (kv[1]["all"]["bcubed_f1"], -kv[0][1]))[0]
    return max(cands, key=lambda kv: kv[1]["all"]["bcubed_precision"])[0]


def cross_validate(rows: list[dict], methods: tuple[str, ...] | None = None, rule: str = "pooled") -> dict:
    """Per held-out fold: the setting chosen on the other folds and its scores on the held-out fold."""
    folds = sorted({r["fold"] for r in rows})
    per_fold, pooled = [], {}
    for f in folds:
        chosen = choose(summarise(rows, set(folds) - {f}), methods, rule)
        held = summarise([r for r in rows if (r["method"], r["threshold"]) == chosen], {f})[chosen]
        per_fold.append({"fold": f, "method": chosen[0], "threshold": chosen[1], "held_out": held})
        for kind, d in held.items():
            p = pooled.setdefault(kind, {})
            for k, v in d.items():
                if isinstance(v, float | int) and v is not None:
                    p[k] = p.get(k, 0.0) + v / len(folds)
    return {"folds": per_fold, "mean_held_out": pooled}


def _fmt(d: dict) -> str:
    return (f"{d['bcubed_precision']:.3f} / {d['bcubed_recall']:.3f} / **{d['bcubed_f1']:.3f}** / "
            f"{d['corrections_per_100']:.1f}")


def tables(rows: list[dict]) -> tuple[str, dict]:
    lines = []
    full = summarise(rows)
    lines.append("#### Cross-validated choice per method (held-out folds, mean over their libraries)\n")
    lines.append("BCubed P / R / F1 / corrections per 100 faces; thresholds chosen on the other folds.\n")
    lines.append("| precision floor | method | thresholds chosen (per fold) | lag-dev | LFW phone | mixed | all |")
    lines.append("|---|---|---|---|---|---|---|")
    cv_all = {}
    for rule in RULES:
        for methods in (("average",), ("single",), ("complete",), ("hdbscan",), ("stable",), None):
            if methods is not None and not any(r["method"] == methods[0] for r in rows):
                continue  # not run (--quick)
            cv = cross_validate(rows, methods, rule)
            cv_all[f"{rule}: {'any' if methods is None else methods[0]}"] = cv
            ch = ", ".join(f"{x['method'] if methods is None else ''}{' ' if methods is None else ''}"
                           f"{x['threshold']:.2f}" for x in cv["folds"])
            m = cv["mean_held_out"]
            lines.append(f"| {rule} | {'any' if methods is None else methods[0]} | {ch.strip()} | "
                         + " | ".join(_fmt(m[k]) for k in (*KINDS, "all")) + " |")
    od = full[OLD_DEFAULT]
    lines.append("| - | old default (average 1.05) | fixed | "
                 + " | ".join(_fmt(od[k]) for k in (*KINDS, "all")) + " |")
    lines.append("")
    lines.append("#### Sweep over all libraries (all folds), BCubed P / R / F1 / corrections per 100 faces\n")
    lines.append("| method | threshold | lag-dev | LFW phone | mixed | all | groups / people | lag cross-age "
                 "recall | lag false merges per 10^6 pairs |")
    lines.append("|---|---:|---|---|---|---|---:|---:|---:|")
    for (method, t), v in full.items():
        lag = v["lag"]
        lines.append(f"| {method} | {t:.2f} | " + " | ".join(_fmt(v[k]) for k in (*KINDS, "all"))
                     + f" | {v['all']['n_clusters']:.1f} / {v['all']['people']:.1f} | "
                     f"{lag['cross_age_recall']:.3f} | {lag['false_per_million']:.0f} |")
    return "\n".join(lines), cv_all


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=DEFAULT_CACHE.parent / "calibrate_grouping.json")
    ap.add_argument("--quick", action="store_true", help="average linkage and the stable method only")
    ap.add_argument("--rows", type=Path, help="re-tabulate the raw rows of an earlier run (its --out file)")
    ap.add_argument("--strangers", type=float, default=0.0,
                    help="add this share of one-photo LFW strangers to every library (e.g. 0.2)")
    ap.add_argument("--centre", type=float, default=0.0,
                    help="remove this share of each library's mean embedding before grouping (ClusterConfig.centre)")
    ap.add_argument("--expand", default="",
                    help="K or K:RADIUS: add each face's K nearest faces within squared L2 RADIUS (default 1.4), "
                         "weighted by cosine, before grouping (an experiment; the stable grid then starts at 0.5)")
    ap.add_argument("--lfw-cache", type=Path,
                    default=Path(__file__).resolve().parents[1] / ".cache" / "lfw_embeddings.npz",
                    help="the clean LFW embeddings the strangers come from (bench/cluster_lfw.py --make-cache)")
    args = ap.parse_args(argv)
    if args.rows:
        rows = json.loads(args.rows.read_text())["rows"]
    else:
        libs = libraries(load_cache(args.cache))
        if args.strangers > 0:
            libs = add_strangers(libs, args.lfw_cache, args.strangers)
        if args.centre > 0:  # the per-library normalisation (engine/grouping/normalise.py), strangers included
            from engine.grouping.normalise import centre_library

            libs = [replace(lib, emb=centre_library(lib.emb, args.centre)) for lib in libs]
        settings = [s for s in SETTINGS if not args.quick or s[0] in ("average", "stable")]
        if args.expand:  # an experiment: database-side query expansion (not in the app); distances shrink
            k, _, radius = args.expand.partition(":")
            libs = [replace(lib, emb=expand_neighbours(lib.emb, int(k), float(radius or 1.4))) for lib in libs]
            settings = [("stable", t) for t in _grid(0.50, 0.65)] + settings
        rows = evaluate(libs, settings)
    text, cv = tables(rows)
    print(text)
    print()
    for name, c in cv.items():
        print(name, [(x["fold"], x["method"], x["threshold"]) for x in c["folds"]])
    if not args.rows:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "cv": cv}, default=float))
        print(f"raw rows: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
