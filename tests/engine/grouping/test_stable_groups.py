"""The stable-groups method (engine/grouping/density.py), the default grouping since issue 10: what it does
better than average linkage, the constraints it honours, and incremental use in a library."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.config import ClusterConfig
from engine.grouping.cluster import cluster_faces
from engine.grouping.density import cluster_faces_stable
from evals.metrics import cluster_scores

from conftest import SAMPLE


def _people(n_people: int, good: int, degraded: int, s_good: float = 0.045, s_bad: float = 0.105, seed: int = 0):
    """Each person: ``good`` faces close to their centre and ``degraded`` ones much farther from it (small,
    blurred or half-covered photos): near some good face of theirs, far from the mean of all of them."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for p in range(n_people):
        c = rng.normal(size=128)
        c /= np.linalg.norm(c)
        for n, s in ((good, s_good), (degraded, s_bad)):
            x = c + rng.normal(scale=s, size=(n, 128))
            xs.append(x / np.linalg.norm(x, axis=1, keepdims=True))
            ys += [p] * n
    return np.concatenate(xs).astype(np.float32), np.array(ys)


def test_the_default_is_the_stable_method():
    assert ClusterConfig().method == "stable"


def test_degraded_faces_stay_with_their_person_where_average_linkage_splits_them():
    x, y = _people(8, 20, 6)
    avg = cluster_scores(cluster_faces(x, 1.0, method="average"), y)
    stable = cluster_scores(cluster_faces(x, 1.0, method="stable"), y)
    assert avg.n_clusters > 8 and avg.bcubed_precision == 1.0  # average linkage splits off degraded faces
    assert stable.n_clusters == 8 and stable.bcubed_f1 == 1.0  # all kept with their person, no one merged


def test_cannot_link_pairs_are_honoured_and_block_the_whole_chain():
    x, y = _people(3, 10, 0)
    base = cluster_faces_stable(x, 1.0)
    assert cluster_scores(base, y).bcubed_f1 == 1.0
    # "Faces 0 and 1 are not the same person": they part, and no third face joins them into one group.
    labels = cluster_faces_stable(x, 1.0, cannot_link=np.array([[0, 1]]))
    assert labels[0] != labels[1]
    # The rest of the person is with one of them (a no splits off, it does not scatter the person).
    assert len(np.unique(labels[:10])) == 2
    # Several pairs at once, across people too.
    labels = cluster_faces_stable(x, 1.0, cannot_link=np.array([[0, 1], [12, 13], [0, 2]]))
    assert labels[0] not in (labels[1], labels[2]) and labels[12] != labels[13]
    with pytest.raises(ValueError, match="cannot_link"):
        cluster_faces_stable(x, 1.0, cannot_link=np.array([[0, 30]]))


def test_group_photo_faces_and_confirmed_people():
    x, y = _people(4, 8, 3, seed=1)
    n = len(y)
    photo = np.arange(n)
    photo[[0, 11, 22, 33]] = 999  # a group photo with one face of each person
    photo[1] = photo[2]  # two faces of person 0 in one photo (a reflection, say)
    fixed = np.full(n, -1, np.int64)
    fixed[[3, 4]] = 7  # the user confirmed them as person 7 ...
    fixed[12] = 8  # ... and a face of person 1 as someone else, 8
    fixed[[5, 6]] = [7, 9]  # and face 6 (person 0) as yet another person 9
    labels = cluster_faces_stable(x, 1.0, photo_ids=photo, fixed=fixed)
    assert len(np.unique(labels[[0, 11, 22, 33]])) == 4
    assert labels[1] != labels[2]
    assert labels[3] == labels[4] == labels[5]  # same confirmed person: one group
    assert len({labels[3], labels[12], labels[6]}) == 3  # different confirmed people: never one group
    for a in np.unique(labels):
        assert len(set(fixed[(labels == a) & (fixed >= 0)].tolist())) <= 1


