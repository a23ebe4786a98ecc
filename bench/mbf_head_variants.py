"""Non-linear 128-D heads for arcface-mbf-h128, trained on cached trunk features, scored on held-out folds.

Issue 11 follow-up to bench/harmonic_mbf_head.py (whose best linear head reaches 99.32 % on LFW). Every
variant is trained ten times; run k leaves out the people of LFW ``pairs.txt`` set k *and* the lag-dev
identities of ``evals.lag`` fold k, and scores exactly those: LFW set k's pairs (v2-v2 and v1 x v2,
v1 = SFace) and lag-dev fold k's young x adult pairs. No face a head was trained on is ever scored.

Heads (input: the cached features of bench/mbf_head_cache.py):

* ``mlp``: the trunk's 512-D unit output -> linear path (started at the least-squares map onto SFace's
  embeddings) + a residual branch 512 -> 512 -> ReLU -> 128 (started at zero) -> L2 normalisation.
* ``fc``: the trunk's last layer trained too: the 64 x 7 x 7 map before its ``fc`` -> ``fc`` (started at
  the pack's weights, BatchNorm folded in) -> L2 normalisation -> the ``mlp`` head.

Loss per step, on P x K identities (LFW, plus lag-dev identities with young and adult faces where
``lag`` is on):
harmonic triplet loss against SFace (hard negatives, margin 0.2) + ``rd`` x relational distillation: the
squared difference between the head's cosine similarities and the trunk's own (clean, original-view 512-D)
similarities, over the batch plus 256 random faces (all pairs), with pairs the trunk finds hard (same
person below 0.5, different people above 0.2) weighted 4x. With ``aug`` each face in a step is one of its
cached views at random (original, mirrored, phone-degraded), with the original's SFace embedding and
the original's trunk similarities as the targets, so a degraded face is pulled to where its clean one is.

    python bench/mbf_head_cache.py --cache CACHE
    python bench/mbf_head_variants.py --cache CACHE --out CACHE/variants --variants mlp,mlp+aug,mlp+aug+lag
    python bench/mbf_head_variants.py --cache CACHE --out CACHE/variants --variants fc+aug+lag \
        --export CACHE/arcface-mbf-h128.onnx

lag-dev TAR@FAR=1e-3 here is held out too: positives are the held-out fold's young x adult pairs, impostors
every young x adult pair of two identities of that fold, pooled over the ten folds (85,000 impostors, not
the 852,259 of ``facenet-photos eval lag``, which mixes folds); the raw models are scored the same way.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import benchlib  # noqa: F401  (puts the repository on sys.path)
import numpy as np
from benchlib import LFW, SHARED_DATA

LAG = SHARED_DATA / "lag-dev"


@dataclass(frozen=True)
class Variant:
    head: str = "mlp"  # mlp | fc | linear
    aug: bool = False
    lag: bool = False
    rd: float = 1.0  # weight of the relational distillation term
    harmonic: bool = True

    @staticmethod
    def parse(text: str) -> Variant:
        parts = text.split("+")
        rd = next((float(p[2:]) for p in parts if p.startswith("rd")), 1.0)
        return Variant(head=parts[0], aug="aug" in parts, lag="lag" in parts, rd=rd, harmonic="plain" not in parts)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fc_weights():
    """The pack's ``fc`` (3136 -> 512) with the BatchNorm after it folded in: (W, b)."""
    from engine.models.packs import ARCFACE_MBF, pack_path
    from engine.models.registry import arcface_graph
    from training.pack_head import folded_last_layer

    return folded_last_layer(arcface_graph(Path(pack_path(ARCFACE_MBF)).read_bytes()))


def ridge(x, y, lam=1e-2):
    xa = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    sol = np.linalg.solve(xa.T @ xa + lam * np.eye(xa.shape[1]), xa.T @ y.astype(np.float64))
    return sol[:-1].T.astype(np.float32), sol[-1].astype(np.float32)


