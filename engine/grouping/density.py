"""Density-aware grouping on the k-NN graph: constrained single linkage, then the most *stable* groups.

Average linkage with one threshold (engine/grouping/cluster.py) must choose between two errors on a family
library: strict, it splits a person whose degraded photos (small, blurred, partly covered) lie far from the
mean of their good ones; loose, it merges siblings. HDBSCAN (Campello et al. 2013) does better on the
development sets (docs/clustering.md) because it asks not "how far apart?" but "which groups persist over
the widest range of distances?". This module does the same on the app's k-NN graph, and, unlike the hdbscan
package, honours the constraints the app needs:

1. **Tree.** Kruskal's algorithm over the k-NN graph's edges (squared L2, ascending, up to ``max_threshold``),
   with *mutual reachability* distances ``max(d(a, b), core(a), core(b))`` where ``core`` is the distance to
   the ``min_samples - 1``-th nearest other face (``min_samples = 1``: plain distances). A union is refused
   when it would join faces that must stay apart (two faces of one photo, different user-confirmed people,
   a cannot-link pair): constrained single linkage. Faces the user confirmed as one person start as one
   leaf.
2. **Stability.** In the tree, a group of at least two faces is *born* when it splits off its parent (at
   λ = 1/d, d the Euclidean distance) and a face *leaves* it when it falls off on its own or the group
   splits in two groups of two or more. Its stability is Σ over its faces of (λ_leave - λ_birth): the
   "excess of mass" of HDBSCAN. Components of the graph at ``max_threshold`` are roots, born there.
3. **Selection.** Bottom up, a group is kept when its stability is at least the sum of its best
   descendants' (HDBSCAN's "eom"); every face below a kept group belongs to it, faces below none stay alone,
   and so does a face that falls off its group on its own farther than ``attach_threshold`` (a stranger).
   Faces linked within ``join_threshold`` along the tree (its cut there) always end together: HDBSCAN's
   ``cluster_selection_epsilon``. Both ends of the band are fixed multiples of the model's one grouping
   threshold T (``EPS_RATIO``, ``CAP_RATIO``), the number ``facenet-photos calibrate`` chooses per model.
4. **Chaining guard.** Single linkage chains when a library holds thousands of people: a few look-alike or
   degraded faces bridge people, and the cut at ``join_threshold`` then forces hundreds of people into one
   group. Every tree merge of two groups of two or more faces whose *average* linkage (the exact mean
   squared distance over all their face pairs, from the groups' vector sums) exceeds ``LINK_RATIO * T`` is
   marked wide: no group at or above it is kept and the cut does not cross it, so the groups below it are
   chosen as if it were a root. The tree itself is unchanged (refusing the merge instead changes every
   stability above it and merged more on all of LFW), so the result only ever splits groups the unguarded
   method would have made.

The cost is the k-NN search (shared with average linkage) plus one pass over the sorted edges in Python
(union-find with per-group sets of constraint tags) and one pass over the tree: a few seconds at 100,000
faces (bench/cluster_scaling.py).
"""

from __future__ import annotations

import numpy as np

from .cluster import _as_f32, _compact, _knn_self

# Squared distances below this count as this (duplicates would give λ = ∞).
_MIN_D2 = 1e-4
# The band of the method, as multiples of the model's grouping threshold T (the one number stored with each
# model and chosen by ``facenet-photos calibrate``): faces linked along the tree within EPS_RATIO * T always
# end together; beyond CAP_RATIO * T nothing joins. Chosen with T by cross-validation on the development
# sets (docs/clustering.md); held-out F1 moved by <= 0.002 over ratios 0.70-0.82 and 1.08-1.20.
EPS_RATIO = 0.78
CAP_RATIO = 1.13
# A single face joins a kept group only if it hangs on to it within ATTACH_RATIO * T: a family library's
# strangers (one photo each) otherwise end in the nearest family group. Chosen by cross-validation on the
# development libraries with one-photo LFW people added as strangers (docs/clustering.md).
ATTACH_RATIO = 1.0
# Chaining guard (issue 10): a tree merge of two groups of at least LINK_MIN_SIZE faces each whose average
# linkage (the mean squared distance over all their face pairs) exceeds LINK_RATIO * T is "wide": no group
# above it is kept and the cut does not cross it. With thousands of people the single-linkage tree chains
# (one group of 2,580 faces of 615 people in a 50,000-photo library); the 20-40 people of a family library
# rarely meet the guard. Measured on the development sets, all of LFW and a 50,000-photo proxy
# (bench/grouping_scale.py, docs/clustering.md): 1.30 T leaves the development sets as they were and lifts
# the proxy's precision from 0.956 to 0.980; 1.10 T reaches 0.989 there but cuts a child's years apart
# (two halves of a childhood are far apart on average) and costs 0.001 of dev-set F1.
LINK_RATIO = 1.30
LINK_MIN_SIZE = 2


