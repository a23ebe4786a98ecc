"""Family-shaped development sets and the per-model threshold calibration done on them.

A family library holds few people with many photos each, taken over years on phones. LFW as a whole is the
wrong shape for choosing grouping thresholds (most of its people have one photo), so thresholds are chosen
on:

* lag-dev (half of the Large Age-Gap database): people photographed young and as adults;
* the LFW people with at least ``MIN_LFW_PHOTOS`` photos, most photos degraded the way phone photos of a
  family are (:func:`degrade`: downscaled, JPEG recompressed, partly cut off or covered);

drawn into "family-sized" libraries of 20-40 people inside identity folds (:func:`libraries`).
``bench/family_sets.py`` builds and caches these embeddings; ``bench/calibrate_grouping.py`` cross-validates
the grouping methods on them (docs/clustering.md); :func:`calibrate_thresholds` chooses one model's
verification, grouping and recognition thresholds and fits its child-face classifier and the penalty that
keeps different children apart (``facenet-photos calibrate``; engine/grouping/children.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .questions import QuestionFit, fit_questions

MIN_LFW_PHOTOS = 10
CLEAN_SHARE = 0.3  # share of the LFW photos left as they are (scanned prints, good phone photos)
# lag-dev images are 100 x 100 crops with the face filling them; a photo has background around the face, and
# the detector needs some, so each crop is placed on a neutral canvas this many times its size.
LAG_CANVAS = 2.0
# Grouping: the most recall whose mean BCubed precision over the libraries stays at least this (a wrong
# merge is harder to undo than a split). Recognition: nearest-face precision at least RECOGNISE_PRECISION.
MIN_PRECISION = 0.98
RECOGNISE_PRECISION = 0.99
GROUPING_GRID = tuple(round(0.80 + 0.05 * i, 2) for i in range(17))  # 0.80 .. 1.60
# The children's penalty (squared L2 added to an edge between two child-like faces) tried as a share of the
# grouping threshold, so that one grid serves every model's distance scale; SFace's 0.1 at T 1.20 is 1/12.
# At the grouping threshold, the largest that costs at most CHILD_F1_TOLERANCE of mean F1 is kept: what it
# buys is precision (fewer children merged), which the F1 of a few libraries undervalues.
CHILD_PENALTY_SHARES = (0.0, 1 / 24, 1 / 12, 1 / 8, 1 / 6, 1 / 4)
CHILD_F1_TOLERANCE = 0.001
CHILD_FOLDS = 5  # the libraries' identity folds: a library's likelihoods come from a fit without its people
MIN_CHILD_FACES = 20  # fewer young (or other) faces than this: no classifier


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
        # Cut off: the face runs out of the frame at one side (LFW faces are centred, ~40 % of the width).
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
        # Covered: a flat patch over the mouth or one eye.
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
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    small = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    what.append(f"x{scale:.2f}-q{q}")
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), "+".join(what)


# ------------------------------------------------------------------------------------------ embedding


def _centre_landmarks(h: int, w: int, face_px: float) -> np.ndarray:
    """The alignment template scaled to a ``face_px`` wide face in the image centre (nothing detected)."""
    from engine.pipeline.align import TEMPLATE_112

    s = face_px / 81.0  # the template's face is ~81 px wide in its 112 px crop
    pts = (TEMPLATE_112 - TEMPLATE_112.mean(0)) * s
    return (pts + np.array([w / 2.0, h / 2.0 + 0.04 * h])).astype(np.float32)


def embed_central_faces(images: Iterable[np.ndarray], finder, embedder, *, n: int,
                        log: Callable[[str], None] | None = None, label: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Embed the face nearest the centre of each RGB image with the app's detector (``FaceFinder``),
    alignment and ``embedder``. When nothing is detected the face is aligned on the template at the image
    centre; ``detected`` says which. Returns (emb (n, dim) float32, detected (n,) bool)."""
    from engine.pipeline.align import align_face

    emb = np.zeros((n, embedder.dim), np.float32)
    detected = np.zeros(n, bool)
    crops: list[np.ndarray] = []
    t0 = time.time()
    i = -1
    for i, rgb in enumerate(images):
        h, w = rgb.shape[:2]
        dets = finder.detections(rgb, 1.0)
        if dets:
            cx, cy = w / 2.0, h / 2.0
            d = min(dets, key=lambda d: (d.box[0] + d.box[2] / 2 - cx) ** 2 + (d.box[1] + d.box[3] / 2 - cy) ** 2)
            lm, detected[i] = d.landmarks, True
        else:
            lm = _centre_landmarks(h, w, face_px=0.45 * w)
        crops.append(align_face(rgb, lm))
        if len(crops) == 256:
            emb[i + 1 - len(crops) : i + 1] = embedder.embed(np.stack(crops))
            crops = []
            if log:
                log(f"{label} {i + 1}/{n}  {(i + 1) / (time.time() - t0):.1f} faces/s")
    if crops:
        emb[i + 1 - len(crops) : i + 1] = embedder.embed(np.stack(crops))
    if i + 1 != n:
        raise ValueError(f"expected {n} images, got {i + 1}")
    return emb, detected


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read the image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_lag_labels(lag_dir: Path) -> list[tuple[str, str, str]]:
    """(file, identity, age) rows of lag-dev's labels.tsv, with a plain error when the folder is wrong."""
    tsv = Path(lag_dir) / "labels.tsv"
    if not tsv.is_file():
        raise ValueError(f"{lag_dir} is not a lag-dev folder: labels.tsv is missing")
    rows = []
    for ln in tsv.read_text(encoding="utf-8").splitlines()[1:]:
        parts = ln.rstrip("\n").split("\t")
        if len(parts) >= 3:
            rows.append((parts[0], parts[1], parts[2]))
    if not rows:
        raise ValueError(f"{tsv} lists no images")
    return rows


