"""LFW (Labeled Faces in the Wild) verification with the app's own pipeline.

Data layout (``lfw_root``): ``pairs.txt``, ``people.txt`` and the images either under ``images/<Name>/``
or directly under ``<Name>/`` (the layout of the original archive).

Each image referenced by the pairs goes through the same code as a photo import (``FaceFinder``:
PIL decode, YuNet detection, 5-point alignment; ``Embedder``: SFace), with LFW-specific face choice:

1. ``detected``: faces found with the normal settings; when several, the one whose box centre is
   nearest the image centre is used (LFW images are centred on the labelled person).
2. ``low_threshold``: no face at the normal score threshold; detection is repeated at
   ``low_score_threshold``.
3. ``upscaled``: still none; detection at the low threshold on a 2x (bicubic) enlargement, the
   landmarks are scaled back and the face aligned from the original image.
4. ``template``: still none; the image centre is aligned with a fixed template, ``CENTRE_LANDMARKS``:
   the median landmark positions of the detected LFW faces, as fractions of the image size (LFW
   crops all put the face at the same place). This is what the original LFW protocol permits
   (every pair must be answered), and it is recorded per image.

``run_lfw_eval`` writes ``lfw_result.json`` and ``lfw_roc.png`` (and ``lfw_embeddings.npz`` so the
metrics can be recomputed without re-embedding).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .protocol import DEFAULT_THRESHOLDS, PairEvaluation, evaluate_distances, squared_l2

OUTCOMES = ("detected", "low_threshold", "upscaled", "template")
ACTIONS = {
    "detected": "face detected with the default settings",
    "low_threshold": "no face at the default score threshold; detected at the lower threshold",
    "upscaled": "no face at the lower threshold; detected on the 2x enlarged image",
    "template": "no face found at all; the image centre was aligned with the fixed LFW template",
}

# Median YuNet landmarks of the LFW faces detected with default settings, as fractions of the image
# width/height (image-left eye first, then the other eye, nose tip, mouth corners), measured on the
# 7,701 images of pairs.txt (150 x 150 copies of LFW; all of them were detected).
CENTRE_LANDMARKS = np.array(
    [
        [0.4164, 0.4504],
        [0.5909, 0.4500],
        [0.5006, 0.5490],
        [0.4286, 0.6261],
        [0.5753, 0.6252],
    ],
    dtype=np.float32,
)


# -- files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LfwPair:
    a: str  # image path relative to the images folder: "Name/Name_0001.jpg"
    b: str
    same: bool
    fold: int


def image_relpath(name: str, number: int | str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def images_dir(lfw_root: Path) -> Path:
    """``lfw_root/images`` when it exists, else ``lfw_root`` itself."""
    root = Path(lfw_root)
    return root / "images" if (root / "images").is_dir() else root


def _lines(path: Path) -> list[list[str]]:
    return [ln.split() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def parse_pairs(path: Path) -> list[LfwPair]:
    """pairs.txt: a header "<folds> <n>" (or just "<n>" for one fold), then per fold n matched lines
    "Name i j" and n mismatched lines "Name1 i Name2 j"."""
    rows = _lines(path)
    if not rows:
        raise ValueError(f"{path}: empty pairs file")
    head = [int(x) for x in rows[0]]
    n_folds, n = (head[0], head[1]) if len(head) == 2 else (1, head[0])
    body = rows[1:]
    if len(body) != n_folds * 2 * n:
        raise ValueError(f"{path}: header says {n_folds} x 2 x {n} pairs, file has {len(body)}")
    pairs = []
    for i, r in enumerate(body):
        fold = i // (2 * n)
        if len(r) == 3:
            pairs.append(LfwPair(image_relpath(r[0], r[1]), image_relpath(r[0], r[2]), True, fold))
        elif len(r) == 4:
            pairs.append(LfwPair(image_relpath(r[0], r[1]), image_relpath(r[2], r[3]), False, fold))
        else:
            raise ValueError(f"{path}: line {i + 2} is neither 'Name i j' nor 'Name1 i Name2 j': {' '.join(r)}")
    return pairs


def parse_people(path: Path) -> list[list[tuple[str, int]]]:
    """people.txt: "<folds>", then per fold "<count>" and count lines "Name n_images". A file with a
    single count followed directly by names (peopleDevTrain.txt) is one fold."""
    rows = _lines(path)
    if not rows:
        raise ValueError(f"{path}: empty people file")
    if len(rows) > 1 and len(rows[1]) == 2:  # single fold
        n = int(rows[0][0])
        return [[(r[0], int(r[1])) for r in rows[1 : 1 + n]]]
    folds, i = [], 1
    for _ in range(int(rows[0][0])):
        n = int(rows[i][0])
        folds.append([(r[0], int(r[1])) for r in rows[i + 1 : i + 1 + n]])
        i += 1 + n
    return folds


def pair_images(pairs: Sequence[LfwPair]) -> list[str]:
    """The distinct images the pairs refer to, sorted."""
    return sorted({p.a for p in pairs} | {p.b for p in pairs})


# -- embedding -----------------------------------------------------------------------------------


@dataclass
class LfwEmbeddings:
    paths: list[str]  # as given to embed_lfw_images
    emb: np.ndarray  # (N, 128) float32, unit
    outcome: list[str]  # one of OUTCOMES per image
    n_faces: np.ndarray  # faces found at the stage that succeeded (0 for "template")
    score: np.ndarray  # detector score of the chosen face (0 for "template")
    landmarks: np.ndarray  # (N, 5, 2) the landmarks used for alignment, image pixels
    image_size: np.ndarray  # (N, 2) width, height
    detect_seconds: float = 0.0
    embed_seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        c = Counter(self.outcome)
        return {k: int(c.get(k, 0)) for k in OUTCOMES}

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, paths=np.array(self.paths), emb=self.emb, outcome=np.array(self.outcome), n_faces=self.n_faces,
            score=self.score, landmarks=self.landmarks, image_size=self.image_size,
            timing=np.array([self.detect_seconds, self.embed_seconds]),
        )

    @classmethod
    def load(cls, path: Path) -> LfwEmbeddings:
        with np.load(path, allow_pickle=False) as z:
            t = z["timing"]
            return cls(
                [str(p) for p in z["paths"]], z["emb"], [str(o) for o in z["outcome"]], z["n_faces"], z["score"],
                z["landmarks"], z["image_size"], float(t[0]), float(t[1]),
            )


@dataclass
class EmbedProgress:
    done: int
    total: int
    elapsed: float
    current: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    result: LfwEmbeddings | None = None  # set on the last item only

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


def centre_landmarks(width: int, height: int) -> np.ndarray:
    """The fixed fallback: ``CENTRE_LANDMARKS`` in pixels of a width x height image."""
    return CENTRE_LANDMARKS * np.array([width, height], np.float32)


def nearest_centre(dets: Sequence, width: float, height: float):
    """The detection (anything with ``box`` x, y, w, h) whose box centre is nearest the image centre."""
    from engine.pipeline.detect import centre_offset

    return min(dets, key=lambda d: centre_offset(d.box, width, height))


class _LfwFaceChooser:
    """Runs the stages of the module docstring for one image at a time."""

    def __init__(self, detect_config, low_score_threshold: float, upscale: float):
        from engine.config import DetectConfig
        from engine.pipeline.faces import FaceFinder

        cfg = detect_config or DetectConfig()
        self.cfg = cfg
        self.upscale = upscale
        self.finder = FaceFinder(cfg)
        self.low_finder = FaceFinder(replace(cfg, score_threshold=min(low_score_threshold, cfg.score_threshold)))

    def choose(self, path: Path) -> tuple[str, np.ndarray, np.ndarray, int, float, tuple[int, int]]:
        """(outcome, crop, landmarks, n_faces, score, (width, height))."""
        import cv2

        from engine.pipeline.align import align_face
        from engine.pipeline.decode import decode

        for outcome, finder in (("detected", self.finder), ("low_threshold", self.low_finder)):
            found = finder.find(path)
            if found.faces:
                f = nearest_centre(found.faces, found.width, found.height)
                return outcome, f.crop, f.landmarks, len(found.faces), f.score, (found.width, found.height)
        rgb, scale = decode(path, None)
        h, w = rgb.shape[:2]
        big = cv2.resize(rgb, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_CUBIC)
        dets = self.low_finder.detector.detect(big, min_face_px=self.cfg.min_face_px * self.upscale)
        if dets:
            d = nearest_centre(dets, big.shape[1], big.shape[0]).scaled(1.0 / self.upscale)
            return "upscaled", align_face(rgb, d.landmarks), d.landmarks, len(dets), d.score, (w, h)
        lm = centre_landmarks(w, h)
        return "template", align_face(rgb, lm), lm, 0, 0.0, (w, h)


def embed_lfw_images(
    paths: Sequence[Path | str],
    *,
    detect_config=None,
    embed_config=None,
    low_score_threshold: float = 0.3,
    upscale: float = 2.0,
    batch: int = 64,
    embedder=None,
) -> Iterator[EmbedProgress]:
    """Detect, choose, align and embed each image (see the module docstring).

    A generator of progress, one item per image; the last item carries ``result`` (``LfwEmbeddings``).
    Faces are embedded ``batch`` images at a time.
    """
    from engine.pipeline.embed import Embedder

    chooser = _LfwFaceChooser(detect_config, low_score_threshold, upscale)
    embedder = embedder or Embedder(embed_config)
    n = len(paths)
    emb = np.zeros((n, embedder.dim), np.float32)
    outcome: list[str] = []
    n_faces = np.zeros(n, np.int32)
    score = np.zeros(n, np.float32)
    landmarks = np.zeros((n, 5, 2), np.float32)
    sizes = np.zeros((n, 2), np.int32)
    counts = dict.fromkeys(OUTCOMES, 0)
    t0 = time.perf_counter()
    t_detect = t_embed = 0.0
    crops: list[np.ndarray] = []
    start = 0
    for i, p in enumerate(paths):
        t = time.perf_counter()
        o, crop, lm, nf, sc, size = chooser.choose(Path(p))
        t_detect += time.perf_counter() - t
        outcome.append(o)
        counts[o] += 1
        landmarks[i], n_faces[i], score[i], sizes[i] = lm, nf, sc, size
        crops.append(crop)
        if len(crops) >= batch or i == n - 1:
            t = time.perf_counter()
            emb[start : i + 1] = embedder.embed(np.stack(crops))
            t_embed += time.perf_counter() - t
            start, crops = i + 1, []
        prog = EmbedProgress(i + 1, n, time.perf_counter() - t0, str(p), dict(counts))
        if i == n - 1:
            prog.result = LfwEmbeddings(
                [str(x) for x in paths], emb, outcome, n_faces, score, landmarks, sizes, t_detect, t_embed
            )
        yield prog
    if n == 0:
        yield EmbedProgress(0, 0, 0.0, "", dict(counts), LfwEmbeddings(
            [], emb, [], n_faces, score, landmarks, sizes))


def embed_lfw(paths: Sequence[Path | str], **kwargs) -> LfwEmbeddings:
    """``embed_lfw_images`` without the progress."""
    result = None
    for prog in embed_lfw_images(paths, **kwargs):
        result = prog.result
    assert result is not None
    return result


# -- evaluation ----------------------------------------------------------------------------------


def pair_arrays(
    pairs: Sequence[LfwPair], index: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row of a, row of b, issame, fold) for each pair, rows into the embedding matrix."""
    ia = np.array([index[p.a] for p in pairs], np.int64)
    ib = np.array([index[p.b] for p in pairs], np.int64)
    same = np.array([p.same for p in pairs], bool)
    fold = np.array([p.fold for p in pairs], np.int64)
    return ia, ib, same, fold


