"""The paper's harmonic upgrade with a stronger trunk: v1 = SFace, v2 = arcface-mbf + a new 128-D head.

v2 is the arcface-mbf network (frozen; its 512-D unit embeddings, cached by ``facenet-photos eval lfw``
and ``eval lag``, are the "trunk features") followed by a new linear layer to 128-D, initialised at random
and trained with the harmonic triplet loss (``training.losses.HarmonicTripletLoss``, hard negatives, as
bench/harmonic_upgrade.py) against SFace's embeddings of the same crops. Both evals use the same
detection, face choice and alignment, so the crops are the same. As in FaceNet §5 and
bench/harmonic_upgrade.py, each ``pairs.txt`` set (the people of ``people.txt`` fold i) is held out in turn:
the head is trained on the images of the other nine sets' people and scores the held-out pairs, v1-v1,
v2-v2 and v1-v2 (both orders). Finally a head trained on all ten sets is scored on lag-dev (young vs
adult, evals.lag) and, with ``--export``, written as an ONNX model to register in a library.

    facenet-photos eval lfw --lfw LFW --model sface --out CACHE/lfw-sface
    facenet-photos eval lfw --lfw LFW --model arcface-mbf --out CACHE/lfw-arcface
    facenet-photos eval lag --lag LAG --model sface --out CACHE/lag-sface      (and arcface-mbf)
    python bench/harmonic_mbf_head.py --cache CACHE --out CACHE/h128 [--export CACHE/h128/arcface-mbf-h128.onnx]

Only the images of ``pairs.txt`` are embedded by ``eval lfw`` (7,701 of 13,232), so each head learns
from about 6,900 images, of which the identities with at least two images give the positives.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from benchlib import LFW, SHARED_DATA  # noqa: E402

LAG = SHARED_DATA / "lag-dev"


def _load(path: Path):
    from evals.lfw import LfwEmbeddings

    if not path.is_file():
        raise SystemExit(f"{path} not found: run the eval commands of this script's docstring first")
    return LfwEmbeddings.load(path)


def train_head(x: np.ndarray, old: np.ndarray, labels: np.ndarray, *, steps: int, lr: float, p: int, k: int,
               seed: int, harmonic: bool = True, margin: float = 0.2, out_dim: int = 128, init: str = "random"):
    """A linear head 512 -> out_dim on unit trunk embeddings; returns (weight, bias, last-50 mean loss).
    ``init="ridge"`` starts from the least-squares map of the trunk embeddings onto v1's (a closed-form
    distillation into v1's space), which the triplet steps then refine."""
    import torch

    from training.losses import HarmonicTripletLoss, TripletLoss
    from training.miners import HardMiner
    from training.samplers import PKSampler

    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], out_dim)
    if init == "ridge":
        xa = np.hstack([x, np.ones((len(x), 1), np.float32)]).astype(np.float64)
        sol = np.linalg.solve(xa.T @ xa + 1e-2 * np.eye(xa.shape[1]), xa.T @ old.astype(np.float64))
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(sol[:-1].T.astype(np.float32)))
            head.bias.copy_(torch.from_numpy(sol[-1].astype(np.float32)))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    loss_fn = HarmonicTripletLoss(HardMiner(margin), margin) if harmonic else TripletLoss(HardMiner(margin), margin)
    xt, ot, lt = torch.from_numpy(x), torch.from_numpy(old), torch.from_numpy(labels)
    losses = []
    for batch in PKSampler(labels, p, k, steps, seed=seed):
        idx = torch.as_tensor(batch)
        emb = head(xt[idx])
        out = loss_fn(emb, lt[idx], ot[idx]) if harmonic else loss_fn(emb, lt[idx])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    last = float(np.mean(losses[-50:])) if losses else float("nan")
    return head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy(), last


