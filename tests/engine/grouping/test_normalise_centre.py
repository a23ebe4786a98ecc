"""Per-library centring before grouping (engine/grouping/normalise.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.grouping.cluster import cluster_faces
from engine.grouping.normalise import centre_library
from evals.metrics import cluster_scores


def _shared_offset_library(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six people whose faces all lean on one shared direction (like children, or one camera's light):
    different people end up closer than the grouping threshold until the shared part is removed."""
    rng = np.random.default_rng(seed)
    d = 64
    shared = np.zeros(d)
    shared[0] = 1.0
    people = rng.normal(size=(6, d))
    people[:, 0] = 0.0
    people /= np.linalg.norm(people, axis=1, keepdims=True)
    truth = np.repeat(np.arange(6), 8)
    x = 2.2 * shared + 0.7 * people[truth] + 0.12 * rng.normal(size=(len(truth), d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def test_centring_separates_people_plain_grouping_merges():
    emb, truth = _shared_offset_library()
    plain = cluster_scores(cluster_faces(emb, 1.2, method="stable"), truth)
    centred = cluster_scores(cluster_faces(centre_library(emb, 1.0), 1.2, method="stable"), truth)
    assert plain.bcubed_precision < 0.5  # the shared direction merges different people
    assert centred.bcubed_precision == 1.0  # centred, no two people share a group
    assert centred.bcubed_f1 > plain.bcubed_f1 + 0.3


def test_confirmed_faces_and_cannot_links_hold_in_the_centred_space():
    emb, truth = _shared_offset_library(1)
    fixed = np.full(len(truth), -1, np.int64)
    fixed[[0, 8]] = 7  # the user said faces of two different people are one person
    cl = (np.array([1]), np.array([2]))  # and that two faces of one person are not
    labels = cluster_faces(centre_library(emb, 1.0), 1.2, method="stable", fixed=fixed, cannot_link=cl)
    assert labels[0] == labels[8]
    assert labels[1] != labels[2]


def test_share_zero_changes_nothing_and_bad_shares_are_refused():
    emb, _ = _shared_offset_library()
    assert np.array_equal(centre_library(emb, 0.0), emb)
    out = centre_library(emb, 0.6)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        centre_library(emb, 1.5)
