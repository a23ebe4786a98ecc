"""Face datasets as aligned 112x112 uint8 RGB crops plus integer identity labels.

Three sources:

* a folder of identity sub-folders (``root/<person>/<image>``), e.g. the AT&T faces;
* LFW, split by the 10 identity folds of ``people.txt`` (the "unrestricted" protocol: the people in
  fold *i* are exactly the people in set *i* of ``pairs.txt``); each image is detected and aligned
  once with the engine's detector and aligner and the crops are cached as ``.npz`` files under a
  git-ignored cache folder;
* a photo library's named people: any callable returning ``(crops, labels)``, or the arrays.

Detection picks the face nearest the image centre (LFW and AT&T photos are centred on their
subject). Where the detector finds nothing, the median landmarks of the images where it did are
used instead, and the crop is counted in ``FaceSet.fallbacks``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".webp", ".tif", ".tiff"}
CACHE_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO_ROOT / ".cache" / "training"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@dataclass
class FaceSet:
    """crops: (N, 112, 112, 3) uint8 RGB; labels: (N,) int64 into ``names``; keys: one per crop."""

    crops: np.ndarray
    labels: np.ndarray
    names: list[str]
    keys: list[str] = field(default_factory=list)
    fallbacks: int = 0

    def __post_init__(self) -> None:
        self.crops = np.asarray(self.crops)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.crops.ndim != 4 or self.crops.shape[1:] != (112, 112, 3) or self.crops.dtype != np.uint8:
            got = f"{self.crops.shape} {self.crops.dtype}"
            raise ValueError(f"crops must be (N, 112, 112, 3) uint8, got {got}")
        if len(self.labels) != len(self.crops):
            raise ValueError("crops and labels differ in length")
        if not self.keys:
            self.keys = [str(i) for i in range(len(self.crops))]

    def __len__(self) -> int:
        return len(self.crops)

    def subset(self, idx: np.ndarray | Sequence[int]) -> FaceSet:
        idx = np.asarray(idx, dtype=np.int64)
        return FaceSet(self.crops[idx], self.labels[idx], self.names, [self.keys[i] for i in idx], 0)

    def with_min_images(self, n: int) -> FaceSet:
        """Only identities with at least ``n`` crops (triplets need two per identity)."""
        counts = np.bincount(self.labels, minlength=len(self.names))
        return self.subset(np.flatnonzero(counts[self.labels] >= n))

    def capped(self, per_identity: int, seed: int = 0) -> FaceSet:
        """At most ``per_identity`` crops of each identity (LFW is dominated by a few people)."""
        rng = np.random.default_rng(seed)
        keep = []
        for lab in np.unique(self.labels):
            idx = np.flatnonzero(self.labels == lab)
            keep.extend(sorted(rng.permutation(idx)[:per_identity]) if len(idx) > per_identity else idx)
        return self.subset(np.sort(np.asarray(keep, dtype=np.int64)))

    @staticmethod
    def concat(sets: Iterable[FaceSet]) -> FaceSet:
        sets = list(sets)
        names: list[str] = []
        index: dict[str, int] = {}
        labels = []
        for s in sets:
            remap = np.array([index.setdefault(n, len(index)) for n in s.names], dtype=np.int64)
            labels.append(remap[s.labels] if len(s.labels) else s.labels)
        names = list(index)
        return FaceSet(
            np.concatenate([s.crops for s in sets]) if sets else np.zeros((0, 112, 112, 3), np.uint8),
            np.concatenate(labels) if labels else np.zeros(0, np.int64),
            names,
            [k for s in sets for k in s.keys],
            sum(s.fallbacks for s in sets),
        )


# ---------------------------------------------------------------------------------------------
# Detection + alignment


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class Aligner:
    """Detect the central face and align it to 112x112 with the engine's code."""

    def __init__(self) -> None:
        from engine.pipeline.detect import FaceDetector

        self._det = FaceDetector()

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        dets = self._det.detect(rgb)
        if not dets:
            return None
        from engine.pipeline.detect import centre_offset

        h, w = rgb.shape[:2]
        # Faces about as central (to a tenth of the image) are told apart by the detector's score.
        best = min(dets, key=lambda d: (round(centre_offset(d.box, w, h), 1), -d.score))
        return np.asarray(best.landmarks, np.float64)

    def align_many(self, images: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
        from engine.pipeline.align import align_face

        images = list(images)
        marks = [self.landmarks(im) for im in images]
        found = [m / np.array(im.shape[1::-1]) for m, im in zip(marks, images, strict=True) if m is not None]
        # Median landmarks, relative to image size, of the successful detections.
        rel = np.median(np.stack(found), axis=0) if found else None
        crops = np.zeros((len(images), 112, 112, 3), np.uint8)
        fallbacks = 0
        for i, (im, m) in enumerate(zip(images, marks, strict=True)):
            if m is None:
                fallbacks += 1
                if rel is None:
                    import cv2

                    crops[i] = cv2.resize(im, (112, 112), interpolation=cv2.INTER_AREA)
                    continue
                m = rel * np.array(im.shape[1::-1])
            crops[i] = align_face(im, m)
        return crops, fallbacks


def _progress(items: Sequence, desc: str, show: bool):
    if not show:
        return items
    from rich.progress import track

    return track(items, description=desc)


def _cache_file(cache_dir: Path, tag: str, files: Sequence[Path]) -> Path:
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}".encode())
    return Path(cache_dir) / f"{tag}-{h.hexdigest()[:12]}.npz"


