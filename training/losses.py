"""Triplet losses on L2-normalised embeddings (FaceNet §3 and §5).

``L = mean over triplets of max(0, ||f(a) - f(p)||² - ||f(a) - f(n)||² + margin)``, margin 0.2,
with f(x) on the unit hypersphere. Triplets come from a miner (:mod:`training.miners`); the loss
only evaluates them.

The harmonic loss (§5, "Harmonic Embedding") trains a new model so that its embeddings can be
compared with those of an old one: the batch's new-model embeddings and the (fixed) old-model
embeddings of the same images are pooled, and triplets are mined over the pool with new-model
anchors, so positives and negatives can come from either model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .miners import Miner, MinerStats, SemiHardMiner

MARGIN = 0.2


def normalise(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, p=2, dim=-1, eps=1e-12)


def pairwise_sq_dist(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Squared L2 distances between the rows of x and y (clamped at 0)."""
    y = x if y is None else y
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return d.clamp_min(0.0)


def triplet_loss(
    emb: torch.Tensor,
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    margin: float = MARGIN,
    normalised: bool = False,
) -> torch.Tensor:
    """Mean hinge over the given triplets; ``emb`` is L2-normalised here unless ``normalised``."""
    if len(anchors) == 0:
        return emb.sum() * 0.0
    e = emb if normalised else normalise(emb)
    d_ap = (e[anchors] - e[positives]).pow(2).sum(1)
    d_an = (e[anchors] - e[negatives]).pow(2).sum(1)
    return F.relu(d_ap - d_an + margin).mean()


@dataclass(frozen=True)
class LossOutput:
    loss: torch.Tensor
    stats: MinerStats
    embeddings: torch.Tensor  # normalised, the pool for the harmonic loss
    dist: torch.Tensor


class TripletLoss(torch.nn.Module):
    def __init__(self, miner: Miner | None = None, margin: float = MARGIN):
        super().__init__()
        self.margin = margin
        self.miner = miner or SemiHardMiner(margin)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        e = normalise(emb)
        dist = pairwise_sq_dist(e)
        t = self.miner(dist.detach(), labels)
        loss = triplet_loss(e, t.anchors, t.positives, t.negatives, self.margin, normalised=True)
        return LossOutput(loss, t.stats, e, dist)


class HarmonicTripletLoss(torch.nn.Module):
    """Triplet loss over new-model and old-model embeddings of the same batch."""

    def __init__(self, miner: Miner | None = None, margin: float = MARGIN):
        super().__init__()
        self.margin = margin
        self.miner = miner or SemiHardMiner(margin)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor, old_emb: torch.Tensor) -> LossOutput:
        if old_emb.shape != emb.shape:
            raise ValueError(f"old embeddings {tuple(old_emb.shape)} do not match new {tuple(emb.shape)}")
        e = normalise(emb)
        pool = torch.cat([e, normalise(old_emb.detach().to(e))])
        pool_labels = torch.cat([labels, labels])
        new = torch.zeros(len(pool), dtype=torch.bool, device=e.device)
        new[: len(e)] = True
        dist = pairwise_sq_dist(pool)
        t = self.miner(dist.detach(), pool_labels, anchor_mask=new)
        loss = triplet_loss(pool, t.anchors, t.positives, t.negatives, self.margin, normalised=True)
        return LossOutput(loss, t.stats, pool, dist)
