"""Harmonic embeddings (FaceNet §5): is a new model's embedding space compatible with the old one's?

v1 is the bundled SFace. v2 keeps SFace's convolutional trunk (frozen) and gets a *new head*
(BatchNorm, flatten, 50,176 -> 128 linear, BatchNorm) initialised at random, so v2's embedding space
is learned from nothing: without help it has no reason to line up with v1's. The head is trained on
the LFW identities of nine ``people.txt`` folds, either with the plain triplet loss or with the
harmonic triplet loss (new-model anchors, positives and negatives mined from new and old embeddings
of the batch), and tested on the ``pairs.txt`` pairs of the tenth fold, whose people it never saw:
v1-v1, v2-v2 and v1-v2 (one image embedded by v1, the other by v2, both orders).

With ``--folds 1-10`` every fold is held out once (ten trainings per loss), and the 6,000 pairs are
scored with the standard 10-fold protocol on distances that each came from a model that never saw
the pair's people.

    python bench/harmonic_upgrade.py --folds 10 --out results/harmonic
    python bench/harmonic_upgrade.py --folds 1-10 --out results/harmonic
    python bench/harmonic_upgrade.py --folds 1-10 --init v1 --lr 1e-3 --out results/harmonic-finetune

``--init v1`` starts v2's head from v1's instead (v2 is then a fine-tune of v1, the way the app makes
new models from a user's corrections) to see how far plain fine-tuning drifts from v1's space.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
from benchlib import LFW, REPO  # noqa: E402

DEFAULT_LFW = LFW


def trunk_features(model, crops: np.ndarray, cache: Path | None, batch: int = 64):
    """conv_14 outputs (N, 1024, 7, 7) float16 for every crop: the frozen trunk, run once."""
    import torch

    from training.train import precompute, split_model

    if cache is not None and cache.exists():
        feats = np.load(cache, mmap_mode="r")
        if len(feats) == len(crops):
            return torch.from_numpy(np.ascontiguousarray(feats))
    prefix, _, _ = split_model(model, 1)  # everything but the head
    feats = precompute(prefix, crops, torch.device("cpu"), batch=batch, progress=True)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, feats.numpy())
    return feats


def head_embed(model, feats, batch: int = 512) -> np.ndarray:
    import torch

    from training.losses import normalise

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(feats), batch):
            out.append(normalise(model.head(feats[i : i + batch].float())).numpy())
    return np.concatenate(out)


def fresh_head(v1, seed: int, dropout: float, init: str = "random"):
    """A copy of v1 whose head is re-initialised at random (``init="random"``; the trunk keeps v1's
    weights) or keeps v1's head (``init="v1"``: v2 is a fine-tune of v1). With ``dropout`` > 0 the
    head's dropout (SFace's own, before the linear layer) is on while training."""
    import torch

    torch.manual_seed(seed)
    v2 = copy.deepcopy(v1)
    if init == "random":
        for m in (v2.bn1, v2.fc, v2.fc_bn):
            m.reset_parameters()
        for m in (v2.bn1, v2.fc_bn):
            m.reset_running_stats()
    v2.dropout.p = dropout
    stages = v2.stages()
    # the train loop puts only the trainable stages' modules in train mode: include the dropout
    v2.stages = lambda: stages[:-1] + [("head", [v2.bn1, v2.dropout, v2.fc, v2.fc_bn])]
    return v2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--folds", default="10", help="test folds, e.g. 10 or 1-10")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--p", type=int, default=32)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--losses", default="plain,harmonic")
    ap.add_argument("--miner", default="hard", help="semihard | hard | random (hard: best on fold 10)")
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--dropout", type=float, default=0.0, help="head dropout while training (SFace: 0.4)")
    ap.add_argument("--init", choices=("random", "v1"), default="random",
                    help="v2's head: random (a new embedding space) or v1's (a fine-tune of v1)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--flip", action="store_true", help="train on mirrored crops too (their features cached)")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "harmonic")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "harmonic")
    args = ap.parse_args(argv)

    import torch

    from evals.protocol import evaluate_distances
    from training.data import load_lfw_fold, read_pairs
    from training.evaluate import lfw_pairs
    from training.models.sface_torch import load_sface
    from training.train import TrainConfig, _folds, train

    if args.threads:
        torch.set_num_threads(args.threads)
    test_folds = _folds(args.folds)
    losses = [s for s in args.losses.split(",") if s]
    args.out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()

    sets = [load_lfw_fold(args.lfw, f, progress=True) for f in range(1, 11)]
    fold_of = np.concatenate([np.full(len(s), i + 1) for i, s in enumerate(sets)])
    crops = np.concatenate([s.crops for s in sets])
    keys = [k for s in sets for k in s.keys]
    names = [s.names[lab] for s in sets for lab in s.labels]
    _, labels = np.unique(np.array(names), return_inverse=True)

    v1 = load_sface().eval()
    t0 = time.perf_counter()
    feats = trunk_features(v1, crops, args.cache / f"sface-conv14-{len(crops)}.npy")
    print(f"trunk features for {len(crops)} crops in {time.perf_counter() - t0:.0f} s")
    e1 = head_embed(v1, feats)
    if args.flip:
        feats_f = trunk_features(v1, np.ascontiguousarray(crops[:, :, ::-1]),
                                 args.cache / f"sface-conv14-{len(crops)}-mirrored.npy")
        e1_f = head_embed(v1, feats_f)

    pairs = lfw_pairs(keys, read_pairs(args.lfw))
    # pairs.txt set i holds the people of people.txt fold i (checked in docs/training.md).
    dist: dict[str, np.ndarray] = {}
    mask = np.isin(pairs.folds + 1, test_folds)
    dist["v1-v1"] = ((e1[pairs.i1] - e1[pairs.i2]) ** 2).sum(1)
    for name in losses:
        dist[f"{name} v2-v2"] = np.full(len(pairs.same), np.nan)
        dist[f"{name} v1-v2"] = np.full(len(pairs.same), np.nan)
        dist[f"{name} v2-v1"] = np.full(len(pairs.same), np.nan)
    runs = []
    for f in test_folds:
        train_idx = np.flatnonzero(fold_of != f)
        counts = np.bincount(labels[train_idx], minlength=labels.max() + 1)
        train_idx = train_idx[counts[labels[train_idx]] >= 2]
        sel = pairs.folds + 1 == f
        for name in losses:
            cfg = TrainConfig(
                model="sface", optimizer="adamw", lr=args.lr, weight_decay=args.weight_decay,
                p=args.p, k=args.k, steps=args.steps, train_last=1, harmonic=name == "harmonic",
                miner=args.miner, margin=args.margin,
                flip=False, seed=f, log_every=args.steps, progress=True,
            )
            v2 = fresh_head(v1, seed=f, dropout=args.dropout, init=args.init)
            tr_feats, tr_labels, tr_old = feats[train_idx], labels[train_idx], e1[train_idx]
            if args.flip:  # each crop and its mirror image, with v1's embedding of each
                tr_feats = torch.cat([tr_feats, feats_f[train_idx]])
                tr_labels = np.concatenate([tr_labels, tr_labels])
                tr_old = np.concatenate([tr_old, e1_f[train_idx]])
            res = train(cfg, np.zeros((len(tr_labels), 112, 112, 3), np.uint8), tr_labels, model=v2,
                        old_embeddings=tr_old if cfg.harmonic else None, frozen_features=tr_feats)
            e2 = head_embed(res.model, feats)
            dist[f"{name} v2-v2"][sel] = ((e2[pairs.i1[sel]] - e2[pairs.i2[sel]]) ** 2).sum(1)
            dist[f"{name} v1-v2"][sel] = ((e1[pairs.i1[sel]] - e2[pairs.i2[sel]]) ** 2).sum(1)
            dist[f"{name} v2-v1"][sel] = ((e2[pairs.i1[sel]] - e1[pairs.i2[sel]]) ** 2).sum(1)
            h = res.history
            runs.append({
                "test_fold": f, "loss": name, "train_crops": int(len(train_idx)),
                "train_identities": int(len(np.unique(labels[train_idx]))), "seconds": round(res.seconds, 1),
                "first": {"loss": h[0].loss, "active": h[0].frac_active, "semi_hard": h[0].frac_semi_hard,
                          "spread": h[0].spread},
                "last50": {k: float(np.mean([getattr(x, k) for x in h[-50:]]))
                           for k in ("loss", "frac_active", "frac_semi_hard", "emb_norm", "spread")},
                "curve": [[x.step, round(x.loss, 5), round(x.frac_active, 4), round(x.frac_semi_hard, 4),
                           round(x.spread, 4)] for x in h[:: max(1, len(h) // 100)]],
            })
            print(f"fold {f} {name}: {res.seconds:.0f} s, last-50 loss {runs[-1]['last50']['loss']:.4f}")

    def score(d: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
        from training.evaluate import stratified_folds

        if len(np.unique(folds)) < 2:
            folds = stratified_folds(same)
        ev = evaluate_distances(d, same, folds, far_target=1e-3)
        return {"accuracy": ev.accuracy_mean, "accuracy_std": ev.accuracy_std,
                "stderr": ev.accuracy_std / np.sqrt(len(np.unique(folds))),
                "accuracy_per_fold": [float(x) for x in ev.accuracy],
                "val": ev.val_mean, "val_std": ev.val_std, "auc": ev.auc, "threshold": ev.threshold_mean,
                "pairs": int(len(d))}

    same, folds = pairs.same[mask], pairs.folds[mask]
    table = {}
    for key, d in dist.items():
        if key.endswith("v2-v1"):
            continue
        if key.endswith("v1-v2"):
            # both directions: v1 of the first image against v2 of the second, and the reverse
            d2 = dist[key.replace("v1-v2", "v2-v1")]
            table[key] = score(np.concatenate([d[mask], d2[mask]]), np.concatenate([same, same]),
                               np.concatenate([folds, folds]))
        else:
            table[key] = score(d[mask], same, folds)
    base = table["v1-v1"]["accuracy"]
    for key, row in table.items():
        row["minus_v1_v1_points"] = round(100 * (row["accuracy"] - base), 3)
        print(f"{key:>16}: acc {100 * row['accuracy']:.2f} ± {100 * row['accuracy_std']:.2f}  "
              f"VAL@1e-3 {100 * row['val']:.2f}  AUC {row['auc']:.4f}  ({row['minus_v1_v1_points']:+.2f} pts)")
    result = {
        "what": f"v1 = SFace; v2 = SFace trunk (frozen) + head ({args.init} init) trained on the other 9 "
                "people.txt folds; pairs.txt pairs of the held-out fold(s)",
        "test_folds": test_folds, "config": {k: str(v) for k, v in vars(args).items()},
        "table": table, "runs": runs, "seconds": round(time.perf_counter() - t_all, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (args.out / "harmonic_result.json").write_text(json.dumps(result, indent=1))
    _plot(runs, table, args.out / "harmonic.png")
    print(f"wrote {args.out / 'harmonic_result.json'}")
    return 0


def _plot(runs: list[dict], table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for r in runs:
        c = np.array(r["curve"])
        style = "-" if r["loss"] == "harmonic" else "--"
        label = f"{r['loss']} (fold {r['test_fold']})"
        axes[0].plot(c[:, 0], c[:, 1], style, label=label, lw=1)
        axes[1].plot(c[:, 0], c[:, 2], style, label=f"active {label}", lw=1)
        axes[1].plot(c[:, 0], c[:, 3], ":", label=f"semi-hard {label}", lw=1)
        axes[2].plot(c[:, 0], c[:, 4], style, label=label, lw=1)
    axes[0].set(title="triplet loss", xlabel="step")
    axes[1].set(title="fraction of triplets", xlabel="step")
    axes[2].set(title="spread (mean pairwise sq. distance)", xlabel="step")
    if len(runs) <= 4:
        for a in axes:
            a.legend(fontsize=7)
    rows = ", ".join(f"{k} {100 * v['accuracy']:.2f}%" for k, v in table.items())
    fig.suptitle(f"{rows}  (solid: harmonic, dashed: plain; dotted: semi-hard fraction)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
