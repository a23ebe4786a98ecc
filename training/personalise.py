""""Learn from my corrections": fine-tune the embedder on a library's named people, keep it only if it helps.

Steps (each reported as a :class:`LearnProgress`; the last item carries the :class:`LearnResult`):

1. ``examples``: :func:`engine.services.examples.library_examples` - named, visible people's confirmed and
   grouped faces, re-aligned from the photos, plus the faces the user said are *not* one of them.
2. ``split``: about 20 % of each person's faces are held out for the checks (only people with at least
   3 faces give any, so at least 2 stay for training); the rest train. Held-out faces never take part in
   a training step, not even as "not this person" negatives.
3. ``train``: the SFace torch port, last block only (the frozen prefix is run once and cached), AdamW at
   a small learning rate, with the harmonic loss against the active model's embeddings so that the new
   embeddings stay comparable with the old ones while the library is re-embedded. The user's "not this
   person" statements become forced triplets (that person's faces as anchor and positive, the rejected
   face as negative; see :func:`training.train.train`). (AdaGrad at lr 0.05, the paper's setting,
   wrecked the pretrained block in the LFW experiments of docs/training.md.)
4. The step count is chosen on the held-out faces: every ``eval_every`` steps up to ``max_steps`` (and
   at step 0, the untouched model) the torch model embeds the held-out and training faces from the
   cached features, and the state with the best held-out pair AUC, then accuracy, is kept (the earliest
   wins ties). When step 0 wins there is nothing to activate; training stops early once a checkpoint
   is perfect, since no later one could beat it.
5. ``export``: the chosen state to ONNX, parity-checked against torch.
6. ``evaluate``: held-out faces against the training faces (the gallery), before (active model) and
   after (exported model, through the engine's embedder): nearest-neighbour identification accuracy
   and the pair AUC; then, when ``lfw`` is on and the LFW data is there, 10-fold accuracy on a small
   LFW pair subset with both models.
7. Only when the new model is not worse on the held-out faces *and* on LFW (by more than ``max_drop``):
   ``register`` + ``activate`` it (``compatible_with`` = the previous active model) and ``re-embed``
   the library. Otherwise the final item says ``refused: ...`` and the active model is left alone.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.services.progress import Stage


@dataclass(frozen=True)
class PersonaliseConfig:
    max_steps: int = 40  # the longest run; the step count is chosen on the held-out faces
    eval_every: int = 10  # held-out check every this many steps (and at step 0)
    lr: float = 1e-5
    optimizer: str = "adamw"
    train_last: int = 2  # the last block (conv_14) and the head
    p: int = 8  # identities per batch (capped at the number of trainable people)
    k: int = 4
    harmonic: bool = True
    negatives: bool = True  # the user's "not this person" statements as forced triplets
    negatives_per_step: int = 8
    holdout: float = 0.2
    min_faces: int = 2
    max_drop: float = 0.0  # accept when no held-out or LFW number drops by more than this
    lfw: bool = True  # also refuse a model that is worse on a small LFW pair subset (when the data is there)
    lfw_pairs: int = 300
    lfw_dir: Path | None = None  # the LFW folder (pairs.txt, people.txt, images/) for that check
    seed: int = 0
    device: str = "auto"


@dataclass
class HeldOut:
    """Held-out faces vs the training faces: identification accuracy and pair AUC (1.0 = perfect)."""

    accuracy: float
    auc: float
    queries: int
    pairs: int

    def line(self) -> str:
        return f"nearest-face accuracy {100 * self.accuracy:.1f}%  pair AUC {self.auc:.4f}  [{self.queries} faces]"

    def better_than(self, other: HeldOut) -> bool:
        """Which checkpoint to keep: the higher pair AUC, then the higher accuracy."""
        return (self.auc, self.accuracy) > (other.auc, other.accuracy)


@dataclass
class LearnResult:
    activated: bool
    message: str
    model_id: str | None = None
    previous_model_id: str | None = None
    before: HeldOut | None = None
    after: HeldOut | None = None
    lfw_before: float | None = None
    lfw_after: float | None = None
    lfw_note: str = ""  # the LFW check's outcome in words ("LFW check skipped (data not found)", ...)
    chosen_step: int | None = None  # the training step whose state was kept (0: the untouched model)
    max_steps: int = 0
    checkpoints: list[tuple[int, HeldOut]] = field(default_factory=list)  # torch-model held-out checks
    people: int = 0
    train_faces: int = 0
    heldout_faces: int = 0
    negatives: int = 0  # "not this person" statements used in training
    seconds: float = 0.0
    re_embedded: int = 0


@dataclass
class LearnProgress:
    stage: Stage  # EXAMPLES ... REGISTER, then DONE, REFUSED, CANCELLED or ERROR
    step: int = 0
    total: int = 0
    message: str = ""
    result: LearnResult | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.message or self.stage


def split_holdout(labels: np.ndarray, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): about ``fraction`` of each identity's faces are held out,
    only from identities with at least 3 faces, always leaving 2 for training."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for lab in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == lab))
        n_hold = min(max(1, int(round(fraction * len(idx)))), len(idx) - 2) if len(idx) >= 3 else 0
        held.extend(idx[:n_hold])
        train.extend(idx[n_hold:])
    return np.sort(np.asarray(train, np.int64)), np.sort(np.asarray(held, np.int64))


def split_named(labels: np.ndarray, people: int, fraction: float, seed: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The learners' split of the library's examples: (train indices, held-out indices, each person's
    number of training faces, how many people have 2 or more of them). Only labelled faces are split;
    label -1 marks a face known only from a "not this person"."""
    named = np.flatnonzero(labels >= 0)
    train_rel, held_rel = split_holdout(labels[named], fraction, seed)
    train_idx, held_idx = named[train_rel], named[held_rel]
    counts = np.bincount(labels[train_idx], minlength=people) if len(train_idx) else np.zeros(0, int)
    return train_idx, held_idx, counts, int((counts >= 2).sum())


