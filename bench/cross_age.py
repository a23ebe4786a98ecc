"""Children growing up on lag-dev: cross-age recall and false merges, by grouping and with the user's
confirmations (docs/clustering.md, "Children growing up").

    python bench/family_sets.py --make     # once: the development set embeddings
    python bench/cross_age.py              # ~2 minutes

Cross-age recall: the share of child-adult pairs of one person that end in one group; false merges: pairs of
different people in one group, per million such pairs. Three ways, on the 20 lag-dev libraries:

* grouping alone (``cluster_faces`` with the app's method, a sweep of T);
* the user confirmed each person's adult photos (``fixed``), then grouping;
* the user named each person's adult photos, then the young faces are *recognised* (``recognise``, the k-NN
  vote every import runs) at a sweep of recognition thresholds. The same on the LFW-phone and mixed
  libraries with a random half of each person's faces named shows what a looser threshold costs there.

``--answers``: the same two numbers after 0, 10, 50 and 100 answers of the simulated user of
``bench/simulate_answers.py`` (the app's queue: "same person?" pairs and "is this face one of them?"),
with the default grouping and with each ``--answer-thresholds`` T (the library's threshold, so the queue's
curve follows it), with and without the face questions (~3 minutes)::

    python bench/cross_age.py --answers --answer-thresholds 0.85 1.0
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from calibrate_grouping import cross_age, false_pairs  # noqa: E402
from family_sets import DEFAULT_CACHE, libraries, load_cache  # noqa: E402

GROUP_T = (0.75, 0.8, 0.9, 1.0, 1.1, 1.2)
RECOGNISE_T = (0.9, 1.0, 1.05, 1.1, 1.15, 1.2)


def _named(lib, i: int) -> np.ndarray:
    """Which faces the user named: lag-dev the adult photos, elsewhere a random half of every person's."""
    return ~lib.young if lib.kind == "lag" else np.random.default_rng(i).random(len(lib.truth)) < 0.5


def _pred_recognised(lib, named: np.ndarray, r: float) -> np.ndarray:
    from engine.grouping.people import BY_USER, FaceTable, recognise

    _, inv = np.unique(lib.truth, return_inverse=True)
    known = FaceTable(ids=np.flatnonzero(named), photo_ids=np.flatnonzero(named), person_ids=inv[named],
                      assignment=[BY_USER] * int(named.sum()), emb=lib.emb[named])
    q = np.flatnonzero(~named)
    pid, _ = recognise(known, lib.emb[q], r)
    pred = np.where(named, inv, -1).astype(np.int64)
    pred[q] = np.where(pid >= 0, pid, len(inv) + q)  # not recognised: alone
    return pred


def _score(preds: list[tuple[object, np.ndarray]]) -> tuple[float | None, float]:
    h = t = f = d = 0
    for lib, pred in preds:
        a, b = cross_age(pred, lib)
        c, e = false_pairs(pred, lib.truth)
        h, t, f, d = h + a, t + b, f + c, d + e
    return (h / t if t else None), (1e6 * f / d if d else 0.0)


def _after_answers(lag, thresholds) -> int:
    from simulate_answers import CHECKPOINTS, simulate

    from engine.config import ClusterConfig

    print("| lag-dev grouping | questions | "
          + " | ".join(f"after {c}: recall, false merges per 10^6" for c in CHECKPOINTS) + " |")
    print("|---|---|" + "---|" * len(CHECKPOINTS))
    for t in thresholds:
        for faces in (False, True):
            res = [simulate(lib.emb, lib.truth, CHECKPOINTS[-1], dev=lib, faces=faces, threshold=t)[0] for lib in lag]
            cells = []
            for c in CHECKPOINTS:
                h, tot, f, d = np.sum([r[c][4:8] for r in res], axis=0)
                cells.append(f"{h / max(tot, 1):.3f}, {1e6 * f / max(d, 1):.0f}")
            label = f"default (T {ClusterConfig().threshold:.2f})" if t is None else f"T {t:.2f}"
            print(f"| {label} | {'pairs and faces' if faces else 'pairs only'} | " + " | ".join(cells) + " |",
                  flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    from engine.config import ClusterConfig
    from engine.grouping.cluster import cluster_faces

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--answers", action="store_true", help="only: after 0/10/50/100 simulated answers")
    ap.add_argument("--answer-thresholds", type=float, nargs="*", default=[], help="with --answers: also these T")
    args = ap.parse_args(argv)
    method = ClusterConfig().method
    libs = libraries(load_cache(args.cache))
    lag = [lib for lib in libs if lib.kind == "lag"]
    if args.answers:
        return _after_answers(lag, [None, *args.answer_thresholds])
    print(f"| lag-dev, {method} method | T | cross-age recall | false merges per 10^6 pairs |")
    print("|---|---:|---:|---:|")
    for t in GROUP_T:
        r, fm = _score([(lib, cluster_faces(lib.emb, t, method=method)) for lib in lag])
        print(f"| grouping alone | {t:.2f} | {r:.3f} | {fm:.0f} |")
    for t in GROUP_T:
        preds = []
        for lib in lag:
            _, inv = np.unique(lib.truth, return_inverse=True)
            preds.append((lib, cluster_faces(lib.emb, t, fixed=np.where(~lib.young, inv, -1), method=method)))
        r, fm = _score(preds)
        print(f"| adults confirmed, then grouping | {t:.2f} | {r:.3f} | {fm:.0f} |")
    print()
    print("| adults (elsewhere half) named, the rest recognised | r | lag-dev cross-age recall | lag-dev false "
          "merges per 10^6 | LFW phone false merges per 10^6 | mixed false merges per 10^6 |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in RECOGNISE_T:
        cells = []
        for kind in ("lag", "lfw-phone", "mixed"):
            preds = [(lib, _pred_recognised(lib, _named(lib, i), r)) for i, lib in enumerate(libs) if lib.kind == kind]
            cells.append(_score(preds))
        print(f"| recognition | {r:.2f} | {cells[0][0]:.3f} | {cells[0][1]:.0f} | {cells[1][1]:.0f} | "
              f"{cells[2][1]:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
