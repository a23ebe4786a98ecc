"""LFW embedding cache and clustering-method comparison.

    python bench/cluster_lfw.py --make-cache      # detect -> align -> embed all LFW images
    python bench/cluster_lfw.py                   # threshold sweep of every method -> markdown tables
    python bench/cluster_lfw.py --quick           # without HDBSCAN and the full-matrix reference (~1 min)

The cache (``.cache/lfw_embeddings.npz``, git-ignored) holds, per image: ``paths`` ('Name/Name_0001.jpg'),
``names``, ``emb`` (float32 N x 128, unit), ``detected`` (False: no face found, the image centre was aligned
with the template scaled to a ~60 px face instead), ``landmarks`` (N x 5 x 2, in image pixels, the ones
used for alignment) and ``score`` (detector score, 0 when not detected).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from benchlib import LFW, REPO  # noqa: E402

DEFAULT_LFW = LFW / "images"
DEFAULT_CACHE = REPO / ".cache" / "lfw_embeddings.npz"

# Fallback alignment when nothing is detected, calibrated on the LFW images where a face *was* detected:
# their median eye distance is 26 px for a ~60 px wide face box (the template's is 35.2 px in 112 px, so a
# 60 px face is the template scaled by 60 / 81), and the centroid of their five landmarks sits 6 px (4 % of
# the height) below the image centre.
TEMPLATE_FACE_WIDTH = 81.0
CENTROID_DROP = 0.04


def centre_landmarks(h: int, w: int, face_px: float = 60.0) -> np.ndarray:
    """Template landmarks scaled to a ``face_px`` wide face, centred in an h x w image."""
    from engine.pipeline.align import TEMPLATE_112

    s = face_px / TEMPLATE_FACE_WIDTH
    pts = (TEMPLATE_112 - TEMPLATE_112.mean(0)) * s
    return (pts + np.array([w / 2.0, h / 2.0 + CENTROID_DROP * h])).astype(np.float32)


def pick_central(dets, h: int, w: int):
    """The detection whose box centre is closest to the image centre (LFW: the labelled face)."""
    cx, cy = w / 2.0, h / 2.0

    def dist(d):
        x, y, bw, bh = d.box
        return (x + bw / 2 - cx) ** 2 + (y + bh / 2 - cy) ** 2

    return min(dets, key=dist)


def make_cache(lfw_dir: Path = DEFAULT_LFW, out: Path = DEFAULT_CACHE, chunk: int = 512) -> Path:
    import cv2

    from engine.models.registry import SFACE
    from engine.pipeline.align import align_face
    from engine.pipeline.detect import FaceDetector
    from engine.pipeline.embed import Embedder

    files = sorted(lfw_dir.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no images under {lfw_dir}")
    det, emb_model = FaceDetector(), Embedder()
    n = len(files)
    paths = np.array([f"{p.parent.name}/{p.name}" for p in files])
    names = np.array([p.parent.name for p in files])
    emb = np.zeros((n, emb_model.dim), np.float32)
    detected = np.zeros(n, bool)
    landmarks = np.zeros((n, 5, 2), np.float32)
    score = np.zeros(n, np.float32)
    t0 = time.time()
    for start in range(0, n, chunk):
        crops = []
        for i in range(start, min(n, start + chunk)):
            bgr = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SystemExit(f"cannot read {files[i]}")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            dets = det.detect(rgb)
            if dets:
                d = pick_central(dets, h, w)
                landmarks[i], score[i], detected[i] = d.landmarks, d.score, True
            else:
                landmarks[i] = centre_landmarks(h, w)
            crops.append(align_face(rgb, landmarks[i]))
        emb[start : start + len(crops)] = emb_model.embed(np.stack(crops))
        done = start + len(crops)
        rate = done / (time.time() - t0)
        print(f"{done}/{n}  {rate:.1f} img/s  eta {(n - done) / rate:.0f} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".partial.npz")
    np.savez(
        tmp, paths=paths, names=names, emb=emb, detected=detected, landmarks=landmarks, score=score,
        model_id=np.array(SFACE.model_id),
    )
    tmp.replace(out)
    print(f"wrote {out}: {n} images, {int((~detected).sum())} without detection, {time.time() - t0:.0f} s")
    return out


def load_cache(path: Path = DEFAULT_CACHE) -> dict[str, np.ndarray]:
    if not path.exists():
        raise SystemExit(f"{path} missing: run  python bench/cluster_lfw.py --make-cache")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


GRID = [round(0.80 + 0.05 * i, 2) for i in range(11)]  # squared L2 thresholds 0.80 .. 1.30


def _row(method: str, param: str, labels: np.ndarray, truth: np.ndarray, seconds: float) -> dict:
    from evals.metrics import cluster_scores

    s = cluster_scores(labels, truth)
    return {"method": method, "param": param, "seconds": seconds, **s.as_dict()}


def sweep(emb: np.ndarray, names: np.ndarray, quick: bool = False, grid=GRID, log=print) -> list[dict]:
    """Every method over the threshold grid on one set of faces (each image its own photo)."""
    from engine.grouping.cluster import cluster_faces

    rows: list[dict] = []

    def add(r: dict) -> None:
        rows.append(r)
        log(f"{r['method']:>22s} {r['param']:>14s}  BCubed F1 {r['bcubed_f1']:.4f} "
            f"(P {r['bcubed_precision']:.4f} R {r['bcubed_recall']:.4f})  pF1 {r['pairwise_f1']:.4f}  "
            f"clusters {r['n_clusters']:5d}  {r['seconds']:.1f} s")

    photos = np.arange(len(emb))
    for method in ("average", "single"):
        for t in grid:
            t0 = time.perf_counter()
            lab = cluster_faces(emb, t, photo_ids=photos, method=method)
            add(_row(f"{method} (k-NN graph)", f"t={t:.2f}", lab, names, time.perf_counter() - t0))
    best = max((r for r in rows if r["method"].startswith("average")), key=lambda r: r["bcubed_f1"])
    t_best = float(best["param"][2:])
    for k in (5, 10, 20, 50, 100):
        t0 = time.perf_counter()
        lab = cluster_faces(emb, t_best, k=k)
        add(_row("average (k-NN graph)", f"t={t_best:.2f} k={k}", lab, names, time.perf_counter() - t0))
    if quick:
        return rows

    # Reference: exact, unconstrained average linkage over the full distance matrix (O(N^2) memory).
    from scipy.cluster.hierarchy import fcluster, linkage

    t0 = time.perf_counter()
    z = linkage(emb.astype(np.float64), method="average", metric="cosine")  # cosine distance = squared L2 / 2
    t_link = time.perf_counter() - t0
    for t in grid:
        t0 = time.perf_counter()
        lab = fcluster(z, t / 2.0, criterion="distance")
        add(_row("average (full matrix)", f"t={t:.2f}", lab, names, t_link + time.perf_counter() - t0))
    del z

    # HDBSCAN (Euclidean on unit vectors); epsilon merges clusters closer than sqrt(t); noise = singletons.
    import hdbscan

    for eps in [0.0] + [float(np.sqrt(t)) for t in grid[::2]]:
        for mcs in (2, 3):
            t0 = time.perf_counter()
            lab = hdbscan.HDBSCAN(
                min_cluster_size=mcs, min_samples=1, cluster_selection_epsilon=eps, core_dist_n_jobs=2
            ).fit_predict(emb.astype(np.float64))
            param = f"mcs={mcs} t={eps * eps:.2f}" if eps else f"mcs={mcs} eps=0"
            add(_row("HDBSCAN", param, lab, names, time.perf_counter() - t0))
    return rows


def markdown(rows: list[dict], n_faces: int, n_ids: int) -> str:
    head = (
        "| method | parameters | BCubed P | BCubed R | BCubed F1 | pairwise P | pairwise R | pairwise F1 | "
        f"clusters (identities: {n_ids:,}) | time (s) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['param']} | {r['bcubed_precision']:.4f} | {r['bcubed_recall']:.4f} | "
            f"**{r['bcubed_f1']:.4f}** | {r['pairwise_precision']:.4f} | {r['pairwise_recall']:.4f} | "
            f"{r['pairwise_f1']:.4f} | {r['n_clusters']:,} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def best_per_method(rows: list[dict]) -> list[dict]:
    best: dict[str, dict] = {}
    for r in rows:
        if r["method"] not in best or r["bcubed_f1"] > best[r["method"]]["bcubed_f1"]:
            best[r["method"]] = r
    return sorted(best.values(), key=lambda r: -r["bcubed_f1"])


def pivot(rows: list[dict], methods: list[str]) -> str:
    """One row per threshold; per method 'BCubed F1 / pairwise F1 / clusters'."""
    cells: dict[float, dict[str, str]] = {}
    for r in rows:
        if r["method"] not in methods or not r["param"].startswith("t=") and " t=" not in r["param"]:
            continue
        if " k=" in r["param"] or r["param"].startswith("mcs=3"):
            continue
        t = float(r["param"].split("t=")[1])
        cells.setdefault(t, {})[r["method"]] = (
            f"{r['bcubed_f1']:.4f} / {r['pairwise_f1']:.4f} / {r['n_clusters']:,}"
        )
    best = {m: max((r for r in rows if r["method"] == m and " k=" not in r["param"]
                    and not r["param"].startswith("mcs=3")), key=lambda r: r["bcubed_f1"], default=None)
            for m in methods}
    lines = ["| threshold | " + " | ".join(methods) + " |", "|---:|" + "---:|" * len(methods)]
    for t in sorted(cells):
        row = []
        for m in methods:
            c = cells[t].get(m, "")
            b = best.get(m)
            if c and b is not None and float(b["param"].split("t=")[1]) == t:
                c = f"**{c}**"
            row.append(c)
        lines.append(f"| {t:.2f} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def report(rows: list[dict], sub: list[dict], info: dict) -> str:
    out = [f"LFW: {info['n_faces']:,} faces, {info['n_ids']:,} identities, "
           f"{info['not_detected']} without detection (centre-aligned)", ""]
    best = markdown(best_per_method(rows), 0, info["n_ids"])
    out += ["#### Best threshold per method (all of LFW)", "", best, ""]
    methods = [m for m in ("average (k-NN graph)", "average (full matrix)", "single (k-NN graph)", "HDBSCAN")
               if any(r["method"] == m for r in rows)]
    out += ["#### Threshold sweep (all of LFW): BCubed F1 / pairwise F1 / clusters", "",
            "HDBSCAN: min_cluster_size 2, min_samples 1, cluster_selection_epsilon = sqrt(threshold); "
            "'eps=0' is plain HDBSCAN (its row is listed as threshold 0).", "",
            pivot([dict(r, param=r["param"].replace("eps=0", "t=0")) for r in rows], methods), ""]
    ks = [r for r in rows if " k=" in r["param"]]
    if ks:
        out += ["#### Neighbours per face (average, best threshold)", "", markdown(ks, 0, info["n_ids"]), ""]
    if sub:
        out += [f"#### LFW people with >= 2 images ({info['sub_faces']:,} faces, {info['sub_ids']:,} "
                "identities): BCubed F1 / pairwise F1 / clusters", "",
                pivot(sub, ["average (k-NN graph)", "single (k-NN graph)"]), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make-cache", action="store_true", help="build the LFW embedding cache and exit")
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--quick", action="store_true", help="skip HDBSCAN and the full-matrix reference")
    ap.add_argument("--json", type=Path, default=REPO / ".cache" / "cluster_lfw.json",
                    help="where the raw rows are saved")
    ap.add_argument("--from-json", action="store_true", help="only re-print the tables from --json")
    args = ap.parse_args(argv)
    if args.make_cache:
        make_cache(args.lfw, args.cache)
        return
    if args.from_json:
        d = json.loads(args.json.read_text())
        print(report(d["rows"], d["sub"], d["info"]))
        return
    c = load_cache(args.cache)
    emb, names = c["emb"], c["names"]
    _, cnt = np.unique(names, return_counts=True)
    print(f"LFW: {len(emb):,} faces, {len(cnt):,} identities", flush=True)
    rows = sweep(emb, names, quick=args.quick)
    # The same on the people with at least two images (closer to a photo library, where people recur).
    multi = np.isin(names, np.unique(names)[cnt >= 2])
    sub = sweep(emb[multi], names[multi], quick=True, log=lambda *_: None)
    sub = [r for r in sub if " k=" not in r["param"]]
    info = {"n_faces": len(emb), "n_ids": len(cnt), "not_detected": int((~c["detected"]).sum()),
            "sub_faces": int(multi.sum()), "sub_ids": int((cnt >= 2).sum())}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "sub": sub, "info": info}, indent=1))
    print()
    print(report(rows, sub, info))


if __name__ == "__main__":
    main()