def _tags(n: int, photo_ids: np.ndarray | None, cannot_link: np.ndarray | None) -> list[set[int] | None]:
    """Per face, the constraint tags it carries; two groups both holding a tag may never join. A photo with
    two or more faces is one tag (shared by its faces); a cannot-link face pair is one tag (its two faces)."""
    tags: list[set[int] | None] = [None] * n
    nxt = 0
    if photo_ids is not None and n:
        _, inv, cnt = np.unique(photo_ids, return_inverse=True, return_counts=True)
        inv = inv.reshape(-1)
        for i in np.flatnonzero(cnt[inv] > 1):
            t = tags[i]
            if t is None:
                t = tags[i] = set()
            t.add(int(inv[i]))
        nxt = len(cnt)
    if cannot_link is not None:
        for a, b in np.asarray(cannot_link, np.int64).reshape(-1, 2):
            for f in (int(a), int(b)):
                t = tags[f]
                if t is None:
                    t = tags[f] = set()
                t.add(nxt)
            nxt += 1
    return tags


def _tree(
    n_leaves: int,
    eu: np.ndarray,
    ev: np.ndarray,
    w: np.ndarray,
    tags: list[set[int] | None],
    cfix: np.ndarray,
    sums: np.ndarray | None = None,
    leaf_size: np.ndarray | None = None,
    link_max: float = np.inf,
    link_min_size: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Constrained Kruskal: merges (left, right, w, wide) in order, nodes numbered n_leaves.. as in scipy.

    ``wide`` (the chaining guard, module doc): with ``sums`` (per leaf, the sum of its unit vectors), True for
    a merge of two groups that both hold at least ``link_min_size`` faces and whose average linkage (the
    exact mean squared distance over all their face pairs, from the sums) exceeds ``link_max``. The merge
    still happens (the tree, and so every group below it, stays as it was); _select keeps nothing above it."""
    order = np.argsort(w, kind="stable")
    parent = list(range(n_leaves))  # union-find over leaves
    node = list(range(n_leaves))  # union-find root -> tree node id
    rtags = list(tags)
    rfix = cfix.tolist()
    guard = sums is not None and np.isfinite(link_max)
    if guard:
        rsum = np.array(sums, np.float32, copy=True)  # float32: 50 MB at 100,000 faces, ample for a bound
        rsize = (np.ones(n_leaves, np.int64) if leaf_size is None else np.asarray(leaf_size, np.int64)).tolist()
        # mean |a - b|^2 over pairs = 2 - 2 <SA, SB> / (|A| |B|) for unit vectors: wide when the dot
        # product is below this share of |A| |B|.
        min_dot = 1.0 - 0.5 * float(link_max)
    left: list[int] = []
    right: list[int] = []
    height: list[float] = []
    wide: list[bool] = []

    def find(x: int) -> int:
        r = x
        while parent[r] != r:
            r = parent[r]
        while parent[x] != r:
            parent[x], x = r, parent[x]
        return r

    for a, b, d in zip(eu[order].tolist(), ev[order].tolist(), w[order].tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        fa, fb = rfix[ra], rfix[rb]
        if fa >= 0 and fb >= 0 and fa != fb:
            continue
        ta, tb = rtags[ra], rtags[rb]
        if ta is not None and tb is not None:
            if len(ta) > len(tb):
                ta, tb = tb, ta
            if not ta.isdisjoint(tb):
                continue
        far = False
        if guard:
            na, nb = rsize[ra], rsize[rb]
            if na >= link_min_size and nb >= link_min_size:
                far = float(rsum[ra] @ rsum[rb]) < min_dot * na * nb
            rsum[ra] += rsum[rb]
            rsize[ra] = na + nb
        wide.append(far)
        left.append(node[ra])
        right.append(node[rb])
        height.append(d)
        parent[rb] = ra
        node[ra] = n_leaves + len(height) - 1
        rfix[ra] = max(fa, fb)
        if ta is not None and tb is not None:
            tb |= ta
            rtags[ra] = tb
        else:
            rtags[ra] = ta if ta is not None else tb
    return np.array(left, np.int64), np.array(right, np.int64), np.array(height, np.float64), np.array(wide, bool)


def _select(
    n_leaves: int,
    left: np.ndarray,
    right: np.ndarray,
    height: np.ndarray,
    leaf_size: np.ndarray,
    leaf_lambda: np.ndarray,
    threshold: float,
    max_threshold: float,
    attach: float = np.inf,
    wide: np.ndarray | None = None,
) -> np.ndarray:
    """Label per leaf: the tree node of its group (a kept stable group, or its cut at ``threshold`` when
    that is larger), or -1 (alone)."""
    m = len(height)
    total = n_leaves + m
    size = np.zeros(total, np.int64)
    size[:n_leaves] = leaf_size
    for i in range(m):
        size[n_leaves + i] = size[left[i]] + size[right[i]]
    lam = 1.0 / np.sqrt(np.maximum(height, _MIN_D2))
    lam_root = 1.0 / np.sqrt(max(max_threshold, _MIN_D2))
    is_child = np.zeros(total, bool)
    is_child[left] = True
    is_child[right] = True
    # Top down: each tree node belongs to a group (condensed-tree cluster) or none (-1).
    group = np.full(total, -1, np.int64)
    birth: list[float] = []
    stab: list[float] = []
    gparent: list[int] = []
    top: list[int] = []  # the group's highest tree node

    def new_group(nd: int, lam_b: float, par: int) -> None:
        group[nd] = len(birth)
        birth.append(lam_b)
        stab.append(0.0)
        gparent.append(par)
        top.append(nd)

    for nd in range(total - 1, -1, -1):
        if not is_child[nd] and size[nd] >= 2:
            new_group(nd, lam_root, -1)
    fall = np.zeros(total, np.float64)  # the height at which a single face falls off its group
    for i in range(m - 1, -1, -1):
        nd = n_leaves + i
        g = group[nd]
        if g < 0:
            continue
        a, b = left[i], right[i]
        sa, sb = size[a], size[b]
        lb = birth[g]
        if sa >= 2 and sb >= 2:
            stab[g] += size[nd] * (lam[i] - lb)
            new_group(a, lam[i], g)
            new_group(b, lam[i], g)
        elif sa >= 2:
            stab[g] += sb * (lam[i] - lb)
            group[a] = g
            fall[b] = height[i]
        elif sb >= 2:
            stab[g] += sa * (lam[i] - lb)
            group[b] = g
            fall[a] = height[i]
        else:
            stab[g] += (sa + sb) * (lam[i] - lb)
            fall[a] = fall[b] = height[i]
    # Leaves that are groups themselves (faces the user confirmed together): they leave at their spread.
    for leaf in np.flatnonzero(leaf_size >= 2):
        g = group[leaf]
        if g >= 0:
            stab[g] += leaf_size[leaf] * (leaf_lambda[leaf] - birth[g])
    # Chaining guard: a tree node at or above a wide merge (two groups far apart on average, see _tree) is
    # never one group, neither kept nor in the cut; the groups below it are chosen as if it were a root.
    tainted = np.zeros(total, bool)
    if wide is not None and wide.any():
        for i in range(m):
            tainted[n_leaves + i] = wide[i] or tainted[left[i]] or tainted[right[i]]
    ng = len(birth)
    bad = tainted[np.array(top, np.int64)] if ng else np.zeros(0, bool)
    # Excess of mass, bottom up (children were created after their parents).
    best = np.array(stab, np.float64)
    keep = np.ones(ng, bool)
    child_sum = np.zeros(ng, np.float64)
    has_child = np.zeros(ng, bool)
    for g in range(ng - 1, -1, -1):
        if bad[g]:  # it has children: a wide merge joins two groups of two or more
            best[g] = child_sum[g]
            keep[g] = False
        elif has_child[g]:
            if child_sum[g] > stab[g]:
                best[g] = child_sum[g]
                keep[g] = False
        p = gparent[g]
        if p >= 0:
            child_sum[p] += best[g]
            has_child[p] = True
    # A kept group's descendants are not kept (parents come before their children).
    above = np.zeros(ng, bool)
    for g in range(ng):
        p = gparent[g]
        if p >= 0:
            above[g] = above[p] or keep[p]
    keep &= ~above
    label = np.full(total, -1, np.int64)
    for g in np.flatnonzero(keep):
        label[top[g]] = top[g]
    # The cut at ``threshold``: tree nodes at or below it hold together.
    cut = n_leaves + np.flatnonzero((height <= threshold) & ~tainted[n_leaves:])
    label[cut] = np.where(label[cut] >= 0, label[cut], cut)
    # Push labels down: a node's label is its nearest labelled ancestor's (the highest one wins).
    out = label.copy()
    for i in range(m - 1, -1, -1):
        nd = n_leaves + i
        if out[nd] >= 0:
            out[left[i]] = out[nd]
            out[right[i]] = out[nd]
    # A face that only hangs on to its group farther than ``attach`` stays alone: in a family library
    # that is a stranger in the background (one photo) far more often than a degraded photo of a member.
    out[:n_leaves][fall[:n_leaves] > attach] = -1
    return out[:n_leaves]


def cluster_faces_stable(
    emb: np.ndarray,
    threshold: float,
    *,
    photo_ids: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    cannot_link: np.ndarray | None = None,
    k: int = 30,
    min_samples: int = 1,
    join_threshold: float | None = None,
    max_threshold: float | None = None,
    attach_threshold: float | None = None,
    link_threshold: float | None = None,
    link_min_size: int | None = None,
    child: np.ndarray | None = None,
    child_penalty: float = 0.0,
) -> np.ndarray:
    """Group unit embeddings (N, d) by stability (module doc); int64 labels 0..C-1, first appearance order.

    ``threshold``: the model's grouping threshold T (squared L2); faces linked along the tree within
    ``join_threshold`` (default ``EPS_RATIO * T``) always end together, nothing joins beyond
    ``max_threshold`` (default ``CAP_RATIO * T``). ``photo_ids``, ``fixed`` as in ``cluster_faces``;
    ``cannot_link``: (P, 2) face index pairs that never share a group. ``min_samples`` > 1: mutual
    reachability with the distance to the (min_samples - 1)-th nearest other face (worse on the
    development sets; kept for experiments). ``link_threshold`` (default ``LINK_RATIO * T``; ``np.inf``
    turns it off) and ``link_min_size`` (default ``LINK_MIN_SIZE``, at least 2): the chaining guard.
    ``child`` (N,) in 0..1, each face's likelihood of being a child's (engine/grouping/children.py): every
    candidate edge is lengthened by ``child_penalty * child_i * child_j``, so two children need to be that
    much closer to join while adults, and a child with an adult, keep their distances.
    """
    emb = _as_f32(emb)
    n = len(emb)
    cap = float(CAP_RATIO * threshold if max_threshold is None else max_threshold)
    join = float(EPS_RATIO * threshold if join_threshold is None else join_threshold)
    attach = float(ATTACH_RATIO * threshold if attach_threshold is None else attach_threshold)
    link = float(LINK_RATIO * threshold if link_threshold is None else link_threshold)
    link_min = LINK_MIN_SIZE if link_min_size is None else int(link_min_size)
    if link_min < 2:
        raise ValueError(f"link_min_size must be at least 2 (a group of two or more faces), not {link_min}")
    for name, arr in (("photo_ids", photo_ids), ("fixed", fixed), ("child", child)):
        if arr is not None and len(np.asarray(arr).reshape(-1)) != n:
            raise ValueError(f"{name} has {len(np.asarray(arr).reshape(-1))} entries for {n} faces")
    if cannot_link is not None:
        cannot_link = np.asarray(cannot_link, np.int64).reshape(-1, 2)
        if len(cannot_link) and (cannot_link.min() < 0 or cannot_link.max() >= n):
            raise ValueError(f"cannot_link names a face outside 0..{n - 1}")
    if n == 0:
        return np.zeros(0, np.int64)
    photo_ids = None if photo_ids is None else np.asarray(photo_ids).reshape(-1)
    fixed = None if fixed is None else np.asarray(fixed, np.int64).reshape(-1)

    # Leaves: one per face, except that faces the user confirmed as one person are one leaf.
    if fixed is not None and (fixed >= 0).any():
        lab = _compact(np.where(fixed >= 0, fixed, -1 - np.arange(n, dtype=np.int64)))
    else:
        lab = np.arange(n, dtype=np.int64)
    nl = int(lab.max()) + 1
    leaf_size = np.bincount(lab, minlength=nl).astype(np.int64)
    cfix = np.full(nl, -1, np.int64)
    if fixed is not None:
        sel = fixed >= 0
        cfix[lab[sel]] = fixed[sel]
    leaf_lambda = np.zeros(nl, np.float64)
    sums = emb
    if nl < n:
        sums = np.zeros((nl, emb.shape[1]), np.float64)
        np.add.at(sums, lab, emb.astype(np.float64))
        s = leaf_size.astype(np.float64)
        multi = s >= 2
        spread = 2.0 - 2.0 * ((sums[multi] ** 2).sum(1) - s[multi]) / (s[multi] * (s[multi] - 1))
        leaf_lambda[multi] = 1.0 / np.sqrt(np.maximum(spread, _MIN_D2))
    # Constraint tags per leaf (a leaf of confirmed faces may hold two faces of one photo: the user wins).
    face_tags = _tags(n, photo_ids, cannot_link)
    tags: list[set[int] | None] = [None] * nl
    for i, t in enumerate(face_tags):
        if t:
            j = int(lab[i])
            tags[j] = t.copy() if tags[j] is None else tags[j] | t
    if n == 1 or threshold < 0:
        return _compact(lab)

    dist, nn = _knn_self(emb, max(1, int(k)))
    if min_samples > 1:
        # The self match sits in some column as inf: sorted, the others come first.
        core = np.sort(dist, axis=1)[:, min(min_samples - 1, dist.shape[1]) - 1].astype(np.float64)
    rows = np.repeat(np.arange(n, dtype=np.int64), nn.shape[1])
    cols, w = nn.ravel(), dist.ravel().astype(np.float64)
    ok = cols >= 0
    rows, cols, w = rows[ok], cols[ok], w[ok]
    if min_samples > 1:
        w = np.maximum(w, np.maximum(core[rows], core[cols]))
    if child is not None and child_penalty:
        c = np.clip(np.asarray(child, np.float64).reshape(-1), 0.0, 1.0)
        w = w + float(child_penalty) * c[rows] * c[cols]
    ok = w <= cap
    eu, ev, w = lab[rows[ok]], lab[cols[ok]], w[ok]
    keep = eu != ev
    eu, ev, w = eu[keep], ev[keep], w[keep]
    # One edge per leaf pair (the shortest).
    codes = np.minimum(eu, ev) * np.int64(nl) + np.maximum(eu, ev)
    order = np.lexsort((w, codes))
    codes, w = codes[order], w[order]
    first = np.r_[True, codes[1:] != codes[:-1]] if len(codes) else np.zeros(0, bool)
    codes, w = codes[first], w[first]
    eu, ev = codes // nl, codes % nl

    left, right, height, wide = _tree(nl, eu, ev, w, tags, cfix, sums, leaf_size, link, link_min)
    node_label = _select(nl, left, right, height, leaf_size, leaf_lambda, join, cap, attach, wide)
    # Leaves in no group stay alone (their own id, offset past the tree's node ids).
    node_label = np.where(node_label >= 0, node_label, nl + len(height) + np.arange(nl))
    return _compact(node_label[lab])
