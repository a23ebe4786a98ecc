"""The "same person?" queue: which pairs of groups to ask the user about, and in what order.

Candidates are pairs of groups (people) that the grouping left apart but whose faces are still close: the
average-linkage distance between groups A and B (the mean squared L2 over all |A| x |B| face pairs) is, for
unit vectors, ``2 - 2 <mean A, mean B>``, so the closest groups to each group are its nearest neighbours by
inner product among the groups' mean vectors (faiss: exact up to ``EXACT_GROUPS_MAX`` groups, inverted
file beyond); no face-level k-NN graph is needed.

Each pair gets a probability of being one person from a logistic curve in that distance, fitted on the
family-shaped development sets (``bench/simulate_answers.py --fit``, docs/clustering.md; the weights below are
SFace's, and ``facenet-photos calibrate`` fits every model's own, ``MODEL_WEIGHTS``, evals/questions.py)::

    p(d) = 1 / (1 + exp((d - (threshold + offset)) / scale))

relative to the grouping threshold, so it moves with each model's calibrated threshold. Pairs with
``p < min_probability`` are not asked (2.5 %: d > threshold + 0.51; a model's own cut-off, fitted with its
weights, keeps as large a share of its same-person pairs). The curve can also take the pair's
neighbour rank (``neighbour_ranks``, ``QuestionConfig.rank_weight``): it predicts better held out but did
not reduce the answers a simulated user needs, so its weight is 0 (docs/clustering.md, "Neighbour rank").

**Ranking rule** (``rank_score``, ``QuestionConfig.policy``, default ``"balanced"``): score =
p(d) * log2(1 + faces affected), the faces affected being the smaller group, or the unnamed one beside a
named person (the faces a yes moves); equal scores, the closer pair first. The most likely "yes" first,
a bigger group before a single face when both are about as likely. Four rules were measured with a
simulated user answering this queue on the 60 development libraries (``bench/simulate_answers.py``,
docs/clustering.md): "balanced", ``"closest"`` (p alone), ``"expected"`` (p times the faces affected) and
``"uncertainty"`` (the binary entropy H(p) times the faces affected: the answer that removes the most
uncertainty). Measured when the default grouping was average linkage at 1.15: "balanced" and "closest"
need the fewest answers to reach BCubed F1 0.98 (median 118, against 132 for "expected" and 191 for
"uncertainty") and leave the same corrections after 10, 50 and 100 answers; "balanced" gives more F1
early (0.842 after 10 answers, "closest" 0.819). Re-measured with the stable default at 1.20: "closest"
reaches F1 0.98 sooner (median 48 answers, "balanced" 55), "balanced" still gives more F1 in the first 10
(0.904, "closest" 0.894); the corrections differ by at most 0.2 per 100 faces. Uncertainty loses
because a no changes no group today (it only keeps two apart later): the questions likely to be answered
yes are the ones that fix the library, and near p = 0.5 half the answers fix nothing.

**"Is this face one of them?"** (``rank_faces``): the pair questions only ever join groups or keep them apart,
so a face the grouping put in the wrong group stays there. Each face of a group of two or more that the user
has not placed gets q = p(not the group's person) from a logistic model in four numbers relative to the
threshold T: its mean squared distance to the rest of the group (the average-linkage distance of the face
to the others), its distance to the nearest and to the second-nearest other member, and log2 of the group's
size, fitted by maximum likelihood on every face of the default grouping of the 60 development libraries
(``bench/simulate_answers.py --fit-faces``: 25,219 faces, 0.8 % not of their group's majority person, 6 % on
lag-dev). Given the other three, a face with one very close partner is *more* often wrong (the nearest
distance's weight is negative): the wrong faces of a group are mostly a second person's few photos, close to
one another and far from the rest. Where the embedding model has a child-face classifier
(engine/grouping/children.py) the model has two more numbers, the face's child likelihood and the mean of the
rest of its group's (``QuestionConfig.face_child_weights``): a group of children is more often wrong at the
same distances. A "no" moves one face (one correction), a "yes" merging a face into a
group saves one merge, so a face question's score is ``rank_score(q, 1)`` and the two kinds share one queue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class QuestionConfig:
    # p(same person) = 0.5 at threshold + offset; logistic with this scale (squared L2). Fitted by maximum
    # likelihood (bench/simulate_answers.py --fit) on the group pairs within threshold + 0.6 that the default
    # grouping ("stable", 1.20) leaves on the 60 family-shaped development libraries: 41,259 pairs, 8.2 %
    # one person. (At the former default, average linkage 1.15, the fit was offset 0.27, scale 0.08: the
    # stable method leaves its remaining same-person pairs closer to the threshold.)
    offset: float = 0.135
    scale: float = 0.103
    # The curve where the embedding model has a child-face classifier (engine/grouping/children.py):
    # p(same) = sigmoid((threshold + child_offset - d) / child_scale - child_weight * c_a * c_b), c the two
    # groups' mean child likelihoods. Two groups of children at a distance are less often one person than two
    # groups of adults there (different children sit close together). Fitted as the curve above on the default
    # grouping with the children's penalty, likelihoods out of fold (bench/simulate_answers.py --fit): 27,090
    # pairs, 11.8 % one person; held-out log-loss 0.216 against 0.265 for distance alone, and one person among
    # each lag-dev library's first 10 pairs 0.805 against 0.480 (mixed 0.930 against 0.740).
    child_offset: float = 0.246
    child_scale: float = 0.075
    child_weight: float = 4.386
    # Pairs less likely than this are not worth a question. 2.5 % (d > threshold + 0.51, the same cut-off
    # as 5 % on the earlier curve): with the refitted curve a 5 % cut-off (threshold + 0.44) ended the queue
    # too early in 4 of the 20 mixed development libraries (simulated user: 36 of 60 libraries reached BCubed
    # F1 0.98 within 200 answers, against 40 of 60 at 2.5 %; docs/clustering.md).
    min_probability: float = 0.025
    # True: where `facenet-photos calibrate` fitted this library's active model's own weights (MODEL_WEIGHTS,
    # stored with its record), the queue takes them over the ones here, which were fitted on SFace.
    model_weights: bool = True
    # The logit's fall per log(1 + rank), the rank being how many groups are closer to one side of the pair
    # than the other side is (neighbour_ranks; 0: each is the other's nearest). 0: distance alone.
    rank_weight: float = 0.0
    # Nearest groups looked at per group.
    neighbours: int = 12
    # Faces shown per side (the face strips).
    strip: int = 6
    # "balanced" (the rule above), or, as measured against it (bench/simulate_answers.py --policy):
    # "closest" (p), "expected" (p * faces affected), "uncertainty" (H(p) * faces affected).
    policy: str = "balanced"
    # "Is this face one of them?" (rank_faces): the logistic weights of p(the face is not the group's person)
    # on (1, mean distance to the rest - T, nearest member - T, second-nearest member - T, log2 group size),
    # fitted by bench/simulate_answers.py --fit-faces on the default grouping of the development libraries.
    face_weights: tuple[float, float, float, float, float] = (0.925, 12.2, -6.534, 1.831, -1.865)
    # The same model where the embedding model has a child-face classifier (engine/grouping/children.py), with
    # two more numbers: the face's child likelihood and the mean of the rest of its group's. A group of
    # children is far more often wrong than a group of adults at the same distances (SFace puts different
    # children close together), so these find lag-dev's wrong faces: held-out ROC AUC 0.961 there against 0.809
    # without them (bench/simulate_answers.py --fit-faces, likelihoods out of fold, the default grouping with
    # its children's penalty).
    face_child_weights: tuple[float, ...] = (-6.942, 10.098, -4.135, 4.837, -0.46, 2.589, 6.625)
    # Faces less doubtful than this are not asked about (on the development libraries 1 in 5 of the faces
    # at q >= 0.1 was indeed someone else; below it, a question in 20 or fewer would find one).
    face_min_probability: float = 0.1
    # False: pair questions only (the queue before face questions; bench/simulate_answers.py --no-faces).
    ask_faces: bool = True
    # A face question's score is this times q (1: a "no" saves one face move, as a yes about a single face
    # saves one merge; bench/simulate_answers.py --face-value measures others).
    face_value: float = 1.0
    # Regroup the free faces near the answered groups after every this many answers (0: never; the answers
    # then wait for the next full regrouping). Off: on the development libraries regrouping after every answer
    # (near it, or the whole library) or every 5 answers raised F1 after 10 answers (0.908 against 0.904) but
    # cost precision and left more corrections after 50 and 100 answers (all 60: 4.5 / 3.2 per 100 faces
    # against 4.4 / 2.7; bench/simulate_answers.py --regroup-every N --regroup-neighbours K).
    regroup_every: int = 0
    # The regrouping looks at the answered groups and this many nearest unnamed groups of each (0: the whole
    # library, as a full regrouping does).
    regroup_neighbours: int = 12


# The fields fitted per embedding model (evals/questions.py) and stored with its record (ModelRecord.question_weights),
# with each one's length (1: a number).
MODEL_WEIGHTS = {"offset": 1, "scale": 1, "min_probability": 1, "child_offset": 1, "child_scale": 1, "child_weight": 1,
                 "face_weights": 5, "face_child_weights": 7}


def with_model_weights(cfg: QuestionConfig, stored: dict | None) -> QuestionConfig:
    """``cfg`` with the fields a model's stored weights give; a field missing, of the wrong length, not finite,
    or a scale that is not positive keeps ``cfg``'s value."""
    if not stored or not cfg.model_weights:
        return cfg
    given = {}
    for key, n in MODEL_WEIGHTS.items():
        v = stored.get(key)
        try:
            arr = np.asarray(v, np.float64).reshape(-1)
        except (TypeError, ValueError):
            continue
        if v is None or len(arr) != n or not np.isfinite(arr).all():
            continue
        if (key.endswith("scale") and arr[0] <= 0) or (key == "min_probability" and not 0 < arr[0] < 0.5):
            continue
        given[key] = float(arr[0]) if n == 1 else tuple(float(x) for x in arr)
    return replace(cfg, **given) if given else cfg


