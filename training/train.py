"""Triplet training loop (FaceNet §3): P x K batches, online mining, triplet or harmonic loss.

Defaults follow the paper: AdaGrad with learning rate 0.05, margin 0.2, semi-hard negatives;
AdamW is selectable. Runs on CUDA when available, else the CPU. Each step logs the loss, the
fraction of triplets that are active (non-zero hinge) and semi-hard, the mean norm of the raw
embeddings before normalisation, and their spread (mean pairwise squared L2 distance of the unit
embeddings in the batch: 2 means orthogonal on average, 0 collapsed).

``train_last=n`` trains only the last ``n`` stages (``model.stages()``; the head counts as one),
freezing the rest with their BatchNorm statistics. With ``cache_frozen`` the frozen prefix is run
once per image and its output cached in float16, which makes fine-tuning the head of SFace on a
CPU affordable, at the cost of flip augmentation (the cache holds unflipped crops only).

``negatives`` are statements "crop i is not identity L" (the user's "not this person"). Each step adds
up to ``negatives_per_step`` forced triplets to the mined ones: anchor and positive two random crops of
L, negative crop i, all three embedded by the model being trained in the same forward pass as the batch
(appended to it), with the same margin; their mean hinge, times ``negative_weight``, is added to the
loss. Crops labelled < 0 belong to no identity: they are never sampled, only used as such negatives.

Command line (writes a checkpoint; see docs/training.md)::

    python -m training.train --model sface --lfw-folds 1-9 --steps 300 --train-last 2 \\
        --optimizer adamw --lr 1e-4 --out results/sface-ft.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .losses import MARGIN, HarmonicTripletLoss, TripletLoss, normalise
from .miners import make_miner
from .registry import create
from .samplers import PKSampler


@dataclass(frozen=True)
class TrainConfig:
    model: str = "sface"
    pretrained: bool = True
    optimizer: str = "adagrad"  # "adagrad" (paper) | "adamw"
    lr: float = 0.05
    weight_decay: float = 0.0
    margin: float = MARGIN
    miner: str = "semihard"  # "semihard" | "hard" | "random"
    p: int = 16  # identities per batch
    k: int = 4  # images per identity
    steps: int = 200
    train_last: int | None = None  # None: every stage
    cache_frozen: bool = True
    flip: bool = True  # random horizontal flips (not with cached features)
    harmonic: bool = False  # needs old_embeddings
    grad_clip: float | None = None
    negatives_per_step: int = 8  # forced "not this person" triplets per step (all when fewer)
    negative_weight: float = 1.0  # weight of their mean hinge in the loss
    seed: int = 0
    device: str = "auto"
    log_every: int = 10
    progress: bool = True


@dataclass(frozen=True)
class StepLog:
    step: int
    loss: float
    frac_active: float
    frac_semi_hard: float
    triplets: int
    emb_norm: float
    spread: float
    seconds: float
    forced_triplets: int = 0  # "not this person" triplets added this step
    forced_hinge: float = 0.0  # their mean hinge
    forced_active: float = 0.0  # the fraction of them with a non-zero hinge


@dataclass
class TrainResult:
    model: nn.Module
    config: TrainConfig
    history: list[StepLog] = field(default_factory=list)
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ---------------------------------------------------------------------------------------------
# Freezing and splitting


class _Prefix(nn.Module):
    def __init__(self, model: nn.Module, cut: int):
        super().__init__()
        self.model, self.cut = model, cut

    def forward(self, x):
        x = self.model.preprocess(x)
        for layer in list(self.model.body)[: self.cut]:
            x = layer(x)
        return x


class _Suffix(nn.Module):
    def __init__(self, model: nn.Module, cut: int):
        super().__init__()
        self.model, self.cut = model, cut

    def forward(self, x):
        for layer in list(self.model.body)[self.cut :]:
            x = layer(x)
        return self.model.head(x)


def split_model(model: nn.Module, train_last: int) -> tuple[nn.Module, nn.Module, list[nn.Module]]:
    """(frozen prefix, trainable suffix, trainable modules) for training the last ``train_last``
    stages. ``suffix(prefix(x)) == model(x)``."""
    stages = model.stages()
    if not 1 <= train_last <= len(stages):
        raise ValueError(f"train_last must be in 1..{len(stages)}")
    body = list(model.body)
    tail = stages[len(stages) - train_last :]
    n_body = sum(len(mods) for name, mods in tail if name != "head")
    cut = len(body) - n_body
    trainable = [m for _, mods in tail for m in mods]
    return _Prefix(model, cut), _Suffix(model, cut), trainable


def freeze(model: nn.Module, trainable: list[nn.Module]) -> list[nn.Parameter]:
    """requires_grad only for ``trainable``'s parameters (and the model's own non-module ones)."""
    keep = {id(p) for m in trainable for p in m.parameters()}
    params = []
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
        if id(p) in keep:
            params.append(p)
    return params


def set_train_mode(model: nn.Module, trainable: list[nn.Module] | None) -> None:
    """Train mode for the trainable modules, eval (fixed BN statistics) for the frozen ones."""
    if trainable is None:
        model.train()
        return
    model.eval()
    for m in trainable:
        m.train()


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r} (adagrad | adamw)")


@torch.inference_mode()
def precompute(
    module: nn.Module, crops: np.ndarray, device: torch.device, batch: int = 64, progress: bool = False
) -> torch.Tensor:
    module.eval()
    out = []
    steps = range(0, len(crops), batch)
    if progress:
        from rich.progress import track

        steps = track(steps, description="caching frozen features")
    for i in steps:
        x = (
            torch.from_numpy(np.ascontiguousarray(crops[i : i + batch]))
            .to(device)
            .permute(0, 3, 1, 2)
            .float()
        )
        out.append(module(x).to(torch.float16).cpu())
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------


def _batch_images(
    crops: np.ndarray, idx: list[int], flip: bool, rng: np.random.Generator, device: torch.device
) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(crops[idx])).to(device).permute(0, 3, 1, 2).float()
    if flip:
        f = torch.from_numpy(rng.random(len(idx)) < 0.5).to(device)
        x = torch.where(f[:, None, None, None], torch.flip(x, dims=[3]), x)
    return x


def _forced_triplets(
    forced: list[tuple[int, int]], by_label: dict[int, np.ndarray], per_step: int, idx: list[int],
    rng: np.random.Generator,
) -> tuple[list[int], list[int], list[int], list[int]]:
    """(crops to append to the batch ``idx``, anchor, positive and negative positions in batch + appended)
    for up to ``per_step`` of the ``forced`` statements (a random sample when there are more)."""
    if not forced or per_step <= 0:
        return [], [], [], []
    chosen = forced
    if len(forced) > per_step:
        chosen = [forced[i] for i in rng.choice(len(forced), per_step, replace=False)]
    where: dict[int, int] = {}
    for i, c in enumerate(idx):
        where.setdefault(c, i)
    extra: list[int] = []

    def position(c: int) -> int:
        if c not in where:
            where[c] = len(idx) + len(extra)
            extra.append(c)
        return where[c]

    fa, fp, fn = [], [], []
    for crop, lab in chosen:
        a, p = rng.choice(by_label[lab], 2, replace=False)
        fa.append(position(int(a)))
        fp.append(position(int(p)))
        fn.append(position(crop))
    return extra, fa, fp, fn


def _usable_negatives(negatives, labels: np.ndarray) -> tuple[list[tuple[int, int]], dict[int, np.ndarray]]:
    """The (crop, label) statements that can make a triplet (the label has 2 crops, the crop is not one of
    them), and each such label's crops."""
    by_label: dict[int, np.ndarray] = {}
    usable = []
    for crop, lab in dict.fromkeys((int(c), int(lab)) for c, lab in negatives):
        if not 0 <= crop < len(labels) or lab < 0 or labels[crop] == lab:
            continue
        if lab not in by_label:
            by_label[lab] = np.flatnonzero(labels == lab)
        if len(by_label[lab]) >= 2:
            usable.append((crop, lab))
    return usable, by_label