def usable_negatives(statements, person_ids: list[int], labels: np.ndarray, counts: np.ndarray,
                     held_idx: np.ndarray) -> list[tuple[int, int]]:
    """The user's "not this person" statements a learner can train on, as (crop index, label index).

    Kept: statements about a training face (never a held-out one: those only check) that name one of the
    learnt people with at least 2 training faces, about a face that is not that person's own. The examples
    also hold statements naming someone left out (hidden, or with too few faces): those are skipped."""
    label_of = {pid: i for i, pid in enumerate(person_ids)}
    held = set(held_idx.tolist())
    negs = []
    for crop, pid in statements:
        lab = label_of.get(pid)
        if lab is not None and crop not in held and counts[lab] >= 2 and labels[crop] != lab:
            negs.append((int(crop), lab))
    return negs


def too_few_to_learn(trainable: int, held_out: int) -> str | None:
    """Why the learners refuse to start, in words, or None when there are enough named faces."""
    if trainable < 2:
        return "refused: need at least 2 named people with 2 or more faces each"
    if held_out == 0:
        return "refused: need a named person with at least 3 faces to check a new model"
    return None


def heldout_score(query: np.ndarray, q_labels: np.ndarray, gallery: np.ndarray, g_labels: np.ndarray) -> HeldOut:
    """Nearest-gallery-face accuracy and the AUC of same vs different query-gallery pair distances."""
    d = ((query[:, None, :] - gallery[None, :, :]) ** 2).sum(-1)
    acc = float((g_labels[d.argmin(1)] == q_labels).mean()) if len(query) else 0.0
    same = q_labels[:, None] == g_labels[None, :]
    pos, neg = d[same], d[~same]
    if len(pos) and len(neg):
        # P(a same pair is closer than a different pair), ties count half.
        order = np.sort(neg)
        lo = np.searchsorted(order, pos, "left")
        hi = np.searchsorted(order, pos, "right")
        auc = float(((len(neg) - hi) + 0.5 * (hi - lo)).sum() / (len(pos) * len(neg)))
    else:
        auc = 0.0
    return HeldOut(acc, auc, int(len(query)), int(d.size))