# A big group's faces nearest its mean are never doubtful: the nearest-member distances are computed for
# at most this many of its faces farthest from the mean (bounds the work on a 5,000-face person).
FACE_CANDIDATES_PER_GROUP = 256


# Up to this many groups the nearest groups are found exactly; beyond, with an inverted-file index (as the
# face graph in cluster.py): the exact search is O(G^2) and a library of 100k faces may hold 40k groups.
EXACT_GROUPS_MAX = 20_000


@dataclass(frozen=True)
class RankedPairs:
    """Candidate pairs of groups, best question first (arrays of one length)."""

    a: np.ndarray  # group index (row of the means)
    b: np.ndarray
    distance: np.ndarray  # average-linkage squared L2
    probability: np.ndarray
    faces_affected: np.ndarray
    score: np.ndarray
    rank: np.ndarray  # neighbour_ranks (0: mutual nearest); zeros when not computed (rank_pairs' ``ranks``)

    def __len__(self) -> int:
        return len(self.a)


def same_probability(d: np.ndarray | float, threshold: float, cfg: QuestionConfig = QuestionConfig(),
                     rank: np.ndarray | float = 0, child_pair: np.ndarray | float | None = None) -> np.ndarray:
    """p(same person) of two groups at average-linkage distance ``d`` whose farther side has ``rank`` closer
    groups than the other (0: each is the other's nearest; see the module doc). ``child_pair``: the product of
    the two groups' mean child likelihoods, where the model has a child classifier (the child curve)."""
    d = np.asarray(d, np.float64)
    if child_pair is None:
        z = (d - (threshold + cfg.offset)) / cfg.scale
    else:
        z = ((d - (threshold + cfg.child_offset)) / cfg.child_scale
             + cfg.child_weight * np.asarray(child_pair, np.float64))
    z = z + cfg.rank_weight * np.log1p(np.asarray(rank, np.float64))
    return 1.0 / (1.0 + np.exp(np.clip(z, -50, 50)))


