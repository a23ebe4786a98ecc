import numpy as np
import pytest

from evals.metrics import bcubed, cluster_scores, contingency, n_clusters, pairwise


def _bcubed_slow(pred, truth):
    pred, truth = np.asarray(pred), np.asarray(truth)
    p = r = 0.0
    for i in range(len(pred)):
        same_c = pred == pred[i]
        same_t = truth == truth[i]
        p += (same_c & same_t).sum() / same_c.sum()
        r += (same_c & same_t).sum() / same_t.sum()
    return p / len(pred), r / len(pred)


def _pairwise_slow(pred, truth):
    tp = fp = fn = 0
    for i in range(len(pred)):
        for j in range(i + 1, len(pred)):
            sc, st = pred[i] == pred[j], truth[i] == truth[j]
            tp += sc and st
            fp += sc and not st
            fn += st and not sc
    return tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0


def test_perfect_clustering_scores_one():
    truth = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    pred = np.array([7, 7, 7, 4, 4, 9, 1, 1, 1, 1])  # same partition, other label values
    s = cluster_scores(pred, truth)
    assert s.bcubed_precision == s.bcubed_recall == s.bcubed_f1 == 1.0
    assert s.pairwise_precision == s.pairwise_recall == s.pairwise_f1 == 1.0
    assert s.n_clusters == s.n_classes == 4
    assert s.n_singletons == 1


def test_one_big_cluster():
    truth = np.array([0, 0, 0, 1, 1, 2])  # sizes 3, 2, 1
    pred = np.zeros(6, int)
    p, r, f = bcubed(pred, truth)
    assert r == 1.0
    assert p == pytest.approx((3 * 3 + 2 * 2 + 1 * 1) / 6 / 6)  # sum_j b_j^2 / N^2 = 14/36
    assert f == pytest.approx(2 * p / (p + 1))
    pp, pr, _ = pairwise(pred, truth)
    assert pr == 1.0
    assert pp == pytest.approx((3 + 1 + 0) / 15)  # same-class pairs / all pairs


def test_all_singletons():
    truth = np.array([0, 0, 1, 1, 1])
    pred = np.arange(5)
    p, r, _ = bcubed(pred, truth)
    assert p == 1.0
    assert r == pytest.approx((2 * (1 / 2) + 3 * (1 / 3)) / 5)
    pp, pr, pf = pairwise(pred, truth)
    assert (pp, pr, pf) == (1.0, 0.0, 0.0)


def test_matches_brute_force_on_random_labels():
    rng = np.random.default_rng(1)
    for _ in range(5):
        truth = rng.integers(0, 8, 60)
        pred = rng.integers(0, 6, 60)
        p, r, _ = bcubed(pred, truth)
        assert (p, r) == pytest.approx(_bcubed_slow(pred, truth))
        pp, pr, _ = pairwise(pred, truth)
        assert (pp, pr) == pytest.approx(_pairwise_slow(pred, truth))


def test_string_labels_and_noise_as_singletons():
    truth = np.array(["a", "a", "b", "b"])
    pred = np.array([-1, -1, 3, 3])
    s = cluster_scores(pred, truth)
    assert s.n_clusters == 3 and s.n_singletons == 2
    assert s.bcubed_precision == 1.0 and s.bcubed_recall == pytest.approx(0.75)
    s2 = cluster_scores(pred, truth, noise_as_singletons=False)
    assert s2.n_clusters == 2 and s2.bcubed_f1 == 1.0
    assert n_clusters(pred) == 3


def test_large_input_is_fast_enough_and_consistent():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 50_000, 200_000)
    pred = truth.copy()
    n_ij, a, b, n_p, n_t = contingency(pred, truth)
    assert n_ij.sum() == 200_000 and n_p == n_t
    assert cluster_scores(pred, truth).bcubed_f1 == 1.0


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        bcubed([0, 1], [0])


def test_empty():
    assert bcubed([], []) == (1.0, 1.0, 1.0)


def test_corrections_counts_moves_and_merges():
    from evals.metrics import corrections

    truth = np.array(["a"] * 6 + ["b"] * 3 + ["c"] * 2)
    perfect = corrections(np.array([0] * 6 + [1] * 3 + [2] * 2), truth)
    assert (perfect.moves, perfect.merges, perfect.total) == (0, 0, 0)
    # a split in three groups (two merges); one b face inside a's first group (one move); c merged into
    # b's group (two moves: c's faces come out).
    pred = np.array([0, 0, 0, 1, 1, 2, 0, 3, 3, 3, 3])
    c = corrections(pred, truth)
    assert (c.moves, c.merges) == (3, 2)
    assert c.per_100_faces == pytest.approx(100 * 5 / 11)
    # Everything alone: one merge per face beyond the first of each person, no moves.
    c = corrections(np.arange(11), truth)
    assert (c.moves, c.merges) == (0, 11 - 3)
    # Everything in one group: it belongs to a (the majority), b and c faces are moved.
    c = corrections(np.zeros(11, int), truth)
    assert (c.moves, c.merges) == (5, 0)
