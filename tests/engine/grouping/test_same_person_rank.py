"""The ranking maths of the "same person?" queue (engine/grouping/same_person.py) on groups whose distances are
known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from engine.grouping.same_person import QuestionConfig, rank_pairs, rank_score, same_probability


def _group_means(dists_to_first: list[float], dim: int = 8) -> np.ndarray:
    """Unit-norm group means (tight groups) whose average-linkage distance to group 0 is each given value."""
    e = np.eye(dim)
    out = [e[0]]
    for i, d in enumerate(dists_to_first, start=1):
        c = 1 - d / 2  # unit vectors: d = 2 - 2 cos
        out.append(c * e[0] + np.sqrt(1 - c * c) * e[i])
    return np.array(out)


def test_probability_curve_is_half_at_threshold_plus_offset():
    cfg = QuestionConfig()
    assert float(same_probability(1.15 + cfg.offset, 1.15)) == pytest.approx(0.5)
    assert float(same_probability(0.5, 1.15)) > 0.999 and float(same_probability(2.0, 1.15)) < 0.001
    # Relative to each model's threshold: the same gap, the same probability.
    assert float(same_probability(1.3, 1.0)) == pytest.approx(float(same_probability(1.45, 1.15)))


def test_likelier_and_bigger_first_named_pairs_and_answered_ones_never():
    means = _group_means([1.25, 1.35, 1.35, 1.9])  # groups 1..4 around group 0; 4 too far to ask
    sizes = np.array([10, 1, 1, 5, 1])
    named = np.array([True, False, False, False, False])
    pr = rank_pairs(means, sizes, named, 1.15)
    pairs = list(zip(pr.a.tolist(), pr.b.tolist(), strict=True))
    assert (0, 4) not in pairs  # p(1.9) < 5 %
    assert pairs.index((0, 3)) < pairs.index((0, 2))  # as likely as (0, 2), five faces against one
    assert pairs.index((0, 1)) < pairs.index((0, 2))  # likelier
    assert list(pr.score) == sorted(pr.score, reverse=True)
    assert pr.faces_affected[pairs.index((0, 3))] == 5  # the unnamed side beside a named person
    assert np.allclose(pr.distance[pairs.index((0, 1))], 1.25, atol=1e-5)
    # Two named groups are two people the user named apart; an answered pair is never asked again.
    both = rank_pairs(means, sizes, np.array([True, True, False, False, False]), 1.15, excluded=np.array([0 * 5 + 3]))
    both_pairs = set(zip(both.a.tolist(), both.b.tolist(), strict=True))
    assert (0, 1) not in both_pairs and (0, 3) not in both_pairs and (0, 2) in both_pairs


def test_policies_order_as_documented():
    p, n = np.array([0.9, 0.5]), np.array([1, 8])
    assert rank_score(p, n, "closest")[0] > rank_score(p, n, "closest")[1]
    assert rank_score(p, n, "expected")[1] > rank_score(p, n, "expected")[0]
    assert rank_score(np.array([0.5, 0.99]), np.array([1, 1]), "uncertainty")[0] > 0.99
    with pytest.raises(ValueError, match="unknown question policy"):
        rank_score(p, n, "random")


def test_one_group_or_none_gives_no_question():
    assert len(rank_pairs(np.zeros((0, 8)), np.zeros(0), np.zeros(0, bool), 1.15)) == 0
    assert len(rank_pairs(np.eye(8)[:1], np.array([3]), np.array([False]), 1.15)) == 0


def test_beyond_the_exact_limit_the_inverted_file_still_finds_the_close_pairs(capfd):
    # A library with more groups than EXACT_GROUPS_MAX (100k faces may hold 40k): the approximate search
    # must still find the pairs of groups close enough to ask about, rank them first, and print nothing.
    # Random means are the inverted file's worst case (no structure for its cells): 1.1 % of the close
    # pairs are missed here (nprobe 32 of ~525 cells).
    from engine.grouping.same_person import EXACT_GROUPS_MAX

    rng = np.random.default_rng(0)
    g = EXACT_GROUPS_MAX + 500  # just above the limit: the fewest groups per inverted-file cell
    centres = rng.normal(size=(g // 2, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    means = np.repeat(centres, 2, axis=0) + rng.normal(scale=0.06, size=(g, 128))  # groups 2i, 2i+1: close
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    pr = rank_pairs(means, np.full(g, 3), np.zeros(g, bool), 1.2)
    close = pr.a // 2 == pr.b // 2
    found = int(close.sum())
    assert found >= 0.98 * (g // 2)
    assert close[:found].all()  # asked before any other pair
    assert "WARNING" not in capfd.readouterr().err  # faiss's training warning would reach the terminal


def test_neighbour_ranks_count_the_closer_groups_on_the_farther_side():
    from engine.grouping.same_person import neighbour_ranks

    # Groups on a line: 0 - 1 - 2 - 3 (each row nearest first, itself included as faiss returns it).
    nn = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 1, 0, 3], [3, 2, 1, 0]])
    a, b = np.array([0, 0, 0, 1]), np.array([1, 2, 3, 2])
    assert neighbour_ranks(nn, a, b).tolist() == [0, 1, 2, 1]  # 1's nearest is 0, not 2
    # Groups known to be other people (answered no, or in one photo) do not count as closer: with (0, 1)
    # answered no, 0's and 1's nearest is 2.
    assert neighbour_ranks(nn, a[1:], b[1:], excluded=np.array([0 * 4 + 1])).tolist() == [1, 2, 0]
    assert neighbour_ranks(nn, np.array([0, 2]), np.array([2, 3]), excluded=np.array([1, 1 * 4 + 2])).tolist() == [0, 1]
    # Not in a side's list at all: that side counts its whole list as closer.
    assert neighbour_ranks(nn[:, :2], np.array([0]), np.array([2])).tolist() == [1]
    assert neighbour_ranks(nn[:, :2], np.array([0]), np.array([3])).tolist() == [1]


def test_a_pair_that_are_not_each_others_nearest_is_less_likely():
    # Groups 1 and 2 at about the same distance from group 0, but group 2 has a nearer group (3) of its own:
    # the question about 0 and 1 (each the other's nearest) is the likelier one, by the curve's rank term.
    e = np.eye(8)
    c1, c2 = 1 - 1.29 / 2, 1 - 1.30 / 2
    g1 = c1 * e[0] + np.sqrt(1 - c1 * c1) * e[1]
    g2 = c2 * e[0] + np.sqrt(1 - c2 * c2) * e[2]
    g3 = 0.8 * g2 + 0.6 * e[3]  # squared distance 0.4 from group 2
    means = np.array([e[0], g1, g2, g3 / np.linalg.norm(g3)])
    cfg = QuestionConfig(rank_weight=0.9)
    pr = rank_pairs(means, np.ones(4, np.int64), np.zeros(4, bool), 1.2, cfg)
    at = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(pr.a, pr.b, strict=True))}
    assert pr.rank[at[(0, 1)]] == 0 and pr.rank[at[(0, 2)]] == 1
    assert at[(0, 1)] < at[(0, 2)]
    assert pr.probability[at[(0, 2)]] == pytest.approx(float(same_probability(pr.distance[at[(0, 2)]], 1.2, cfg, 1)))
    assert pr.probability[at[(0, 1)]] == pytest.approx(float(same_probability(pr.distance[at[(0, 1)]], 1.2, cfg, 0)))
    # log(2) x 0.9 off the logit: clearly less likely, where the distance alone gives almost the same.
    assert pr.probability[at[(0, 2)]] < 0.8 * pr.probability[at[(0, 1)]]
    flat = rank_pairs(means, np.ones(4, np.int64), np.zeros(4, bool), 1.2, QuestionConfig(rank_weight=0.0))
    fat = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(flat.a, flat.b, strict=True))}
    assert flat.probability[fat[(0, 2)]] > 0.85 * flat.probability[fat[(0, 1)]]
    assert np.allclose(flat.probability, same_probability(flat.distance, 1.2, QuestionConfig(rank_weight=0.0)))


def test_two_groups_of_children_are_less_likely_one_person_than_two_of_adults():
    """With the model's child likelihoods the child curve is used: at one distance two child-like groups are
    less often one person (different children sit close together); groups of adults keep a curve as steep."""
    cfg = QuestionConfig()
    d = np.array([1.2, 1.3, 1.4])
    adults, children = same_probability(d, 1.2, cfg, child_pair=0.0), same_probability(d, 1.2, cfg, child_pair=1.0)
    assert (children < adults).all() and (np.diff(adults) < 0).all()
    assert same_probability(1.2 + cfg.child_offset, 1.2, cfg, child_pair=0.0) == pytest.approx(0.5)
    # Without a classifier, the distance curve (and the same ranking as before).
    assert same_probability(1.2 + cfg.offset, 1.2, cfg) == pytest.approx(0.5)
    rng = np.random.default_rng(4)
    means = rng.normal(size=(6, 32))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    means[1] = means[0] + 0.3 * means[1]
    means[3] = means[2] + 0.3 * means[3]
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    sizes, named = np.full(6, 3), np.zeros(6, bool)
    child = np.array([0.9, 0.9, 0.05, 0.05, 0.5, 0.5])
    r = rank_pairs(means, sizes, named, 1.2, QuestionConfig(min_probability=0.0), child=child)
    plain = rank_pairs(means, sizes, named, 1.2, QuestionConfig(min_probability=0.0))
    p = {(int(a), int(b)): float(x) for a, b, x in zip(r.a, r.b, r.probability, strict=True)}
    q = {(int(a), int(b)): float(x) for a, b, x in zip(plain.a, plain.b, plain.probability, strict=True)}
    assert set(p) == set(q)
    assert p[(0, 1)] / q[(0, 1)] < p[(2, 3)] / q[(2, 3)]
