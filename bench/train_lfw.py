"""Short CPU training experiments on LFW (numbers in docs/training.md).

Train on the identities of LFW people.txt folds 1-9 (those with >= 2 images, at most ``--cap``
images each), test on fold 10: its 600 pairs.txt pairs (threshold chosen by 10-fold CV over those
pairs) and every same/different pair among fold-10 images (at most 10 per identity), with folds by
identity. Parts:

* ``sface``: the bundled SFace untouched vs. fine-tuned (its last conv block + head; the frozen
  prefix's features are computed once and cached), with AdaGrad lr 0.05 (the paper's setting) and
  AdamW lr 1e-5; the AdamW model is exported to ONNX and checked against torch.
* ``tiny``: tiny-cnn trained from scratch (AdaGrad lr 0.05 unless ``--tiny-optimizer``/``--tiny-lr``;
  semi-hard triplets, flips).
* ``harmonic``: tiny-cnn trained with the harmonic triplet loss against SFace's embeddings
  (v1 = SFace, v2 = tiny-cnn), and its cross-model accuracy (v1 embedding of one image vs v2 of the
  other) compared with the plain tiny-cnn's.

    nice python bench/train_lfw.py --parts sface,tiny,harmonic --out results/train
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from pathlib import Path

import benchlib  # noqa: E402, F401  (the repository on sys.path)
import numpy as np
import torch

from training.data import DEFAULT_CACHE, SHARED_DATA, load_lfw_fold, load_lfw_folds, read_pairs  # noqa: E402
from training.evaluate import embed_torch, evaluate_pairs, identity_fold_pairs, lfw_pairs  # noqa: E402
from training.export import export_and_check  # noqa: E402
from training.losses import normalise  # noqa: E402
from training.models import load_sface  # noqa: E402
from training.train import TrainConfig, precompute, split_model, train  # noqa: E402

FT_STAGES = 2  # conv_14 + head


def cached_features(prefix, crops, keys, tag: str) -> torch.Tensor:
    h = hashlib.sha256(("\n".join(keys) + f"|cut={prefix.cut}").encode()).hexdigest()[:12]
    path = DEFAULT_CACHE / f"sface-prefix-{tag}-{h}.npy"
    if path.is_file():
        return torch.from_numpy(np.load(path))
    t = time.perf_counter()
    f = precompute(prefix, crops, torch.device("cpu"), progress=False)
    print(f"  computed {tag} features {tuple(f.shape)} in {time.perf_counter() - t:.0f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, f.numpy())
    return f


@torch.inference_mode()
def suffix_embed(suffix, feats: torch.Tensor, batch: int = 256) -> np.ndarray:
    suffix.eval()
    out = [normalise(suffix(feats[i : i + batch].float())).numpy() for i in range(0, len(feats), batch)]
    return np.concatenate(out)


def summarise(hist) -> dict:
    def mean(key, part):
        return round(float(np.mean([getattr(h, key) for h in part])), 4)

    first, last = hist[: max(1, len(hist) // 10)], hist[-max(1, len(hist) // 10) :]
    return {
        k: [mean(k, first), mean(k, last)]
        for k in ("loss", "frac_active", "frac_semi_hard", "emb_norm", "spread")
    } | {"seconds_per_step": mean("seconds", hist)}


def printer(every: int):
    def cb(h, _model):
        if h.step % every == 0:
            stats = f"active {h.frac_active:.2f} semi {h.frac_semi_hard:.2f} norm {h.emb_norm:.2f}"
            print(
                f"    step {h.step:4d} loss {h.loss:.4f} {stats} spread {h.spread:.3f} ({h.seconds:.1f} s)",
                flush=True,
            )

    return cb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, default=SHARED_DATA / "lfw")
    ap.add_argument("--out", type=Path, default=Path("results/train"))
    ap.add_argument("--parts", default="sface,tiny,harmonic")
    ap.add_argument("--cap", type=int, default=10)
    ap.add_argument("--ft-steps", type=int, default=200)
    ap.add_argument("--tiny-steps", type=int, default=300)
    ap.add_argument("--tiny-optimizer", default="adagrad")
    ap.add_argument("--tiny-lr", type=float, default=0.05)
    ap.add_argument("--p", type=int, default=32)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": {}}

    t0 = time.perf_counter()
    tr = load_lfw_folds(args.lfw, range(1, 10), progress=False).with_min_images(2).capped(args.cap)
    te = load_lfw_fold(args.lfw, 10)
    pairs = lfw_pairs(te.keys, [p for p in read_pairs(args.lfw) if p.fold == 9])
    tc = te.capped(10)
    tc_idx = np.array([te.keys.index(k) for k in tc.keys])
    idpairs = identity_fold_pairs(tc.labels)
    print(
        f"train: {len(tr)} crops, {len(np.unique(tr.labels))} identities (fallback crops {tr.fallbacks}); "
        f"test: {len(te)} crops, {len(np.unique(te.labels))} identities, {len(pairs.i1)} pairs.txt pairs, "
        f"{len(idpairs.i1)} identity-fold pairs ({int(idpairs.same.sum())} same); "
        f"data {time.perf_counter() - t0:.0f} s",
        flush=True,
    )

    def report(name: str, emb: np.ndarray, emb2: np.ndarray | None = None, extra: dict | None = None):
        r1 = evaluate_pairs(emb, pairs, emb2)
        r2 = evaluate_pairs(emb[tc_idx], idpairs, None if emb2 is None else emb2[tc_idx])
        print(
            f"  {name:38s} pairs.txt fold 10: {r1.line()}\n  {'':38s} identity pairs:    {r2.line()}",
            flush=True,
        )
        row = {"pairs_fold10": dataclasses.asdict(r1) | {"evaluation": None}}
        row["identity_pairs"] = dataclasses.asdict(r2) | {"evaluation": None}
        results["runs"][name] = row | (extra or {})
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))

    sface = load_sface()
    prefix, suffix, _ = split_model(sface, FT_STAGES)
    f_tr = cached_features(prefix, tr.crops, tr.keys, "train")
    f_te = cached_features(prefix, te.crops, te.keys, "test")
    v1_te = suffix_embed(suffix, f_te)
    v1_tr = suffix_embed(suffix, f_tr)
    report("sface untouched", v1_te)

    if "sface" in parts:
        for opt, lr in (("adagrad", 0.05), ("adamw", 1e-5)):
            cfg = TrainConfig(
                model="sface",
                optimizer=opt,
                lr=lr,
                train_last=FT_STAGES,
                steps=args.ft_steps,
                p=args.p,
                k=args.k,
                progress=False,
                log_every=25,
            )
            print(f"fine-tune: {cfg}", flush=True)
            r = train(
                cfg, tr.crops, tr.labels, model=load_sface(), frozen_features=f_tr, callback=printer(25)
            )
            emb = suffix_embed(split_model(r.model, FT_STAGES)[1], f_te)
            report(
                f"sface fine-tuned {opt} lr {lr:g}",
                emb,
                extra={"train": summarise(r.history), "config": dataclasses.asdict(cfg)},
            )
            if opt == "adamw":
                ex = export_and_check(r.model, args.out / "sface-ft.onnx", te.crops[:64])
                print(
                    f"  exported {ex.path.name}: max|diff| {ex.max_abs_diff:.2e}, sha256 {ex.sha256}",
                    flush=True,
                )
                results["export"] = {
                    "file": ex.path.name,
                    "max_abs_diff": ex.max_abs_diff,
                    "sha256": ex.sha256,
                }

    for part, harmonic in (("tiny", False), ("harmonic", True)):
        if part not in parts:
            continue
        cfg = TrainConfig(
            model="tiny-cnn",
            pretrained=False,
            optimizer=args.tiny_optimizer,
            lr=args.tiny_lr,
            steps=args.tiny_steps,
            p=args.p,
            k=args.k,
            harmonic=harmonic,
            progress=False,
            log_every=25,
        )
        print(f"{part}: {cfg}", flush=True)
        r = train(cfg, tr.crops, tr.labels, old_embeddings=v1_tr if harmonic else None, callback=printer(25))
        v2_te = embed_torch(r.model, te.crops)
        name = "tiny-cnn harmonic (v2) " if harmonic else "tiny-cnn "
        extra = {"train": summarise(r.history), "config": dataclasses.asdict(cfg)}
        report(name + "alone", v2_te, extra=extra)
        report(name + "x sface (v1 vs v2)", v1_te, v2_te)
        torch.save(r.model.state_dict(), args.out / f"{part}.pt")
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
