"""``rank_faces``: which faces of a group are doubtful ("is this face one of them?"), on synthetic unit vectors
with known distances."""

from __future__ import annotations

import numpy as np

from engine.grouping import same_person
from engine.grouping.same_person import QuestionConfig, core_faces, face_distances, rank_faces


def _person(rng, centre, n, spread):
    v = centre[None, :] + spread * rng.normal(size=(n, len(centre)))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _library(seed=0):
    """Group 0: ten photos of one person plus two of another (the grouping's mistake); group 1: a pair of
    one person; group 2: a single face."""
    rng = np.random.default_rng(seed)
    a, b, c = (rng.normal(size=64) for _ in range(3))
    emb = np.concatenate([_person(rng, a, 10, 0.08), _person(rng, b, 2, 0.05), _person(rng, c, 2, 0.05),
                          _person(rng, a, 1, 0.08)])
    gidx = np.array([0] * 12 + [1, 1, 2])
    return emb, gidx


def test_the_wrong_faces_come_first():
    emb, gidx = _library()
    r = rank_faces(emb, gidx, 3, 1.2)
    assert set(r.face[:2].tolist()) == {10, 11}
    assert (r.probability[:2] > 0.9).all() and (r.probability[2:] < r.probability[1]).all()
    assert list(r.score) == sorted(r.score, reverse=True)
    assert 14 not in r.face  # a face alone is never asked about
    # Of a group of two only the second face could be asked (both questions would be one); it is close here.
    assert 12 not in r.face


def test_distances_and_eligibility():
    emb, gidx = _library()
    rows, mean_rest, near, second, n = face_distances(emb, gidx, 3)
    i = int(np.flatnonzero(rows == 10)[0])
    others = np.delete(np.arange(12), 10)
    d = np.maximum(2 - 2 * emb[others].astype(np.float64) @ emb[10].astype(np.float64), 0)
    assert abs(mean_rest[i] - d.mean()) < 1e-5
    assert abs(near[i] - np.sort(d)[0]) < 1e-5 and abs(second[i] - np.sort(d)[1]) < 1e-5 and n[i] == 12
    # Faces the user placed are not asked about.
    eligible = np.ones(len(gidx), bool)
    eligible[[10, 11]] = False
    r = rank_faces(emb, gidx, 3, 1.2, eligible=eligible)
    assert not {10, 11} & set(r.face.tolist())
    # The cut-off: nothing below face_min_probability.
    r = rank_faces(emb, gidx, 3, 1.2, QuestionConfig(face_min_probability=0.5))
    assert (r.probability >= 0.5).all() and set(r.face.tolist()) == {10, 11}


def test_a_big_group_is_looked_at_only_where_it_is_far_from_its_mean(monkeypatch):
    emb, gidx = _library()
    monkeypatch.setattr(same_person, "FACE_CANDIDATES_PER_GROUP", 4)
    rows, *_ = face_distances(emb, gidx, 3)
    assert set(rows[gidx[rows] == 0].tolist()) >= {10, 11} and (gidx[rows] == 0).sum() == 4


def test_the_strip_is_the_group_core_without_the_face():
    emb, gidx = _library()
    strip = core_faces(emb[:12], 6, without=10)
    assert 10 not in strip and 11 not in strip and len(strip) == 6


def test_a_group_of_children_is_doubted_more_and_without_a_classifier_nothing_changes():
    """With the model's child likelihoods a face in a group of child-like faces is more doubtful at the same
    distances (different children sit close together), and the rest of its group counts more than the face."""
    from engine.grouping.same_person import child_of_rest, face_doubt

    emb, gidx = _library()
    adults, children = np.zeros(len(gidx)), np.ones(len(gidx))
    base = rank_faces(emb, gidx, 3, 1.2, QuestionConfig(face_min_probability=0.0))
    kids = rank_faces(emb, gidx, 3, 1.2, QuestionConfig(face_min_probability=0.0), child=children)
    grown = rank_faces(emb, gidx, 3, 1.2, QuestionConfig(face_min_probability=0.0), child=adults)
    p_kids, p_grown = (dict(zip(r.face.tolist(), r.probability.tolist(), strict=True)) for r in (kids, grown))
    assert set(p_kids) == set(p_grown) == set(base.face.tolist())
    assert all(p_kids[f] > p_grown[f] for f in p_kids)
    # The wrong faces still come first among children.
    assert set(kids.face[:2].tolist()) == {10, 11}
    # child_of_rest: the mean over the other faces of the group.
    c = np.arange(len(gidx), dtype=float)
    rows = np.array([0, 12])
    assert np.allclose(child_of_rest(c, gidx, 3, rows), [np.arange(1, 12).mean(), 13.0])
    one = np.array([0.2])
    z_face = face_doubt(one, one, one, np.array([4]), 1.2, child_face=np.ones(1), child_rest=np.zeros(1))
    z_rest = face_doubt(one, one, one, np.array([4]), 1.2, child_face=np.zeros(1), child_rest=np.ones(1))
    assert z_rest > z_face