def plot_roc(evals: dict[str, PairEvaluation], path: Path, title: str = "LFW verification") -> None:
    """ROC (log FAR axis) of each evaluation, plus the distance histograms of the first one."""
    from evals import plots

    fig, (ax, hx) = plots.subplots(2, figsize=(11, 4.5))
    for (label, ev), style in zip(evals.items(), ("-", "--", ":", "-."), strict=False):
        fpr, tpr, _, auc = ev.roc()
        keep = fpr > 0
        ax.plot(fpr[keep], tpr[keep], style, label=f"{label}: acc {100 * ev.accuracy_mean:.2f}%, AUC {auc:.4f}")
    first = next(iter(evals.values()))
    ax.axvline(first.far_target, color="grey", lw=0.8)
    ax.plot([first.far_mean], [first.val_mean], "o", color="C3",
            label=f"VAL@FAR={first.far_target:g} (10-fold): {100 * first.val_mean:.2f}%")
    ax.set_xscale("log")
    ax.set_xlim(1.0 / max(1, first.n_pairs - first.n_same) / 2, 1.0)
    fpr0, tpr0, _, _ = first.roc()
    low = float(tpr0[fpr0 > 0].min()) if (fpr0 > 0).any() else 0.0
    ax.set_ylim(max(0.0, np.floor((low - 0.01) * 50) / 50), 1.0005)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (VAL)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    d, s = first.distances, first.issame
    bins = np.linspace(0, 4, 81)
    hx.hist(d[s], bins=bins, alpha=0.6, label="same person")
    hx.hist(d[~s], bins=bins, alpha=0.6, label="different people")
    hx.axvline(first.threshold_mean, color="k", lw=1, label=f"threshold {first.threshold_mean:.3f}")
    hx.set_xlabel("squared L2 distance")
    hx.set_ylabel("pairs")
    hx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def embed_cached(img_dir: Path, rel: list[str], cache: Path, embedder, reuse: bool = False, on_progress=None,
                 detect_config=None) -> tuple[LfwEmbeddings, bool]:
    """(the embeddings of ``img_dir / rel``, whether they came from ``cache``): reused only when the
    cache holds exactly these files at this embedder's size; otherwise embedded and saved there."""
    if reuse and cache.exists():
        got = LfwEmbeddings.load(cache)
        if got.paths == rel and got.emb.shape[1] == embedder.dim:
            return got, True
    emb_result = None
    for prog in embed_lfw_images([img_dir / r for r in rel], detect_config=detect_config, embedder=embedder):
        if on_progress is not None:
            on_progress(prog)
        if prog.result is not None:
            emb_result = prog.result
    assert emb_result is not None
    emb_result.paths = rel  # relative names: no machine paths in the outputs
    emb_result.save(cache)
    return emb_result, False