def _lfw_accuracy(embed, n_pairs: int, lfw_root: Path) -> float | None:
    """Verification accuracy (10-fold) on the first ``n_pairs`` of LFW fold 10's pairs, or None."""
    try:
        from .data import load_lfw_fold, read_pairs
        from .evaluate import lfw_pairs, stratified_folds, verification

        faces = load_lfw_fold(lfw_root, 10)
        pairs = [p for p in read_pairs(lfw_root) if p.fold == 9][:n_pairs]
        idx = lfw_pairs(faces.keys, pairs)
        if len(idx.same) < 20:
            return None
        used = np.unique(np.concatenate([idx.i1, idx.i2]))
        got = embed(faces.crops[used])
        emb = np.zeros((len(faces), got.shape[1]), np.float32)  # 128-D or 512-D
        emb[used] = got
        d = ((emb[idx.i1] - emb[idx.i2]) ** 2).sum(1)
        return float(verification(d, idx.same, stratified_folds(idx.same)).accuracy)
    except Exception:
        return None



def check_on_lfw(result: LearnResult, cfg, embed_before, embed_after) -> Iterator[LearnProgress]:
    """The LFW gate both ways of learning share: fills ``result.lfw_before``/``lfw_after``/``lfw_note``
    and returns (through ``yield from``) True when the new model is worse on LFW by more than
    ``cfg.max_drop``. Progress is yielded only when the check really runs."""
    if not cfg.lfw:
        result.lfw_note = "LFW check off"
        return False
    if cfg.lfw_dir is None or not (Path(cfg.lfw_dir) / "pairs.txt").exists():
        result.lfw_note = "LFW check skipped (data not found)"
        return False
    yield LearnProgress(Stage.EVALUATE, message=f"Checking on {cfg.lfw_pairs} LFW pairs…")
    root = Path(cfg.lfw_dir)
    lb = result.lfw_before = _lfw_accuracy(embed_before, cfg.lfw_pairs, root)
    la = result.lfw_after = None if lb is None else _lfw_accuracy(embed_after, cfg.lfw_pairs, root)
    if lb is None or la is None:
        result.lfw_note = "LFW check skipped (could not be scored)"
        return False
    result.lfw_note = f"LFW accuracy {100 * lb:.2f}% before, {100 * la:.2f}% after"
    return la < lb - cfg.max_drop

def _checkpoint_score(suffix, features, labels: np.ndarray, held: np.ndarray, gallery: np.ndarray) -> HeldOut:
    """Held-out score of the model in training: its trainable ``suffix`` (``training.train.split_model``)
    over the cached frozen features of the held-out and gallery faces, in eval mode."""
    import torch

    from .losses import normalise

    modules = list(suffix.modules())
    was_training = [m.training for m in modules]
    suffix.eval()
    device = next(suffix.parameters()).device
    rows = torch.from_numpy(np.concatenate([held, gallery]).astype(np.int64))
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(rows), 256):
                out.append(normalise(suffix(features[rows[i : i + 256]].to(device).float())).cpu().numpy())
    finally:
        for m, t in zip(modules, was_training, strict=True):
            m.training = t
    emb = np.concatenate(out) if out else np.zeros((0, 128), np.float32)
    return heldout_score(emb[: len(held)], labels[held], emb[len(held) :], labels[gallery])


def _perfect(h: HeldOut) -> bool:
    return h.auc >= 1.0 and h.accuracy >= 1.0