def lfw_many_photo_files(lfw_dir: Path, min_photos: int = MIN_LFW_PHOTOS) -> list[Path]:
    """The photos of the LFW people (``images/<Name>/*.jpg``) with at least ``min_photos`` photos."""
    lfw_dir = Path(lfw_dir)
    if (lfw_dir / "images").is_dir():
        lfw_dir = lfw_dir / "images"
    if not lfw_dir.is_dir():
        raise ValueError(f"{lfw_dir} is not an LFW folder")
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= min_photos)
    files = [f for p in people for f in sorted(p.glob("*.jpg"))]
    if not files:
        raise ValueError(f"no LFW person under {lfw_dir} has {min_photos} or more photos")
    return files


def build_dev_embeddings(lag_dir: Path, lfw_dir: Path, finder, embedder, *, seed: int = 0,
                         min_lfw_photos: int = MIN_LFW_PHOTOS, log: Callable[[str], None] | None = None
                         ) -> dict[str, np.ndarray]:
    """Embed lag-dev and the degraded LFW people with ``embedder``: the arrays ``libraries`` and
    ``calibrate_thresholds`` read (``lag_*``, ``lfw_*``, ``model_id``, ``seed``)."""
    import cv2

    rows = read_lag_labels(lag_dir)
    files = lfw_many_photo_files(lfw_dir, min_lfw_photos)
    rng = np.random.default_rng(seed)

    def lag_images():
        for f, _, _ in rows:
            rgb = _read_rgb(Path(lag_dir) / "images" / f)
            pad = int(round((LAG_CANVAS - 1) * max(rgb.shape[:2]) / 2))
            yield cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))

    clean = rng.random(len(files)) < CLEAN_SHARE
    how: list[str] = []

    def lfw_images():
        for f, c in zip(files, clean, strict=True):
            rgb = _read_rgb(f)
            if c:
                how.append("clean")
                yield rgb
            else:
                d, what = degrade(rgb, rng)
                how.append(what)
                yield d

    lag_emb, lag_det = embed_central_faces(lag_images(), finder, embedder, n=len(rows), log=log, label="lag-dev")
    lfw_emb, lfw_det = embed_central_faces(lfw_images(), finder, embedder, n=len(files), log=log, label="LFW")
    return {
        "lag_file": np.array([r[0] for r in rows]), "lag_identity": np.array([r[1] for r in rows]),
        "lag_age": np.array([r[2] for r in rows]), "lag_emb": lag_emb, "lag_detected": lag_det,
        "lfw_file": np.array([f"{f.parent.name}/{f.name}" for f in files]),
        "lfw_identity": np.array([f.parent.name for f in files]), "lfw_how": np.array(how),
        "lfw_emb": lfw_emb, "lfw_detected": lfw_det, "model_id": np.array(embedder.model_id),
        "seed": np.array(seed),
    }