def run_lfw_eval(
    lfw_root: Path,
    out_dir: Path,
    *,
    pairs_file: str = "pairs.txt",
    detect_config=None,
    embed_config=None,
    far_target: float = 1e-3,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
    reuse_embeddings: bool = False,
    on_progress: Callable[[EmbedProgress], None] | None = None,
    embedder=None,
) -> dict:
    """Embed every image of ``pairs_file`` and evaluate float32 and int8 (one byte per dimension)
    storage, with ``embedder`` (default: SFace with ``embed_config``).

    Writes ``lfw_result.json``, ``lfw_roc.png`` and ``lfw_embeddings.npz`` into ``out_dir`` and returns
    the JSON content. With ``reuse_embeddings``, an ``lfw_embeddings.npz`` already in ``out_dir`` that
    covers the same images is used instead of embedding again.
    """
    from engine.models.quantize import dequantize, quantize, scale_for
    from engine.models.registry import YUNET
    from engine.pipeline.embed import Embedder

    embedder = embedder or Embedder(embed_config)

    lfw_root = Path(lfw_root)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = parse_pairs(lfw_root / pairs_file)
    rel = pair_images(pairs)
    img_dir = images_dir(lfw_root)
    cache = out_dir / "lfw_embeddings.npz"
    t0 = time.perf_counter()
    emb_result, reused = embed_cached(img_dir, rel, cache, embedder, reuse_embeddings, on_progress, detect_config)
    t_embed_total = time.perf_counter() - t0

    t1 = time.perf_counter()
    index = {r: i for i, r in enumerate(rel)}
    ia, ib, same, fold = pair_arrays(pairs, index)
    emb32 = emb_result.emb.astype(np.float32)
    emb8 = dequantize(quantize(emb32))
    ev32 = evaluate_distances(squared_l2(emb32[ia], emb32[ib]), same, fold, far_target=far_target,
                              thresholds=thresholds)
    ev8 = evaluate_distances(squared_l2(emb8[ia], emb8[ib]), same, fold, far_target=far_target,
                             thresholds=thresholds)
    t_eval = time.perf_counter() - t1
    # Same-threshold decisions: how many pairs change their answer when stored as int8.
    t = ev32.threshold_mean
    flips = int(((ev32.distances <= t) != (ev8.distances <= t)).sum())

    wrong = [
        {"a": pairs[i].a, "b": pairs[i].b, "same": bool(same[i]), "fold": int(fold[i]),
         "distance": round(float(ev32.distances[i]), 4),
         "fold_threshold": round(float(ev32.threshold[ev32.fold_index[i]]), 4),
         "outcomes": [emb_result.outcome[ia[i]], emb_result.outcome[ib[i]]]}
        for i in ev32.errors()
    ]
    counts = emb_result.counts()
    failures = [
        {"image": r, "outcome": o, "action": ACTIONS[o], "score": round(float(s), 4)}
        for r, o, s in zip(rel, emb_result.outcome, emb_result.score, strict=True)
        if o != "detected"
    ]
    n_img = len(rel)
    result = {
        "dataset": {
            "name": "LFW",
            "pairs_file": pairs_file,
            "n_pairs": len(pairs),
            "n_same": int(same.sum()),
            "n_folds": int(len(np.unique(fold))),
            "n_images": n_img,
        },
        "models": {"detector": YUNET.model_id, "embedder": embedder.model_id},
        "protocol": (
            "squared L2 of unit embeddings, same iff d <= t; accuracy: t chosen per fold on the other folds "
            "(max accuracy over a 0.0005 grid on [0, 4], middle of ties), tested on the held-out fold; "
            "VAL@FAR: t per fold = largest grid value with training FAR <= target, VAL and FAR measured on the "
            "held-out fold; mean and population std over folds"
        ),
        "accuracy_mean": round(ev32.accuracy_mean, 6),
        "accuracy_std": round(ev32.accuracy_std, 6),
        "threshold_mean": round(ev32.threshold_mean, 5),
        "val_mean": round(ev32.val_mean, 6),
        "val_std": round(ev32.val_std, 6),
        "far_mean": round(ev32.far_mean, 6),
        "far_std": round(ev32.far_std, 6),
        "far_target": far_target,
        "float32": ev32.to_dict(),
        "int8": {
            **ev8.to_dict(),
            "bytes_per_face": int(emb32.shape[1]),
            "scale": scale_for(emb32.shape[1]),
            "clipped_components": int((np.abs(np.rint(emb32 * scale_for(emb32.shape[1]))) > 127).sum()),
            "max_abs_component": round(float(np.abs(emb32).max()), 4),
        },
        "int8_minus_float32_accuracy": round(ev8.accuracy_mean - ev32.accuracy_mean, 6),
        "int8_decision_flips_at_mean_threshold": flips,
        "float32_errors": wrong,
        "detection": {
            "counts": counts,
            "multiple_faces": int((emb_result.n_faces > 1).sum()),
            "not_detected_with_defaults": len(failures),
            "failures": failures,
        },
        "timing": {
            "embeddings_reused": reused,
            "images": n_img,
            "embed_stage_seconds": round(t_embed_total, 2),
            "detect_align_seconds": round(emb_result.detect_seconds, 2),
            "embed_seconds": round(emb_result.embed_seconds, 2),
            "images_per_second": round(n_img / max(1e-9, emb_result.detect_seconds + emb_result.embed_seconds), 2),
            "evaluate_seconds": round(t_eval, 3),
        },
    }
    (out_dir / "lfw_result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot_roc({"float32": ev32, f"int8 ({emb32.shape[1]} bytes)": ev8}, out_dir / "lfw_roc.png")
    return result
