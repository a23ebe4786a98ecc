"""Development sets shaped like a family library, embedded once through the app's own pipeline.

A family library holds few people with many photos each, taken over years on phones. LFW as a whole is the
wrong shape (most of its people have one photo), so the grouping defaults are calibrated on:

* ``lag``: lag-dev (half of the Large Age-Gap database): 489 people photographed young and as adults;
* ``lfw-phone``: the LFW people with at least ``MIN_LFW_PHOTOS`` photos, each photo degraded the way phone
  photos of a family are (downscaled, JPEG recompressed, partly cut off or covered), a fixed share left clean;
* ``mixed``: libraries holding people of both.

Embedding (``--make``) runs every image through the app's ``FaceFinder`` (decode, YuNet, alignment) and its
``Embedder`` (SFace) and caches the result in one ``.npz`` outside the repository (``--cache``, default in the
system's temporary directory), since the research images must not be copied into the project.

    python bench/family_sets.py --make                    # ~5 min on 2 cores
    python bench/family_sets.py                           # summary of the cached sets

``libraries()`` then draws "family-sized" libraries (20-40 people each) from disjoint identity folds, which is
what ``bench/calibrate_grouping.py`` cross-validates on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "facenet-photos-devsets" / "family_sets.npz"
MIN_LFW_PHOTOS = 10
CLEAN_SHARE = 0.3  # share of the LFW photos left as they are (scanned prints, good phone photos)
# lag-dev images are 100 x 100 crops with the face filling them; a photo has background around the face, and
# YuNet needs some, so each crop is placed on a neutral canvas this many times its size.
LAG_CANVAS = 2.0


# ------------------------------------------------------------------------------------------ degrading


def degrade(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A phone-photo version of an LFW image: downscaled (faces 25-45 px wide instead of ~60), sometimes
    partly cut off at one side or covered (hand, glass, another head), then JPEG at quality 25-70.

    Returns the degraded RGB image (same size as the input, so the face stays where it was: the image is
    upscaled back as a gallery viewer does) and a short description of what was done."""
    import cv2

    h, w = rgb.shape[:2]
    out = rgb.copy()
    what = []
    u = rng.random()
    if u < 0.2:
        # Cut off: the face runs out of the frame at one side (20-30 % of the face box, which is ~40 % of
        # the 150 px image centred).
        side = int(rng.integers(4))
        cut = int(w * rng.uniform(0.33, 0.40))
        if side == 0:
            out[:, :cut] = 0
        elif side == 1:
            out[:, w - cut :] = 0
        elif side == 2:
            out[: int(h * 0.36)] = 0
        else:
            out[h - int(h * 0.36) :] = 0
        what.append(f"cut{side}")
    elif u < 0.4:
        # Covered: a flat patch over the lower or one upper quarter of the face.
        fx0, fy0, fw = int(w * 0.3), int(h * 0.3), int(w * 0.4)
        grey = rng.integers(40, 200, size=3)
        if rng.random() < 0.5:
            out[fy0 + int(fw * 0.6) : fy0 + fw + 5, fx0 - 5 : fx0 + fw + 5] = grey
            what.append("cover-mouth")
        else:
            x0 = fx0 - 5 if rng.random() < 0.5 else fx0 + fw // 2
            out[fy0 - 5 : fy0 + int(fw * 0.45), x0 : x0 + fw // 2 + 5] = grey
            what.append("cover-eye")
    scale = rng.uniform(0.42, 0.75)
    small = cv2.resize(out, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    q = int(rng.integers(25, 71))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok
    small = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    what.append(f"x{scale:.2f}-q{q}")
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), "+".join(what)


# ------------------------------------------------------------------------------------------ embedding


def _embed_images(images, finder, embedder, log=print, label="") -> tuple[np.ndarray, np.ndarray]:
    """Embed the central face of each RGB image: the app's detector and alignment, then its embedder.

    When nothing is detected the face is aligned with the template scaled into the image centre (as
    bench/cluster_lfw.py does for LFW); ``detected`` says which."""
    from cluster_lfw import centre_landmarks, pick_central

    from engine.align import align_face

    n = len(images)
    emb = np.zeros((n, embedder.dim), np.float32)
    detected = np.zeros(n, bool)
    crops, t0 = [], time.time()
    for i, rgb in enumerate(images):
        h, w = rgb.shape[:2]
        dets = finder.detections(rgb, 1.0)
        if dets:
            lm, detected[i] = pick_central(dets, h, w).landmarks, True
        else:
            lm = centre_landmarks(h, w, face_px=0.45 * w)
        crops.append(align_face(rgb, lm))
        if len(crops) == 256 or i == n - 1:
            emb[i + 1 - len(crops) : i + 1] = embedder.embed(np.stack(crops))
            crops = []
            log(f"{label} {i + 1}/{n}  {(i + 1) / (time.time() - t0):.1f} img/s", flush=True)
    return emb, detected


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def make_cache(lag_dir: Path, lfw_dir: Path, out: Path, seed: int = 0, log=print) -> Path:
    import cv2

    from engine.embed import Embedder
    from engine.pipeline import FaceFinder

    rows = [ln.rstrip("\n").split("\t") for ln in (lag_dir / "labels.tsv").read_text().splitlines()[1:] if ln]
    finder, embedder = FaceFinder(), Embedder()
    rng = np.random.default_rng(seed)

    def lag_image(f: str) -> np.ndarray:
        rgb = _read_rgb(lag_dir / "images" / f)
        h, w = rgb.shape[:2]
        pad = int(round((LAG_CANVAS - 1) * max(h, w) / 2))
        return cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))

    lag_emb, lag_det = _embed_images([lag_image(r[0]) for r in rows], finder, embedder, log, "lag")

    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= MIN_LFW_PHOTOS)
    files = [f for p in people for f in sorted(p.glob("*.jpg"))]
    clean = rng.random(len(files)) < CLEAN_SHARE
    imgs, how = [], []
    for f, c in zip(files, clean, strict=True):
        rgb = _read_rgb(f)
        if c:
            imgs.append(rgb)
            how.append("clean")
        else:
            d, what = degrade(rgb, rng)
            imgs.append(d)
            how.append(what)
    lfw_emb, lfw_det = _embed_images(imgs, finder, embedder, log, "lfw-phone")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".partial.npz")
    np.savez(
        tmp,
        lag_file=np.array([r[0] for r in rows]), lag_identity=np.array([r[1] for r in rows]),
        lag_age=np.array([r[2] for r in rows]), lag_emb=lag_emb, lag_detected=lag_det,
        lfw_file=np.array([f"{f.parent.name}/{f.name}" for f in files]),
        lfw_identity=np.array([f.parent.name for f in files]), lfw_how=np.array(how),
        lfw_emb=lfw_emb, lfw_detected=lfw_det, model_id=np.array(embedder.model_id), seed=np.array(seed),
    )
    tmp.replace(out)
    log(f"wrote {out}: lag {len(rows)} faces ({int((~lag_det).sum())} not detected), lfw-phone {len(files)} "
        f"faces of {len(people)} people ({int((~lfw_det).sum())} not detected)")
    return out