def neighbour_ranks(nn: np.ndarray, a: np.ndarray, b: np.ndarray, excluded: np.ndarray | None = None) -> np.ndarray:
    """For each pair (a, b) of groups: how many groups are closer to one side than the other is, the larger of
    the two counts (0 when each is the other's nearest). ``nn``: (G, k) each group's nearest groups, nearest
    first (itself and -1 ignored); groups a pair code ``min * G + max`` in ``excluded`` (known to be other
    people: answered no, or in one photo) do not count as closer. Beyond a side's list: its length."""
    g, kk = nn.shape
    rows = np.repeat(np.arange(g, dtype=np.int64), kk)
    cols = nn.reshape(-1).astype(np.int64)
    valid = (cols >= 0) & (cols != rows)
    if excluded is not None and len(excluded):
        valid &= ~np.isin(np.minimum(rows, cols) * g + np.maximum(rows, cols), np.asarray(excluded, np.int64))
    valid = valid.reshape(g, kk)
    rank = np.cumsum(valid, axis=1) - 1  # the position among the row's counted neighbours
    keys = (rows * g + cols).reshape(g, kk)[valid]
    vals = rank[valid]
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order]
    cap = valid.sum(axis=1)

    def one_side(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        want = x * g + y
        at = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
        hit = (keys[at] == want) if len(keys) else np.zeros(len(want), bool)
        return np.where(hit, vals[at] if len(keys) else 0, cap[x])

    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    return np.maximum(one_side(a, b), one_side(b, a)).astype(np.int64)


def entropy_bits(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def rank_score(p: np.ndarray | float, faces_affected: np.ndarray | float, policy: str = "balanced") -> np.ndarray:
    """A question's worth under ``policy`` (QuestionConfig.policy); higher is asked first."""
    p = np.asarray(p, np.float64)
    n = np.asarray(faces_affected, np.float64)
    if policy == "closest":
        return p
    if policy == "expected":
        return p * n
    if policy == "balanced":
        return p * np.log2(1.0 + n)
    if policy == "uncertainty":
        return entropy_bits(p) * n
    raise ValueError(f"unknown question policy {policy!r}")


def rank_pairs(
    means: np.ndarray,
    sizes: np.ndarray,
    named: np.ndarray,
    threshold: float,
    cfg: QuestionConfig = QuestionConfig(),
    *,
    excluded: np.ndarray | None = None,
    ranks: bool = False,
    child: np.ndarray | None = None,
) -> RankedPairs:
    """The candidate pairs of groups, best question first.

    ``means``: (G, d) mean embedding of each group (not normalised); ``sizes``: (G,) faces per group;
    ``named``: (G,) bool, a group the user named (two named groups are never asked about: the user named
    them apart); ``excluded``: pair codes ``min * G + max`` never to ask (answered, or sharing a photo). The
    neighbour ranks are computed only when the curve uses them (``cfg.rank_weight``) or ``ranks`` asks for
    them (to fit it): at 20,000 groups they cost ~0.6 s of CPU on top of ~4.7 s. ``child``: (G,) each group's
    mean child likelihood (None: the model has no classifier; the distance curve).
    """
    import faiss

    means = np.ascontiguousarray(means, np.float32)
    g = len(means)
    sizes = np.asarray(sizes, np.int64)
    named = np.asarray(named, bool)
    if g < 2:
        z = np.zeros(0, np.int64)
        return RankedPairs(z, z, np.zeros(0), np.zeros(0), z, np.zeros(0), z)
    kk = min(cfg.neighbours + 1, g)
    if g <= EXACT_GROUPS_MAX:
        index = faiss.IndexFlatIP(means.shape[1])
    else:
        # faiss wants >= 39 training points a cell (else it prints a warning on the terminal): just above
        # EXACT_GROUPS_MAX, 4 sqrt(G) cells would want more points than there are groups.
        nlist = int(min(4 * np.sqrt(g), g // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(means.shape[1]), means.shape[1], nlist,
                                   faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        index.train(means[np.sort(rng.choice(g, min(g, 50 * nlist), replace=False))])
        index.nprobe = 32
    index.add(means)
    _sim, nn = index.search(means, kk)
    rows = np.repeat(np.arange(g, dtype=np.int64), kk)
    cols = nn.reshape(-1).astype(np.int64)
    keep = (cols >= 0) & (cols != rows)
    a, b = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]
    codes = np.unique(a * np.int64(g) + b)
    if excluded is not None and len(excluded):
        codes = codes[~np.isin(codes, np.asarray(excluded, np.int64))]
    a, b = codes // g, codes % g
    keep = ~(named[a] & named[b])
    a, b = a[keep], b[keep]
    d = np.maximum(2.0 - 2.0 * np.einsum("ij,ij->i", means[a].astype(np.float64), means[b].astype(np.float64)), 0.0)
    rank = neighbour_ranks(nn, a, b, excluded) if ranks or cfg.rank_weight else np.zeros(len(a), np.int64)
    p = same_probability(d, threshold, cfg, rank)
    # Which pairs are worth a question is the distance curve's cut-off, with or without the child curve: cut on
    # the child curve, lag-dev's libraries ran out of questions (96 answers each on average, against 161) and
    # ended with less F1 (bench/simulate_answers.py). The child curve only orders them and says how likely.
    keep = p >= cfg.min_probability
    if child is not None:
        c = np.asarray(child, np.float64)
        p = np.where(keep, same_probability(d, threshold, cfg, rank, c[a] * c[b]), p)
    a, b, d, p, rank = a[keep], b[keep], d[keep], p[keep], rank[keep]
    # The faces an answer decides: the unnamed side beside a named person, else the smaller group.
    affected = np.where(named[a], sizes[b], np.where(named[b], sizes[a], np.minimum(sizes[a], sizes[b])))
    score = rank_score(p, affected, cfg.policy)
    order = np.lexsort((b, a, d, -score))
    return RankedPairs(a[order], b[order], d[order], p[order], affected[order].astype(np.int64), score[order],
                       rank[order])


def nearest_faces(emb: np.ndarray, towards: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` faces of ``emb`` closest to the vector ``towards`` (the other side's mean): the
    faces a strip shows first, the ones that make the question hard."""
    if len(emb) == 0:
        return np.zeros(0, np.int64)
    sim = emb @ np.asarray(towards, np.float32)
    return np.argsort(-sim, kind="stable")[:n]


@dataclass(frozen=True)
class RankedFaces:
    """Faces doubtful in their group, best question first (arrays of one length)."""

    face: np.ndarray  # row of the embeddings
    group: np.ndarray  # its group
    distance: np.ndarray  # mean squared L2 to the rest of its group
    probability: np.ndarray  # p(the face is not the group's person)
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.face)


def face_doubt(mean_rest: np.ndarray, nearest: np.ndarray, second: np.ndarray, sizes: np.ndarray,
               threshold: float, cfg: QuestionConfig = QuestionConfig(), *,
               child_face: np.ndarray | None = None, child_rest: np.ndarray | None = None) -> np.ndarray:
    """p(a face is not its group's person) from its distances to the group (see the module doc) and, given
    (``child_face``, ``child_rest``), how child-like the face and the rest of its group look."""
    with_child = child_face is not None and child_rest is not None
    w = np.asarray(cfg.face_child_weights if with_child else cfg.face_weights, np.float64)
    z = (w[0] + w[1] * (np.asarray(mean_rest, np.float64) - threshold) + w[2] * (np.asarray(nearest) - threshold)
         + w[3] * (np.asarray(second) - threshold) + w[4] * np.log2(np.asarray(sizes, np.float64)))
    if with_child:
        z = z + w[5] * np.asarray(child_face, np.float64) + w[6] * np.asarray(child_rest, np.float64)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def child_of_rest(child: np.ndarray, gidx: np.ndarray, n_groups: int, rows: np.ndarray) -> np.ndarray:
    """The mean child likelihood of the other faces of each of ``rows``' groups (groups of two or more)."""
    child = np.asarray(child, np.float64)
    gidx = np.asarray(gidx, np.int64)
    sums = np.bincount(gidx, weights=child, minlength=n_groups)
    n = np.bincount(gidx, minlength=n_groups)[gidx[rows]]
    return (sums[gidx[rows]] - child[rows]) / np.maximum(n - 1, 1)


def face_distances(emb: np.ndarray, gidx: np.ndarray, n_groups: int,
                   eligible: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """For the faces of groups of two or more: (rows, mean distance to the rest of the group, nearest and
    second-nearest other member, group size). Squared L2 of unit vectors. Only rows with ``eligible`` are
    returned, and of a big group only its ``FACE_CANDIDATES_PER_GROUP`` faces farthest from the mean."""
    emb = np.asarray(emb, np.float32)
    gidx = np.asarray(gidx, np.int64)
    sizes = np.bincount(gidx, minlength=n_groups)
    sums = np.zeros((n_groups, emb.shape[1]), np.float64)
    np.add.at(sums, gidx, emb.astype(np.float64))
    n = sizes[gidx]
    ok = n >= 2 if eligible is None else (n >= 2) & np.asarray(eligible, bool)
    rows_all = np.flatnonzero(ok)
    rest = (sums[gidx[rows_all]] - emb[rows_all]) / (n[rows_all] - 1)[:, None]
    mean_all = np.maximum(2.0 - 2.0 * np.einsum("ij,ij->i", emb[rows_all].astype(np.float64), rest), 0.0)
    order = np.argsort(gidx, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    by_group = np.argsort(gidx[rows_all], kind="stable")
    cand_starts = np.searchsorted(gidx[rows_all][by_group], np.arange(n_groups + 1))
    rows_out, mean_out, near_out, second_out = [], [], [], []
    for g in np.flatnonzero(cand_starts[1:] > cand_starts[:-1]):
        sel = by_group[cand_starts[g]:cand_starts[g + 1]]
        if len(sel) > FACE_CANDIDATES_PER_GROUP:
            sel = sel[np.argsort(-mean_all[sel], kind="stable")[:FACE_CANDIDATES_PER_GROUP]]
        members = order[starts[g]:starts[g + 1]]
        q = rows_all[sel]
        d = np.maximum(2.0 - 2.0 * (emb[q] @ emb[members].T), 0.0).astype(np.float64)
        d[q[:, None] == members[None, :]] = np.inf  # not the face itself
        part = np.sort(d, axis=1)[:, :2] if d.shape[1] > 2 else np.sort(d, axis=1)
        near = part[:, 0]
        second = part[:, 1] if part.shape[1] > 1 and np.isfinite(part[:, 1]).all() else near
        rows_out.append(q)
        mean_out.append(mean_all[sel])
        near_out.append(near)
        second_out.append(second)
    if not rows_out:
        z = np.zeros(0)
        return np.zeros(0, np.int64), z, z, z, np.zeros(0, np.int64)
    rows = np.concatenate(rows_out)
    return rows, np.concatenate(mean_out), np.concatenate(near_out), np.concatenate(second_out), sizes[gidx[rows]]


def rank_faces(emb: np.ndarray, gidx: np.ndarray, n_groups: int, threshold: float,
               cfg: QuestionConfig = QuestionConfig(), *, eligible: np.ndarray | None = None,
               child: np.ndarray | None = None) -> RankedFaces:
    """The "is this face one of them?" candidates, best question first. ``gidx``: each face's group (row);
    ``eligible``: faces that may be asked about (not placed or confirmed by the user); ``child``: each face's
    child likelihood (None: the model has no classifier). In a group of two only the second face (by row) is
    asked about: the two questions would be one."""
    gidx = np.asarray(gidx, np.int64)
    if eligible is not None:
        eligible = np.asarray(eligible, bool).copy()
    else:
        eligible = np.ones(len(gidx), bool)
    sizes = np.bincount(gidx, minlength=n_groups)
    pair_groups = np.flatnonzero(sizes == 2)
    if len(pair_groups):
        first = np.full(n_groups, -1, np.int64)
        rows = np.arange(len(gidx))[::-1]
        first[gidx[rows]] = rows  # the lowest row of each group wins (written last)
        two = np.isin(gidx, pair_groups)
        eligible &= ~(two & (first[gidx] == np.arange(len(gidx))))
    rows, mean_rest, near, second, n = face_distances(emb, gidx, n_groups, eligible)
    if child is not None:
        child = np.asarray(child, np.float64)
        q = face_doubt(mean_rest, near, second, n, threshold, cfg, child_face=child[rows],
                       child_rest=child_of_rest(child, gidx, n_groups, rows))
    else:
        q = face_doubt(mean_rest, near, second, n, threshold, cfg)
    keep = q >= cfg.face_min_probability
    rows, mean_rest, q = rows[keep], mean_rest[keep], q[keep]
    score = cfg.face_value * rank_score(q, np.ones(len(q)), cfg.policy)
    order = np.lexsort((rows, -mean_rest, -score))
    return RankedFaces(rows[order], gidx[rows[order]], mean_rest[order], q[order], score[order])


def core_faces(emb: np.ndarray, n: int, without: int | None = None) -> np.ndarray:
    """Indices of the ``n`` faces of a group nearest its mean (without the face ``without``, an index into
    ``emb``): the strip a face question shows, the group's most typical faces, and the ones a "no" keeps the
    face apart from."""
    keep = np.arange(len(emb)) if without is None else np.flatnonzero(np.arange(len(emb)) != without)
    if len(keep) == 0:
        return np.zeros(0, np.int64)
    mean = np.asarray(emb, np.float64)[keep].mean(0)
    return keep[nearest_faces(np.asarray(emb)[keep], mean.astype(np.float32), n)]