def make_head(v: Variant, x_unit_train, v1_train, fc=None):
    import torch

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = None
            if v.head == "fc":
                self.fc = torch.nn.Linear(3136, 512)
                with torch.no_grad():
                    self.fc.weight.copy_(torch.from_numpy(fc[0]))
                    self.fc.bias.copy_(torch.from_numpy(fc[1]))
            self.lin = torch.nn.Linear(512, 128)
            w, b = ridge(x_unit_train, v1_train)
            with torch.no_grad():
                self.lin.weight.copy_(torch.from_numpy(w))
                self.lin.bias.copy_(torch.from_numpy(b))
            self.hidden = torch.nn.Linear(512, 512) if v.head != "linear" else None
            self.out = torch.nn.Linear(512, 128, bias=False) if v.head != "linear" else None
            if self.out is not None:
                torch.nn.init.zeros_(self.out.weight)

        def trunk(self, feat):
            """Unit 512-D trunk output (feat is the 512-D output, or the 3136 map for ``fc``)."""
            return torch.nn.functional.normalize(self.fc(feat) if self.fc is not None else feat, dim=1)

        def forward(self, feat):
            u = self.trunk(feat)
            y = self.lin(u)
            if self.hidden is not None:
                y = y + self.out(torch.relu(self.hidden(u)))
            return y

    return Head()


def train(v: Variant, feats, teacher, v1, labels, *, steps, lr, seed, p=32, k=4, extra=256):
    """feats: (N, views, F) inputs; teacher: (N, 512) unit clean trunk output; v1: (N, 128) SFace."""
    import torch

    from training.losses import HarmonicTripletLoss, TripletLoss
    from training.miners import HardMiner
    from training.samplers import PKSampler

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = make_head(v, teacher, v1, fc_weights() if v.head == "fc" else None)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = HarmonicTripletLoss(HardMiner(0.2), 0.2) if v.harmonic else TripletLoss(HardMiner(0.2), 0.2)
    ft, tt, ot, lt = (torch.from_numpy(a) for a in (feats, teacher, v1, labels))
    n_views = feats.shape[1] if v.aug else 1
    losses = []
    for batch in PKSampler(labels, p, k, steps, seed=seed):
        idx = np.asarray(batch)
        idx_all = np.concatenate([idx, rng.integers(0, len(labels), extra)])
        view = rng.integers(0, n_views, len(idx_all))
        x = ft[torch.from_numpy(idx_all), torch.from_numpy(view)].float()
        emb = head(x)
        nb = len(idx)
        li = torch.from_numpy(idx)
        out = loss_fn(emb[:nb], lt[li], ot[li]) if v.harmonic else loss_fn(emb[:nb], lt[li])
        loss = out.loss
        if v.rd > 0:
            e = torch.nn.functional.normalize(emb, dim=1)
            t = tt[torch.from_numpy(idx_all)]
            s_new, s_old = e @ e.T, t @ t.T
            la = lt[torch.from_numpy(idx_all)]
            same = la[:, None] == la[None, :]
            hard = (same & (s_old < 0.5)) | (~same & (s_old > 0.2))
            w = 1.0 + 3.0 * hard.float()
            w.fill_diagonal_(0.0)
            loss = loss + v.rd * (w * (s_new - s_old) ** 2).sum() / w.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    head.eval()
    return head, float(np.mean(losses[-50:]))


