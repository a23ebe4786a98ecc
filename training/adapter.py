""""Learn from my corrections" the way that measured best: a linear adapter on the active model's embeddings.

On lag-dev (a family that confirmed which child photos are which adult; docs/training.md) a D x D linear
map on the frozen model's unit embeddings, trained with the triplet loss on some families' identities,
raised child-adult verification on the *other* families' by +2.20 ± 0.63 points for SFace and
+1.42 ± 0.61 for arcface-mbf (10 folds), where fine-tuning SFace's last block on LFW-sized data gave
nothing measurable. So the app's learning job trains that adapter on the library's own named faces:

1. ``examples``: the stored embeddings (of the active model) of the named, visible people's confirmed and
   grouped faces, and the faces the user said are *not* one of them (``library_embedding_examples``;
   no photo is decoded).
2. ``split``: about 20 % of each person's faces (people with at least 3) are held out for the checks.
3. ``train``: the adapter starts at the identity (step 0 is the untouched model); triplet loss with hard
   negatives on P x K batches of the training faces, plus the user's "not this person" statements as
   forced triplets; AdamW. Every ``eval_every`` steps the held-out faces are scored against the training
   faces (nearest-face accuracy, pair AUC); the best state is kept, the earliest on ties; when step 0
   wins nothing changes.
4. ``evaluate``: before and after on the held-out faces, and (when the LFW data is there) on a small
   LFW pair subset; a model worse on either is refused.
5. ``register``: the active model's graph followed by the adapter as one ONNX file (no torch needed to
   run it), registered as compatible with the active model and activated; the library's stored
   embeddings are mapped through the adapter (``transform_embeddings``: no photo is decoded), then any
   face left (embedded by an older model) is re-embedded.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.services.progress import Stage

from .personalise import (
    HeldOut,
    LearnProgress,
    LearnResult,
    check_on_lfw,
    heldout_score,
    split_named,
    too_few_to_learn,
    usable_negatives,
)


@dataclass(frozen=True)
class AdapterConfig:
    max_steps: int = 300  # as on lag-dev
    eval_every: int = 50
    lr: float = 1e-3
    p: int = 32  # identities per batch (capped at the number of trainable people)
    k: int = 4
    margin: float = 0.2
    negatives: bool = True  # the user's "not this person" statements as forced triplets
    negatives_per_step: int = 8
    holdout: float = 0.2
    min_faces: int = 2
    max_drop: float = 0.0
    lfw: bool = True
    lfw_pairs: int = 300
    lfw_dir: Path | None = None
    seed: int = 0


def apply_adapter(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    y = np.asarray(x, np.float32) @ np.asarray(weight, np.float32).T + np.asarray(bias, np.float32)
    return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)


def train_adapter(x: np.ndarray, labels: np.ndarray, *, steps: int, lr: float, seed: int, p: int = 32, k: int = 4,
                  margin: float = 0.2, negatives: list[tuple[int, int]] | None = None, negatives_per_step: int = 8,
                  callback: Callable[[int, np.ndarray, np.ndarray], None] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A D x D linear map (plus bias) on unit embeddings ``x``, initialised at the identity, trained with
    the triplet loss (hard negatives, P x K batches; rows labelled -1 only serve as forced negatives).
    ``negatives``: (row, label) "this face is not that person": each step adds up to
    ``negatives_per_step`` triplets (two random faces of that person, then the face). ``callback(step,
    weight, bias)`` runs after each step. Returns (weight, bias)."""
    import torch

    from .losses import TripletLoss
    from .miners import HardMiner
    from .samplers import PKSampler

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    lin = torch.nn.Linear(d, d)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(d))
        lin.bias.zero_()
    opt = torch.optim.AdamW(lin.parameters(), lr=lr, weight_decay=0.0)
    loss_fn = TripletLoss(HardMiner(margin), margin)
    xt, lt = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(labels)
    by_label = {int(lab): np.flatnonzero(labels == lab) for lab in np.unique(labels) if lab >= 0}
    negs = [(r, lab) for r, lab in (negatives or []) if len(by_label.get(lab, ())) >= 2]
    sampler_labels = np.where(labels >= 0, labels, -1)
    keep = np.flatnonzero(sampler_labels >= 0)
    for step, batch in enumerate(PKSampler(sampler_labels[keep], p, k, steps, seed=seed), start=1):
        idx = torch.as_tensor(keep[np.asarray(batch)])
        loss = loss_fn(lin(xt[idx]), lt[idx]).loss
        if negs:
            pick = rng.choice(len(negs), min(negatives_per_step, len(negs)), replace=False)
            a, pos, n = [], [], []
            for j in pick:
                r, lab = negs[j]
                i1, i2 = rng.choice(by_label[lab], 2, replace=False)
                a.append(i1)
                pos.append(i2)
                n.append(r)
            e = torch.nn.functional.normalize(lin(xt[torch.as_tensor(np.array(a + pos + n))]), dim=1)
            ea, ep, en = e[: len(a)], e[len(a) : 2 * len(a)], e[2 * len(a) :]
            hinge = ((ea - ep) ** 2).sum(1) - ((ea - en) ** 2).sum(1) + margin
            loss = loss + torch.clamp(hinge, min=0).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if callback is not None:
            callback(step, lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy())
    return lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy()