def test_a_confirmed_pair_of_one_photo_stays_together():
    x, y = _people(2, 6, 0, seed=2)
    photo = np.arange(len(y))
    photo[1] = photo[0]
    fixed = np.full(len(y), -1, np.int64)
    fixed[[0, 1]] = 3
    labels = cluster_faces_stable(x, 1.0, photo_ids=photo, fixed=fixed)
    assert labels[0] == labels[1]
    assert len(np.unique(labels[:6])) == 1  # and the person's other faces join them


def test_incremental_nothing_fixed_moves_when_new_faces_come():
    # A library grouped once; the user confirmed some faces (as people 100..). New faces of the same and of
    # new people arrive: every confirmed face keeps exactly its confirmed companions.
    x, y = _people(10, 12, 4, seed=3)
    rng = np.random.default_rng(4)
    old = rng.random(len(y)) < 0.6
    fixed = np.full(len(y), -1, np.int64)
    confirm = old & (rng.random(len(y)) < 0.3)
    fixed[confirm] = 100 + y[confirm]
    # One of them the user put with the wrong person on purpose: the confirmation still wins.
    j = int(np.flatnonzero(confirm)[0])
    fixed[j] = 100 + (y[j] + 1) % 10
    for subset in (old, np.ones(len(y), bool)):
        idx = np.flatnonzero(subset)
        labels = cluster_faces_stable(x[idx], 1.0, fixed=fixed[idx])
        f = fixed[idx]
        for pid in np.unique(f[f >= 0]):
            assert len(np.unique(labels[f == pid])) == 1
            assert set(f[labels == labels[f == pid][0]].tolist()) <= {-1, int(pid)}
    # The wrongly confirmed face is with its confirmed person, not with the look-alikes.
    lab = cluster_faces_stable(x, 1.0, fixed=fixed)
    assert lab[j] == lab[np.flatnonzero(fixed == fixed[j])].max()


def _mirrored(src, dest):
    Image.open(src).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(dest, quality=95)


def test_library_import_keeps_named_and_confirmed_faces(library, sample_dir, tmp_path):
    list(library.import_paths([sample_dir]))
    people = library.people()
    macron = next(p for p in people if any("macron" in f.path for f in library.faces_of(p.id)))
    library.rename(macron.id, "Emmanuel")
    obama = next(p for p in people if any("obama" in f.path for f in library.faces_of(p.id)))
    library.confirm([f.id for f in library.faces_of(obama.id)])
    before = {pid: {(f.id, f.assignment) for f in library.faces_of(pid)} for pid in (macron.id, obama.id)}
    more = tmp_path / "more"
    more.mkdir()
    for name in ("macron_2014.jpg", "obama.jpg", "sunak.jpg", "ardern_2018.jpg"):
        _mirrored(SAMPLE / name, more / f"m_{name}")
    list(library.import_paths([more]))
    library.recluster()
    for pid, faces in before.items():
        now = {(f.id, f.assignment) for f in library.faces_of(pid)}
        assert faces <= now  # nobody left the named or the confirmed person, nor changed how they got there
    # The new mirrored faces of the named person are suggested for him (recognition), the others are not.
    new_paths = {f.path.rsplit("/", 1)[-1] for f in library.faces_of(macron.id)} - {"macron_2014.jpg",
                                                                                    "macron_2025.jpg"}
    assert new_paths == {"m_macron_2014.jpg"}


