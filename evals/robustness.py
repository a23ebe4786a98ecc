"""Robustness to image quality, in the manner of FaceNet's Table 4 (JPEG quality and image size).

Each LFW image of the selected pairs folds is degraded, written to a temporary file and sent through the
app's full pipeline (``embed_lfw_images``: decode, YuNet detection with the LFW face choice and its
fallbacks, alignment, SFace). Both images of every pair are degraded the same way ("degraded vs
degraded"); "degraded vs original" (only the first image of each pair degraded) is reported alongside.

Conditions (``Condition``):

* ``jpeg``: the decoded original re-encoded as a baseline JPEG at the given quality (Pillow, the IJG
  quantisation tables scaled for that quality, default 4:2:0 chroma subsampling). Our LFW copy is itself
  JPEG at about quality 90, so this is a second compression.
* ``width``: the decoded original downscaled (Lanczos, aspect kept) to the given width and stored
  losslessly (PNG), so that only the resolution changes. Our copy is 150 x 150 with a face about 60 px
  wide: 120 / 80 / 60 / 40 px wide images have faces of about 48 / 32 / 24 / 16 px.
* ``original``: the files as they are.

Protocol on the selected folds (by default folds 1-3 of ``pairs.txt``, 1,800 pairs): for each fold the
threshold is chosen on the other selected folds (k-fold as in ``evaluate_distances``). Also reported: the
accuracy and VAL/FAR with thresholds fixed on the *clean* images of the remaining folds (4-10), i.e. what
an app with one global threshold would see. Per-condition embeddings are cached (``cache_dir``), so a
rerun only embeds what is missing.

Baseline (``baseline="dlib"``): face_recognition / dlib (``baseline.DlibEncoder``: HOG, centre-nearest
face, 2x upsampling and fixed-box fallbacks, ResNet descriptor) on exactly the same files as ours: each
condition's degraded files are written once and read by both pipelines (a SHA-256 of the bytes is kept
with each cache to check it across runs). Its distance is the squared Euclidean distance of the raw
descriptors, with the same protocol (k-fold on the selected folds, thresholds fixed on its own clean
images of the other folds). dlib's embeddings are cached per condition under ``cache_dir/dlib/`` and
saved as they progress, so a long run can be done in pieces (``time_budget_s``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .protocol import DEFAULT_THRESHOLDS, best_accuracy_threshold, evaluate_distances, squared_l2, threshold_for_far

BASELINES = ("dlib",)
JPEG_QUALITIES = (10, 20, 30, 50, 70, 90)
WIDTHS = (120, 80, 60, 40)
DEFAULT_FOLDS = (0, 1, 2)  # folds 1-3 of pairs.txt

# IJG (libjpeg) standard luminance quantisation table, natural (row-major) order: quality 50.
_IJG_LUMA = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.int64,
)


# -- degradations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    kind: str  # "original", "jpeg" or "width"
    value: int = 0

    def __post_init__(self):
        if self.kind not in ("original", "jpeg", "width"):
            raise ValueError(f"unknown condition kind {self.kind!r}")
        if self.kind == "jpeg" and not 1 <= self.value <= 100:
            raise ValueError(f"JPEG quality must be 1..100, got {self.value}")
        if self.kind == "width" and self.value < 1:
            raise ValueError(f"width must be positive, got {self.value}")

    @property
    def name(self) -> str:
        return "original" if self.kind == "original" else f"{self.kind}_{self.value}"

    @property
    def suffix(self) -> str:
        return ".png" if self.kind == "width" else ".jpg"

    @classmethod
    def parse(cls, name: str) -> Condition:
        if name == "original":
            return cls("original")
        kind, _, value = name.partition("_")
        return cls(kind, int(value))


def default_conditions() -> list[Condition]:
    return (
        [Condition("original")]
        + [Condition("jpeg", q) for q in JPEG_QUALITIES]
        + [Condition("width", w) for w in WIDTHS]
    )


def ijg_luma_table(quality: int) -> np.ndarray:
    """The luminance quantisation table libjpeg (and Pillow) use for ``quality`` (natural order)."""
    q = int(np.clip(quality, 1, 100))
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)


def jpeg_quality_estimate(data: bytes) -> tuple[int, bool]:
    """(quality, exact) of a JPEG: the IJG quality whose luminance table is nearest the file's, and
    whether it matches exactly (False for encoders with other tables)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        table = np.asarray(im.quantization[0], np.int64)
    errs = [int(np.abs(ijg_luma_table(q) - table).sum()) for q in range(1, 101)]
    best = int(np.argmin(errs))
    return best + 1, errs[best] == 0


