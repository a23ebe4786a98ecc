"""The cross-age protocol of evals.lag: pair counts on lag-dev, and TAR at a FAR on known distances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evals.lag import identity_folds, impostor_distances, lag_pairs, read_labels, tar_at_far

LAG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lag-dev"


@pytest.mark.lag
def test_lag_dev_pairs_follow_the_issue_protocol():
    faces = read_labels(LAG)
    pairs = lag_pairs(faces)
    assert len(faces) == 1849 and len(pairs.identity_fold) == 489
    assert int(pairs.same.sum()) == 2441 and int((~pairs.same).sum()) == 2441
    ident = np.array([f.identity for f in faces])
    age = np.array([f.age for f in faces])
    assert (ident[pairs.a][pairs.same] == ident[pairs.b][pairs.same]).all()
    assert (ident[pairs.a][~pairs.same] != ident[pairs.b][~pairs.same]).all()
    assert (age[pairs.a] == "young").all() and (age[pairs.b] == "adult").all()
    # negatives pair two identities of the same fold, and each fold has as many as positives
    fold_of = pairs.identity_fold
    for a, b, k in zip(pairs.a, pairs.b, pairs.fold, strict=True):
        assert fold_of[ident[a]] == fold_of[ident[b]] == k
    for k in range(10):
        m = pairs.fold == k
        assert pairs.same[m].sum() == (~pairs.same[m]).sum() > 0
    assert len(impostor_distances(np.eye(len(faces), 4, dtype=np.float32), faces)) == 852_259


def test_identity_folds_are_balanced_and_seeded():
    ids = [f"p{i}" for i in range(23)]
    a, b = identity_folds(ids, 10, seed=0), identity_folds(list(reversed(ids)), 10, seed=0)
    assert a == b and sorted(np.bincount(list(a.values()))) == [2] * 7 + [3] * 3


def test_tar_at_far_accepts_at_most_the_target_share_of_impostors():
    imp = np.arange(1, 1001, dtype=float)  # 1000 impostors at 1..1000
    tar, t, far = tar_at_far(np.array([0.5, 1.5, 2.5, 3.0]), imp, far=2e-3)
    assert far == 0.002 and t == 3.0 and tar == 0.75  # accept d < 3: two impostors, three positives
    assert tar_at_far(np.array([0.5]), imp, far=0.0)[0] == 1.0
