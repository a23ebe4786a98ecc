"""Side-by-side baseline: dlib through the ``face_recognition`` package, on the same LFW images as ours.

dlib pipeline (``face_recognition`` 1.3, the models it ships): ``face_locations(model="hog")`` (HOG +
linear SVM, image upsampled once, its default), ``face_encodings`` (5-point shape predictor, ResNet-34
descriptor, 128-D, not unit length; ``num_jitters=1``). Its own comparison is the Euclidean distance of the
raw descriptors (``face_distance``; customary tolerance 0.6).

LFW face choice, mirroring ``evals.lfw`` so that every pair gets an answer:

1. ``detected``: HOG faces with the default single upsampling; the box nearest the image centre.
2. ``upscaled``: none; HOG again with the image upsampled twice.
3. ``template``: still none; the fixed box ``CENTRE_BOX`` (median HOG box of detected LFW faces, as
   fractions of the image size) is given to ``face_encodings`` as a known location.

``run_dlib_baseline`` compares, in one run and on the same images:

* pairs: 10-fold accuracy and VAL@FAR=1e-3 with the protocol of ``protocol.py`` (dlib: squared Euclidean
  distance of its raw descriptors, which orders the pairs exactly as its Euclidean distance; the threshold
  is also given as a Euclidean distance).
* clustering: all images of ``pairs.txt`` (the ones both pipelines embedded), with the true names; ours and
  dlib's descriptors (unit-normalised) with our ``cluster_faces`` over thresholds that are the same
  multiples of each model's own verification threshold, and dlib's ``chinese_whispers_clustering`` over
  Euclidean thresholds. Each method's best threshold is chosen on this same data (an oracle, equally for
  all).
* throughput: the same images, one thread each, interleaved rounds, best round per method.

dlib's LFW embeddings are cached (``cache_dir/dlib_lfw.npz``) and saved as they progress, so a long run
can be split (``time_budget_s``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .clustering import best_row, threshold_sweep
from .protocol import evaluate_distances, squared_l2

DLIB_OUTCOMES = ("detected", "upscaled", "template")
# Median HOG box (top, right, bottom, left) of the nearest-centre face on 120 LFW images (every 40th
# "*_0001.jpg"; all detected), as fractions of the image height / width.
CENTRE_BOX = (0.3533, 0.7133, 0.7200, 0.3000)
FACTORS = tuple(round(0.40 + 0.025 * i, 3) for i in range(33))  # 0.40 .. 1.20 of the verification threshold
# Euclidean thresholds for Chinese whispers (dlib's example uses 0.5, face_recognition's tolerance is 0.6):
# fine steps around its best region, coarse outside (each call is ~7 s on 7,701 faces).
CW_THRESHOLDS = (0.30, 0.35) + tuple(round(0.40 + 0.0125 * i, 4) for i in range(13)) + (0.60,)


def nearest_centre_box(boxes: Sequence[tuple[int, int, int, int]], width: float, height: float):
    """The (top, right, bottom, left) box whose centre is nearest the image centre."""
    from engine.pipeline.detect import centre_offset

    return min(boxes, key=lambda b: centre_offset((b[3], b[0], b[1] - b[3], b[2] - b[0]), width, height))


def centre_box(width: int, height: int) -> tuple[int, int, int, int]:
    """``CENTRE_BOX`` in pixels of a width x height image."""
    top, right, bottom, left = CENTRE_BOX
    return (round(top * height), round(right * width), round(bottom * height), round(left * width))


def require_face_recognition() -> None:
    """Raise a ``FacenetPhotosError`` saying how to install the baseline when face_recognition, its models
    or dlib are missing (face_recognition itself would print a hint and exit the process)."""
    import importlib.util

    from engine.errors import FacenetPhotosError

    absent = [m for m in ("dlib", "face_recognition_models", "face_recognition") if importlib.util.find_spec(m) is None]
    if absent:
        raise FacenetPhotosError(
            f"the dlib baseline needs the optional packages {', '.join(absent)} (not installed): "
            "pip install -e '.[bench]' && pip install --no-deps face-recognition==1.3.0")


class DlibEncoder:
    """face_recognition's HOG detector + ResNet descriptor, with the LFW face choice of the module doc."""

    def __init__(self):
        require_face_recognition()
        import face_recognition

        self.fr = face_recognition

    def load(self, path: Path) -> np.ndarray:
        return self.fr.load_image_file(str(path))

    def encode_lfw(self, path: Path) -> tuple[str, np.ndarray, int, tuple[int, int, int, int]]:
        """(outcome, 128-D descriptor, faces found, box used) for one LFW image."""
        rgb = self.load(path)
        h, w = rgb.shape[:2]
        for outcome, up in (("detected", 1), ("upscaled", 2)):
            boxes = self.fr.face_locations(rgb, number_of_times_to_upsample=up, model="hog")
            if boxes:
                box = nearest_centre_box(boxes, w, h)
                return outcome, self.fr.face_encodings(rgb, [box])[0], len(boxes), tuple(box)
        box = centre_box(w, h)
        return "template", self.fr.face_encodings(rgb, [box])[0], 0, box

    def encode_all(self, rgb: np.ndarray) -> tuple[list[np.ndarray], float, float]:
        """Every face of an image, as face_recognition is normally used: (descriptors, detect s, encode s)."""
        t0 = time.perf_counter()
        boxes = self.fr.face_locations(rgb, model="hog")
        t1 = time.perf_counter()
        enc = self.fr.face_encodings(rgb, boxes) if boxes else []
        return enc, t1 - t0, time.perf_counter() - t1