def embed(head, feats):
    import torch

    with torch.no_grad():
        y = head(torch.from_numpy(np.ascontiguousarray(feats)).float()).numpy()
    return unit(y).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lfw", type=Path, default=LFW)
    ap.add_argument("--lag", type=Path, default=LAG)
    ap.add_argument("--variants", default="mlp,mlp+aug,mlp+aug+lag,fc+aug+lag")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--folds", default="",
                    help="only these test folds, e.g. 1,3 (default all); 'none' only builds the --export head")
    ap.add_argument("--export", type=Path, help="train the last variant on everything and write it here as ONNX")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    from evals.lag import identity_folds, lag_pairs, read_labels, tar_at_far
    from evals.lfw import LfwEmbeddings, pair_arrays, parse_pairs
    from evals.protocol import evaluate_distances

    z = np.load(args.cache / "mbf-features.npz", allow_pickle=True)
    s1 = LfwEmbeddings.load(args.cache / "lfw-sface" / "lfw_embeddings.npz")
    l1 = LfwEmbeddings.load(args.cache / "lag-sface" / "lag_embeddings.npz")
    assert list(z["lfw_paths"]) == list(s1.paths) and list(z["lag_paths"]) == list(l1.paths)
    rel = list(s1.paths)
    n_lfw, n_lag = len(rel), len(l1.paths)
    # Both sets in one array: LFW rows first, then lag-dev's.
    raw = np.concatenate([z["lfw_emb"], z["lag_emb"]])  # (N, 3, 512)
    x512 = raw / np.linalg.norm(raw, axis=2, keepdims=True)
    fmap = np.concatenate([z["lfw_fmap"], z["lag_fmap"]])  # (N, 3, 3136) float16
    teacher = x512[:, 0].astype(np.float32)
    v1 = np.concatenate([s1.emb, l1.emb]).astype(np.float32)
    faces = read_labels(args.lag)
    assert [f.file for f in faces] == list(l1.paths)
    lfw_ident = [r.split("/")[0] for r in rel]
    _, labels = np.unique(lfw_ident + ["lag:" + f.identity for f in faces], return_inverse=True)
    labels = labels.astype(np.int64)
    pairs = parse_pairs(args.lfw / "pairs.txt")
    ia, ib, same, fold = pair_arrays(pairs, {r: i for i, r in enumerate(rel)})
    img_fold = np.full(n_lfw, -1)
    for a, b, f in zip(ia, ib, fold, strict=True):
        img_fold[a] = img_fold[b] = f
    lag_fold_of = identity_folds([f.identity for f in faces])
    lag_fold = np.array([lag_fold_of[f.identity] for f in faces])
    lp = lag_pairs(faces)
    age = np.array([f.age for f in faces])
    ident = np.array([f.identity for f in faces])
    row_fold = np.concatenate([img_fold, lag_fold])
    is_lag = np.arange(n_lfw + n_lag) >= n_lfw
    test_folds = ([] if args.folds == "none" else [int(f) - 1 for f in args.folds.split(",")] if args.folds
                  else list(range(10)))

    def lag_scores(emb_lag):
        """Held-out lag-dev scores: (pair distances of every fold, pooled within-fold impostors)."""
        d = ((emb_lag[lp.a] - emb_lag[lp.b]) ** 2).sum(1)
        return d

    def within_fold_imp(emb_lag, f):
        y = np.flatnonzero((lag_fold == f) & (age == "young"))
        a = np.flatnonzero((lag_fold == f) & (age == "adult"))
        d = ((emb_lag[y][:, None] - emb_lag[a][None]) ** 2).sum(2)
        return d[ident[y][:, None] != ident[a][None]]

    def summary(name, d_lfw, d_cross, d_lag, imp_lag):
        selp = np.isin(fold, test_folds)
        ev = evaluate_distances(d_lfw[selp], same[selp], fold[selp], far_target=1e-3)
        row = {"variant": name, "lfw_acc": ev.accuracy_mean, "lfw_std": ev.accuracy_std, "lfw_val": ev.val_mean}
        if d_cross is not None:
            ec = evaluate_distances(np.concatenate([d_cross[0][selp], d_cross[1][selp]]),
                                    np.concatenate([same[selp]] * 2), np.concatenate([fold[selp]] * 2),
                                    far_target=1e-3)
            row["cross_acc"] = ec.accuracy_mean
        sl = np.isin(lp.fold, test_folds)
        el = evaluate_distances(d_lag[sl], lp.same[sl], lp.fold[sl])
        tar = tar_at_far(d_lag[sl & lp.same], np.concatenate(imp_lag))[0]
        row.update({"lag_acc": el.accuracy_mean, "lag_std": el.accuracy_std, "lag_tar": tar})
        print(f"{name:>22}: LFW {100 * row['lfw_acc']:.2f} ± {100 * row['lfw_std']:.2f}  VAL@1e-3 "
              f"{100 * row['lfw_val']:.2f}  v1xv2 {100 * row.get('cross_acc', float('nan')):.2f}  lag acc "
              f"{100 * row['lag_acc']:.2f}  lag TAR {100 * row['lag_tar']:.2f}", flush=True)
        return row

    rows = []
    # The untouched models on the same held-out protocol.
    scored = (("v1 SFace", s1.emb, l1.emb), ("arcface-mbf 512-D", teacher[:n_lfw], teacher[n_lfw:]))
    for name, e_lfw, e_lag in scored if test_folds else ():
        rows.append(summary(name, ((e_lfw[ia] - e_lfw[ib]) ** 2).sum(1), None, lag_scores(e_lag),
                            [within_fold_imp(e_lag, f) for f in test_folds]))
    for text in args.variants.split(",") if test_folds else ():
        v = Variant.parse(text)
        feats = fmap if v.head == "fc" else x512
        d_lfw, c12, c21 = (np.full(len(same), np.nan) for _ in range(3))
        e_lag_all = np.zeros((n_lag, 128), np.float32)
        imps, t0, last = [], time.perf_counter(), []
        for f in test_folds:
            tr = (row_fold != f) & (~is_lag | v.lag)
            head, l50 = train(v, feats[tr], teacher[tr], v1[tr], labels[tr], steps=args.steps, lr=args.lr, seed=f)
            last.append(l50)
            sel = fold == f
            te = np.flatnonzero(img_fold == f)
            e2 = np.zeros((n_lfw, 128), np.float32)
            e2[te] = embed(head, feats[te, 0])
            d_lfw[sel] = ((e2[ia[sel]] - e2[ib[sel]]) ** 2).sum(1)
            c12[sel] = ((s1.emb[ia[sel]] - e2[ib[sel]]) ** 2).sum(1)
            c21[sel] = ((e2[ia[sel]] - s1.emb[ib[sel]]) ** 2).sum(1)
            lt_rows = np.flatnonzero(lag_fold == f)
            e_lag_all[lt_rows] = embed(head, feats[n_lfw + lt_rows, 0])
            imps.append(within_fold_imp(e_lag_all, f))
            print(f"  {text} fold {f + 1}: {time.perf_counter() - t0:.0f} s, last-50 loss {l50:.4f}", flush=True)
        row = summary(text, d_lfw, (c12, c21), lag_scores(e_lag_all), imps)
        row.update({"seconds": round(time.perf_counter() - t0, 1), "last50_loss": float(np.mean(last)),
                    "config": vars(v)})
        rows.append(row)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "variants.json").write_text(json.dumps({"what": __doc__.split("\n\n")[0], "steps": args.steps,
                                                            "lr": args.lr, "folds": test_folds, "rows": rows},
                                                           indent=1))
    if args.export:
        v = Variant.parse(args.variants.split(",")[-1])
        feats = fmap if v.head == "fc" else x512
        tr = ~is_lag | v.lag
        head, _ = train(v, feats[tr], teacher[tr], v1[tr], labels[tr], steps=args.steps, lr=args.lr, seed=0)
        from engine.models.packs import ARCFACE_MBF
        from training.pack_head import write_pack_head_model

        sd = {k: t.detach().numpy() for k, t in head.state_dict().items()}
        write_pack_head_model(ARCFACE_MBF, sd["lin.weight"], sd["lin.bias"], args.export,
                              hidden=(sd["hidden.weight"], sd["hidden.bias"], sd["out.weight"]) if "hidden.weight" in sd
                              else None,
                              fc=(sd["fc.weight"], sd["fc.bias"]) if "fc.weight" in sd else None)
        # The written file must give what the torch head gives on the same faces (cut again from the
        # eval's landmarks, as the cache was).
        from mbf_head_cache import views

        from engine.checksums import sha256_file
        from engine.config import EmbedConfig
        from engine.models.registry import ModelSpec
        from engine.pipeline.embed import Embedder

        lz = np.load(args.cache / "lfw-arcface" / "lfw_embeddings.npz", allow_pickle=True)
        rows16 = np.arange(0, n_lfw, n_lfw // 16)[:16]
        crops = np.stack([views(args.lfw / "images" / rel[i], lz["landmarks"][i], np.random.default_rng(0))[0]
                          for i in rows16])
        digest = sha256_file(args.export)
        spec = ModelSpec("arcface-mbf-h128", args.export.name, "embedder", digest, 128, 112)
        got = Embedder(EmbedConfig(threads=2), spec=spec, path=args.export).embed(crops)
        want = embed(head, feats[rows16, 0])
        gap = float(np.abs(got - want).max())
        print(f"wrote {args.export} (sha256 {digest[:12]}); ONNX vs torch head on 16 LFW faces: max |diff| {gap:.2e}")
        if gap > 1e-3:
            raise SystemExit("the exported head does not match the trained one")
    print(f"wrote {args.out / 'variants.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
