"""How many "same person?" answers would a family library need? A simulated user on the development sets.

    python bench/simulate_answers.py            # needs the cache of bench/family_sets.py --make

This measures a *queue policy* on the automatic grouping, not an app feature (the app does not ask yet).
Each library (``family_sets.libraries``) is grouped with ``cluster_faces`` at a threshold; then, one
question at a time, the queue offers the pair of groups it ranks first among those not asked before, and a
simulated user answers from the truth (yes when both groups' majority person is the same). A yes merges
the two groups; a no removes the pair from the queue. Nothing else changes between answers (no regrouping),
so this is what the answers alone achieve.

Policies (groups A, B; d = average-linkage squared L2 between them, from their vector sums):

* ``closest``: smallest d first (the most likely yes);
* ``gain``: largest p(d) * min(|A|, |B|) first, with p(d) = sigmoid((1.33 - d) / 0.1): 1.33 is the
  verification threshold from the LFW folds (``VerifyConfig``), so nothing here is tuned on these sets; a
  yes between big groups fixes more faces than a yes between two single faces.

Reported per kind of library: BCubed precision / recall / F1 and corrections per 100 faces
(``evals.metrics.corrections``) after 0, 10, 50 and 100 answers, and how many answers it takes to reach
BCubed F1 >= 0.98 (median over libraries; ">N" when not reached within ``--max-answers``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from family_sets import DEFAULT_CACHE, libraries, load_cache  # noqa: E402

CHECKPOINTS = (0, 10, 50, 100)
VERIFY_T = 1.33  # engine.config.VerifyConfig().threshold (LFW folds)


def _majority(labels: np.ndarray, truth_codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Each group's most frequent true person (ties: the lowest code)."""
    n_t = int(truth_codes.max()) + 1
    counts = np.zeros((n_groups, n_t), np.int64)
    np.add.at(counts, (labels, truth_codes), 1)
    return counts.argmax(1)


def simulate(emb: np.ndarray, truth: np.ndarray, labels: np.ndarray, policy: str, max_answers: int,
             target_f1: float = 0.98) -> tuple[dict[int, tuple], int | None]:
    """Answer up to ``max_answers`` questions. Returns ({answers: (P, R, F1, corrections per 100)},
    answers needed for ``target_f1`` or None)."""
    from evals.metrics import bcubed, corrections

    truth_codes = np.unique(truth, return_inverse=True)[1].reshape(-1)
    lab = np.unique(labels, return_inverse=True)[1].reshape(-1).astype(np.int64)
    g = int(lab.max()) + 1
    sums = np.zeros((g, emb.shape[1]))
    np.add.at(sums, lab, emb.astype(np.float64))
    size = np.bincount(lab, minlength=g).astype(np.float64)
    alive = np.ones(g, bool)
    asked = np.zeros((g, g), bool)
    owner = _majority(lab, truth_codes, g)  # majority person per group; kept up to date on merges
    counts = np.zeros((g, int(truth_codes.max()) + 1), np.int64)
    np.add.at(counts, (lab, truth_codes), 1)
    out: dict[int, tuple] = {}
    needed = None

    def score() -> tuple:
        p, r, f = bcubed(lab, truth_codes)
        return p, r, f, corrections(lab, truth_codes).per_100_faces

    for n_ans in range(max_answers + 1):
        if n_ans in CHECKPOINTS or needed is None:
            s = score()
            if n_ans in CHECKPOINTS:
                out[n_ans] = s
            if needed is None and s[2] >= target_f1:
                needed = n_ans
        if n_ans == max_answers or (needed is not None and n_ans >= CHECKPOINTS[-1]):
            break
        idx = np.flatnonzero(alive)
        if len(idx) < 2:
            for c in CHECKPOINTS:
                out.setdefault(c, score())
            break
        d = 2.0 - 2.0 * (sums[idx] @ sums[idx].T) / np.outer(size[idx], size[idx])
        bad = asked[np.ix_(idx, idx)] | np.eye(len(idx), dtype=bool)
        if policy == "closest":
            key = np.where(bad, np.inf, d)
            flat = int(np.argmin(key))
            if not np.isfinite(key.flat[flat]):
                break
        else:
            m = np.minimum.outer(size[idx], size[idx])
            key = np.where(bad, -np.inf, m / (1.0 + np.exp(-(VERIFY_T - d) / 0.1)))
            flat = int(np.argmax(key))
            if not np.isfinite(key.flat[flat]):
                break
        a, b = idx[flat // len(idx)], idx[flat % len(idx)]
        if owner[a] == owner[b]:  # yes: merge b into a
            lab[lab == b] = a
            sums[a] += sums[b]
            size[a] += size[b]
            counts[a] += counts[b]
            owner[a] = int(counts[a].argmax())
            alive[b] = False
            asked[a] |= asked[b]
            asked[:, a] |= asked[:, b]
        else:
            asked[a, b] = asked[b, a] = True
    for c in CHECKPOINTS:
        out.setdefault(c, score())
    return out, needed


def main(argv: list[str] | None = None) -> int:
    from engine.grouping.cluster import cluster_faces

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--thresholds", default="1.05,1.15", help="grouping thresholds (old and new default)")
    ap.add_argument("--max-answers", type=int, default=300)
    args = ap.parse_args(argv)
    libs = libraries(load_cache(args.cache))
    kinds = ("lag", "lfw-phone", "mixed")
    print("| threshold | policy | set | " + " | ".join(f"after {c}" for c in CHECKPOINTS)
          + " | answers to F1 0.98 (median; reached) |")
    print("|---:|---|---|" + "---|" * len(CHECKPOINTS) + "---|")
    for t in (float(x) for x in args.thresholds.split(",")):
        labels = [cluster_faces(lib.emb, t) for lib in libs]
        for policy in ("closest", "gain"):
            res = [simulate(lib.emb, lib.truth, lab, policy, args.max_answers) for lib, lab in
                   zip(libs, labels, strict=True)]
            for kind in (*kinds, "all"):
                sel = [r for lib, r in zip(libs, res, strict=True) if kind in ("all", lib.kind)]
                cells = []
                for c in CHECKPOINTS:
                    v = np.mean([r[0][c] for r in sel], axis=0)
                    cells.append(f"{v[0]:.3f} / {v[1]:.3f} / {v[2]:.3f}, {v[3]:.1f}")
                need = [r[1] if r[1] is not None else np.inf for r in sel]
                med = np.median(need)
                reached = sum(np.isfinite(need))
                med_s = f"{med:.0f}" if np.isfinite(med) else f">{args.max_answers}"
                print(f"| {t:.2f} | {policy} | {kind} | " + " | ".join(cells)
                      + f" | {med_s}; {reached}/{len(sel)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