def test_strangers_in_the_background_stay_alone():
    # A family (5 people, 20 photos each) and one-photo strangers whose nearest family face is 1.22-1.33
    # away: inside the tree's reach (1.13 T = 1.36 at T 1.2) but farther than T. Without the attach limit
    # they would hang on to the nearest family group; with it (the default) each stays alone.
    x, y = _people(5, 20, 0, seed=5)
    rng = np.random.default_rng(6)
    centres = np.stack([x[y == p].mean(0) for p in range(5)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cand = []
    for i in range(400):  # a face partway between a family member's and a random direction
        c, r = centres[i % 5], rng.normal(size=128)
        r -= (r @ c) * c
        phi = rng.uniform(1.05, 1.25)
        cand.append(np.cos(phi) * c + np.sin(phi) * r / np.linalg.norm(r))
    cand = np.array(cand, np.float32)
    nearest = (2 - 2 * cand @ x.T).min(1)
    picked: list[np.ndarray] = []
    for c in cand[(nearest > 1.22) & (nearest < 1.33)]:
        if all(2 - 2 * float(c @ p) > 1.4 for p in picked):  # strangers are strangers to each other too
            picked.append(c)
    strangers = np.stack(picked[:10])
    assert len(strangers) >= 4
    allx = np.concatenate([x, strangers])
    truth = np.concatenate([y, 100 + np.arange(len(strangers))])
    labels = cluster_faces_stable(allx, 1.2)
    assert cluster_scores(labels, truth).bcubed_f1 == 1.0
    loose = cluster_faces_stable(allx, 1.2, attach_threshold=np.inf)
    assert len(np.unique(loose[len(x):])) < len(strangers) or np.isin(loose[len(x):], loose[: len(x)]).any()


def _chained(n_people: int = 12, faces: int = 8, bridges: int = 3, s: float = 0.03, seed: int = 0):
    """People far apart, each consecutive two bridged by ``bridges`` faces on the way between them (look-
    alikes, blurred faces): every step of the chain is shorter than the cut, as happens somewhere in a
    library of thousands of people. Bridge faces are labelled -1."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n_people, 128))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    xs, ys = [], []
    for p in range(n_people):
        xs.append(c[p] + rng.normal(scale=s, size=(faces, 128)))
        ys += [p] * faces
        if p + 1 < n_people:
            for t in np.linspace(0, 1, bridges + 2)[1:-1]:
                xs.append(((1 - t) * c[p] + t * c[p + 1] + rng.normal(scale=s, size=128))[None])
                ys.append(-1)
    x = np.concatenate(xs)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), np.array(ys)


def _people_per_group(labels, y):
    return [len(set(y[(labels == g) & (y >= 0)].tolist())) for g in np.unique(labels)]


def test_a_chain_of_bridging_faces_does_not_make_one_group_of_many_people():
    x, y = _chained()
    unguarded = cluster_faces_stable(x, 1.0, link_threshold=np.inf)  # the method before the guard
    assert max(_people_per_group(unguarded, y)) == 12  # single linkage within the cut: everyone in one group
    labels = cluster_faces_stable(x, 1.0)
    assert max(_people_per_group(labels, y)) == 1
    for p in range(12):  # and no one is split: each person whole
        assert len(np.unique(labels[y == p])) == 1
    # With confirmed people and photo constraints too (the same guard, the same tree).
    fixed = np.full(len(y), -1, np.int64)
    fixed[y == 3] = 50
    photo = np.arange(len(y))
    photo[np.flatnonzero(y == 5)[:2]] = -7  # two faces of person 5 in one photo: they part
    labels = cluster_faces_stable(x, 1.0, fixed=fixed, photo_ids=photo)
    assert max(_people_per_group(labels, y)) == 1
    assert len(np.unique(labels[y == 3])) == 1


def test_the_guard_only_splits_what_the_unguarded_method_groups():
    # On family-shaped data the guard changes little; whatever it changes, it never joins faces the method
    # without it keeps apart (the tree is the same; only the groups chosen above a wide merge differ).
    for seed in range(3):
        x, y = _people(10, 12, 4, seed=seed)
        x2, y2 = _chained(6, 10, 3, seed=seed)
        x, y = np.concatenate([x, x2]), np.concatenate([y, 100 + y2])
        for t in (0.9, 1.0, 1.2):
            before = cluster_faces_stable(x, t, link_threshold=np.inf)
            after = cluster_faces_stable(x, t)
            for g in np.unique(after):
                assert len(np.unique(before[after == g])) == 1
    with pytest.raises(ValueError, match="link_min_size"):
        cluster_faces_stable(x, 1.0, link_min_size=1)