# -- cached LFW embeddings -----------------------------------------------------------------------


@dataclass
class DlibEmbeddings:
    paths: list[str]
    emb: np.ndarray  # (N, 128) float64, raw descriptors
    outcome: list[str]
    n_faces: np.ndarray
    boxes: np.ndarray  # (N, 4) top, right, bottom, left
    seconds: float = 0.0  # total embedding time over all sessions

    def counts(self) -> dict[str, int]:
        return {k: int(sum(o == k for o in self.outcome)) for k in DLIB_OUTCOMES}

    def save(self, path: Path) -> None:
        tmp = Path(path).with_suffix(".tmp.npz")
        np.savez_compressed(tmp, paths=np.array(self.paths, dtype=str), emb=self.emb,
                            outcome=np.array(self.outcome, dtype=str), n_faces=self.n_faces, boxes=self.boxes,
                            seconds=np.array(self.seconds))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> DlibEmbeddings:
        with np.load(path, allow_pickle=False) as z:
            return cls([str(p) for p in z["paths"]], z["emb"], [str(o) for o in z["outcome"]], z["n_faces"],
                       z["boxes"], float(z["seconds"]))

    @classmethod
    def empty(cls) -> DlibEmbeddings:
        return cls([], np.zeros((0, 128)), [], np.zeros(0, np.int32), np.zeros((0, 4), np.int32))


def embed_dlib_cached(
    img_dir: Path,
    rel: Sequence[str],
    cache: Path,
    *,
    time_budget_s: float | None = None,
    save_every: int = 200,
    on_progress: Callable[[int, int, float], None] | None = None,
    files: Mapping[str, Path] | None = None,
) -> tuple[DlibEmbeddings, int]:
    """dlib embeddings of ``rel`` (relative to ``img_dir``), continuing the cache file. Returns (the cached
    embeddings in cache order, how many of ``rel`` are still missing). Stops when ``time_budget_s`` has
    passed; the cache is saved every ``save_every`` images and at the end. ``files``: the file to read for
    each name of ``rel`` when it is not ``img_dir / name`` (degraded copies); the cache keeps the names."""
    cache = Path(cache)
    have = DlibEmbeddings.load(cache) if cache.exists() else DlibEmbeddings.empty()
    done = set(have.paths)
    todo = [r for r in rel if r not in done]
    if not todo:
        return have, 0
    enc = DlibEncoder()
    cache.parent.mkdir(parents=True, exist_ok=True)
    paths, embs, outs, nfs, boxes = list(have.paths), [have.emb], list(have.outcome), [have.n_faces], [have.boxes]
    new_e, new_n, new_b = [], [], []
    t0 = time.perf_counter()
    t_saved = 0.0

    def flush() -> DlibEmbeddings:
        nonlocal t_saved
        if new_e:
            embs.append(np.array(new_e))
            nfs.append(np.array(new_n, np.int32))
            boxes.append(np.array(new_b, np.int32))
            for lst in (new_e, new_n, new_b):
                lst.clear()
        elapsed = time.perf_counter() - t0
        have.seconds += elapsed - t_saved
        t_saved = elapsed
        d = DlibEmbeddings(paths, np.concatenate(embs), outs, np.concatenate(nfs), np.concatenate(boxes),
                           have.seconds)
        d.save(cache)
        return d

    result = have
    for i, r in enumerate(todo):
        if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            break
        o, e, nf, box = enc.encode_lfw(files[r] if files is not None else Path(img_dir) / r)
        paths.append(r)
        outs.append(o)
        new_e.append(e)
        new_n.append(nf)
        new_b.append(box)
        if (i + 1) % save_every == 0:
            result = flush()
        if on_progress is not None:
            on_progress(i + 1, len(todo), time.perf_counter() - t0)
    result = flush()
    missing = len(set(rel) - set(result.paths))
    return result, missing