def learn_adapter(library, cancel: threading.Event | None = None, config: AdapterConfig | None = None
                  ) -> Iterator[LearnProgress]:
    """Generator of progress; the last item has ``result`` set and stage done, refused or cancelled."""
    cfg = config or AdapterConfig()
    if cfg.max_steps < 1 or cfg.eval_every < 1:
        raise ValueError("max_steps and eval_every must be at least 1")
    t0 = time.perf_counter()

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    def final(stage: Stage, result: LearnResult, message: str) -> LearnProgress:
        result.message, result.seconds = message, time.perf_counter() - t0
        return LearnProgress(stage, message=message, result=result)

    from engine.services.examples import library_embedding_examples

    active = library.embedder()
    previous = active.model_id
    yield LearnProgress(Stage.EXAMPLES, message="Collecting the named people's faces…")
    face_ids, emb, labels, person_ids, statements = library_embedding_examples(library, previous, cfg.min_faces)
    train_idx, held_idx, counts, trainable = split_named(labels, len(person_ids), cfg.holdout, cfg.seed)
    result = LearnResult(False, "", previous_model_id=previous, people=len(person_ids),
                         train_faces=len(train_idx), heldout_faces=len(held_idx), max_steps=cfg.max_steps)
    yield LearnProgress(Stage.SPLIT, message=f"{len(person_ids)} people, {len(train_idx)} faces to learn from, "
                                             f"{len(held_idx)} to check")
    refused = too_few_to_learn(trainable, len(held_idx))
    if refused:
        yield final(Stage.REFUSED, result, refused)
        return

    # Training rows: training faces of people with 2 of them, then faces only known as "not this person".
    tr_rows = train_idx[counts[labels[train_idx]] >= 2]
    negs = usable_negatives(statements if cfg.negatives else [], person_ids, labels, counts, held_idx)
    extra = np.asarray(sorted({c for c, _ in negs} - set(tr_rows.tolist())), np.int64)
    rows = np.concatenate([tr_rows, extra])
    tr_labels = labels[rows].copy()
    tr_labels[len(tr_rows):] = -1
    at = {int(c): i for i, c in enumerate(rows)}
    tr_negs = [(at[c], lab) for c, lab in negs]
    result.negatives = len(tr_negs)

    def score(w, b) -> HeldOut:
        e = apply_adapter(emb, w, b)
        return heldout_score(e[held_idx], labels[held_idx], e[train_idx], labels[train_idx])

    d = emb.shape[1]
    best = {"step": 0, "w": np.eye(d, dtype=np.float32), "b": np.zeros(d, np.float32)}
    best["score"] = score(best["w"], best["b"])
    result.checkpoints.append((0, best["score"]))
    n_neg = f", {len(tr_negs)} \"not this person\" statements" if tr_negs else ""
    yield LearnProgress(Stage.TRAIN, 0, cfg.max_steps, f"Learning from {len(tr_rows)} faces of {trainable} "
                                                        f"people{n_neg}…")

    class _Stop(Exception):
        pass

    def check(step, w, b) -> None:
        if cancelled():
            raise _Stop
        if step % cfg.eval_every and step != cfg.max_steps:
            return
        s = score(w, b)
        result.checkpoints.append((step, s))
        if s.better_than(best["score"]):
            best.update(step=step, w=w, b=b, score=s)

    try:
        train_adapter(emb[rows], tr_labels, steps=cfg.max_steps, lr=cfg.lr, seed=cfg.seed,
                      p=min(cfg.p, trainable), k=cfg.k, margin=cfg.margin, negatives=tr_negs,
                      negatives_per_step=cfg.negatives_per_step, callback=check)
    except _Stop:
        yield final(Stage.CANCELLED, result, "cancelled")
        return
    for step, s in result.checkpoints[1:]:
        yield LearnProgress(Stage.TRAIN, step, cfg.max_steps, f"Held-out check at step {step}: {s.line()}")
    result.chosen_step = best["step"]
    result.before, result.after = result.checkpoints[0][1], best["score"]
    if best["step"] == 0:
        yield final(Stage.REFUSED, result, f"refused: no training step (checked every {cfg.eval_every} up to "
                    f"{cfg.max_steps}) did better on your held-out faces than the untouched model "
                    f"({result.before.line()})")
        return
    w, b = best["w"], best["b"]
    numbers = (f"kept step {best['step']} of {cfg.max_steps}; held-out faces before: {result.before.line()}; "
               f"after: {result.after.line()}")
    if (yield from check_on_lfw(result, cfg, active.embed, lambda c: apply_adapter(active.embed(c), w, b))):
        yield final(Stage.REFUSED, result, f"refused: the new model is worse on LFW ({result.lfw_note}; {numbers})")
        return
    numbers = f"{numbers}; {result.lfw_note}"
    if cancelled():
        yield final(Stage.CANCELLED, result, "cancelled")
        return

    from engine.models.registry import prepared_model_bytes
    from engine.services.reembed import re_embed, transform_embeddings

    from .pack_head import graph_with_linear_head

    model_id = time.strftime("personal-%Y%m%d-%H%M%S", time.gmtime())
    yield LearnProgress(Stage.REGISTER, message=f"Activating {model_id}…")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{model_id}.onnx"
        path.write_bytes(graph_with_linear_head(prepared_model_bytes(active.spec, active.path), w, b))
        library.register_model(path, model_id, compatible_with=previous)
    library.activate_model(model_id)
    result.activated, result.model_id = True, model_id
    last = None
    for prog in transform_embeddings(library, previous, model_id, w, b, cancel):
        last = prog
        yield LearnProgress(Stage.RE_EMBED, prog.done, prog.total, f"Updating faces {prog.done}/{prog.total}")
    result.re_embedded = last.done if last else 0
    stopped = last is not None and last.stage == Stage.CANCELLED
    if not stopped:  # faces of an older model (a re-embed never finished) are embedded from their photos
        for prog in re_embed(library, cancel):
            stopped = prog.stage == Stage.CANCELLED
            if prog.total:
                yield LearnProgress(Stage.RE_EMBED, prog.done, prog.total,
                                    f"Re-embedding older faces {prog.done}/{prog.total}")
        result.re_embedded += prog.done
    resumable = " (cancelled: the rest is re-embedded next time)" if stopped else ""
    yield final(Stage.DONE, result, f"activated {model_id}{resumable} ({numbers})")
