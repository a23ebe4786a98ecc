""""Learn from my corrections": fine-tune the embedder on a library's named people, keep it only if it helps.

Steps (each reported as a :class:`LearnProgress`; the last item carries the :class:`LearnResult`):

1. ``examples``: :func:`engine.training_data.library_examples` - named, visible people's confirmed and
   grouped faces, re-aligned from the photos.
2. ``split``: about 20 % of each person's faces are held out for the check (only people with at least
   3 faces give any, so at least 2 stay for training); the rest train.
3. ``train``: the SFace torch port, last block only, AdamW at a small learning rate, with the harmonic
   loss against the active model's embeddings so that the new embeddings stay comparable with the old
   ones while the library is re-embedded. (AdaGrad at lr 0.05, the paper's setting, wrecked the
   pretrained block in the LFW experiments of docs/training.md.)
4. ``export``: ONNX, parity-checked against torch.
5. ``evaluate``: held-out faces against the training faces (the gallery), before (active model) and
   after (exported model, through the engine's embedder): nearest-neighbour identification accuracy
   and the pair AUC; optionally the same models on a small LFW pair subset.
6. Only when the new model is not worse on the held-out faces: ``register`` + ``activate`` it
   (``compatible_with`` = the previous active model) and ``re-embed`` the library. Otherwise the final
   item says ``refused: ...`` and the active model is left alone.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LFW_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"


@dataclass(frozen=True)
class PersonaliseConfig:
    steps: int = 30
    lr: float = 1e-5
    optimizer: str = "adamw"
    train_last: int = 2  # the last block (conv_14) and the head
    p: int = 8  # identities per batch (capped at the number of trainable people)
    k: int = 4
    harmonic: bool = True
    holdout: float = 0.2
    min_faces: int = 2
    max_drop: float = 0.0  # accept when neither held-out number drops by more than this
    lfw: bool = False  # also report a small LFW pair subset (when the data is there)
    lfw_pairs: int = 300
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
    people: int = 0
    train_faces: int = 0
    heldout_faces: int = 0
    seconds: float = 0.0
    re_embedded: int = 0


@dataclass
class LearnProgress:
    stage: str  # examples|split|train|export|evaluate|register|re-embed|done|refused|cancelled|error
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


def _lfw_accuracy(embed, n_pairs: int) -> float | None:
    """Verification accuracy (10-fold) on the first ``n_pairs`` of LFW fold 10's pairs, or None."""
    try:
        from .data import load_lfw_fold, read_pairs
        from .evaluate import lfw_pairs, stratified_folds, verification

        faces = load_lfw_fold(LFW_ROOT, 10)
        pairs = [p for p in read_pairs(LFW_ROOT) if p.fold == 9][:n_pairs]
        idx = lfw_pairs(faces.keys, pairs)
        if len(idx.same) < 20:
            return None
        used = np.unique(np.concatenate([idx.i1, idx.i2]))
        emb = np.zeros((len(faces), 128), np.float32)
        emb[used] = embed(faces.crops[used])
        d = ((emb[idx.i1] - emb[idx.i2]) ** 2).sum(1)
        return float(verification(d, idx.same, stratified_folds(idx.same)).accuracy)
    except Exception:
        return None


