"""Does the stable grouping method hold its precision when a library holds thousands of people?

    python bench/grouping_scale.py --make-proxy      # once: the 50,000-photo proxy's embeddings (~4 min)
    python bench/grouping_scale.py                   # before / after, every data set, in one run

The stable method (engine/grouping/density.py) is calibrated on family-shaped libraries (20-40 people);
on a library of thousands of people its single-linkage tree chains (issue 10: the 50,000-photo library of
bench/big_library.py, 7,183 people, one group of 2,580 faces of 615 people). This script compares the
method without and with its chaining guard (``link_threshold``: two groups of at least ``link_min_size``
faces join only if their average linkage is within it), each variant run on the same data in the same
process:

* **development libraries, held out** (bench/family_sets.py, bench/calibrate_grouping.py): for every
  variant, T is chosen per fold on the other four folds (the app's pooled precision floor 0.98) and
  reported on the held-out fold, for the plain libraries and with 20 % one-photo LFW strangers;
* **all of LFW** (13,233 images, bench/cluster_lfw.py's cache; the wrong shape, a check only);
* **the 50,000-photo library, proxied** (importing 50,000 photos takes 15 minutes or more):
  bench/big_library.py's photos are replayed with its own random draws (photo i shows LFW image i mod the
  number of images, mirrored or not). Each LFW image is pasted once as the library pastes it (150 px
  thumbnail on a 320 x 240 canvas, JPEG 88), mirrored, and embedded (aligned with the cache's landmarks,
  mirrored); the detector's other faces there are embedded too (LFW's background people, ~0.2 a photo as
  in the imported library: unlabelled, grouped with the rest, not scored). A photo's labelled face is its
  image's embedding (the cache's or the mirrored one) and its background faces those of its image, each
  moved by isotropic noise to COPY_D2 (two copies of one image with the same orientation differ by that
  much); faces of one photo never share a group. Timed per variant (best of 2, interleaved).
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import LFW, REPO  # noqa: E402

DEFAULT_LFW_CACHE = REPO / ".cache" / "lfw_embeddings.npz"
DEFAULT_PROXY = Path(tempfile.gettempdir()) / "facenet-photos-grouping-scale" / "proxy-50000-0.npz"
T_GRID = [round(1.00 + 0.05 * i, 2) for i in range(9)]  # 1.00 .. 1.40


# ------------------------------------------------------------------------------------------- proxy


# Squared distance between two copies of one LFW image with the same orientation (150 px thumbnail,
# brightness 0.8-1.2, JPEG 88): median 0.012 on 256 images against the cache's embedding (a mirrored copy:
# 0.078, which the proxy embeds for real).
COPY_D2 = 0.012


def lfw_as_pasted(lfw_cache: Path, out: Path, log=print) -> dict[str, np.ndarray]:
    """Every LFW image as bench/big_library.py pastes it (150 px thumbnail on a 320 x 240 canvas, JPEG 88):
    the labelled face mirrored (``mirrored``, aligned with the cache's landmarks mirrored, in the cache's
    order) and the other faces the detector finds there (``bg``, unmirrored, with ``bg_image``, the
    cache index of their image): LFW's background people, unlabelled, ~0.2 a photo in the imported
    library. Cached in ``out``."""
    if out.exists():
        with np.load(out) as z:
            return {k: z[k] for k in z.files}
    from PIL import Image

    from engine.pipeline.align import align_face
    from engine.pipeline.detect import FaceDetector
    from engine.pipeline.embed import Embedder

    with np.load(lfw_cache, allow_pickle=False) as z:
        paths, marks = z["paths"], z["landmarks"]
    det, model = FaceDetector(), Embedder()
    mirrored = np.zeros((len(paths), model.dim), np.float32)
    bg, bg_image = [], []
    t0, crops, bg_crops, at = time.time(), [], [], 0
    for j, rel in enumerate(paths.tolist()):
        face = Image.open(LFW / "images" / rel).convert("RGB")
        w0 = face.width
        face.thumbnail((150, 150))
        pts = (marks[j].astype(np.float64) + 0.5) * (face.width / w0) - 0.5
        canvas = Image.new("RGB", (320, 240), (128, 128, 128))
        canvas.paste(face, (85, 45))
        buf = io.BytesIO()
        canvas.save(buf, "JPEG", quality=88)
        rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        centre = pts.mean(0) + (85, 45)
        for d in det.detect(rgb):
            if np.linalg.norm(np.asarray(d.landmarks).mean(0) - centre) > 12:  # not the labelled face
                bg_crops.append(align_face(rgb, np.asarray(d.landmarks, np.float32)))
                bg_image.append(j)
        flip = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buf = io.BytesIO()
        flip.save(buf, "JPEG", quality=88)
        q = pts + (85, 45)
        q[:, 0] = 320 - 1 - q[:, 0]
        q = q[[1, 0, 2, 4, 3]]  # mirrored: left and right eye, mouth corners swap
        crops.append(align_face(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")),
                                q.astype(np.float32)))
        if len(crops) == 512 or j == len(paths) - 1:
            mirrored[at : at + len(crops)] = model.embed(np.stack(crops))
            if bg_crops:
                bg.append(model.embed(np.stack(bg_crops)))
            at += len(crops)
            crops, bg_crops = [], []
            log(f"pasted {at}/{len(paths)}, {len(bg_image)} background faces, {at / (time.time() - t0):.0f} "
                "images/s", flush=True)
    res = {"mirrored": mirrored, "bg": np.concatenate(bg) if bg else np.zeros((0, model.dim), np.float32),
           "bg_image": np.array(bg_image, np.int64)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **res)
    return res


def make_proxy(lfw_cache: Path, out: Path, n: int = 50_000, seed: int = 0, log=print) -> Path:
    """Embeddings of bench/big_library.py's ``n`` photos (module doc), labelled with their LFW identity: photo
    i shows LFW image i mod 13,233 (sorted paths) mirrored or not by the library's own random draw; its face
    is that image's embedding (the cache's, or the mirrored one) moved by isotropic noise to COPY_D2."""
    with np.load(lfw_cache, allow_pickle=False) as z:
        paths, names, emb0 = z["paths"], z["names"], z["emb"]
    pasted = lfw_as_pasted(lfw_cache, out.with_name("lfw_pasted.npz"), log)
    emb1 = pasted["mirrored"]
    index = {p: i for i, p in enumerate(paths.tolist())}
    sources = sorted((LFW / "images").glob("*/*.jpg"))
    if not sources:
        raise SystemExit(f"no LFW images under {LFW / 'images'} (set FACENET_PHOTOS_DATA)")
    _, name_id = np.unique(names, return_inverse=True)
    rng = np.random.default_rng(seed)
    src = np.zeros(n, np.int64)
    flip = np.zeros(n, bool)
    for i in range(n):  # the same draws, in the same order, as bench/big_library.make_photos
        s = sources[i % len(sources)]
        src[i] = index[f"{s.parent.name}/{s.name}"]
        flip[i] = rng.random() < 0.5
        rng.uniform(0.8, 1.2)  # brightness
        rng.integers(40, 220, 3)  # canvas colour
        rng.integers(0, 320 - 150)  # paste position (LFW's 250 px images make 150 px thumbnails)
        rng.integers(0, 240 - 150)
    x = np.where(flip[:, None], emb1[src], emb0[src]).astype(np.float64)
    label, photo = name_id[src], np.arange(n)
    # The background faces of each photo's image (unlabelled: -1), unmirrored whatever the photo's draw.
    by_image = np.bincount(pasted["bg_image"], minlength=len(paths))
    order = np.argsort(pasted["bg_image"], kind="stable")
    start = np.r_[0, np.cumsum(by_image)]
    bg_rows = [order[start[j] : start[j + 1]] for j in src]
    bg_photo = np.repeat(photo, [len(r) for r in bg_rows])
    bg_idx = np.concatenate(bg_rows) if bg_rows else np.zeros(0, np.int64)
    x = np.concatenate([x, pasted["bg"][bg_idx].astype(np.float64)])
    label = np.concatenate([label, np.full(len(bg_idx), -1, np.int64)])
    photo = np.concatenate([photo, bg_photo])
    # Noise of squared norm s^2 on a unit vector: |x + g| = sqrt(1 + s^2), d2 = 2 - 2 / sqrt(1 + s^2).
    sig2 = (2.0 / (2.0 - COPY_D2)) ** 2 - 1.0
    x += np.random.default_rng(seed + 1).normal(size=x.shape) * np.sqrt(sig2 / x.shape[1])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, emb=x.astype(np.float32), label=label, photo=photo)
    log(f"wrote {out}: {n} photos, {len(x)} faces ({len(bg_idx)} background), "
        f"{len(np.unique(name_id[src]))} people")
    return out


# ------------------------------------------------------------------------------------------- runs


def variants(args) -> dict[str, dict]:
    out = {"stable (before)": {"link_threshold": np.inf}}
    for r in args.link_ratio:
        for m in args.link_min:
            out[f"stable, guard {r:.2f} T, min {m}"] = {"link_ratio": r, "link_min_size": m}
    return out


def run(emb: np.ndarray, t: float, v: dict, photo_ids=None) -> np.ndarray:
    from engine.grouping.density import cluster_faces_stable

    kw = dict(v)
    r = kw.pop("link_ratio", None)
    if r is not None:
        kw["link_threshold"] = r * t
    return cluster_faces_stable(emb, t, photo_ids=photo_ids, **kw)


def dev_rows(libs, vs: dict[str, dict], grid, log=print) -> list[dict]:
    from calibrate_grouping import cross_age, false_pairs

    from evals.metrics import cluster_scores, corrections

    rows = []
    for name, v in vs.items():
        t0 = time.time()
        for t in grid:
            for li, lib in enumerate(libs):
                pred = run(lib.emb, t, v)
                s = cluster_scores(pred, lib.truth)
                c = corrections(pred, lib.truth)
                hit, tot = cross_age(pred, lib)
                fp, fp_all = false_pairs(pred, lib.truth)
                rows.append({"method": name, "threshold": t, "library": li, "kind": lib.kind, "fold": lib.fold,
                             "faces": len(lib.truth), "people": lib.n_people, **s.as_dict(),
                             "corrections_per_100": c.per_100_faces, "moves": c.moves, "merges": c.merges,
                             "cross_age_hit": hit, "cross_age_pairs": tot, "false_pairs": fp, "diff_pairs": fp_all})
        log(f"  dev: {name} ({time.time() - t0:.0f} s)", flush=True)
    return rows


def dev_table(rows: list[dict], vs: dict[str, dict], fixed_t: float) -> tuple[str, dict]:
    from calibrate_grouping import KINDS, _fmt, cross_validate, summarise

    lines = ["| variant | T chosen (per fold) | lag-dev | LFW phone | mixed | all | all at T " f"{fixed_t:.2f} |",
             "|---|---|---|---|---|---|---|"]
    full = summarise(rows)
    res = {}
    for name in vs:
        cv = cross_validate(rows, (name,), "pooled")
        m = cv["mean_held_out"]
        ch = ", ".join(f"{x['threshold']:.2f}" for x in cv["folds"])
        at = full.get((name, fixed_t), {}).get("all")
        lines.append(f"| {name} | {ch} | " + " | ".join(_fmt(m[k]) for k in (*KINDS, "all"))
                     + f" | {_fmt(at) if at else '-'} |")
        res[name] = {"folds": [(x["fold"], x["threshold"]) for x in cv["folds"]], "held_out": m}
    return "\n".join(lines), res


def big_scores(emb, truth, vs, t: float, timed: bool, photo_ids=None, log=print) -> tuple[str, dict]:
    from evals.metrics import cluster_scores

    res, lines = {}, ["| variant | BCubed P / R / F1 | groups | largest group (faces / people) | seconds |",
                      "|---|---|---|---|---|"]
    rounds = 2 if timed else 1
    times: dict[str, list[float]] = {k: [] for k in vs}
    preds = {}
    for _ in range(rounds):  # interleaved: before and after share the machine's load
        for name, v in vs.items():
            t0 = time.perf_counter()
            preds[name] = run(emb, t, v, photo_ids)
            times[name].append(time.perf_counter() - t0)
    scored = truth != -1 if truth.dtype.kind in "iu" else np.ones(len(truth), bool)
    for name in vs:
        pred = preds[name][scored]  # unlabelled (background) faces are grouped with the rest, not scored
        s = cluster_scores(pred, truth[scored])
        big = np.bincount(pred).argmax()
        n_big = int((pred == big).sum())
        ppl = len(np.unique(truth[scored][pred == big]))
        res[name] = {"p": s.bcubed_precision, "r": s.bcubed_recall, "f1": s.bcubed_f1, "groups": s.n_clusters,
                     "largest": n_big, "largest_people": ppl, "seconds": min(times[name])}
        lines.append(f"| {name} | {s.bcubed_precision:.3f} / {s.bcubed_recall:.3f} / **{s.bcubed_f1:.3f}** | "
                     f"{s.n_clusters:,} | {n_big:,} / {ppl} | {min(times[name]):.1f} |")
        log(lines[-1], flush=True)
    return "\n".join(lines), res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make-proxy", action="store_true", help="build the 50,000-photo proxy and exit")
    ap.add_argument("--lfw-cache", type=Path, default=DEFAULT_LFW_CACHE, help="bench/cluster_lfw.py's cache")
    ap.add_argument("--proxy", type=Path, default=DEFAULT_PROXY)
    ap.add_argument("--dev-cache", type=Path, default=None, help="bench/family_sets.py's cache")
    ap.add_argument("--link-ratio", type=float, nargs="*", default=[1.30], help="guards to compare, x T")
    ap.add_argument("--link-min", type=int, nargs="*", default=[2])
    ap.add_argument("--t", type=float, default=1.20, help="T for all of LFW and the proxy")
    ap.add_argument("--grid", type=float, nargs="*", default=T_GRID, help="T grid for the development sets")
    ap.add_argument("--skip", nargs="*", default=[], choices=["dev", "strangers", "lfw", "proxy"])
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    if args.make_proxy:
        make_proxy(args.lfw_cache, args.proxy)
        return 0
    vs = variants(args)
    results: dict = {"variants": {k: {a: float(b) for a, b in v.items()} for k, v in vs.items()}}
    if "dev" not in args.skip or "strangers" not in args.skip:
        from calibrate_grouping import add_strangers
        from family_sets import DEFAULT_CACHE, libraries, load_cache

        libs = libraries(load_cache(args.dev_cache or DEFAULT_CACHE))
        for what in ("dev", "strangers"):
            if what in args.skip:
                continue
            use = libs if what == "dev" else add_strangers(libs, args.lfw_cache, 0.2)
            rows = dev_rows(use, vs, args.grid)
            text, res = dev_table(rows, vs, args.t)
            print(f"\n### development libraries{' + 20 % strangers' if what == 'strangers' else ''}, held out "
                  "(BCubed P / R / F1 / corrections per 100 faces)\n\n" + text + "\n", flush=True)
            results[what] = res
    if "lfw" not in args.skip:
        with np.load(args.lfw_cache, allow_pickle=False) as z:
            emb, names = z["emb"], z["names"]
        print(f"\n### all of LFW ({len(emb):,} faces, T {args.t:.2f})\n", flush=True)
        text, results["lfw"] = big_scores(emb, names, vs, args.t, timed=False)
        print("\n" + text + "\n")
    if "proxy" not in args.skip:
        with np.load(args.proxy) as z:
            emb, label, photo = z["emb"], z["label"], z["photo"]
        print(f"\n### 50,000-photo library proxy ({len(emb):,} faces, {len(np.unique(label[label >= 0])):,} "
              f"people, T {args.t:.2f})\n", flush=True)
        text, results["proxy"] = big_scores(emb, label, vs, args.t, timed=True, photo_ids=photo)
        print("\n" + text + "\n")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