# ---------------------------------------------------------------------------------------- libraries


@dataclass
class DevLibrary:
    """One simulated family library: faces, their true person, and (lag-dev) their age group."""

    kind: str  # "lag", "lfw-phone", "mixed"
    fold: int
    emb: np.ndarray
    truth: np.ndarray  # person labels (str)
    young: np.ndarray  # bool: lag-dev "young" photo (False elsewhere)
    # Each face's row in the cache's lag-dev faces followed by its LFW faces (child_training_set's order).
    index: np.ndarray | None = None

    @property
    def n_people(self) -> int:
        return len(set(self.truth.tolist()))


def identity_folds(identities: np.ndarray, n_folds: int, seed: int) -> dict[str, int]:
    """Each identity's fold (0..n_folds-1), random but fixed by ``seed``; fold sizes differ by at most 1."""
    names = sorted(set(np.asarray(identities).tolist()))
    perm = np.random.default_rng(seed).permutation(len(names))
    return {names[j]: int(i % n_folds) for i, j in enumerate(perm)}


def libraries(cache: dict[str, np.ndarray], *, n_folds: int = 5, per_fold: int = 4, seed: int = 0,
              people: tuple[int, int] = (20, 40)) -> list[DevLibrary]:
    """Family-sized libraries drawn inside identity folds, so that defaults chosen on some folds can be
    reported on people never seen while choosing. Per fold and kind, ``per_fold`` libraries of ``people``
    (inclusive range) identities each (fewer when the fold has fewer)."""
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
                if len(sel_lag) + len(sel_lfw) == 0:
                    continue
                out.append(DevLibrary(
                    kind=kind, fold=f,
                    emb=np.concatenate([cache["lag_emb"][sel_lag], cache["lfw_emb"][sel_lfw]]),
                    truth=np.concatenate([np.char.add("lag:", lag_id[sel_lag].astype(str)),
                                          np.char.add("lfw:", lfw_id[sel_lfw].astype(str))]).astype(str),
                    young=np.concatenate([young[sel_lag], np.zeros(len(sel_lfw), bool)]),
                    index=np.concatenate([sel_lag, len(lag_id) + sel_lfw]),
                ))
    return out


# ---------------------------------------------------------------------------- child-face classifier


@dataclass(frozen=True)
class ChildFit:
    """A model's child-face classifier (engine/grouping/children.py) and how well it separates."""

    weights: tuple[float, ...]
    bias: float
    auc: float  # out of fold: young faces against every other face
    auc_lag: float  # out of fold, within lag-dev (young against the same people as adults)
    faces: int
    young: int