def learn_from_corrections(
    library, cancel: threading.Event | None = None, config: PersonaliseConfig | None = None
) -> Iterator[LearnProgress]:
    """Generator of progress; the last item has ``result`` set and stage done, refused or cancelled."""
    cfg = config or PersonaliseConfig()
    t0 = time.perf_counter()

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    def final(stage: str, result: LearnResult, message: str | None = None) -> LearnProgress:
        if message is not None:
            result.message = message
        result.seconds = time.perf_counter() - t0
        return LearnProgress(stage, message=result.message, result=result)

    from engine.training_data import library_examples

    yield LearnProgress("examples", message="Collecting the named people's faces…")
    crops, labels, person_ids, _negatives = library_examples(library, cfg.min_faces)
    train_idx, held_idx = split_holdout(labels, cfg.holdout, cfg.seed)
    counts = np.bincount(labels[train_idx], minlength=len(person_ids)) if len(train_idx) else np.zeros(0)
    trainable = int((counts >= 2).sum())
    result = LearnResult(False, "", people=len(person_ids), train_faces=len(train_idx), heldout_faces=len(held_idx))
    yield LearnProgress(
        "split", message=f"{len(person_ids)} people, {len(train_idx)} faces to learn from, {len(held_idx)} to check"
    )
    if trainable < 2:
        yield final("refused", result, "refused: need at least 2 named people with 2 or more faces each")
        return
    if len(held_idx) == 0:
        yield final("refused", result, "refused: need a named person with at least 3 faces to check a new model")
        return
    if cancelled():
        yield final("cancelled", result, "cancelled")
        return

    from .export import export_and_check
    from .registry import create
    from .train import TrainConfig, train

    old_embedder = library.embedder()
    previous = old_embedder.model_id
    result.previous_model_id = previous
    tr_crops, tr_labels = crops[train_idx], labels[train_idx]
    keep = counts[tr_labels] >= 2  # the sampler needs two faces per identity
    tr_crops, tr_labels = tr_crops[keep], tr_labels[keep]
    tcfg = TrainConfig(
        model="sface", pretrained=True, optimizer=cfg.optimizer, lr=cfg.lr, steps=cfg.steps,
        train_last=cfg.train_last, p=min(cfg.p, trainable), k=cfg.k, harmonic=cfg.harmonic, seed=cfg.seed,
        device=cfg.device, progress=False, log_every=1, flip=False,
    )
    old = old_embedder.embed(tr_crops) if cfg.harmonic else None

    class _Cancelled(Exception):
        pass

    logs: list = []

    def on_step(log, _model) -> None:
        logs.append(log)
        if cancelled():
            raise _Cancelled

    yield LearnProgress("train", 0, cfg.steps, f"Training on {len(tr_crops)} faces of {trainable} people…")
    # train() runs to completion in one call; progress is reported per step through its callback.
    steps_iter = _train_steps(train, tcfg, tr_crops, tr_labels, create("sface", True), old, on_step, logs)
    try:
        yield from steps_iter
        trained = steps_iter.result
    except _Cancelled:
        yield final("cancelled", result, "cancelled")
        return
    if cancelled():
        yield final("cancelled", result, "cancelled")
        return

    yield LearnProgress("export", message="Exporting the new model…")
    with tempfile.TemporaryDirectory() as tmp:
        model_id = time.strftime("personal-%Y%m%d-%H%M%S", time.gmtime())
        exported = export_and_check(trained.model, Path(tmp) / f"{model_id}.onnx", crops[:16])
        from engine.embed import Embedder
        from training.export import model_spec

        new_embedder = Embedder(old_embedder.config, spec=model_spec(exported.path, model_id), path=exported.path)

        yield LearnProgress("evaluate", message="Checking the new model on held-out faces…")
        hq, hl = crops[held_idx], labels[held_idx]
        gq, gl = crops[train_idx], labels[train_idx]
        result.before = heldout_score(old_embedder.embed(hq), hl, old_embedder.embed(gq), gl)
        result.after = heldout_score(new_embedder.embed(hq), hl, new_embedder.embed(gq), gl)
        if cfg.lfw and (LFW_ROOT / "pairs.txt").exists():
            yield LearnProgress("evaluate", message=f"Checking on {cfg.lfw_pairs} LFW pairs…")
            result.lfw_before = _lfw_accuracy(old_embedder.embed, cfg.lfw_pairs)
            result.lfw_after = _lfw_accuracy(new_embedder.embed, cfg.lfw_pairs)
        b, a = result.before, result.after
        numbers = f"before: {b.line()}; after: {a.line()}"
        if a.accuracy < b.accuracy - cfg.max_drop or a.auc < b.auc - cfg.max_drop:
            yield final("refused", result, f"refused: the new model is worse on your held-out faces ({numbers})")
            return
        if cancelled():
            yield final("cancelled", result, "cancelled")
            return
        yield LearnProgress("register", message=f"Activating {model_id}…")
        library.register_model(exported.path, model_id, compatible_with=previous)
    library.activate_model(model_id)
    result.activated, result.model_id = True, model_id

    from engine.model_upgrade import re_embed

    last = None
    for prog in re_embed(library, cancel):
        last = prog
        yield LearnProgress("re-embed", prog.done, prog.total, f"Re-embedding faces {prog.done}/{prog.total}")
    result.re_embedded = last.done if last else 0
    stopped = last is not None and last.stage == "cancelled"
    resumable = " (cancelled: the rest is re-embedded next time)" if stopped else ""
    yield final("done", result, f"activated {model_id}{resumable} ({numbers})")


class _train_steps:
    """Runs ``train`` on a helper thread and yields a LearnProgress per logged step (the caller's
    generator stays responsive); ``.result`` holds the TrainResult afterwards."""

    def __init__(self, train_fn, tcfg, crops, labels, model, old, on_step, logs):
        self.args = (train_fn, tcfg, crops, labels, model, old, on_step)
        self.logs = logs
        self.result = None

    def __iter__(self):
        import queue

        train_fn, tcfg, crops, labels, model, old, on_step = self.args
        q: queue.Queue = queue.Queue()
        box: dict = {}

        def cb(log, m) -> None:
            q.put(log)
            on_step(log, m)

        def run() -> None:
            try:
                box["result"] = train_fn(tcfg, crops, labels, model=model, old_embeddings=old, callback=cb)
            except BaseException as exc:  # re-raised on the caller's thread
                box["error"] = exc
            finally:
                q.put(None)

        t = threading.Thread(target=run, name="personalise-train", daemon=True)
        t.start()
        while (log := q.get()) is not None:
            yield LearnProgress("train", log.step, tcfg.steps, f"Training step {log.step}/{tcfg.steps}, "
                                f"loss {log.loss:.4f}")
        t.join()
        if "error" in box:
            raise box["error"]
        self.result = box["result"]
