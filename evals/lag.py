"""Cross-age verification on a Large Age-Gap (LAG) style folder: a child or young face against an adult
face of the same person, the hard case of a family library.

The folder holds ``labels.tsv`` (tab-separated ``file``, ``identity``, ``age`` with age ``young`` or
``adult``) and ``images/``. Faces go through the same detection, face choice and alignment as LFW
(``evals.lfw.embed_lfw_images``: the face nearest the centre, an upscaled retry, the template as the last
resort), so the numbers compare with the LFW ones.

Protocol (issue 11):

* the identities are split into ``folds`` folds (a seeded permutation, fold = position mod folds);
* positives: every young x adult pair of one identity;
* negatives: in each fold, as many random young x adult pairs of two different identities of that
  fold as the fold has positives (seeded, without repeats);
* accuracy: squared L2 of unit embeddings, threshold chosen on the other folds
  (``evals.protocol.evaluate_distances``), mean and std over folds;
* TAR@FAR=1e-3: the threshold at which 0.1 % of **all** impostor young x adult pairs (two different
  identities, any folds) are accepted, and the fraction of all positives accepted there.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import FacenetPhotosError
from evals.protocol import evaluate_distances, squared_l2

YOUNG, ADULT = "young", "adult"


@dataclass(frozen=True)
class LagFace:
    file: str
    identity: str
    age: str


def read_labels(root: Path) -> list[LagFace]:
    """The rows of ``root/labels.tsv``; FacenetPhotosError in plain words when it is not usable."""
    path = Path(root) / "labels.tsv"
    if not path.is_file():
        raise FacenetPhotosError(f"{path} not found (the folder needs labels.tsv and images/)")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = {"file", "identity", "age"} - set(reader.fieldnames or [])
        if missing:
            raise FacenetPhotosError(f"{path.name} lacks the column(s) {', '.join(sorted(missing))} "
                                     "(expected: file, identity, age)")
        rows = []
        for n, r in enumerate(reader, start=2):
            age = (r["age"] or "").strip().lower()
            if age not in (YOUNG, ADULT):
                raise FacenetPhotosError(f"{path.name} line {n}: age must be 'young' or 'adult', not {r['age']!r}")
            rows.append(LagFace(r["file"].strip(), r["identity"].strip(), age))
    if not rows:
        raise FacenetPhotosError(f"{path.name} has no faces")
    return rows


@dataclass(frozen=True)
class LagPairs:
    a: np.ndarray  # row of the young face
    b: np.ndarray  # row of the adult face
    same: np.ndarray
    fold: np.ndarray
    identity_fold: dict[str, int]


def identity_folds(identities: list[str], folds: int = 10, seed: int = 0) -> dict[str, int]:
    ids = sorted(set(identities))
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[j]: pos % folds for pos, j in enumerate(order)}


def lag_pairs(faces: list[LagFace], folds: int = 10, seed: int = 0) -> LagPairs:
    """The positives and the fold-matched random negatives of the module docstring."""
    fold_of = identity_folds([f.identity for f in faces], folds, seed)
    rng = np.random.default_rng(seed + 1)
    a, b, same, fold = [], [], [], []
    for k in range(folds):
        young = [i for i, f in enumerate(faces) if f.age == YOUNG and fold_of[f.identity] == k]
        adult = [i for i, f in enumerate(faces) if f.age == ADULT and fold_of[f.identity] == k]
        pos = [(y, x) for y in young for x in adult if faces[y].identity == faces[x].identity]
        # Every impostor young x adult pair of this fold, then a random sample as large as the positives.
        neg_all = [(y, x) for y in young for x in adult if faces[y].identity != faces[x].identity]
        take = min(len(pos), len(neg_all))
        neg = [neg_all[j] for j in sorted(rng.choice(len(neg_all), take, replace=False))] if take else []
        for (y, x), s in [(p, True) for p in pos] + [(p, False) for p in neg]:
            a.append(y)
            b.append(x)
            same.append(s)
            fold.append(k)
    return LagPairs(np.array(a, np.int64), np.array(b, np.int64), np.array(same, bool), np.array(fold, np.int64),
                    fold_of)


def impostor_distances(emb: np.ndarray, faces: list[LagFace]) -> np.ndarray:
    """Squared L2 of every young x adult pair of two different identities."""
    young = np.array([i for i, f in enumerate(faces) if f.age == YOUNG], np.int64)
    adult = np.array([i for i, f in enumerate(faces) if f.age == ADULT], np.int64)
    if len(young) == 0 or len(adult) == 0:
        return np.zeros(0)
    ident = np.array([f.identity for f in faces])
    e = np.asarray(emb, np.float32)
    d = np.maximum(0.0, 2.0 - 2.0 * (e[young] @ e[adult].T)).astype(np.float64)
    other = ident[young][:, None] != ident[adult][None, :]
    return d[other]


def tar_at_far(pos: np.ndarray, imp: np.ndarray, far: float = 1e-3) -> tuple[float, float, float]:
    """(TAR, threshold, achieved FAR): the largest threshold accepting at most ``far`` of the impostors."""
    imp = np.sort(np.asarray(imp, np.float64))
    k = int(np.floor(far * len(imp)))  # impostors that may be accepted
    if len(imp) == 0:
        return 0.0, 0.0, 0.0
    # Accept d < imp[k]: exactly the k smallest impostors (ties at imp[k] are rejected).
    t = float(imp[k]) if k < len(imp) else float("inf")
    tar = float((np.asarray(pos) < t).mean()) if len(pos) else 0.0
    achieved = float((imp < t).mean())
    return tar, t, achieved


def evaluate_lag(emb: np.ndarray, faces: list[LagFace], folds: int = 10, seed: int = 0,
                 far_target: float = 1e-3) -> dict:
    pairs = lag_pairs(faces, folds, seed)
    if not pairs.same.any():
        raise FacenetPhotosError("no identity has both a young and an adult face: nothing to verify")
    e = np.asarray(emb, np.float32)
    dist = squared_l2(e[pairs.a], e[pairs.b])
    n_folds = int(len(np.unique(pairs.fold)))
    ev = evaluate_distances(dist, pairs.same, pairs.fold, far_target=far_target)
    imp = impostor_distances(e, faces)
    tar, t, achieved = tar_at_far(dist[pairs.same], imp, far_target)
    return {
        "n_faces": len(faces),
        "n_identities": len(pairs.identity_fold),
        "n_folds": n_folds,
        "n_positive_pairs": int(pairs.same.sum()),
        "n_negative_pairs": int((~pairs.same).sum()),
        "n_impostor_pairs": int(len(imp)),
        "accuracy_mean": round(ev.accuracy_mean, 6),
        "accuracy_std": round(ev.accuracy_std, 6),
        "threshold_mean": round(ev.threshold_mean, 5),
        "auc": round(float(ev.auc), 6),
        "far_target": far_target,
        "tar_at_far": round(tar, 6),
        "tar_threshold": round(t, 5),
        "tar_far_achieved": round(achieved, 7),
        "accuracy_per_fold": [round(float(x), 6) for x in ev.accuracy],
    }


def run_lag_eval(
    lag_root: Path,
    out_dir: Path,
    embedder,
    *,
    folds: int = 10,
    seed: int = 0,
    reuse_embeddings: bool = False,
    on_progress: Callable | None = None,
) -> dict:
    """Embed every face of ``lag_root`` with ``embedder``, evaluate, write ``lag_result.json`` (and the
    embeddings, ``lag_embeddings.npz``, for ``reuse_embeddings``) into ``out_dir``."""
    from evals.lfw import embed_cached

    lag_root, out_dir = Path(lag_root), Path(out_dir)
    faces = read_labels(lag_root)
    img_dir = lag_root / "images"
    absent = [f.file for f in faces if not (img_dir / f.file).is_file()]
    if absent:
        raise FacenetPhotosError(f"{len(absent)} image(s) of labels.tsv are not in {img_dir}, e.g. {absent[0]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / "lag_embeddings.npz"
    rel = [f.file for f in faces]
    t0 = time.perf_counter()
    emb_result, reused = embed_cached(img_dir, rel, cache, embedder, reuse_embeddings, on_progress)
    res = evaluate_lag(emb_result.emb, faces, folds, seed)
    result = {
        "dataset": {"name": lag_root.name, "faces": len(faces)},
        "model": embedder.model_id,
        "protocol": __doc__.split("Protocol (issue 11):", 1)[1].strip(),
        **res,
        "detection": emb_result.counts(),
        "timing": {
            "embeddings_reused": reused,
            "seconds": round(time.perf_counter() - t0, 2),
            "embed_ms_per_face": round(1000 * emb_result.embed_seconds / max(1, len(faces)), 2),
        },
    }
    (out_dir / "lag_result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
