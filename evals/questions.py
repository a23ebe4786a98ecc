"""The "same person?" queue's models, fitted for one embedding model on its development libraries.

The queue (engine/grouping/same_person.py) ranks its questions by three small models, all relative to the
model's grouping threshold T: the pair curve p(same | average-linkage distance), the pair curve with the
product of the two groups' mean child likelihoods (the child curve), and the face doubt model p(a face is not
its group's person). Their shipped weights were fitted on SFace's embeddings; another model's distances and
child likelihoods are spread differently (arcface-mbf's same-person pairs sit much nearer its T), so
``facenet-photos calibrate`` fits them again here, on the same libraries and grouping as its thresholds, and
stores them with the model (``ModelRecord.question_weights``).

Each fit is maximum likelihood on what the default grouping at T leaves (the pairs each group's nearest
groups make within T + 0.6; every face of a group of two or more), with the child likelihoods out of fold
(a library's faces scored by a classifier fitted without its people), as ``bench/simulate_answers.py --fit``
and ``--fit-faces`` report them. ``held_out`` gives each example a score from a fit without its library's
identity fold, for the bench's held-out log-loss and ROC AUC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Pairs farther than this beyond T are left out of the pair curves' fit (the queue never asks them: its
# cut-off, 2.5 %, lies near T + 0.51).
PAIR_SPAN = 0.6
# Fewer examples (or fewer of the rarer answer) than this: the fit keeps the shipped weights.
MIN_EXAMPLES = 200
MIN_POSITIVES = 20
# The queue's cut-off for a model: asked while p(same) is at least the value that keeps this share of the
# same-person pairs its curve was fitted on (SFace: 2.5 %, the cut-off the simulated user chose for it;
# arcface-mbf's steeper curve about 1.3 %), within the bounds below.
CUTOFF_COVERS = 0.95
CUTOFF_BOUNDS = (0.005, 0.05)


@dataclass(frozen=True)
class Examples:
    """One fit's examples: features (one row each), the answer, and each example's library, fold and kind."""

    x: np.ndarray
    y: np.ndarray  # bool
    library: np.ndarray
    fold: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def _stack(rows: list[tuple[np.ndarray, np.ndarray, int, int, str]], width: int) -> Examples:
    if not rows:
        z = np.zeros(0, np.int64)
        return Examples(np.zeros((0, width)), np.zeros(0, bool), z, z, np.zeros(0, str))
    return Examples(np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows]).astype(bool),
                    np.concatenate([np.full(len(r[1]), r[2]) for r in rows]),
                    np.concatenate([np.full(len(r[1]), r[3]) for r in rows]),
                    np.concatenate([np.full(len(r[1]), r[4]) for r in rows]))


def groupings(libs, threshold: float, method: str, child=None, penalty: float = 0.0) -> list[tuple]:
    """Per library: (its child likelihoods or None, its automatic grouping's labels, each face's person as a
    code, the number of groups). The pair and face examples of one setting share them."""
    from engine.grouping.cluster import cluster_faces

    out = []
    for lib in libs:
        c = None if child is None else child[lib.index]
        lab = cluster_faces(lib.emb, threshold, method=method, child=c, child_penalty=penalty if c is not None else 0.0)
        out.append((c, lab, np.unique(lib.truth, return_inverse=True)[1].reshape(-1), int(lab.max()) + 1))
    return out


def pair_examples(libs, threshold: float, method: str, child=None, penalty: float = 0.0,
                  grouped: list[tuple] | None = None) -> Examples:
    """The group pairs the queue looks at within T + PAIR_SPAN of ``method``'s grouping at ``threshold``: x =
    (distance, log(1 + neighbour rank)[, product of the two groups' mean child likelihoods]) where ``child``
    (each library's faces' likelihoods, by its ``index``) is given, grouped then with ``penalty``; y = the
    two groups' majority persons are one. ``grouped``: :func:`groupings` of the same arguments, when the
    caller has them already."""
    from engine.grouping.same_person import QuestionConfig, rank_pairs

    rows = []
    grouped = grouped or groupings(libs, threshold, method, child, penalty)
    for li, (lib, (c, lab, codes, g)) in enumerate(zip(libs, grouped, strict=True)):
        sums = np.zeros((g, lib.emb.shape[1]))
        np.add.at(sums, lab, lib.emb.astype(np.float64))
        size = np.bincount(lab, minlength=g)
        cnt = np.zeros((g, int(codes.max()) + 1))
        np.add.at(cnt, (lab, codes), 1)
        own = cnt.argmax(1)
        pr = rank_pairs(sums / size[:, None], size, np.zeros(g, bool), threshold,
                        QuestionConfig(min_probability=0.0), ranks=True)
        sel = pr.distance < threshold + PAIR_SPAN
        cols = [pr.distance[sel], np.log1p(pr.rank[sel])]
        if c is not None:
            cg = np.bincount(lab, weights=c, minlength=g) / size
            cols.append((cg[pr.a] * cg[pr.b])[sel])
        rows.append((np.stack(cols, 1), (own[pr.a] == own[pr.b])[sel], li, lib.fold, lib.kind))
    return _stack(rows, 3 if child is not None else 2)


def face_examples(libs, threshold: float, method: str, child=None, penalty: float = 0.0,
                  grouped: list[tuple] | None = None) -> Examples:
    """Every face of a group of two or more of the grouping (as :func:`pair_examples`): x = (1, mean distance
    to the rest of its group - T, nearest and second-nearest other member - T, log2 group size[, the face's
    child likelihood, the rest of its group's mean one]); y = its person is not the rest's majority person.
    ``grouped``: as for :func:`pair_examples`."""
    from engine.grouping.same_person import child_of_rest, face_distances

    rows = []
    grouped = grouped or groupings(libs, threshold, method, child, penalty)
    for li, (lib, (c, lab, codes, g)) in enumerate(zip(libs, grouped, strict=True)):
        r, mean_rest, near, second, n = face_distances(lib.emb, lab, g)
        cnt = np.zeros((g, int(codes.max()) + 1))
        np.add.at(cnt, (lab, codes), 1)
        # The rest of a face's group: its group's counts without the face itself.
        rest = cnt[lab[r]]
        rest[np.arange(len(r)), codes[r]] -= 1
        wrong = codes[r] != rest.argmax(1)
        cols = [np.ones(len(r)), mean_rest - threshold, near - threshold, second - threshold, np.log2(n)]
        if c is not None:
            cols += [c[r], child_of_rest(c, lab, g, r)]
        rows.append((np.stack(cols, 1), wrong, li, lib.fold, lib.kind))
    return _stack(rows, 7 if child is not None else 5)


def _pair_logit(w: np.ndarray, x: np.ndarray, threshold: float, with_rank: bool) -> np.ndarray:
    """The pair curve's logit of p(same): (T + offset - d) / scale - rank_weight * log(1 + rank) -
    child_weight * child product; w = (offset, scale, rank_weight[, child_weight])."""
    z = (threshold + w[0] - x[:, 0]) / w[1]
    if with_rank:
        z = z - w[2] * x[:, 1]
    if x.shape[1] > 2:
        z = z - w[3] * x[:, 2]
    return z


def fit_pair_curve(ex: Examples, threshold: float, with_rank: bool = False) -> np.ndarray:
    """(offset, scale, rank_weight[, child_weight]) by maximum likelihood (Nelder-Mead: the scale divides)."""
    from scipy.optimize import minimize

    y = ex.y.astype(np.float64)

    def nll(w):
        if w[1] <= 1e-4:
            return np.inf
        z = _pair_logit(w, ex.x, threshold, with_rank)
        return float((np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y)).sum())

    start = [0.2, 0.1, 0.0] + ([0.0] if ex.x.shape[1] > 2 else [])
    w = minimize(nll, start, method="Nelder-Mead", options={"maxiter": 8000, "xatol": 1e-6, "fatol": 1e-7}).x
    if not with_rank:
        w[2] = 0.0
    return w


def pair_probability(w: np.ndarray, ex: Examples, threshold: float, with_rank: bool = False) -> np.ndarray:
    z = _pair_logit(np.asarray(w, np.float64), ex.x, threshold, with_rank)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def fit_logistic(ex: Examples) -> np.ndarray:
    """Logistic weights (the first column is the constant) by maximum likelihood."""
    from scipy.optimize import minimize

    y = ex.y.astype(np.float64)

    def nll(w):
        z = ex.x @ w
        return float((np.logaddexp(0, z) - y * z).sum())

    return minimize(nll, np.zeros(ex.x.shape[1]), method="BFGS").x


def held_out(ex: Examples, fit, score) -> np.ndarray:
    """Each example's ``score(fit(training examples), its examples)`` from a fit without its identity fold."""
    out = np.zeros(len(ex))
    for f in np.unique(ex.fold):
        train, test = ex.fold != f, ex.fold == f
        out[test] = score(fit(_subset(ex, train)), _subset(ex, test))
    return out


def _subset(ex: Examples, sel: np.ndarray) -> Examples:
    return Examples(ex.x[sel], ex.y[sel], ex.library[sel], ex.fold[sel], ex.kind[sel])


@dataclass(frozen=True)
class QuestionFit:
    """One model's question weights (QuestionConfig's fields of the same names) and what they were fitted on.
    A field is None where its examples were too few: the queue then keeps the shipped value."""

    offset: float | None
    scale: float | None
    min_probability: float | None
    child_offset: float | None
    child_scale: float | None
    child_weight: float | None
    face_weights: tuple[float, ...] | None
    face_child_weights: tuple[float, ...] | None
    pairs: int
    faces: int

    @property
    def fitted(self) -> bool:
        """Whether any weight was fitted (else every field keeps the shipped value and nothing is stored)."""
        return any(v is not None for v in (self.offset, self.scale, self.min_probability, self.child_offset,
                                           self.child_scale, self.child_weight, self.face_weights,
                                           self.face_child_weights))

    def as_dict(self) -> dict:
        """The stored form (ModelRecord.question_weights): the fitted fields and the example counts."""
        out: dict = {k: v for k, v in (
            ("offset", self.offset), ("scale", self.scale), ("min_probability", self.min_probability),
            ("child_offset", self.child_offset),
            ("child_scale", self.child_scale), ("child_weight", self.child_weight)) if v is not None}
        for k, v in (("face_weights", self.face_weights), ("face_child_weights", self.face_child_weights)):
            if v is not None:
                out[k] = list(v)
        return {k: (round(v, 4) if isinstance(v, float) else [round(x, 4) for x in v]) for k, v in out.items()} | {
            "pairs": self.pairs, "faces": self.faces}


def _enough(ex: Examples) -> bool:
    pos = int(ex.y.sum())
    return len(ex) >= MIN_EXAMPLES and min(pos, len(ex) - pos) >= MIN_POSITIVES


def fit_questions(libs, threshold: float, method: str, child=None, penalty: float = 0.0) -> QuestionFit:
    """Fit the pair curve and the face doubt model at ``threshold`` (the grouping without the children's
    penalty), and, given ``child`` (out-of-fold likelihoods by the libraries' ``index``), the child curve and
    the face model with the child numbers (the grouping with ``penalty``); and the queue's cut-off on the
    curve it ranks with (``CUTOFF_COVERS``)."""
    plain = groupings(libs, threshold, method)
    pairs = pair_examples(libs, threshold, method, grouped=plain)
    faces = face_examples(libs, threshold, method, grouped=plain)
    curve = fit_pair_curve(pairs, threshold) if _enough(pairs) else None
    fw = fit_logistic(faces) if _enough(faces) else None
    cc = cfw = cpairs = None
    if child is not None:
        with_child = groupings(libs, threshold, method, child, penalty)
        cpairs = pair_examples(libs, threshold, method, child, penalty, grouped=with_child)
        cfaces = face_examples(libs, threshold, method, child, penalty, grouped=with_child)
        cc = fit_pair_curve(cpairs, threshold) if _enough(cpairs) else None
        cfw = fit_logistic(cfaces) if _enough(cfaces) else None

    def num(w, i):
        return None if w is None else float(w[i])

    # The cut-off on the curve the queue ranks with (the child curve where there are child likelihoods).
    cutoff = None
    asked_with = (cc, cpairs) if cc is not None else (curve, pairs) if curve is not None else None
    if asked_with is not None:
        w, ex = asked_with
        p = pair_probability(w, ex, threshold)[ex.y]
        cutoff = float(np.clip(np.quantile(p, 1.0 - CUTOFF_COVERS), *CUTOFF_BOUNDS))

    return QuestionFit(num(curve, 0), num(curve, 1), cutoff, num(cc, 0), num(cc, 1), num(cc, 3),
                       None if fw is None else tuple(float(v) for v in fw),
                       None if cfw is None else tuple(float(v) for v in cfw), len(pairs), len(faces))