def apply_head(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    y = x @ w.T + b
    return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, default=LFW)
    ap.add_argument("--lag", type=Path, default=LAG)
    ap.add_argument("--cache", type=Path, required=True, help="folder with lfw-sface/, lfw-arcface/, lag-*/")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--p", type=int, default=32)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--plain", action="store_true", help="also train with the plain triplet loss")
    ap.add_argument("--pca-ceiling", action="store_true",
                    help="only score PCA projections of the trunk (the best a linear 128-D map can keep)")
    ap.add_argument("--init", choices=("random", "ridge"), default="random",
                    help="the head's start: random (a new space) or the least-squares map onto v1's embeddings")
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--export", type=Path, help="write the all-folds head as an ONNX model here")
    args = ap.parse_args(argv)

    from evals.lag import evaluate_lag, read_labels
    from evals.lfw import pair_arrays, parse_pairs
    from evals.protocol import evaluate_distances

    t_all = time.perf_counter()
    s1 = _load(args.cache / "lfw-sface" / "lfw_embeddings.npz")
    s2 = _load(args.cache / "lfw-arcface" / "lfw_embeddings.npz")
    assert s1.paths == s2.paths, "the two LFW caches hold different images"
    e1, x = s1.emb.astype(np.float32), s2.emb.astype(np.float32)
    rel = s1.paths
    ident = np.array([r.split("/")[0] for r in rel])
    _, labels = np.unique(ident, return_inverse=True)
    pairs = parse_pairs(args.lfw / "pairs.txt")
    ia, ib, same, fold = pair_arrays(pairs, {r: i for i, r in enumerate(rel)})
    # The fold of each image: the pairs.txt set its person appears in (people.txt folds are disjoint).
    img_fold = np.full(len(rel), -1)
    for a, b, f in zip(ia, ib, fold, strict=True):
        img_fold[a] = img_fold[b] = f
    if args.pca_ceiling:
        # How good can any linear 128-D map of the trunk's output be, with no pull toward v1? PCA fitted on
        # the other nine sets (centred, and uncentred as the head sees unit vectors), scored as below.
        for centred in (True, False):
            for dim in (128, 256, 512):
                dd = np.full(len(same), np.nan)
                for f in np.unique(fold):
                    tr = img_fold != f
                    mu = x[tr].mean(0) if centred else 0.0
                    vt = np.linalg.svd((x[tr] - mu).astype(np.float64), full_matrices=False)[2]
                    e = (x - mu) @ vt[:dim].T
                    e /= np.linalg.norm(e, axis=1, keepdims=True)
                    sel = fold == f
                    dd[sel] = ((e[ia[sel]] - e[ib[sel]]) ** 2).sum(1)
                ev = evaluate_distances(dd, same, fold, far_target=1e-3)
                print(f"PCA {dim} {'centred' if centred else 'uncentred'}: acc {100 * ev.accuracy_mean:.2f} ± "
                      f"{100 * ev.accuracy_std:.2f}  VAL@1e-3 {100 * ev.val_mean:.2f}  AUC {ev.auc:.4f}", flush=True)
        return 0
    losses = ["harmonic"] + (["plain"] if args.plain else [])
    dist = {"v1-v1": ((e1[ia] - e1[ib]) ** 2).sum(1), "mbf512-mbf512": ((x[ia] - x[ib]) ** 2).sum(1)}
    for name in losses:
        for key in ("v2-v2", "v1-v2", "v2-v1"):
            dist[f"{name} {key}"] = np.full(len(same), np.nan)
    runs = []
    for f in np.unique(fold):
        tr = np.flatnonzero(img_fold != f)
        sel = fold == f
        for name in losses:
            t0 = time.perf_counter()
            w, b, last = train_head(x[tr], e1[tr], labels[tr], steps=args.steps, lr=args.lr, p=args.p, k=args.k,
                                    seed=int(f), harmonic=name == "harmonic", init=args.init, margin=args.margin)
            e2 = apply_head(x, w, b)
            dist[f"{name} v2-v2"][sel] = ((e2[ia[sel]] - e2[ib[sel]]) ** 2).sum(1)
            dist[f"{name} v1-v2"][sel] = ((e1[ia[sel]] - e2[ib[sel]]) ** 2).sum(1)
            dist[f"{name} v2-v1"][sel] = ((e2[ia[sel]] - e1[ib[sel]]) ** 2).sum(1)
            runs.append({"test_fold": int(f) + 1, "loss": name, "train_images": int(len(tr)),
                         "seconds": round(time.perf_counter() - t0, 1), "last50_loss": round(last, 5)})
            print(f"fold {int(f) + 1} {name}: {runs[-1]['seconds']} s, last-50 loss {last:.4f}", flush=True)

    def score(d, s, fo):
        ev = evaluate_distances(d, s, fo, far_target=1e-3)
        return {"accuracy": ev.accuracy_mean, "accuracy_std": ev.accuracy_std,
                "stderr": ev.accuracy_std / np.sqrt(len(np.unique(fo))), "val": ev.val_mean, "auc": ev.auc,
                "threshold": ev.threshold_mean, "pairs": int(len(d))}

    table = {}
    for key, d in dist.items():
        if key.endswith("v2-v1"):
            continue
        if key.endswith("v1-v2"):
            d2 = dist[key.replace("v1-v2", "v2-v1")]
            table[key] = score(np.concatenate([d, d2]), np.concatenate([same, same]), np.concatenate([fold, fold]))
        else:
            table[key] = score(d, same, fold)
    base = table["v1-v1"]["accuracy"]
    for key, row in table.items():
        row["minus_v1_v1_points"] = round(100 * (row["accuracy"] - base), 3)
        print(f"{key:>18}: acc {100 * row['accuracy']:.2f} ± {100 * row['accuracy_std']:.2f}  VAL@1e-3 "
              f"{100 * row['val']:.2f}  AUC {row['auc']:.4f}  ({row['minus_v1_v1_points']:+.2f} pts)")

    # One head on all ten sets, then lag-dev (no LFW person is scored there).
    w, b, _ = train_head(x, e1, labels, steps=args.steps, lr=args.lr, p=args.p, k=args.k, seed=0, init=args.init,
                         margin=args.margin)
    lag = {}
    lag_s, lag_a = args.cache / "lag-sface" / "lag_embeddings.npz", args.cache / "lag-arcface" / "lag_embeddings.npz"
    if lag_s.is_file() and lag_a.is_file():
        faces = read_labels(args.lag)
        l1, l2 = _load(lag_s).emb.astype(np.float32), apply_head(_load(lag_a).emb.astype(np.float32), w, b)
        for key, emb in (("v1", l1), ("v2", l2)):
            r = evaluate_lag(emb, faces)
            lag[key] = {k: r[k] for k in ("accuracy_mean", "accuracy_std", "tar_at_far", "auc", "threshold_mean")}
            print(f"lag-dev {key}: accuracy {100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} %, "
                  f"TAR@FAR=1e-3 {100 * r['tar_at_far']:.2f} %")
    if args.export:
        from engine.models.packs import ARCFACE_MBF
        from training.pack_head import write_pack_head_model

        write_pack_head_model(ARCFACE_MBF, w, b, args.export)
        print(f"wrote {args.export}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"what": __doc__.split("\n\n")[0], "config": {k: str(v) for k, v in vars(args).items()},
              "table": table, "lag_dev": lag, "runs": runs, "seconds": round(time.perf_counter() - t_all, 1)}
    (args.out / "harmonic_mbf_result.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out / 'harmonic_mbf_result.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