# -- throughput ----------------------------------------------------------------------------------


def sample_images(img_dir: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` LFW images drawn without replacement (seed ``seed``) from the sorted file list; the same
    500 images as ``bench/import_throughput.py`` for n=500, seed 0."""
    files = sorted(Path(img_dir).glob("*/*.jpg"))
    if len(files) < n:
        raise ValueError(f"only {len(files)} images under {img_dir}")
    idx = np.random.default_rng(seed).choice(len(files), n, replace=False)
    return [files[i] for i in sorted(idx)]


def _time_ours(paths: Sequence[Path], finder, embedder, batch: int = 32) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    t_det = t_emb = 0.0
    faces = 0
    crops: list[np.ndarray] = []
    for i, p in enumerate(paths):
        t = time.perf_counter()
        found = finder.find(p)
        t_det += time.perf_counter() - t
        crops += [f.crop for f in found.faces]
        faces += len(found.faces)
        if len(crops) >= batch or (i == len(paths) - 1 and crops):
            t = time.perf_counter()
            embedder.embed(np.stack(crops))
            t_emb += time.perf_counter() - t
            crops = []
    wall = time.perf_counter() - t0
    return {"seconds": wall, "cpu_seconds": time.process_time() - c0, "faces": faces,
            "detect_seconds": t_det, "embed_seconds": t_emb}


def _time_dlib(paths: Sequence[Path], enc: DlibEncoder) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    t_load = t_det = t_emb = 0.0
    faces = 0
    for p in paths:
        t = time.perf_counter()
        rgb = enc.load(p)
        t_load += time.perf_counter() - t
        e, td, te = enc.encode_all(rgb)
        faces += len(e)
        t_det += td
        t_emb += te
    wall = time.perf_counter() - t0
    return {"seconds": wall, "cpu_seconds": time.process_time() - c0, "faces": faces,
            "detect_seconds": t_load + t_det, "embed_seconds": t_emb}


def measure_throughput(paths: Sequence[Path], rounds: int = 2, on_progress: Callable[[str], None] | None = None
                       ) -> dict:
    """Images/s of ours (``FaceFinder`` + ``Embedder``, one thread, every face embedded, batches of 32)
    and of dlib (load, HOG, ``face_encodings`` of every face) on the same images, one thread each:
    OpenCV 1 thread, onnxruntime 1 intra-op thread, BLAS pools limited to 1 (threadpoolctl). Models are
    loaded and warmed up first; the two run interleaved (order alternating per round); best round each.
    ``cpu_over_wall`` (process CPU time / wall time) near 1 confirms one busy thread that got a whole
    core; well below 1 means other processes took the core, and ``images_per_cpu_second`` (images per
    second of this process's CPU time) is then the steadier comparison."""
    import cv2

    from engine.config import DetectConfig, EmbedConfig
    from engine.pipeline.embed import Embedder
    from engine.pipeline.faces import FaceFinder

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    limiter = threadpool_limits(1) if threadpool_limits is not None else None
    try:
        finder = FaceFinder(DetectConfig())
        embedder = Embedder(EmbedConfig(threads=1))
        enc = DlibEncoder()
        warm = list(paths[:5])
        _time_ours(warm, finder, embedder)
        _time_dlib(warm, enc)
        runs: dict[str, list[dict]] = {"ours": [], "dlib": []}
        for r in range(rounds):
            order = ("ours", "dlib") if r % 2 == 0 else ("dlib", "ours")
            for name in order:
                res = _time_ours(paths, finder, embedder) if name == "ours" else _time_dlib(paths, enc)
                runs[name].append(res)
                if on_progress is not None:
                    on_progress(f"round {r + 1} {name}: {len(paths) / res['seconds']:.2f} img/s")
    finally:
        cv2.setNumThreads(cv_threads)
        if limiter is not None:
            limiter.restore_original_limits()
    out = {}
    for name, rs in runs.items():
        best = min(rs, key=lambda x: x["seconds"])
        out[name] = {
            "images": len(paths),
            "faces": best["faces"],
            "images_per_second": round(len(paths) / best["seconds"], 3),
            "faces_per_second": round(best["faces"] / best["seconds"], 3),
            "seconds": round(best["seconds"], 2),
            "cpu_over_wall": round(best["cpu_seconds"] / best["seconds"], 3),
            "images_per_cpu_second": round(len(paths) / best["cpu_seconds"], 3),
            "detect_ms_per_image": round(1000 * best["detect_seconds"] / len(paths), 2),
            "embed_ms_per_face": round(1000 * best["embed_seconds"] / max(1, best["faces"]), 2),
            "rounds_images_per_second": [round(len(paths) / x["seconds"], 3) for x in rs],
        }
    out["ratio_ours_over_dlib_images_per_second"] = round(
        out["ours"]["images_per_second"] / out["dlib"]["images_per_second"], 3)
    out["ratio_ours_over_dlib_images_per_cpu_second"] = round(
        out["ours"]["images_per_cpu_second"] / out["dlib"]["images_per_cpu_second"], 3)
    out["ratio_ours_over_dlib_faces_per_second"] = round(
        out["ours"]["faces_per_second"] / out["dlib"]["faces_per_second"], 3)
    return out


# -- clustering ----------------------------------------------------------------------------------


def chinese_whispers(emb: np.ndarray, threshold: float) -> np.ndarray:
    """dlib's ``chinese_whispers_clustering`` (edges between descriptors closer than ``threshold``,
    Euclidean) -> labels."""
    import dlib

    vecs = [dlib.vector(list(map(float, e))) for e in np.asarray(emb, np.float64)]
    return np.asarray(dlib.chinese_whispers_clustering(vecs, float(threshold)), np.int64)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def compare_clustering(
    ours: np.ndarray,
    dlib_emb: np.ndarray,
    names: Sequence[str],
    *,
    ours_threshold: float,
    dlib_unit_threshold: float,
    factors: Sequence[float] = FACTORS,
    cw_thresholds: Sequence[float] = CW_THRESHOLDS,
    k: int = 30,
    default_threshold: float | None = None,
    with_chinese_whispers: bool = True,
) -> dict:
    """Sweeps of ours and dlib with ``cluster_faces`` (thresholds ``factor * own verification threshold``)
    and of dlib's Chinese whispers; best row (BCubed F1) of each."""
    names = np.asarray(names)
    out: dict[str, dict] = {}
    ts_ours = [round(f * ours_threshold, 4) for f in factors]
    if default_threshold is not None:
        ts_ours = sorted(set(ts_ours) | {round(float(default_threshold), 4)})
    rows = threshold_sweep(np.asarray(ours, np.float32), names, ts_ours, k=k)
    for r in rows:
        r["factor"] = round(r["threshold"] / ours_threshold, 4)
    out["ours_cluster_faces"] = {"sweep": rows, "best": best_row(rows)}
    if default_threshold is not None:
        out["ours_cluster_faces"]["default"] = next(
            r for r in rows if abs(r["threshold"] - round(float(default_threshold), 4)) < 1e-9)
    ts_dlib = [round(f * dlib_unit_threshold, 4) for f in factors]
    rows = threshold_sweep(_unit(dlib_emb).astype(np.float32), names, ts_dlib, k=k)
    for r in rows:
        r["factor"] = round(r["threshold"] / dlib_unit_threshold, 4)
    out["dlib_cluster_faces"] = {"sweep": rows, "best": best_row(rows)}
    if with_chinese_whispers:
        rows = threshold_sweep(np.asarray(dlib_emb, np.float64), names, cw_thresholds, cluster_fn=chinese_whispers)
        out["dlib_chinese_whispers"] = {"sweep": rows, "best": best_row(rows)}
    return out


# -- the run -------------------------------------------------------------------------------------


def _plot(ev_ours, ev_dlib, clus: dict, thr: dict | None, path: Path) -> None:
    from evals import plots

    fig, (ax, cx, tx) = plots.subplots(3, figsize=(15, 4.3))
    for label, ev, style in (("ours (YuNet + SFace)", ev_ours, "-"), ("dlib (HOG + ResNet)", ev_dlib, "--")):
        fpr, tpr, _, auc = ev.roc()
        keep = fpr > 0
        ax.plot(fpr[keep], tpr[keep], style, label=f"{label}: {100 * ev.accuracy_mean:.2f}%, AUC {auc:.4f}")
    ax.set_xscale("log")
    ax.set_xlabel("FAR")
    ax.set_ylabel("VAL")
    ax.set_title("LFW pairs, 10-fold", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    for key, style, label in (("ours_cluster_faces", "o-", "ours, cluster_faces"),
                              ("dlib_cluster_faces", "s--", "dlib, cluster_faces")):
        rows = clus[key]["sweep"]
        cx.plot([r["factor"] for r in rows], [r["bcubed_f1"] for r in rows], style, ms=4, label=label)
    cx.set_xlabel("threshold / own verification threshold")
    cx.set_ylabel("BCubed F1")
    cx.grid(True, alpha=0.3)
    if "dlib_chinese_whispers" in clus:
        b = clus["dlib_chinese_whispers"]["best"]
        cx.axhline(b["bcubed_f1"], color="C2", lw=1, ls=":",
                   label=f"dlib chinese whispers, best (Euclidean {b['threshold']:g})")
    cx.set_title("clustering the pairs.txt images", fontsize=9)
    cx.legend(fontsize=7)
    if thr is not None:
        names = ["ours", "dlib"]
        vals = [thr[n]["images_per_second"] for n in names]
        tx.bar(names, vals, color=["C0", "C1"])
        for i, v in enumerate(vals):
            tx.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        tx.set_ylabel("images / s (one thread)")
        tx.set_title(f"throughput, same {thr['ours']['images']} images: ours / dlib = "
                     f"{thr['ratio_ours_over_dlib_images_per_second']:.2f}", fontsize=9)
    else:
        tx.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_dlib_baseline(
    lfw_root: Path,
    out_dir: Path,
    cache_dir: Path,
    ours_embeddings: Path,
    *,
    pairs_file: str = "pairs.txt",
    time_budget_s: float | None = None,
    throughput_images: int = 500,
    throughput_rounds: int = 2,
    seed: int = 0,
    far_target: float = 1e-3,
    on_progress: Callable[[str], None] | None = None,
) -> dict:
    """Ours vs dlib on LFW (see the module docstring). ``ours_embeddings``: ``lfw_embeddings.npz`` of
    ``run_lfw_eval`` on the same ``pairs_file``. Writes ``baseline_result.json`` and ``baseline.png`` and
    returns the JSON content; ``complete`` is False (and only the embedding progress is reported) while
    dlib's embeddings are still being computed within ``time_budget_s`` (run again to continue)."""
    from engine.config import ClusterConfig
    from engine.models.registry import SFACE, YUNET

    from .lfw import LfwEmbeddings, images_dir, pair_arrays, pair_images, parse_pairs

    t_start = time.perf_counter()
    say = on_progress or (lambda s: None)
    lfw_root, out_dir = Path(lfw_root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = parse_pairs(lfw_root / pairs_file)
    rel = pair_images(pairs)
    img_dir = images_dir(lfw_root)

    def prog(i: int, n: int, secs: float) -> None:
        if i % 100 == 0 or i == n:
            say(f"dlib embedding: {i}/{n} new images, {i / max(secs, 1e-9):.2f} img/s")

    dl, missing = embed_dlib_cached(img_dir, rel, Path(cache_dir) / "dlib_lfw.npz", time_budget_s=time_budget_s,
                                    on_progress=prog)
    if missing:
        res = {"complete": False, "dlib_embedded": len(rel) - missing, "dlib_missing": missing,
               "dlib_seconds_so_far": round(dl.seconds, 1)}
        (out_dir / "baseline_result.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        return res

    ours = LfwEmbeddings.load(Path(ours_embeddings))
    oi = {p: i for i, p in enumerate(ours.paths)}
    di = {p: i for i, p in enumerate(dl.paths)}
    if any(r not in oi for r in rel):
        raise ValueError(f"{ours_embeddings} does not cover the images of {pairs_file}; run facenet-photos eval lfw")
    e_ours = ours.emb[[oi[r] for r in rel]].astype(np.float32)
    e_dlib = dl.emb[[di[r] for r in rel]].astype(np.float64)
    index = {r: i for i, r in enumerate(rel)}
    ia, ib, same, fold = pair_arrays(pairs, index)

    say("pairs protocol")
    kw = dict(far_target=far_target)
    ev_ours = evaluate_distances(squared_l2(e_ours[ia], e_ours[ib]), same, fold, **kw)
    ev_dlib = evaluate_distances(squared_l2(e_dlib[ia], e_dlib[ib]), same, fold, **kw)
    du = _unit(e_dlib)
    ev_dlib_unit = evaluate_distances(squared_l2(du[ia], du[ib]), same, fold, **kw)

    def summary(ev) -> dict:
        d = ev.to_dict()
        return {k: d[k] for k in ("accuracy_mean", "accuracy_std", "accuracy_per_fold", "threshold_mean",
                                  "val_mean", "val_std", "far_mean", "auc")} | {"errors": len(ev.errors())}

    pair_res = {
        "ours": summary(ev_ours),
        "dlib": summary(ev_dlib) | {"threshold_mean_euclidean": round(float(np.sqrt(ev_dlib.threshold).mean()), 4),
                                    "accuracy_at_tolerance_0.6": round(float(
                                        ((ev_dlib.distances <= 0.36) == same).mean()), 6)},
        "dlib_unit_normalised": summary(ev_dlib_unit),
    }
    pair_res["accuracy_ours_minus_dlib"] = round(ev_ours.accuracy_mean - ev_dlib.accuracy_mean, 6)

    say("clustering sweeps")
    names = [r.split("/")[0] for r in rel]
    clus = compare_clustering(e_ours, e_dlib, names, ours_threshold=ev_ours.threshold_mean,
                              dlib_unit_threshold=ev_dlib_unit.threshold_mean, k=ClusterConfig().k,
                              default_threshold=ClusterConfig().threshold)

    thr = None
    if throughput_images > 0:
        say(f"throughput on {throughput_images} images")
        thr = measure_throughput(sample_images(img_dir, throughput_images, seed), throughput_rounds, say)
        thr["sample"] = f"{throughput_images} images of {img_dir.name}/*/*.jpg, numpy default_rng({seed}) choice"

    result = {
        "dataset": {"name": "LFW", "pairs_file": pairs_file, "n_pairs": len(pairs), "n_images": len(rel),
                    "identities": len(set(names)), "n_folds": int(len(np.unique(fold)))},
        "complete": True,
        "models": {"ours": f"{YUNET.model_id} + {SFACE.model_id}",
                   "dlib": "face_recognition 1.3: HOG detector, 5-point shape predictor, ResNet-34 descriptor "
                           "(dlib_face_recognition_resnet_model_v1)"},
        "protocol": (
            "pairs: 10-fold, threshold per fold chosen on the other 9 (max accuracy, 0.0005 grid on squared "
            "distance); ours: squared L2 of unit embeddings; dlib: squared Euclidean of raw descriptors "
            "(same order as face_recognition's face_distance). clustering: the pairs.txt images with their true "
            "names; cluster_faces (average linkage, k-NN graph) at factor x each model's own 10-fold threshold "
            "(dlib: unit-normalised descriptors), and dlib.chinese_whispers_clustering at Euclidean thresholds "
            "on the raw descriptors; best = highest BCubed F1 on this same data"
        ),
        "detection": {"ours": ours.counts() if len(ours.paths) == len(rel) else None, "dlib": dl.counts(),
                      "dlib_multiple_faces": int((dl.n_faces > 1).sum())},
        "pairs": pair_res,
        "clustering": {k: {"best": v["best"], **({"default": v["default"]} if "default" in v else {}),
                           "sweep": v["sweep"]} for k, v in clus.items()},
        "throughput": thr,
        "dlib_embedding_seconds": round(dl.seconds, 1),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out_dir / "baseline_result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _plot(ev_ours, ev_dlib, clus, thr, out_dir / "baseline.png")
    return result