def child_training_set(cache: dict[str, np.ndarray], *, n_folds: int = CHILD_FOLDS, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit embeddings, is-young, identity fold): lag-dev's faces then the LFW people's (all adults), each
    fold the one :func:`libraries` puts that person in."""
    lag_id, lfw_id = cache["lag_identity"], cache["lfw_identity"]
    lf, ff = identity_folds(lag_id, n_folds, seed), identity_folds(lfw_id, n_folds, seed)
    x = np.concatenate([cache["lag_emb"], cache["lfw_emb"]]).astype(np.float64)
    y = np.concatenate([np.asarray(cache["lag_age"]) == "young", np.zeros(len(lfw_id), bool)])
    fold = np.concatenate([[lf[i] for i in lag_id], [ff[i] for i in lfw_id]]).astype(np.int64)
    return x, y, fold


def fit_child_classifier(x: np.ndarray, y: np.ndarray):
    """Logistic regression on the embeddings (scikit-learn's)."""
    from sklearn.linear_model import LogisticRegression

    # Balanced: lag-dev's young faces are a tenth of the faces; the likelihood should not lean on that share.
    return LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced").fit(x, y)


def fold_child_classifiers(x: np.ndarray, y: np.ndarray, fold: np.ndarray) -> dict[int, object]:
    """Per identity fold, the classifier fitted on the other folds' people (none of that fold's)."""
    out = {}
    for f in np.unique(fold):
        train = fold != f
        if len(set(y[train].tolist())) < 2:
            raise ValueError("a fold's complement holds no young face (or only young ones)")
        out[int(f)] = fit_child_classifier(x[train], y[train])
    return out


def out_of_fold_child(x: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each face's child likelihood from a classifier fitted on the other folds' people."""
    c = np.zeros(len(x))
    for f, model in fold_child_classifiers(x, y, fold).items():
        c[fold == f] = model.predict_proba(x[fold == f])[:, 1]
    return c


def fit_child(cache: dict[str, np.ndarray], *, seed: int = 0) -> tuple[ChildFit | None, np.ndarray | None]:
    """(the classifier fitted on every face, each face's out-of-fold likelihood in child_training_set's
    order); (None, None) when the sets hold too few young or adult faces to fit one."""
    from sklearn.metrics import roc_auc_score

    x, y, fold = child_training_set(cache, seed=seed)
    if y.sum() < MIN_CHILD_FACES or (~y).sum() < MIN_CHILD_FACES:
        return None, None
    try:
        c = out_of_fold_child(x, y, fold)
    except ValueError:
        return None, None
    n_lag = len(cache["lag_identity"])
    lag_y = y[:n_lag]
    auc_lag = float(roc_auc_score(lag_y, c[:n_lag])) if 0 < lag_y.sum() < n_lag else float("nan")
    model = fit_child_classifier(x, y)
    return ChildFit(tuple(float(v) for v in model.coef_[0]), float(model.intercept_[0]),
                    float(roc_auc_score(y, c)), auc_lag, int(len(x)), int(y.sum())), c


# ------------------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibratedThresholds:
    """One model's squared-L2 thresholds, and what they scored on the development libraries."""

    verify: float  # "same person?" for two faces: best accuracy on the libraries' face pairs
    cluster: float  # grouping (ClusterConfig.method): best mean BCubed F1 with mean precision >= MIN_PRECISION
    recognise: float  # a face joins a named person: nearest-face precision >= RECOGNISE_PRECISION
    cluster_precision: float
    cluster_recall: float
    cluster_f1: float
    verify_accuracy: float
    libraries: int
    faces: int
    # The child classifier and the penalty chosen with the grouping threshold (0 and None: the sets could
    # not fit one, or no penalty kept the F1).
    child_penalty: float = 0.0
    child: ChildFit | None = None
    # The "same person?" queue's weights fitted at the grouping threshold (evals/questions.py; None: not fitted).
    questions: QuestionFit | None = None


def calibrate_thresholds(cache: dict[str, np.ndarray], *, seed: int = 0,
                         people: tuple[int, int] = (20, 40), method: str | None = None,
                         questions: bool = True) -> CalibratedThresholds:
    """Choose one model's thresholds on the development libraries built from its embeddings; the grouping
    threshold for ``method`` (default: the app's, ``ClusterConfig.method``). ``questions``: also fit the
    "same person?" queue's weights at that threshold (evals/questions.py)."""
    from engine.config import ClusterConfig
    from engine.grouping.cluster import cluster_faces

    method = method or ClusterConfig().method
    from evals.metrics import bcubed

    from .protocol import best_accuracy_threshold

    libs = libraries(cache, seed=seed, people=people)
    if not libs:
        raise ValueError("the development sets hold no library")
    # Grouping: mean BCubed over the libraries per threshold.
    best = None
    fallback = None
    for t in GROUPING_GRID:
        s = np.mean([bcubed(cluster_faces(lib.emb, t, method=method), lib.truth) for lib in libs], axis=0)
        if fallback is None or s[0] > fallback[1][0]:
            fallback = (t, s)
        if s[0] >= MIN_PRECISION and (best is None or s[2] > best[1][2]):
            best = (t, s)
    t_cluster, s_cluster = best or fallback
    # The children's penalty at that threshold: the largest that costs (almost) no F1. The threshold is not
    # chosen again with it: a penalty lets it rise for a little more F1, but the LFW people's precision then
    # falls (docs/clustering.md, "Keeping children apart").
    child_fit, c_all = fit_child(cache, seed=seed) if method == "stable" else (None, None)
    share_kept = 0.0
    if child_fit is not None and best is not None:
        for share in CHILD_PENALTY_SHARES[1:]:
            s = np.mean([bcubed(cluster_faces(lib.emb, t_cluster, method=method, child=c_all[lib.index],
                                              child_penalty=share * t_cluster), lib.truth) for lib in libs], axis=0)
            if s[2] < s_cluster[2] - CHILD_F1_TOLERANCE or s[0] < s_cluster[0]:
                break
            share_kept, s_kept = share, s
        if share_kept:
            s_cluster = s_kept
    # Verification and recognition on face pairs inside each library (every same-person pair, every
    # different-person pair: a family library's pairs, not LFW's balanced ones, so accuracy is weighted
    # to balance them).
    dists, same = [], []
    nn_d, nn_ok = [], []
    for lib in libs:
        x = lib.emb.astype(np.float64)
        d = np.maximum(2.0 - 2.0 * x @ x.T, 0.0)
        iu = np.triu_indices(len(x), 1)
        eq = lib.truth[:, None] == lib.truth[None, :]
        dists.append(d[iu])
        same.append(eq[iu])
        np.fill_diagonal(d, np.inf)
        j = d.argmin(1)
        nn_d.append(d[np.arange(len(x)), j])
        nn_ok.append(eq[np.arange(len(x)), j])
    dist, issame = np.concatenate(dists), np.concatenate(same)
    # Balance same and different pairs (there are ~30x more different ones) by subsampling the larger side.
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(issame), np.flatnonzero(~issame)
    m = min(len(pos), len(neg))
    if m == 0:
        raise ValueError("the development sets need people with two or more photos")
    keep = np.concatenate([rng.choice(pos, m, replace=False), rng.choice(neg, m, replace=False)])
    t_verify, acc = best_accuracy_threshold(dist[keep], issame[keep])
    # Recognition: the largest distance up to which a face's nearest other face is its person's with
    # precision >= RECOGNISE_PRECISION (precision over the faces whose nearest face is that close).
    nd, ok = np.concatenate(nn_d), np.concatenate(nn_ok)
    order = np.argsort(nd)
    prec = np.cumsum(ok[order]) / np.arange(1, len(order) + 1)
    good = np.flatnonzero(prec >= RECOGNISE_PRECISION)
    t_rec = float(nd[order][good[-1]]) if len(good) else float(nd[order][0])
    # Never looser than grouping: a recognised face is shown with a name, a stronger claim than a group.
    t_rec = round(min(t_rec, t_cluster), 3)
    fit = None
    if questions:
        # The child likelihoods out of fold (c_all), as the penalty was chosen with; none for another method.
        fit = fit_questions(libs, float(t_cluster), method, c_all, share_kept * float(t_cluster))
    return CalibratedThresholds(
        verify=round(float(t_verify), 4), cluster=float(t_cluster), recognise=t_rec,
        cluster_precision=float(s_cluster[0]), cluster_recall=float(s_cluster[1]), cluster_f1=float(s_cluster[2]),
        verify_accuracy=float(acc), libraries=len(libs), faces=int(sum(len(lib.truth) for lib in libs)),
        child_penalty=round(share_kept * float(t_cluster), 4), child=child_fit, questions=fit,
    )