def train(
    config: TrainConfig,
    crops: np.ndarray,
    labels: np.ndarray,
    model: nn.Module | None = None,
    old_embeddings: np.ndarray | None = None,
    callback: Callable[[StepLog, nn.Module], None] | None = None,
    frozen_features: np.ndarray | torch.Tensor | None = None,
    negatives: list[tuple[int, int]] | None = None,
) -> TrainResult:
    """Train ``model`` (default: ``create(config.model, config.pretrained)``) on aligned crops.

    ``old_embeddings`` (N, D), one per crop: the old model's embeddings for the harmonic loss.
    ``frozen_features``: the frozen prefix's outputs for the crops, precomputed by the caller (with
    ``split_model(model, config.train_last)[0]``) to share them between runs.
    ``negatives``: (crop index, label) pairs, "this crop is not this identity" (see the module doc).
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = resolve_device(config.device)
    labels = np.asarray(labels)
    if model is None:
        model = create(config.model, config.pretrained)
    model.to(device)
    if config.harmonic:
        if old_embeddings is None or len(old_embeddings) != len(crops):
            raise ValueError("harmonic training needs one old-model embedding per crop")
        old = torch.from_numpy(np.asarray(old_embeddings, np.float32)).to(device)
    loss_fn: nn.Module = (HarmonicTripletLoss if config.harmonic else TripletLoss)(
        make_miner(config.miner, config.margin), config.margin
    )

    trainable: list[nn.Module] | None = None
    forward = model
    features = None
    if config.train_last is not None:
        prefix, suffix, trainable = split_model(model, config.train_last)
        params = freeze(model, trainable)
        if frozen_features is not None:
            if len(frozen_features) != len(crops):
                raise ValueError("frozen_features must have one row per crop")
            features = torch.as_tensor(frozen_features)
            forward = suffix
        elif config.cache_frozen and prefix.cut > 0:
            features = precompute(prefix, crops, device, progress=config.progress)
            forward = suffix
    else:
        params = freeze(model, [model])
    opt = make_optimizer(params, config)
    sampler = PKSampler(labels, config.p, config.k, config.steps, seed=config.seed)
    forced, by_label = _usable_negatives(negatives or [], labels)
    neg_rng = np.random.default_rng((config.seed, 1))  # apart from the flips' generator

    result = TrainResult(model, config)
    t_start = time.perf_counter()
    progress = None
    if config.progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
        )
        task = progress.add_task("train", total=config.steps, stats="")
        progress.start()
    try:
        for step, idx in enumerate(sampler, start=1):
            t0 = time.perf_counter()
            set_train_mode(model, trainable)
            n = len(idx)
            extra, fa, fp, fn = _forced_triplets(forced, by_label, config.negatives_per_step, idx, neg_rng)
            if features is not None:
                x = features[idx + extra].to(device).float()
            else:
                x = _batch_images(crops, idx, config.flip, rng, device)
                if extra:
                    x = torch.cat([x, _batch_images(crops, extra, config.flip, neg_rng, device)])
            y = torch.from_numpy(labels[idx]).to(device)
            emb_all = forward(x)
            emb = emb_all[:n]
            if config.harmonic:
                out = loss_fn(emb, y, old[idx])
            else:
                out = loss_fn(emb, y)
            loss = out.loss
            hinge = None
            if fa:
                e_all = normalise(emb_all)
                a, p_, ng = (torch.tensor(v, device=device) for v in (fa, fp, fn))
                d_ap = (e_all[a] - e_all[p_]).pow(2).sum(1)
                d_an = (e_all[a] - e_all[ng]).pow(2).sum(1)
                hinge = torch.relu(d_ap - d_an + config.margin)
                loss = loss + config.negative_weight * hinge.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            with torch.no_grad():
                e = out.embeddings[:n]
                d = out.dist[:n, :n]
                log = StepLog(
                    step=step,
                    loss=float(loss.detach()),
                    frac_active=out.stats.frac_active,
                    frac_semi_hard=out.stats.frac_semi_hard,
                    triplets=out.stats.triplets,
                    emb_norm=float(emb.detach().norm(dim=1).mean()),
                    spread=float(d.sum() / (n * (n - 1))) if e.shape[0] > 1 else 0.0,
                    seconds=time.perf_counter() - t0,
                    forced_triplets=len(fa),
                    forced_hinge=float(hinge.mean()) if hinge is not None else 0.0,
                    forced_active=float((hinge > 0).float().mean()) if hinge is not None else 0.0,
                )
            result.history.append(log)
            if progress is not None:
                progress.update(
                    task,
                    advance=1,
                    stats=f"loss {log.loss:.4f} active {log.frac_active:.2f} semi {log.frac_semi_hard:.2f} "
                    f"norm {log.emb_norm:.1f} spread {log.spread:.2f}",
                )
            if callback is not None and (step % config.log_every == 0 or step == config.steps):
                callback(log, model)
    finally:
        if progress is not None:
            progress.stop()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    result.seconds = time.perf_counter() - t_start
    return result


# ---------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(path: Path, result: TrainResult) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "config": dataclasses.asdict(result.config),
            "state_dict": result.model.state_dict(),
            "history": [dataclasses.asdict(h) for h in result.history],
        },
        path,
    )


def load_checkpoint(path: Path, device: str = "cpu") -> tuple[nn.Module, TrainConfig]:
    ck = torch.load(path, map_location=device, weights_only=True)
    config = TrainConfig(**ck["config"])
    model = create(config.model, pretrained=False)
    model.load_state_dict(ck["state_dict"])
    return model.eval(), config


# ---------------------------------------------------------------------------------------------


def _folds(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def main(argv: list[str] | None = None) -> None:
    from .data import SHARED_DATA, load_folder, load_lfw_folds

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--folder", type=Path, help="folder of identity sub-folders")
    src.add_argument("--lfw-folds", help="LFW people.txt folds to train on, e.g. 1-9")
    ap.add_argument("--lfw", type=Path, default=SHARED_DATA / "lfw")
    ap.add_argument("--cap", type=int, default=0, help="at most this many images per identity")
    ap.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("progress",):
            continue
        flag = "--" + f.name.replace("_", "-")
        d = getattr(defaults, f.name)
        if isinstance(d, bool):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=d)
        elif f.name in ("train_last", "grad_clip"):
            ap.add_argument(flag, type=int if f.name == "train_last" else float, default=d)
        else:
            ap.add_argument(flag, type=type(d), default=d)
    args = ap.parse_args(argv)
    if args.harmonic:
        ap.error("--harmonic needs old embeddings; use training.train.train() from Python")
    data = (
        load_folder(args.folder, progress=True)
        if args.folder
        else load_lfw_folds(args.lfw, _folds(args.lfw_folds), progress=True)
    )
    data = data.with_min_images(2)
    if args.cap:
        data = data.capped(args.cap, seed=args.seed)
    config = TrainConfig(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "progress"}
    )
    print(f"{len(data)} crops of {len(np.unique(data.labels))} identities; {config}")
    result = train(config, data.crops, data.labels)
    save_checkpoint(args.out, result)
    last = result.history[-10:]
    mean_loss = np.mean([h.loss for h in last])
    print(f"done in {result.seconds:.0f} s; last-10 mean loss {mean_loss:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
