"""Real-size import: 12-megapixel photos with several faces, the library's import beside a plain OpenCV loop.

    python bench/import_12mp.py                          # 40 JPEGs + 6 HEICs, 2 interleaved rounds
    python bench/import_12mp.py --n 80 --rounds 3 --cache /some/folder

1. Makes (once, cached in ``--cache``, default under the system temp folder) a synthetic set: real large
   public-domain photos from ../shared/data/photo-formats (scaled and cropped to 4032x3024) with 1-6
   real faces from ../shared/data/lfw (or lag-dev) pasted at known places, widths log-uniform from 40 to
   700 px, blended with a soft elliptical edge so the detector sees a face, not a square. Every fifth
   photo is stored rotated with EXIF orientation 6; JPEG quality 90; the first 8 photos are also
   written as HEIC (pillow-heif, quality 90) the way an iPhone writes them: a grid of 512 px tiles, each
   its own HEVC picture (libheif then decodes the tiles on several threads; one 12 MP picture decodes on
   one). The ground-truth boxes (display orientation) go to
   ``truth.json``: the box YuNet finds on the source face, scaled and moved with it.
2. Runs, interleaved over ``--rounds`` rounds, each in its own process (so peak RSS and CPU time are
   that side's own):
   * plain: cv2.imread (full decode, EXIF orientation applied), resize to 1280 long side, cv2 YuNet,
     cv2.FaceRecognizerSF alignCrop from the full image + feature for every face (same weight files);
   * import: ``Library(tmp).import_paths([folder])``, what ``facenet-photos import`` runs (scan, hash,
     decode/detect/align workers, batched embedding, thumbnails, SQLite commits, grouping).
   Both load their models before the clock starts.
3. Prints photos/s, faces/s, CPU seconds per photo, peak RSS, detection recall by face width (a ground
   truth box counts as found when a detection overlaps it with IoU >= 0.4) and the ratios, as markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import REPO, SHARED_DATA  # noqa: E402, F401

SHARED = SHARED_DATA
W, H = 4032, 3024
HEIC_MADE = 8  # the first photos are also written as HEIC; --heic chooses how many of them are run
BINS = [40, 60, 90, 135, 200, 300, 450, 701]
# Large real photos; the small nature ones are scaled up (they still look like photos, just softer).
BACKGROUNDS = [
    "albums/text/book-beside-flowers.jpg", "albums/text/craft-beer.jpg", "albums/text/handwritten-notes.jpg",
    "albums/text/japanese-shop.jpg", "heic/IMG_2682.heic", "motionphoto/samsung-one-ui-6.heic",
    "avif/10bit-HDR-P3-nclx.avif", "albums/nature/prairie_falcon.jpg", "albums/nature/tanners_ridge.jpg",
    "albums/nature/silver_fir.jpg", "albums/nature/wood_anemones.jpg",
]


# ----------------------------------------------------------------------------------------------------------
# The synthetic set


def _face_sources(kind: str, n: int, seed: int) -> list[Path]:
    if kind == "lfw":
        files = sorted((SHARED / "lfw" / "images").glob("*/*.jpg"))
    else:
        files = sorted((SHARED / "lag-dev" / "images").glob("*.png"))
    if not files:
        raise SystemExit(f"no face images under {SHARED / kind} (the {kind} data set is needed for this bench)")
    idx = np.random.default_rng(seed).choice(len(files), min(n, len(files)), replace=False)
    return [files[i] for i in idx]


def _cover(img, w: int, h: int):
    from PIL import Image

    f = max(w / img.width, h / img.height)
    img = img.resize((math.ceil(img.width * f), math.ceil(img.height * f)), Image.Resampling.BICUBIC)
    x0, y0 = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((x0, y0, x0 + w, y0 + h))


def make_set(cache: Path, n: int, faces_from: str, seed: int) -> dict:
    """Write the photos and truth.json into ``cache`` (reused when it matches the arguments)."""
    from PIL import Image

    from engine.pipeline.decode import decode
    from engine.pipeline.detect import FaceDetector

    key = {"n": n, "faces": faces_from, "seed": seed, "version": 4}
    n_heic = min(n, HEIC_MADE)
    truth_file = cache / "truth.json"
    if truth_file.exists():
        truth = json.loads(truth_file.read_text())
        if truth.get("key") == key:
            return truth
    jpeg_dir, heic_dir = cache / "jpeg", cache / "heic"
    for d in (jpeg_dir, heic_dir):
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            old.unlink()
    rng = np.random.default_rng(seed)
    det = FaceDetector()
    backgrounds = []
    for rel in BACKGROUNDS:
        p = SHARED / "photo-formats" / rel
        if p.exists():
            rgb, _ = decode(p)
            bg = Image.fromarray(rgb)
            if bg.height > bg.width:
                bg = bg.transpose(Image.Transpose.ROTATE_90)
            backgrounds.append(_cover(bg, W, H))
    if not backgrounds:
        raise SystemExit(f"no backgrounds under {SHARED / 'photo-formats'}")
    # Each source face once through YuNet: its real box, so a pasted face has a known box at any scale.
    sources = []
    for p in _face_sources(faces_from, 8 * n, seed):
        rgb, _ = decode(p)
        d = det.detect(rgb)
        if d and d[0].box[2] >= 30:
            sources.append((rgb, d[0].box))
    photos = []
    for i in range(n):
        img = backgrounds[i % len(backgrounds)].copy()
        boxes: list[list[float]] = []
        for _ in range(int(rng.integers(1, 7))):
            rgb, (bx, by, bw, bh) = sources[int(rng.integers(len(sources)))]
            want = float(np.exp(rng.uniform(np.log(40), np.log(700))))
            f = want / bw
            sw, sh = max(1, round(rgb.shape[1] * f)), max(1, round(rgb.shape[0] * f))
            face = Image.fromarray(rgb).resize((sw, sh), Image.Resampling.LANCZOS)
            # Soft ellipse around the face box: the background shows through the source's square edges.
            yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
            cx, cy = (bx + bw / 2) * f, (by + bh / 2) * f
            rx, ry = bw * f * 0.8, bh * f * 1.0
            r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
            mask = Image.fromarray((np.clip((1.2 - r) / 0.35, 0, 1) * 255).astype(np.uint8))
            for _try in range(50):
                ox, oy = int(rng.integers(-round(bx * f * 0.5), W - sw + 1)), int(rng.integers(0, max(1, H - sh)))
                box = [ox + bx * f, oy + by * f, bw * f, bh * f]
                if box[0] < 0 or box[0] + box[2] > W or box[1] + box[3] > H:
                    continue
                if all(_iou(box, b, pad=0.6) == 0 for b in boxes):
                    img.paste(face, (ox, oy), mask)
                    boxes.append(box)
                    break
        name = f"photo_{i:03d}"
        rotated = i % 5 == 4
        # Orientation 6 = "rotate 90 degrees clockwise to display": store the display image turned back.
        stored = img.transpose(Image.Transpose.ROTATE_90) if rotated else img
        exif = Image.Exif()
        exif[0x0112] = 6 if rotated else 1
        stored.save(jpeg_dir / f"{name}.jpg", "JPEG", quality=90, exif=exif.tobytes())
        if i < n_heic:
            import pillow_heif

            pillow_heif.register_heif_opener()
            # Apple's layout (the iPhone sample in photo-formats/heic is 48 such tiles and a thumbnail).
            stored.save(heic_dir / f"{name}.heic", "HEIF", quality=90, exif=exif.tobytes(), tile_size=512)
        photos.append({"name": name, "rotated": rotated, "boxes": boxes})
    truth = {"key": key, "photos": photos}
    truth_file.write_text(json.dumps(truth))
    return truth


def _iou(a, b, pad: float = 0.0) -> float:
    ax0, ay0, ax1, ay1 = a[0] - pad * a[2], a[1] - pad * a[3], a[0] + (1 + pad) * a[2], a[1] + (1 + pad) * a[3]
    bx0, by0, bx1, by1 = b[0] - pad * b[2], b[1] - pad * b[3], b[0] + (1 + pad) * b[2], b[1] + (1 + pad) * b[3]
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter) if inter else 0.0


# ----------------------------------------------------------------------------------------------------------
# The two sides (each runs in a child process: ``--side plain|import``)


def side_plain(folder: Path) -> dict:
    import cv2

    from engine.models.registry import SFACE, YUNET, verified_path

    det = cv2.FaceDetectorYN.create(str(verified_path(YUNET)), "", (320, 320), 0.6, 0.3, 5000)
    rec = cv2.FaceRecognizerSF.create(str(verified_path(SFACE)), "")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".heic"))

    def one(p: Path) -> list[list[float]]:
        if p.suffix.lower() == ".heic":  # OpenCV cannot read HEIC: the plain loop uses pillow-heif
            from engine.pipeline.decode import decode

            img = cv2.cvtColor(decode(p)[0], cv2.COLOR_RGB2BGR)
        else:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)  # applies the EXIF orientation
        h, w = img.shape[:2]
        f = 1280 / max(h, w)
        small = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        det.setInputSize((small.shape[1], small.shape[0]))
        _, faces = det.detect(small)
        out = []
        for face in faces if faces is not None else []:
            full = face.copy()
            full[:14] /= f
            rec.feature(rec.alignCrop(img, full))
            out.append([float(v) for v in full[:4]])
        return out

    one(paths[0])  # warm-up
    t, c = time.perf_counter(), time.process_time()
    boxes = {p.stem: one(p) for p in paths}
    return {"seconds": time.perf_counter() - t, "cpu": time.process_time() - c, "boxes": boxes}


def side_import(folder: Path) -> dict:
    from sqlalchemy import select

    from engine.services.library import Library
    from engine.store.schema import Face, Photo

    if os.environ.get("BENCH_CV2_THREADS"):
        import cv2

        cv2.setNumThreads(int(os.environ["BENCH_CV2_THREADS"]))
    with tempfile.TemporaryDirectory(prefix="lib-12mp-") as tmp:
        lib = Library(Path(tmp) / "library")
        try:
            lib.embedder()  # models loaded (and folded) before the clock, as for the plain loop
            from engine.pipeline.faces import FaceFinder

            FaceFinder().detector  # noqa: B018 - the same for the detector
            t, c = time.perf_counter(), time.process_time()
            analysed = None
            last = None
            for prog in lib.import_paths([folder]):
                last = prog
                if analysed is None and prog.stage in ("recognise", "cluster", "done"):
                    analysed = time.perf_counter() - t
            seconds, cpu = time.perf_counter() - t, time.process_time() - c
            if last is None or last.stage != "done" or last.failed:
                raise SystemExit(f"import did not finish cleanly: {last}")
            boxes: dict[str, list] = {}
            with lib.store.session() as s:
                for path, x, y, w, h in s.execute(select(Photo.path, Face.x, Face.y, Face.w, Face.h).join(Face)):
                    boxes.setdefault(Path(path).stem, []).append([x, y, w, h])
        finally:
            lib.close()
    return {"seconds": seconds, "analysed": analysed, "cpu": cpu, "boxes": boxes}


def run_side(side: str, folder: Path) -> dict:
    """One side in a fresh process; its own peak RSS comes from wait4."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        proc = subprocess.Popen([sys.executable, __file__, "--side", side, str(folder), str(out)],
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit(f"the {side} side failed (status {status})")
        res = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    res["peak_rss_mb"] = usage.ru_maxrss / 1024
    return res