def jpeg_reencode(rgb: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG bytes of an RGB uint8 image at ``quality`` (Pillow / libjpeg tables)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8), "RGB").save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def downscale(rgb: np.ndarray, width: int) -> np.ndarray:
    """``rgb`` resized (Lanczos, antialiased) to ``width`` pixels wide, aspect ratio kept. Never enlarges."""
    from PIL import Image

    h, w = rgb.shape[:2]
    if width > w:
        raise ValueError(f"cannot downscale a {w} px wide image to {width} px")
    if width == w:
        return np.asarray(rgb, np.uint8).copy()
    height = max(1, round(h * width / w))
    im = Image.fromarray(np.asarray(rgb, np.uint8), "RGB").resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(im)


def degrade_bytes(rgb: np.ndarray, cond: Condition) -> bytes:
    """The encoded file content for ``cond`` (JPEG for ``jpeg``, PNG for ``width``)."""
    from PIL import Image

    if cond.kind == "jpeg":
        return jpeg_reencode(rgb, cond.value)
    if cond.kind == "width":
        buf = io.BytesIO()
        Image.fromarray(downscale(rgb, cond.value), "RGB").save(buf, "PNG")
        return buf.getvalue()
    raise ValueError("the original condition is not re-encoded")


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# -- embedding with a cache ----------------------------------------------------------------------


@dataclass
class DegradedFiles:
    """The files of one condition, in the order of the image list: degraded copies (or the originals)."""

    files: list[Path]
    n_bytes: int
    sha256: str | None  # of the degraded bytes in order; None for the original files


@contextlib.contextmanager
def degraded_files(img_dir: Path, rel: Sequence[str], cond: Condition) -> Iterator[DegradedFiles]:
    """The files for ``cond``: the originals, or degraded copies in a temporary folder (removed on exit).
    Both pipelines read these same files."""
    if cond.kind == "original":
        files = [Path(img_dir) / r for r in rel]
        yield DegradedFiles(files, sum(f.stat().st_size for f in files), None)
        return
    with tempfile.TemporaryDirectory(prefix="lfw_degraded_") as tmp:
        files, n_bytes, h = [], 0, hashlib.sha256()
        for i, r in enumerate(rel):
            data = degrade_bytes(_read_rgb(Path(img_dir) / r), cond)
            n_bytes += len(data)
            h.update(data)
            f = Path(tmp) / f"{i:05d}{cond.suffix}"
            f.write_bytes(data)
            files.append(f)
        yield DegradedFiles(files, n_bytes, h.hexdigest())


def embed_condition(
    img_dir: Path,
    rel: Sequence[str],
    cond: Condition,
    cache_dir: Path,
    *,
    embed_config=None,
    on_progress: Callable | None = None,
    degraded: DegradedFiles | None = None,
):
    """``LfwEmbeddings`` of ``rel`` under ``cond``, from ``cache_dir/<name>.npz`` when it covers exactly
    these images, else computed (degraded copies in a temporary folder, or ``degraded`` when given) and
    cached. Returns (embeddings, reused, seconds, bytes of the degraded files)."""
    from .lfw import LfwEmbeddings

    cache_dir = Path(cache_dir)
    cache = cache_dir / f"{cond.name}.npz"
    meta = cache_dir / f"{cond.name}.json"
    if cache.exists():
        res = LfwEmbeddings.load(cache)
        if res.paths == list(rel):
            info = json.loads(meta.read_text()) if meta.exists() else {}
            return res, True, float(info.get("seconds", 0.0)), int(info.get("file_bytes", 0))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if degraded is None:
            degraded = stack.enter_context(degraded_files(img_dir, rel, cond))
        t0 = time.perf_counter()
        res = _embed_ours(degraded.files, cond, embed_config, on_progress)
        seconds = time.perf_counter() - t0
    res.paths = list(rel)
    res.save(cache)
    info = {"seconds": round(seconds, 2), "file_bytes": degraded.n_bytes}
    if degraded.sha256 is not None:
        info["sha256"] = degraded.sha256
    meta.write_text(json.dumps(info) + "\n")
    return res, False, seconds, degraded.n_bytes