def _aligned(
    files: Sequence[Path], keys: list[str], ident: list[str], tag: str, cache_dir: Path | None, progress: bool
) -> FaceSet:
    names = sorted(set(ident))
    index = {n: i for i, n in enumerate(names)}
    labels = np.array([index[n] for n in ident], dtype=np.int64)
    cache = _cache_file(cache_dir, tag, files) if cache_dir is not None else None
    if cache is not None and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if list(z["keys"]) == keys:
            return FaceSet(z["crops"], labels, names, keys, int(z["fallbacks"]))
    aligner = Aligner()
    images = [read_rgb(f) for f in _progress(files, f"reading {tag}", progress)]
    crops, fallbacks = aligner.align_many(images)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, crops=crops, keys=np.array(keys), fallbacks=np.array(fallbacks))
        tmp.replace(cache)
    return FaceSet(crops, labels, names, keys, fallbacks)


def load_folder(root: Path, cache_dir: Path | None = DEFAULT_CACHE, progress: bool = False) -> FaceSet:
    """``root/<identity>/<image>`` -> aligned FaceSet (identities sorted by folder name)."""
    root = Path(root)
    files, keys, ident = [], [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(d.iterdir(), key=lambda p: _natural(p.name)):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
                keys.append(f"{d.name}/{f.name}")
                ident.append(d.name)
    if not files:
        raise FileNotFoundError(f"no images in identity sub-folders of {root}")
    return _aligned(files, keys, ident, f"folder-{root.name}", cache_dir, progress)


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


# ---------------------------------------------------------------------------------------------
# LFW


def lfw_image_key(name: str, number: int) -> str:
    return f"{name}_{number:04d}"


def read_people_folds(lfw_root: Path) -> list[list[tuple[str, int]]]:
    """people.txt -> 10 folds of (name, image count)."""
    from evals.lfw import parse_people

    return parse_people(Path(lfw_root) / "people.txt")


@dataclass(frozen=True)
class Pair:
    key1: str
    key2: str
    same: bool
    fold: int


def read_pairs(lfw_root: Path, filename: str = "pairs.txt") -> list[Pair]:
    """pairs.txt -> Pair list, ``fold`` 0-based. Keys are ``Name_NNNN`` image stems."""
    from evals.lfw import parse_pairs

    def key(rel: str) -> str:
        return Path(rel).stem

    return [Pair(key(p.a), key(p.b), p.same, p.fold) for p in parse_pairs(Path(lfw_root) / filename)]


def load_lfw_fold(
    lfw_root: Path, fold: int, cache_dir: Path | None = DEFAULT_CACHE, progress: bool = False
) -> FaceSet:
    """All images of the identities in people.txt fold ``fold`` (1-based, 1..10), aligned.
    Images listed in people.txt but absent from ``images/`` are skipped."""
    lfw_root = Path(lfw_root)
    people = read_people_folds(lfw_root)[fold - 1]
    files, keys, ident = [], [], []
    for name, count in people:
        for k in range(1, count + 1):
            key = lfw_image_key(name, k)
            path = lfw_root / "images" / name / f"{key}.jpg"
            if not path.is_file():  # some copies of LFW lack an image people.txt counts
                continue
            files.append(path)
            keys.append(key)
            ident.append(name)
    return _aligned(files, keys, ident, f"lfw-fold{fold:02d}", cache_dir, progress)


def load_lfw_folds(
    lfw_root: Path, folds: Iterable[int], cache_dir: Path | None = DEFAULT_CACHE, progress: bool = False
) -> FaceSet:
    return FaceSet.concat(load_lfw_fold(lfw_root, f, cache_dir, progress) for f in folds)


# ---------------------------------------------------------------------------------------------
# A photo library's people


def from_library(
    source: Callable[[], tuple[np.ndarray, np.ndarray]] | tuple[np.ndarray, np.ndarray],
    names: Sequence[str] | None = None,
) -> FaceSet:
    """A FaceSet from the library's named people: ``source`` is a callable returning
    ``(crops, labels)`` or that tuple itself. Labels may be any hashable ids; they are re-indexed."""
    crops, labels = source() if callable(source) else source
    labels = np.asarray(labels)
    uniq, inv = np.unique(labels, return_inverse=True)
    if names is None:
        names = [str(u) for u in uniq]
    elif len(names) != len(uniq):
        raise ValueError("names must have one entry per distinct label")
    return FaceSet(np.asarray(crops, np.uint8), inv.astype(np.int64), list(names))