# ----------------------------------------------------------------------------------------------------------
# Scoring and the report


def recall_by_bin(truth: dict, boxes: dict) -> tuple[list[tuple[int, int]], int]:
    """Per width bin (found, total), and the number of detections matching no pasted face."""
    found = [[0, 0] for _ in BINS[:-1]]
    extra = 0
    for ph in truth["photos"]:
        dets = boxes.get(ph["name"], [])
        used = set()
        for gt in ph["boxes"]:
            b = np.searchsorted(BINS, gt[2], side="right") - 1
            b = min(max(b, 0), len(BINS) - 2)
            found[b][1] += 1
            best = max(range(len(dets)), key=lambda j: _iou(gt, dets[j]), default=None)
            if best is not None and best not in used and _iou(gt, dets[best]) >= 0.4:
                used.add(best)
                found[b][0] += 1
        extra += len(dets) - len(used)
    return [tuple(f) for f in found], extra


def report(truth: dict, results: dict[str, list[dict]], kind: str, n: int) -> None:
    print(f"\n### {kind}: {n} photos of {W}x{H}, {sum(len(p['boxes']) for p in truth['photos'][:n])} pasted faces\n")
    best = {side: min(rs, key=lambda r: r["seconds"]) for side, rs in results.items()}
    print("| | photos/s | faces/s | CPU s / photo | peak RSS | faces found | other detections |")
    print("|---|---|---|---|---|---|---|")
    for side, r in best.items():
        nf = sum(len(v) for v in r["boxes"].values())
        bins, extra = recall_by_bin({"photos": truth["photos"][:n]}, r["boxes"])
        print(f"| {side} | {n / r['seconds']:.2f} | {nf / r['seconds']:.1f} | {r['cpu'] / n:.3f} "
              f"| {r['peak_rss_mb']:.0f} MB | {sum(b[0] for b in bins)} / {sum(b[1] for b in bins)} | {extra} |")
    if "plain" in best and "import" in best:
        print(f"\nimport / plain: {best['plain']['seconds'] / best['import']['seconds']:.2f}x photos/s, "
              f"{best['plain']['cpu'] / best['import']['cpu']:.2f}x CPU per photo "
              f"(best of {len(results['plain'])} interleaved rounds; every round: "
              + ", ".join(f"{p['seconds'] / i['seconds']:.2f}x" for p, i in zip(results["plain"], results["import"],
                                                                               strict=False)) + ")")
    print("\n| face width (px) | " + " | ".join(best) + " |")
    print("|---|" + "---|" * len(best))
    per = {side: recall_by_bin({"photos": truth["photos"][:n]}, r["boxes"])[0] for side, r in best.items()}
    for i in range(len(BINS) - 1):
        cells = []
        for side in best:
            f, t = per[side][i]
            cells.append(f"{100 * f / t:.1f} % ({f}/{t})" if t else "-")
        print(f"| {BINS[i]}-{BINS[i + 1] - 1} | " + " | ".join(cells) + " |")
    for side in best:
        f = sum(b[0] for b in per[side][1:])
        t = sum(b[1] for b in per[side][1:])
        print(f"\n{side}: recall on faces >= 60 px {100 * f / max(1, t):.1f} % ({f}/{t})", end="")
    print()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--side"]:
        side, folder, out = argv[1], Path(argv[2]), Path(argv[3])
        res = side_plain(folder) if side == "plain" else side_import(folder)
        out.write_text(json.dumps(res))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "facenet-photos-12mp")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--no-heic", action="store_true", help=f"skip the run on the {HEIC_MADE} HEIC photos")
    ap.add_argument("--faces", choices=("lfw", "lag-dev"), default="lfw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sides", default="plain,import")
    ap.add_argument("--make-only", action="store_true")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    truth = make_set(args.cache, args.n, args.faces, args.seed)
    print(f"set in {args.cache} ({time.perf_counter() - t:.0f} s); {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.make_only:
        return 0
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    for kind, sub, n in (("JPEG", "jpeg", args.n), ("HEIC", "heic", 0 if args.no_heic else min(HEIC_MADE, args.n))):
        if n == 0:
            continue
        results: dict[str, list[dict]] = {s: [] for s in sides}
        for rnd in range(args.rounds):
            for side in sides:
                r = run_side(side, args.cache / sub)
                results[side].append(r)
                print(f"{kind} round {rnd + 1} {side}: {n / r['seconds']:.2f} photos/s, cpu {r['cpu'] / n:.3f} s/photo,"
                      f" load average {os.getloadavg()[0]:.1f}", flush=True)
        report(truth, results, kind, n)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\n(bench parent peak RSS {usage.ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
