"""Learning from corrections where SFace fails: a cross-age fine-tune on lag-dev, cross-validated.

lag-dev plays "a family that confirmed which child photos are which adult". Its identities are split
into the 10 folds of ``evals.lag``; for each fold, a linear adapter on the frozen model's unit embeddings
(D -> D, initialised at the identity, so step 0 is the untouched model) is trained with the triplet loss
(hard negatives, P x K batches of the other nine folds' identities, young and adult faces mixed) and
scores the held-out fold's pairs (positives every young x adult pair of one identity, negatives the
fold-matched random pairs of evals.lag). Accuracy uses the standard protocol over the ten held-out folds
(threshold chosen on the other nine); TAR@FAR=1e-3 uses every impostor young x adult pair inside each
held-out fold, pooled. The gain is the per-fold accuracy difference against the untouched model on the
same pairs, with its standard error over the ten folds.

    python bench/lag_finetune.py --cache CACHE --model arcface   # CACHE/lag-arcface from `eval lag`

The adapter is ``training.adapter.train_adapter``, the one "Learn from my corrections" trains.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from benchlib import SHARED_DATA  # noqa: E402

from training.adapter import train_adapter  # noqa: E402  (the app's learning job trains the same adapter)

LAG = SHARED_DATA / "lag-dev"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lag", type=Path, default=LAG)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--model", default="arcface", help="the cache folder lag-<model>")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    from evals.lag import identity_folds, lag_pairs, read_labels, tar_at_far
    from evals.lfw import LfwEmbeddings
    from evals.protocol import evaluate_distances

    t0 = time.perf_counter()
    faces = read_labels(args.lag)
    emb = LfwEmbeddings.load(args.cache / f"lag-{args.model}" / "lag_embeddings.npz").emb.astype(np.float32)
    pairs = lag_pairs(faces)
    fold_of = identity_folds([f.identity for f in faces])
    ident = np.array([f.identity for f in faces])
    age = np.array([f.age for f in faces])
    face_fold = np.array([fold_of[i] for i in ident])
    _, labels = np.unique(ident, return_inverse=True)
    d0 = ((emb[pairs.a] - emb[pairs.b]) ** 2).sum(1)
    d1 = np.full(len(d0), np.nan)
    imp0, imp1, pos0, pos1 = [], [], [], []
    for f in range(10):
        tr = np.flatnonzero(face_fold != f)
        w, b = train_adapter(emb[tr], labels[tr], steps=args.steps, lr=args.lr, seed=f)
        e = emb @ w.T + b
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        sel = pairs.fold == f
        d1[sel] = ((e[pairs.a[sel]] - e[pairs.b[sel]]) ** 2).sum(1)
        young = np.flatnonzero((face_fold == f) & (age == "young"))
        adult = np.flatnonzero((face_fold == f) & (age == "adult"))
        other = ident[young][:, None] != ident[adult][None, :]
        for src, imp, pos in ((emb, imp0, pos0), (e, imp1, pos1)):
            dd = np.maximum(0, 2 - 2 * src[young] @ src[adult].T)
            imp.append(dd[other])
            pos.append(dd[~other])
        print(f"fold {f + 1}: trained on {len(tr)} faces", flush=True)
    ev0 = evaluate_distances(d0, pairs.same, pairs.fold)
    ev1 = evaluate_distances(d1, pairs.same, pairs.fold)
    gain = ev1.accuracy - ev0.accuracy
    tar0 = tar_at_far(np.concatenate(pos0), np.concatenate(imp0))[0]
    tar1 = tar_at_far(np.concatenate(pos1), np.concatenate(imp1))[0]
    res = {
        "model": args.model, "steps": args.steps, "lr": args.lr,
        "untouched": {"accuracy": ev0.accuracy_mean, "std": ev0.accuracy_std, "auc": ev0.auc,
                      "tar_at_far_within_fold": tar0},
        "fine_tuned": {"accuracy": ev1.accuracy_mean, "std": ev1.accuracy_std, "auc": ev1.auc,
                       "tar_at_far_within_fold": tar1},
        "gain_points": 100 * float(gain.mean()), "gain_stderr_points": 100 * float(gain.std(ddof=1) / np.sqrt(10)),
        "gain_per_fold_points": [round(100 * float(g), 3) for g in gain],
        "impostor_pairs_within_folds": int(sum(len(i) for i in imp0)),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(res, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"lag_finetune_{args.model}.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