def load_cache(path: Path = DEFAULT_CACHE) -> dict[str, np.ndarray]:
    if not path.exists():
        raise SystemExit(f"{path} missing: run  python bench/family_sets.py --make")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------------------------------- libraries


@dataclass
class DevLibrary:
    """One simulated family library: faces, their true person, and (lag) their age group."""

    kind: str  # "lag", "lfw-phone", "mixed"
    fold: int
    emb: np.ndarray
    truth: np.ndarray  # person labels (str)
    young: np.ndarray  # bool: lag "young" photo (False elsewhere)

    @property
    def n_people(self) -> int:
        return len(set(self.truth.tolist()))


def identity_folds(identities: np.ndarray, n_folds: int, seed: int) -> dict[str, int]:
    """Each identity's fold (0..n_folds-1), random but fixed by ``seed``."""
    names = sorted(set(identities.tolist()))
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(names))
    return {names[j]: int(i % n_folds) for i, j in enumerate(perm)}


def libraries(cache: dict[str, np.ndarray], *, n_folds: int = 5, per_fold: int = 4, seed: int = 0,
              people: tuple[int, int] = (20, 40)) -> list[DevLibrary]:
    """Family-sized libraries drawn inside identity folds, so that defaults chosen on some folds can be
    reported on people never seen while choosing. Per fold and kind, ``per_fold`` libraries of
    ``people`` (inclusive range) identities each (fewer when the fold has fewer)."""
    rng = np.random.default_rng(seed + 1)
    lag_id, lfw_id = cache["lag_identity"], cache["lfw_identity"]
    lag_fold, lfw_fold = identity_folds(lag_id, n_folds, seed), identity_folds(lfw_id, n_folds, seed)
    young = cache["lag_age"] == "young"
    out: list[DevLibrary] = []
    for f in range(n_folds):
        lag_names = sorted(k for k, v in lag_fold.items() if v == f)
        lfw_names = sorted(k for k, v in lfw_fold.items() if v == f)
        for _ in range(per_fold):
            for kind in ("lag", "lfw-phone", "mixed"):
                size = int(rng.integers(people[0], people[1] + 1))
                if kind == "lag":
                    pick_lag, pick_lfw = rng.choice(lag_names, min(size, len(lag_names)), replace=False), []
                elif kind == "lfw-phone":
                    pick_lag, pick_lfw = [], rng.choice(lfw_names, min(size, len(lfw_names)), replace=False)
                else:
                    a = min(size // 2, len(lfw_names))
                    pick_lfw = rng.choice(lfw_names, a, replace=False)
                    pick_lag = rng.choice(lag_names, min(size - a, len(lag_names)), replace=False)
                sel_lag = np.flatnonzero(np.isin(lag_id, pick_lag))
                sel_lfw = np.flatnonzero(np.isin(lfw_id, pick_lfw))
                out.append(DevLibrary(
                    kind=kind, fold=f,
                    emb=np.concatenate([cache["lag_emb"][sel_lag], cache["lfw_emb"][sel_lfw]]),
                    truth=np.concatenate([np.char.add("lag:", lag_id[sel_lag]),
                                          np.char.add("lfw:", lfw_id[sel_lfw])]).astype(str),
                    young=np.concatenate([young[sel_lag], np.zeros(len(sel_lfw), bool)]),
                ))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lag", type=Path, default=SHARED / "lag-dev", help="lag-dev folder (labels.tsv, images/)")
    ap.add_argument("--lfw", type=Path, default=SHARED / "lfw" / "images", help="LFW images/<Name>/ folder")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embedding cache (.npz), outside the repo")
    ap.add_argument("--make", action="store_true", help="embed the images (else: summarise the cache)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.make:
        for d in (args.lag, args.lfw):
            if not d.is_dir():
                raise SystemExit(f"{d} is not a folder")
        make_cache(args.lag, args.lfw, args.cache, seed=args.seed)
    c = load_cache(args.cache)
    libs = libraries(c)
    for kind in ("lag", "lfw-phone", "mixed"):
        ls = [lib for lib in libs if lib.kind == kind]
        faces = [len(lib.truth) for lib in ls]
        ppl = [lib.n_people for lib in ls]
        print(f"{kind:>9s}: {len(ls)} libraries, {min(ppl)}-{max(ppl)} people, {min(faces)}-{max(faces)} faces")
    print(f"lag: {len(c['lag_emb'])} faces, detected {c['lag_detected'].mean():.3f}; lfw-phone: "
          f"{len(c['lfw_emb'])} faces of {len(set(c['lfw_identity'].tolist()))} people, detected "
          f"{c['lfw_detected'].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