def _embed_ours(files: Sequence[Path], cond: Condition, embed_config, on_progress: Callable | None):
    from .lfw import embed_lfw_images

    res = None
    for prog in embed_lfw_images(files, embed_config=embed_config):
        if on_progress is not None:
            on_progress(cond, prog)
        if prog.result is not None:
            res = prog.result
    assert res is not None
    return res


def _read_meta(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def dlib_cache_complete(cache_dir: Path, cond: Condition, rel: Sequence[str]) -> bool:
    """Whether ``cache_dir/dlib/<name>.npz`` holds every image of ``rel``."""
    from .baseline import DlibEmbeddings

    cache = Path(cache_dir) / "dlib" / f"{cond.name}.npz"
    return cache.exists() and set(rel) <= set(DlibEmbeddings.load(cache).paths)


def embed_condition_dlib(
    img_dir: Path,
    rel: Sequence[str],
    cond: Condition,
    cache_dir: Path,
    *,
    degraded: DegradedFiles | None = None,
    time_budget_s: float | None = None,
    on_progress: Callable[[Condition, int, int, float], None] | None = None,
):
    """dlib's embeddings of ``rel`` under ``cond``, continuing ``cache_dir/dlib/<name>.npz`` (saved as
    they progress; stops after ``time_budget_s``). ``degraded``: the files ours read (made here when not
    given). A partial cache made from other bytes (another Pillow, say) is started again. Returns
    (``DlibEmbeddings`` in the order of ``rel`` or None while images are missing, missing count, info)."""
    from .baseline import DlibEmbeddings, embed_dlib_cached

    d = Path(cache_dir) / "dlib"
    cache, meta = d / f"{cond.name}.npz", d / f"{cond.name}.json"
    with contextlib.ExitStack() as stack:
        if not dlib_cache_complete(cache_dir, cond, rel):
            if degraded is None:
                degraded = stack.enter_context(degraded_files(img_dir, rel, cond))
            old = _read_meta(meta)
            if cache.exists() and old.get("sha256") != degraded.sha256:
                cache.unlink()
            d.mkdir(parents=True, exist_ok=True)
            info = {"file_bytes": degraded.n_bytes, "sha256": degraded.sha256}
            meta.write_text(json.dumps(info) + "\n")
            prog = None if on_progress is None else (lambda i, n, secs: on_progress(cond, i, n, secs))
            embed_dlib_cached(img_dir, rel, cache, time_budget_s=time_budget_s, on_progress=prog,
                              files=dict(zip(rel, degraded.files, strict=True)))
            reused = False
        else:
            reused = True
    dl = DlibEmbeddings.load(cache)
    info = _read_meta(meta) | {"seconds": round(dl.seconds, 2), "reused": reused}
    index = {p: i for i, p in enumerate(dl.paths)}
    missing = sum(r not in index for r in rel)
    return (None if missing else _dlib_subset(dl, index, rel)), missing, info


def _dlib_subset(dl, index: dict[str, int], rel: Sequence[str]):
    from .baseline import DlibEmbeddings

    rows = np.array([index[r] for r in rel], np.int64)
    return DlibEmbeddings(list(rel), dl.emb[rows], [dl.outcome[i] for i in rows], dl.n_faces[rows],
                          dl.boxes[rows], dl.seconds)


# -- evaluation ----------------------------------------------------------------------------------


def fixed_threshold_metrics(dist: np.ndarray, issame: np.ndarray, t_acc: float, t_far: float) -> dict:
    """Accuracy at ``t_acc`` and VAL / FAR at ``t_far`` (thresholds chosen elsewhere)."""
    dist = np.asarray(dist, np.float64)
    issame = np.asarray(issame, bool)
    acc = float(((dist <= t_acc) == issame).mean())
    val = float((dist[issame] <= t_far).mean()) if issame.any() else 0.0
    far = float((dist[~issame] <= t_far).mean()) if (~issame).any() else 0.0
    return {"accuracy": round(acc, 6), "threshold": round(float(t_acc), 5), "val": round(val, 6),
            "far": round(far, 6), "false_accepts": int((dist[~issame] <= t_far).sum()),
            "val_threshold": round(float(t_far), 5)}


def condition_metrics(
    dist: np.ndarray,
    issame: np.ndarray,
    fold: np.ndarray,
    *,
    t_acc_clean: float | None,
    t_far_clean: float | None,
    far_target: float = 1e-3,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
) -> dict:
    """k-fold metrics over the given folds plus the fixed-clean-threshold metrics (None when the clean
    thresholds are not known)."""
    ev = evaluate_distances(dist, issame, fold, far_target=far_target, thresholds=thresholds)
    d = ev.to_dict()
    keep = ("accuracy_mean", "accuracy_std", "accuracy_per_fold", "threshold_mean", "threshold_per_fold",
            "val_mean", "val_std", "far_mean", "auc")
    out = {k: d[k] for k in keep}
    out["fixed_clean_threshold"] = (None if t_acc_clean is None or t_far_clean is None
                                    else fixed_threshold_metrics(dist, issame, t_acc_clean, t_far_clean))
    return out


def _plot(rows: dict[str, dict], conds: list[Condition], path: Path, title: str) -> None:
    from evals import plots

    fig, axes = plots.subplots(2, figsize=(11, 4.2))
    base = rows.get("original")
    with_dlib = any("dlib" in r for r in rows.values())
    ours = "ours: " if with_dlib else ""
    for ax, kind, xlabel in ((axes[0], "jpeg", "JPEG quality"), (axes[1], "width", "image width (px)")):
        cs = sorted((c for c in conds if c.kind == kind and c.name in rows), key=lambda c: c.value)
        if not cs:
            ax.set_visible(False)
            continue
        x = [c.value for c in cs]
        if kind == "width" and base is not None:
            x = x + [150]
            cs_rows = [rows[c.name] for c in cs] + [base]
        else:
            cs_rows = [rows[c.name] for c in cs]
        dd = [r["degraded_vs_degraded"] for r in cs_rows]
        ax.plot(x, [100 * r["accuracy_mean"] for r in dd], "o-", color="C0", label=f"{ours}accuracy (k-fold on folds)")
        ax.plot(x, [100 * r["fixed_clean_threshold"]["accuracy"] for r in dd], "s--", color="C1",
                label=f"{ours}accuracy at the clean threshold")
        ax.plot(x, [100 * r["fixed_clean_threshold"]["val"] for r in dd], "^:", color="C2",
                label=f"{ours}VAL at the clean FAR=1e-3 threshold")
        dr = [r["degraded_vs_original"] for r in cs_rows]
        ax.plot(x, [100 * r["accuracy_mean"] for r in dr], "x-", color="C3", alpha=0.6,
                label=f"{ours}accuracy, degraded vs original")
        if base is not None and kind == "jpeg":
            ax.axhline(100 * base["degraded_vs_degraded"]["accuracy_mean"], color="grey", lw=0.8,
                       label=f"{ours}original files")
        if with_dlib:
            pts = [(v, r["dlib"]["degraded_vs_degraded"]) for v, r in zip(x, cs_rows, strict=True) if "dlib" in r]
            if pts:
                ax.errorbar([v for v, _ in pts], [100 * m["accuracy_mean"] for _, m in pts],
                            yerr=[100 * m["accuracy_std"] for _, m in pts], fmt="D-", color="C4", ms=4,
                            capsize=2, label="dlib: accuracy (k-fold on folds) ± std")
                fx = [(v, m["fixed_clean_threshold"]) for v, m in pts if m["fixed_clean_threshold"] is not None]
                if fx:
                    ax.plot([v for v, _ in fx], [100 * m["accuracy"] for _, m in fx], "d--", color="C4",
                            alpha=0.5, label="dlib: accuracy at its clean threshold")
            if base is not None and kind == "jpeg" and "dlib" in base:
                ax.axhline(100 * base["dlib"]["degraded_vs_degraded"]["accuracy_mean"], color="C4", lw=0.8,
                           alpha=0.5, label="dlib: original files")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("%")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _first_pairs_per_fold(pairs: Sequence, n: int | None) -> list:
    """The first ``ceil(n / 2)`` matched and ``n // 2`` mismatched pairs of each fold (all when None)."""
    if n is None:
        return list(pairs)
    out = []
    for f in sorted({p.fold for p in pairs}):
        fp = [p for p in pairs if p.fold == f]
        out += [p for p in fp if p.same][: (n + 1) // 2] + [p for p in fp if not p.same][: n // 2]
    return out


def _files_check(ours_meta: dict, dlib_info: dict, cond: Condition) -> str:
    """Whether dlib read the same bytes as ours, as far as the caches tell."""
    if cond.kind == "original":
        return "the original files"
    a, b = ours_meta.get("sha256"), dlib_info.get("sha256")
    if a is not None and b is not None:
        return "sha256 equal" if a == b else "sha256 differs"
    same = ours_meta.get("file_bytes") == dlib_info.get("file_bytes")
    return f"total bytes {'equal' if same else 'differ'} (ours cached without a digest)"


def run_robustness_eval(
    lfw_root: Path,
    out_dir: Path,
    cache_dir: Path,
    *,
    conditions: Sequence[Condition] | None = None,
    folds: Sequence[int] = DEFAULT_FOLDS,
    pairs_file: str = "pairs.txt",
    embed_config=None,
    far_target: float = 1e-3,
    time_budget_s: float | None = None,
    reference_embeddings: Path | None = None,
    on_progress: Callable | None = None,
    baseline: str | None = None,
    baseline_reference: Path | None = None,
    on_baseline_progress: Callable[[Condition, int, int, float], None] | None = None,
    pairs_per_fold: int | None = None,
) -> dict:
    """FaceNet Table 4 style robustness on the pairs of ``folds`` (0-based; default folds 1-3).

    Embeds each condition (or reuses ``cache_dir``), then writes ``robustness_result.json`` and
    ``robustness.png`` into ``out_dir`` and returns the JSON content. With ``time_budget_s``, no new
    condition is started once that many seconds have passed; the result then lists the conditions still
    ``missing`` (run again to continue; the cache keeps what was done).

    ``reference_embeddings``: an ``lfw_embeddings.npz`` of ``run_lfw_eval`` (the same pipeline on the
    original files); when it covers the images, the original condition and the clean images of the other
    folds are taken from it instead of being embedded again.

    ``baseline="dlib"``: also face_recognition / dlib on the same files (module docstring); each condition
    row gets a ``dlib`` entry, and ``side_by_side`` lists both accuracies. dlib's embedding stops when the
    budget has passed, also inside a condition (saved; ``baseline_missing`` lists what is left).
    ``baseline_reference``: dlib's ``dlib_lfw.npz`` of ``run_dlib_baseline`` (original files), used like
    ``reference_embeddings``. ``on_baseline_progress(cond, done, total, seconds)``.

    ``pairs_per_fold``: only the first n/2 matched and n/2 mismatched pairs of each fold (quick checks;
    give such a run its own ``cache_dir``, since a cache holds one image list per condition).
    """
    from engine.models.registry import SFACE, YUNET

    from .lfw import images_dir, pair_arrays, pair_images, parse_pairs

    if baseline is not None:
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r} (known: {', '.join(BASELINES)})")
        from .baseline import require_face_recognition

        require_face_recognition()
    lfw_root, out_dir, cache_dir = Path(lfw_root), Path(out_dir), Path(cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    conds = list(conditions) if conditions is not None else default_conditions()
    if not any(c.kind == "original" for c in conds):
        conds = [Condition("original")] + conds
    all_pairs = _first_pairs_per_fold(parse_pairs(lfw_root / pairs_file), pairs_per_fold)
    folds = sorted(int(f) for f in folds)
    test_pairs = [p for p in all_pairs if p.fold in folds]
    clean_pairs = [p for p in all_pairs if p.fold not in folds]
    if not test_pairs:
        raise ValueError(f"no pairs in folds {folds}")
    rel = pair_images(test_pairs)
    img_dir = images_dir(lfw_root)
    t_start = time.perf_counter()

    def over_budget() -> bool:
        return time_budget_s is not None and time.perf_counter() - t_start > time_budget_s

    def budget_left() -> float | None:
        return None if time_budget_s is None else max(0.0, time_budget_s - (time.perf_counter() - t_start))

    ref = _load_reference(reference_embeddings)
    dref = _load_dlib_reference(baseline_reference) if baseline == "dlib" else None
    embs, info, missing = {}, {}, []
    dembs, dinfo, dmissing = {}, {}, []
    for c in conds:
        ours_ref = c.kind == "original" and ref is not None and all(r in ref[1] for r in rel)
        ours_todo = not ours_ref and not (cache_dir / f"{c.name}.npz").exists()
        dlib_ref = baseline == "dlib" and c.kind == "original" and dref is not None and all(r in dref[1] for r in rel)
        dlib_todo = baseline == "dlib" and not dlib_ref and not dlib_cache_complete(cache_dir, c, rel)
        with contextlib.ExitStack() as stack:
            # One set of files for both pipelines when both embed this condition now.
            shared = None
            if ours_todo and dlib_todo and not over_budget():
                shared = stack.enter_context(degraded_files(img_dir, rel, c))
            if ours_ref:
                embs[c.name] = _subset(ref[0], ref[1], rel)
                info[c.name] = {"reused": True, "seconds": 0.0,
                                "file_bytes": sum((img_dir / r).stat().st_size for r in rel)}
            elif ours_todo and over_budget():
                missing.append(c.name)
            else:
                res, reused, secs, nbytes = embed_condition(img_dir, rel, c, cache_dir, embed_config=embed_config,
                                                            on_progress=on_progress, degraded=shared)
                embs[c.name] = res
                info[c.name] = {"reused": reused, "seconds": round(secs, 2), "file_bytes": nbytes}
            if baseline != "dlib":
                continue
            if dlib_ref:
                dembs[c.name] = _dlib_subset(dref[0], dref[1], rel)
                dinfo[c.name] = {"reused": True, "seconds": 0.0, "from_reference": True}
            elif dlib_todo and over_budget():
                dmissing.append(c.name)
            else:
                de, n_missing, di = embed_condition_dlib(img_dir, rel, c, cache_dir, degraded=shared,
                                                         time_budget_s=budget_left(),
                                                         on_progress=on_baseline_progress)
                if de is None:
                    dmissing.append(c.name)
                else:
                    dembs[c.name], dinfo[c.name] = de, di
    # The original is needed for the mixed pairs and always comes first.
    if "original" not in embs:
        raise RuntimeError("the original condition was not embedded")

    # Thresholds fixed on the clean images of the other folds (an app has one threshold for all photos).
    dlib_clean: tuple[float, float] | None = None
    if clean_pairs:
        clean_rel = pair_images(clean_pairs)
        if ref is not None and all(r in ref[1] for r in clean_rel):
            clean_emb = ref[0].emb[[ref[1][r] for r in clean_rel]]
        else:
            clean_emb = embed_condition(img_dir, clean_rel, Condition("original"), cache_dir / "rest",
                                        embed_config=embed_config, on_progress=on_progress)[0].emb
        cidx = {r: i for i, r in enumerate(clean_rel)}
        ca, cb, csame, _ = pair_arrays(clean_pairs, cidx)
        cd = squared_l2(clean_emb[ca], clean_emb[cb])
        t_acc_clean, _ = best_accuracy_threshold(cd, csame)
        t_far_clean = threshold_for_far(cd, csame, far_target)
        n_clean = len(clean_pairs)
        if baseline == "dlib":
            dclean = _dlib_clean(img_dir, clean_rel, dref, cache_dir, over_budget, budget_left, on_baseline_progress)
            if dclean is None:
                dmissing.append("rest")
            else:
                dd = squared_l2(dclean[ca], dclean[cb])
                dlib_clean = (best_accuracy_threshold(dd, csame)[0], threshold_for_far(dd, csame, far_target))
    else:  # pragma: no cover - all folds selected
        t_acc_clean, t_far_clean, n_clean = float("nan"), float("nan"), 0

    index = {r: i for i, r in enumerate(rel)}
    ia, ib, same, fold = pair_arrays(test_pairs, index)
    orig = embs["original"].emb
    dorig = dembs["original"].emb if "original" in dembs else None
    rows: dict[str, dict] = {}
    for c in conds:
        if c.name not in embs:
            continue
        e = embs[c.name]
        d_dd = squared_l2(e.emb[ia], e.emb[ib])
        d_do = squared_l2(e.emb[ia], orig[ib])
        kw = dict(t_acc_clean=t_acc_clean, t_far_clean=t_far_clean, far_target=far_target)
        row = {
            "condition": c.name,
            "kind": c.kind,
            "value": c.value,
            "degraded_vs_degraded": condition_metrics(d_dd, same, fold, **kw),
            "degraded_vs_original": condition_metrics(d_do, same, fold, **kw),
            "detection": e.counts(),
            "not_detected_with_defaults": int(sum(v for k, v in e.counts().items() if k != "detected")),
            "images": len(rel),
            "mean_file_bytes": round(info[c.name]["file_bytes"] / max(1, len(rel)), 1),
            "embedding_cached": info[c.name]["reused"],
            "embed_seconds": info[c.name]["seconds"],
        }
        if c.kind == "jpeg":
            data = degrade_bytes(_read_rgb(img_dir / rel[0]), c)
            row["jpeg_quality_check"] = list(jpeg_quality_estimate(data))
        if c.name in dembs and dorig is not None:
            de, di = dembs[c.name], dinfo[c.name]
            dkw = dict(t_acc_clean=dlib_clean[0] if dlib_clean else None,
                       t_far_clean=dlib_clean[1] if dlib_clean else None, far_target=far_target)
            counts = de.counts()
            row["dlib"] = {
                "degraded_vs_degraded": condition_metrics(squared_l2(de.emb[ia], de.emb[ib]), same, fold, **dkw),
                "degraded_vs_original": condition_metrics(squared_l2(de.emb[ia], dorig[ib]), same, fold, **dkw),
                "detection": counts,
                "not_detected_with_defaults": int(counts["upscaled"] + counts["template"]),
                "embedding_cached": di["reused"],
                "embed_seconds": di["seconds"],
                "files_check": ("the original files" if di.get("from_reference")
                                else _files_check(_read_meta(cache_dir / f"{c.name}.json"), di, c)),
            }
        rows[c.name] = row

    orig_q = jpeg_quality_estimate((img_dir / rel[0]).read_bytes())
    subset = f", the first {pairs_per_fold} pairs of each fold" if pairs_per_fold is not None else ""
    result = {
        "dataset": {
            "name": "LFW",
            "pairs_file": pairs_file,
            "folds": [f + 1 for f in folds],
            "note": (f"subset: only folds {', '.join(str(f + 1) for f in folds)} of {pairs_file}{subset} "
                     f"({len(test_pairs)} pairs, {len(rel)} images) to fit the CPU budget"),
            "n_pairs": len(test_pairs),
            "n_same": int(same.sum()),
            "n_images": len(rel),
            "pairs_per_fold": pairs_per_fold,
            "original_jpeg_quality_estimate": orig_q[0],
        },
        "models": {"detector": YUNET.model_id, "embedder": SFACE.model_id},
        "pairs": ("degraded_vs_degraded: both images of a pair degraded the same way (the main table); "
                  "degraded_vs_original: the first image degraded, the second original"),
        "protocol": (
            f"accuracy_mean: {len(folds)}-fold over the selected folds, each fold's threshold chosen on the other "
            f"selected folds (max accuracy, 0.0005 grid); val_mean/far_mean: same, FAR<={far_target:g} on the "
            f"other selected folds ({(len(folds) - 1) * 300} mismatched pairs, so no false accept is allowed); "
            f"fixed_clean_threshold: thresholds chosen once on the original images of the other "
            f"{10 - len(folds)} folds ({n_clean} pairs; accuracy threshold and FAR<={far_target:g} threshold) and "
            f"applied to the degraded pairs"
        ),
        "clean_thresholds": {"accuracy": round(t_acc_clean, 5), "far_1e-3": round(t_far_clean, 5),
                             "chosen_on_pairs": n_clean},
        "conditions": rows,
        "missing": missing,
    }
    if baseline == "dlib":
        result["baseline"] = {
            "name": "dlib",
            "model": ("face_recognition 1.3: HOG detector (centre-nearest face; 2x upsampling, then a fixed "
                      "centre box when none is found), 5-point shape predictor, ResNet-34 descriptor"),
            "distance": "squared Euclidean distance of the raw 128-D descriptors (not unit length)",
            "files": ("each condition's degraded files are made once and read by both pipelines; files_check "
                      "compares the SHA-256 (or total size) of the bytes each cache was made from"),
            "protocol": "as ours: the same pairs and folds; clean thresholds from dlib on the same clean images",
            "clean_thresholds": (None if dlib_clean is None else
                                 {"accuracy": round(dlib_clean[0], 5), "far_1e-3": round(dlib_clean[1], 5),
                                  "chosen_on_pairs": n_clean}),
        }
        result["side_by_side"] = {
            name: {"ours_accuracy_mean": r["degraded_vs_degraded"]["accuracy_mean"],
                   "ours_accuracy_std": r["degraded_vs_degraded"]["accuracy_std"],
                   "dlib_accuracy_mean": r["dlib"]["degraded_vs_degraded"]["accuracy_mean"] if "dlib" in r else None,
                   "dlib_accuracy_std": r["dlib"]["degraded_vs_degraded"]["accuracy_std"] if "dlib" in r else None}
            for name, r in rows.items()
        }
        result["baseline_missing"] = dmissing
    result["complete"] = not missing and not dmissing
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    (out_dir / "robustness_result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    vs = " (ours and dlib)" if baseline == "dlib" else ""
    _plot(rows, conds, out_dir / "robustness.png",
          f"LFW folds {', '.join(str(f + 1) for f in folds)} ({len(test_pairs)} pairs), degraded vs degraded{vs}")
    return result


def _dlib_clean(img_dir: Path, clean_rel: Sequence[str], dref, cache_dir: Path, over_budget, budget_left,
                on_progress) -> np.ndarray | None:
    """dlib's descriptors of the clean images of the other folds (reference, or ``cache_dir/dlib/rest.npz``
    continued within the budget); None while incomplete."""
    from .baseline import embed_dlib_cached

    if dref is not None and all(r in dref[1] for r in clean_rel):
        return dref[0].emb[[dref[1][r] for r in clean_rel]]
    cache = Path(cache_dir) / "dlib" / "rest.npz"
    if over_budget():
        from .baseline import DlibEmbeddings

        dl = DlibEmbeddings.load(cache) if cache.exists() else DlibEmbeddings.empty()
    else:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cond = Condition("original")
        prog = None if on_progress is None else (lambda i, n, secs: on_progress(cond, i, n, secs))
        dl, _ = embed_dlib_cached(img_dir, clean_rel, cache, time_budget_s=budget_left(), on_progress=prog)
    index = {p: i for i, p in enumerate(dl.paths)}
    if any(r not in index for r in clean_rel):
        return None
    return dl.emb[[index[r] for r in clean_rel]]


def _load_dlib_reference(path: Path | None):
    """(DlibEmbeddings, {path: row}) of a ``dlib_lfw.npz``, or None."""
    from .baseline import DlibEmbeddings

    if path is None or not Path(path).exists():
        return None
    e = DlibEmbeddings.load(Path(path))
    return e, {p: i for i, p in enumerate(e.paths)}


def _load_reference(path: Path | None):
    """(LfwEmbeddings, {path: row}) of a reference file, or None."""
    from .lfw import LfwEmbeddings

    if path is None or not Path(path).exists():
        return None
    e = LfwEmbeddings.load(Path(path))
    return e, {p: i for i, p in enumerate(e.paths)}


def _subset(e, index: dict[str, int], rel: Sequence[str]):
    """The rows of ``e`` for ``rel``, as a new LfwEmbeddings."""
    from .lfw import LfwEmbeddings

    rows = np.array([index[r] for r in rel], np.int64)
    return LfwEmbeddings(list(rel), e.emb[rows], [e.outcome[i] for i in rows], e.n_faces[rows], e.score[rows],
                         e.landmarks[rows], e.image_size[rows])
