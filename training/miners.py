"""Triplet miners, kept apart from the loss.

A miner takes a precomputed (B, B) distance matrix (squared L2 in this project, but any
dissimilarity works: distances are injected, never computed here) and the labels, and returns index
tensors ``(anchors, positives, negatives)`` plus statistics about the triplets it chose. Every
anchor-positive pair (a != p, same label) is used, as in FaceNet §3.2; the miners differ only in
how they pick the negative for each pair:

* :class:`SemiHardMiner` - the closest negative with ``d(a,p) < d(a,n)``; it is *semi-hard* when
  also ``d(a,n) < d(a,p) + margin``. When no semi-hard negative exists the fallback is the
  hardest easy one (the same rule: the closest negative farther than the positive), and when every
  negative is closer than the positive, the farthest of them (the least hard hard one).
  ``fallback=False`` drops pairs that have no semi-hard negative instead.
* :class:`HardMiner` - the closest negative (``argmin d(a,n)``).
* :class:`RandomMiner` - a uniformly random negative.

``anchor_mask`` restricts which rows may be anchors (used by the harmonic loss, where only the
new model's embeddings are anchors).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MinerStats:
    pairs: int  # anchor-positive pairs in the batch
    triplets: int  # triplets returned
    semi_hard: int  # d(a,p) < d(a,n) < d(a,p) + margin
    hard: int  # d(a,n) <= d(a,p)
    easy: int  # d(a,n) >= d(a,p) + margin
    active: int  # triplets with a non-zero hinge: d(a,n) < d(a,p) + margin

    @property
    def frac_semi_hard(self) -> float:
        return self.semi_hard / self.triplets if self.triplets else 0.0

    @property
    def frac_active(self) -> float:
        return self.active / self.triplets if self.triplets else 0.0


@dataclass(frozen=True)
class Triplets:
    anchors: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    stats: MinerStats

    def __len__(self) -> int:
        return len(self.anchors)


def _pairs(labels: torch.Tensor, anchor_mask: torch.Tensor | None):
    labels = labels.reshape(-1)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    if anchor_mask is not None:
        pos &= anchor_mask.reshape(-1, 1).to(torch.bool)
    a, p = pos.nonzero(as_tuple=True)
    return a, p, ~same


def classify(d_ap: torch.Tensor, d_an: torch.Tensor, margin: float) -> MinerStats:
    hard = d_an <= d_ap
    easy = d_an >= d_ap + margin
    semi = ~hard & ~easy
    return MinerStats(
        pairs=len(d_ap),
        triplets=len(d_ap),
        semi_hard=int(semi.sum()),
        hard=int(hard.sum()),
        easy=int(easy.sum()),
        active=int((d_an < d_ap + margin).sum()),
    )


def _finish(dist, a, p, n, margin, pairs) -> Triplets:
    d_ap, d_an = dist[a, p], dist[a, n]
    s = classify(d_ap, d_an, margin)
    stats = MinerStats(pairs, s.triplets, s.semi_hard, s.hard, s.easy, s.active)
    return Triplets(a, p, n, stats)


class Miner:
    def __init__(self, margin: float = 0.2):
        self.margin = margin

    def __call__(
        self, dist: torch.Tensor, labels: torch.Tensor, anchor_mask: torch.Tensor | None = None
    ) -> Triplets:
        dist = dist.detach()
        a, p, neg = _pairs(labels, anchor_mask)
        n, keep = self.pick(dist, a, p, neg[a])
        return _finish(dist, a[keep], p[keep], n[keep], self.margin, len(a))

    def pick(self, dist, a, p, neg_rows) -> tuple[torch.Tensor, torch.Tensor]:
        """For each pair: (negative index, keep flag)."""
        raise NotImplementedError


class SemiHardMiner(Miner):
    def __init__(self, margin: float = 0.2, fallback: bool = True):
        super().__init__(margin)
        self.fallback = fallback

    def pick(self, dist, a, p, neg_rows):
        d_an = dist[a]  # (P, B)
        d_ap = dist[a, p][:, None]
        inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
        farther = neg_rows & (d_an > d_ap)
        # Closest negative beyond the positive: semi-hard if inside the margin, else hardest easy.
        beyond = torch.where(farther, d_an, inf)
        n_beyond = beyond.argmin(1)
        has_beyond = farther.any(1)
        # Otherwise the farthest negative (all are closer than the positive).
        n_far = torch.where(neg_rows, d_an, -inf).argmax(1)
        n = torch.where(has_beyond, n_beyond, n_far)
        keep = neg_rows.any(1)
        if not self.fallback:
            keep &= has_beyond & (beyond.min(1).values < d_ap[:, 0] + self.margin)
        return n, keep


class HardMiner(Miner):
    def pick(self, dist, a, p, neg_rows):
        inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
        return torch.where(neg_rows, dist[a], inf).argmin(1), neg_rows.any(1)


class RandomMiner(Miner):
    def __init__(self, margin: float = 0.2, generator: torch.Generator | None = None):
        super().__init__(margin)
        self.generator = generator

    def pick(self, dist, a, p, neg_rows):
        w = neg_rows.to(torch.float32)
        keep = neg_rows.any(1)
        w[~keep] = 1.0
        n = torch.multinomial(w.cpu(), 1, generator=self.generator).reshape(-1).to(dist.device)
        return n, keep


MINERS = {"semihard": SemiHardMiner, "hard": HardMiner, "random": RandomMiner}


def make_miner(name: str, margin: float = 0.2) -> Miner:
    try:
        return MINERS[name](margin)
    except KeyError:
        raise ValueError(f"unknown miner {name!r}; choose one of {sorted(MINERS)}") from None
