"""Training building blocks on hand-made inputs: miners, losses, sampler, metrics, data helpers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.data import FaceSet, from_library  # noqa: E402
from training.evaluate import identity_fold_pairs, verification  # noqa: E402
from training.losses import HarmonicTripletLoss, TripletLoss, pairwise_sq_dist, triplet_loss  # noqa: E402
from training.miners import HardMiner, RandomMiner, SemiHardMiner, make_miner  # noqa: E402
from training.samplers import PKSampler  # noqa: E402

MARGIN = 0.2


def _sym(d: np.ndarray) -> torch.Tensor:
    d = np.triu(d, 1)
    d = d + d.T
    return torch.tensor(d, dtype=torch.float32)


def _rows(t) -> list[tuple[int, int, int]]:
    return list(zip(t.anchors.tolist(), t.positives.tolist(), t.negatives.tolist(), strict=True))


def _brute_check(dist: torch.Tensor, labels: torch.Tensor, t, margin=MARGIN):
    """Every returned triplet is valid and, where a semi-hard negative exists for its pair, the
    returned negative is the closest semi-hard one."""
    d = dist.numpy()
    lab = labels.numpy()
    seen = set()
    for a, p, n in _rows(t):
        assert a != p and lab[a] == lab[p] and lab[a] != lab[n]
        seen.add((a, p))
        negs = np.flatnonzero(lab != lab[a])
        semi = [j for j in negs if d[a, p] < d[a, j] < d[a, p] + margin]
        if semi:
            assert d[a, p] < d[a, n] < d[a, p] + margin  # the semi-hard condition holds
            assert d[a, n] == pytest.approx(min(d[a, j] for j in semi))
        else:
            beyond = [j for j in negs if d[a, j] > d[a, p]]
            if beyond:  # hardest easy negative
                assert d[a, n] == pytest.approx(min(d[a, j] for j in beyond))
            else:  # all negatives closer than the positive: the least hard one
                assert d[a, n] == pytest.approx(max(d[a, j] for j in negs))
    pairs = {(a, p) for a in range(len(lab)) for p in range(len(lab)) if a != p and lab[a] == lab[p]}
    assert seen == pairs  # every anchor-positive pair is used


def test_semi_hard_picks_closest_semi_hard_negative():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    d = np.full((6, 6), 3.0)
    d[0, 1] = 0.5  # the pair (0, 1)
    d[0, 2], d[0, 3], d[0, 4], d[0, 5] = 0.3, 0.65, 0.6, 1.0  # hard, semi, semi, easy
    dist = _sym(d)
    t = SemiHardMiner(MARGIN)(dist, labels)
    row = [(p, n) for a, p, n in _rows(t) if a == 0]
    assert row == [(1, 4)]
    _brute_check(dist, labels, t)


def test_semi_hard_fallbacks():
    labels = torch.tensor([0, 0, 1, 2])
    d = np.zeros((4, 4))
    d[0, 1], d[0, 2], d[0, 3] = 0.5, 0.9, 1.4  # no semi-hard: both easy, hardest easy is 2
    d[1, 2], d[1, 3] = 0.1, 0.2  # (1, 0): both hard, least hard is 3
    d[2, 3] = 1.0
    dist = _sym(d)
    t = SemiHardMiner(MARGIN)(dist, labels)
    got = {(a, p): n for a, p, n in _rows(t)}
    assert got == {(0, 1): 2, (1, 0): 3}
    assert t.stats.semi_hard == 0 and t.stats.easy == 1 and t.stats.hard == 1 and t.stats.active == 1
    assert len(SemiHardMiner(MARGIN, fallback=False)(dist, labels)) == 0


@pytest.mark.parametrize("seed", range(5))
def test_semi_hard_on_random_distances(seed):
    rng = np.random.default_rng(seed)
    labels = torch.tensor(rng.integers(0, 5, 24))
    dist = _sym(rng.random((24, 24)) * 1.5)
    t = SemiHardMiner(MARGIN)(dist, labels)
    _brute_check(dist, labels, t)
    s = t.stats
    assert s.semi_hard + s.hard + s.easy == s.triplets == len(t)
    assert 0.0 <= s.frac_semi_hard <= s.frac_active <= 1.0
    strict = SemiHardMiner(MARGIN, fallback=False)(dist, labels)
    d = dist.numpy()
    for a, p, n in _rows(strict):
        assert d[a, p] < d[a, n] < d[a, p] + MARGIN
    assert strict.stats.frac_semi_hard == 1.0 or len(strict) == 0


def test_hard_and_random_miners():
    rng = np.random.default_rng(0)
    labels = torch.tensor(np.repeat(np.arange(4), 3))
    dist = _sym(rng.random((12, 12)))
    lab = labels.numpy()
    d = dist.numpy()
    t = HardMiner(MARGIN)(dist, labels)
    for a, _, n in _rows(t):
        assert d[a, n] == pytest.approx(d[a][lab != lab[a]].min())
    r = RandomMiner(MARGIN, generator=torch.Generator().manual_seed(0))(dist, labels)
    assert len(r) == 4 * 3 * 2
    assert all(lab[a] != lab[n] for a, _, n in _rows(r))
    assert isinstance(make_miner("hard"), HardMiner)
    with pytest.raises(ValueError):
        make_miner("nope")


def test_anchor_mask_restricts_anchors():
    labels = torch.tensor([0, 0, 1, 1])
    dist = _sym(np.random.default_rng(1).random((4, 4)))
    mask = torch.tensor([True, False, True, False])
    t = SemiHardMiner()(dist, labels, anchor_mask=mask)
    assert set(t.anchors.tolist()) == {0, 2}


def test_triplet_loss_known_value():
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [2**-0.5, 2**-0.5]])
    a, p = torch.tensor([0, 0]), torch.tensor([1, 1])
    n = torch.tensor([2, 3])
    # d(a,p) = 2; d(a,n) = 4 (inactive) and 2 - sqrt(2) (active: 2 - 0.5858 + 0.2 = 1.6142).
    expected = (0.0 + (2 - (2 - 2**0.5) + 0.2)) / 2
    assert float(triplet_loss(emb, a, p, n)) == pytest.approx(expected, abs=1e-6)
    # Scale-invariant: embeddings are normalised first.
    assert float(triplet_loss(emb * torch.tensor([[3.0], [0.5], [7.0], [2.0]]), a, p, n)) == pytest.approx(
        expected, abs=1e-6
    )
    assert float(triplet_loss(emb, a[:0], p[:0], n[:0])) == 0.0


def test_pairwise_sq_dist_matches_cdist():
    x = torch.randn(7, 5)
    assert torch.allclose(pairwise_sq_dist(x), torch.cdist(x, x) ** 2, atol=1e-5)


def test_triplet_loss_module_and_harmonic():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    new = torch.randn(6, 8, requires_grad=True)
    old = torch.randn(6, 8, requires_grad=True)
    out = TripletLoss()(new, labels)
    assert out.loss.item() >= 0 and out.stats.triplets == 6
    h = HarmonicTripletLoss()(new, labels, old)
    assert h.embeddings.shape == (12, 8)
    # 6 new anchors x 3 positives each (its same-identity new partner, and both old embeddings).
    assert h.stats.pairs == 18
    h.loss.backward()
    assert new.grad is not None and old.grad is None  # the old model's embeddings are fixed
    with pytest.raises(ValueError):
        HarmonicTripletLoss()(new, labels, old[:3])


def test_pk_sampler_shapes():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 3 + [3] * 1 + [4] * 4)
    s = PKSampler(labels, p=3, k=4, batches=7, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 7
    for b in batches:
        assert len(b) == 12
        ids, counts = np.unique(labels[b], return_counts=True)
        assert len(ids) == 3 and (counts == 4).all() and 3 not in ids  # identity 3 has one image
    assert batches == list(PKSampler(labels, p=3, k=4, batches=7, seed=0))
    with pytest.raises(ValueError):
        PKSampler(labels, p=5, k=2, batches=1)
    # Label -1 (faces of nobody, only "not this person" negatives) is never an identity to draw.
    nobody = np.concatenate([labels, [-1] * 6])
    assert all(-1 not in nobody[b] for b in PKSampler(nobody, p=4, k=2, batches=20, seed=1))
    with pytest.raises(ValueError):
        PKSampler(nobody, p=5, k=2, batches=1)


def test_verification_and_pairs():
    rng = np.random.default_rng(0)
    same = np.repeat([True, False], 500)
    dist = np.where(same, rng.uniform(0.2, 0.9, 1000), rng.uniform(1.1, 2.0, 1000))
    r = verification(dist, same)
    assert r.accuracy == 1.0 and r.val == 1.0 and 0.9 <= r.threshold <= 1.1 and r.auc == pytest.approx(1.0)
    dist[0] = 1.5  # one same pair far away
    assert verification(dist, same).accuracy == pytest.approx(0.999, abs=1e-3)
    labels = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    pi = identity_fold_pairs(labels, n_folds=2)
    assert (pi.same == (labels[pi.i1] == labels[pi.i2])).all()
    assert pi.same.sum() == 1 + 3 + 1


def test_faceset_helpers():
    crops = np.zeros((6, 112, 112, 3), np.uint8)
    fs = from_library(lambda: (crops, ["b", "a", "b", "c", "b", "a"]))
    assert fs.names == ["a", "b", "c"] and fs.labels.tolist() == [1, 0, 1, 2, 1, 0]
    assert len(fs.with_min_images(2)) == 5
    assert np.bincount(fs.capped(2).labels).tolist() == [2, 2, 1]
    both = FaceSet.concat([fs, from_library((crops[:2], ["c", "d"]))])
    assert both.names == ["a", "b", "c", "d"] and both.labels[-2:].tolist() == [2, 3]
    with pytest.raises(ValueError):
        FaceSet(np.zeros((2, 100, 100, 3), np.uint8), np.zeros(2), ["x"])