def learn_from_corrections(
    library, cancel: threading.Event | None = None, config: PersonaliseConfig | None = None
) -> Iterator[LearnProgress]:
    """Generator of progress; the last item has ``result`` set and stage done, refused or cancelled."""
    cfg = config or PersonaliseConfig()
    if cfg.max_steps < 1 or cfg.eval_every < 1:
        raise ValueError("max_steps and eval_every must be at least 1")
    t0 = time.perf_counter()

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    def final(stage: Stage, result: LearnResult, message: str | None = None) -> LearnProgress:
        if message is not None:
            result.message = message
        result.seconds = time.perf_counter() - t0
        return LearnProgress(stage, message=result.message, result=result)

    from engine.services.examples import library_examples

    active = library.embedder()
    if active.dim != 128:  # the harmonic loss compares the new SFace-based model with the active one
        yield final(Stage.REFUSED, LearnResult(False, "", max_steps=cfg.max_steps),
                    f"refused: learning fine-tunes SFace's 128-D model, but the active model {active.model_id} is "
                    f"{active.dim}-D; switch back with 'facenet-photos models --activate sface-2021dec-int8bq' first")
        return
    yield LearnProgress(Stage.EXAMPLES, message="Collecting the named people's faces…")
    crops, labels, person_ids, statements = library_examples(library, cfg.min_faces)
    train_idx, held_idx, counts, trainable = split_named(labels, len(person_ids), cfg.holdout, cfg.seed)
    result = LearnResult(
        False, "", people=len(person_ids), train_faces=len(train_idx), heldout_faces=len(held_idx),
        max_steps=cfg.max_steps,
    )
    yield LearnProgress(
        "split", message=f"{len(person_ids)} people, {len(train_idx)} faces to learn from, {len(held_idx)} to check"
    )
    refused = too_few_to_learn(trainable, len(held_idx))
    if refused:
        yield final(Stage.REFUSED, result, refused)
        return
    if cancelled():
        yield final(Stage.CANCELLED, result, "cancelled")
        return

    # Training rows: the training faces of people with 2 of them (the sampler needs pairs), then the
    # other faces that a usable "not this person" statement names (label -1: nobody's, negatives only).
    tr_rows = train_idx[counts[labels[train_idx]] >= 2]
    negs = usable_negatives(statements if cfg.negatives else [], person_ids, labels, counts, held_idx)
    extra = np.asarray(sorted({c for c, _ in negs} - set(tr_rows.tolist())), np.int64)
    rows = np.concatenate([tr_rows, extra])
    tr_labels = labels[rows].copy()
    tr_labels[len(tr_rows) :] = -1
    at = {int(c): i for i, c in enumerate(rows)}
    tr_negs = [(at[c], lab) for c, lab in negs]
    result.negatives = len(tr_negs)

    from .export import export_and_check
    from .registry import create
    from .train import TrainConfig, precompute, resolve_device, split_model, train

    old_embedder = library.embedder()
    previous = old_embedder.model_id
    result.previous_model_id = previous
    tcfg = TrainConfig(
        model="sface", pretrained=True, optimizer=cfg.optimizer, lr=cfg.lr, steps=cfg.max_steps,
        train_last=cfg.train_last, p=min(cfg.p, trainable), k=cfg.k, harmonic=cfg.harmonic, seed=cfg.seed,
        device=cfg.device, progress=False, log_every=1, flip=False, negatives_per_step=cfg.negatives_per_step,
    )
    old = old_embedder.embed(crops[rows]) if cfg.harmonic else None

    class _Cancelled(Exception):
        pass

    class _Perfect(Exception):
        pass

    model = create("sface", True)
    prefix, suffix, _ = split_model(model, cfg.train_last)
    best: dict = {}

    def checkpoint(step: int, put) -> None:
        score = _checkpoint_score(suffix, features, labels, held_idx, train_idx)
        result.checkpoints.append((step, score))
        if not best or score.better_than(best["score"]):
            best.update(step=step, score=score, state={k: v.detach().clone() for k, v in model.state_dict().items()})
        put(LearnProgress(Stage.TRAIN, step, cfg.max_steps, f"Held-out check at step {step}: {score.line()}"))
        if _perfect(best["score"]):
            raise _Perfect

    def on_step(log, put) -> None:
        put(LearnProgress(Stage.TRAIN, log.step, cfg.max_steps, f"Training step {log.step}/{cfg.max_steps}, "
                          f"loss {log.loss:.4f}"))
        if cancelled():
            raise _Cancelled
        if log.step % cfg.eval_every == 0 or log.step == cfg.max_steps:
            checkpoint(log.step, put)

    features = None

    def work(put) -> None:
        import torch

        nonlocal features
        model.to(resolve_device(cfg.device))
        features = precompute(prefix, crops, next(model.parameters()).device)
        checkpoint(0, put)
        train(tcfg, crops[rows], tr_labels, model=model, old_embeddings=old,
              frozen_features=features[torch.from_numpy(rows)], negatives=tr_negs,
              callback=lambda log, _m: on_step(log, put))

    n_neg = f", {len(tr_negs)} \"not this person\" statements" if tr_negs else ""
    yield LearnProgress(
        "train", 0, cfg.max_steps, f"Training on {len(tr_rows)} faces of {trainable} people{n_neg}…"
    )
    try:
        yield from _in_thread(work)
    except _Cancelled:
        yield final(Stage.CANCELLED, result, "cancelled")
        return
    except _Perfect:
        pass
    if cancelled():
        yield final(Stage.CANCELLED, result, "cancelled")
        return
    result.chosen_step = chosen = best["step"]
    if chosen == 0:
        if _perfect(best["score"]):
            why = "nothing to learn: the untouched model already tells your held-out faces apart perfectly"
        else:
            why = (f"no training step (checked every {cfg.eval_every} up to {cfg.max_steps}) did better on your "
                   "held-out faces than the untouched model")
        yield final(Stage.REFUSED, result, f"refused: {why} ({best['score'].line()})")
        return
    model.load_state_dict(best["state"])
    model.eval()
    trained = f"kept step {chosen} of {cfg.max_steps}"

    yield LearnProgress(Stage.EXPORT, message=f"Exporting the new model ({trained})…")
    with tempfile.TemporaryDirectory() as tmp:
        model_id = time.strftime("personal-%Y%m%d-%H%M%S", time.gmtime())
        exported = export_and_check(model, Path(tmp) / f"{model_id}.onnx", crops[:16])
        from engine.pipeline.embed import Embedder
        from training.export import model_spec

        new_embedder = Embedder(old_embedder.config, spec=model_spec(exported.path, model_id), path=exported.path)

        yield LearnProgress(Stage.EVALUATE, message="Checking the new model on held-out faces…")
        hq, hl = crops[held_idx], labels[held_idx]
        gq, gl = crops[train_idx], labels[train_idx]
        result.before = heldout_score(old_embedder.embed(hq), hl, old_embedder.embed(gq), gl)
        result.after = heldout_score(new_embedder.embed(hq), hl, new_embedder.embed(gq), gl)
        b, a = result.before, result.after
        numbers = f"{trained}; held-out faces before: {b.line()}; after: {a.line()}"
        if a.accuracy < b.accuracy - cfg.max_drop or a.auc < b.auc - cfg.max_drop:
            yield final(Stage.REFUSED, result, f"refused: the new model is worse on your held-out faces ({numbers})")
            return
        if (yield from check_on_lfw(result, cfg, old_embedder.embed, new_embedder.embed)):
            yield final(Stage.REFUSED, result, f"refused: the new model is worse on LFW ({result.lfw_note}; "
                        f"{numbers})")
            return
        numbers = f"{numbers}; {result.lfw_note}"
        if cancelled():
            yield final(Stage.CANCELLED, result, "cancelled")
            return
        yield LearnProgress(Stage.REGISTER, message=f"Activating {model_id}…")
        library.register_model(exported.path, model_id, compatible_with=previous)
    library.activate_model(model_id)
    result.activated, result.model_id = True, model_id

    from engine.services.reembed import re_embed

    last = None
    for prog in re_embed(library, cancel):
        last = prog
        yield LearnProgress(Stage.RE_EMBED, prog.done, prog.total, f"Re-embedding faces {prog.done}/{prog.total}")
    result.re_embedded = last.done if last else 0
    stopped = last is not None and last.stage == Stage.CANCELLED
    resumable = " (cancelled: the rest is re-embedded next time)" if stopped else ""
    yield final(Stage.DONE, result, f"activated {model_id}{resumable} ({numbers})")


def _in_thread(work) -> Iterator[LearnProgress]:
    """Runs ``work(put)`` on a helper thread and yields what it puts (so the caller's generator stays
    responsive); re-raises its exception on the caller's thread."""
    import queue

    q: queue.Queue = queue.Queue()
    box: dict = {}
    done = object()

    def run() -> None:
        try:
            work(q.put)
        except BaseException as exc:  # re-raised on the caller's thread
            box["error"] = exc
        finally:
            q.put(done)

    t = threading.Thread(target=run, name="personalise-train", daemon=True)
    t.start()
    while (item := q.get()) is not done:
        yield item
    t.join()
    if "error" in box:
        raise box["error"]
