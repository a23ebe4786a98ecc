"""P x K batches: P identities, K images each (FaceNet §3.2 uses ~40 faces per identity per
mini-batch; on CPU small P and K are what fits).

Only identities with at least ``min_per_identity`` images are drawn. An identity with fewer than
K images contributes all of them, then repeats (with flip augmentation the repeats differ).
Negative labels mark images of no identity (only used as forced negatives); they are never drawn.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class PKSampler(Sampler[list[int]]):
    def __init__(self, labels, p: int, k: int, batches: int, seed: int = 0, min_per_identity: int = 2):
        labels = np.asarray(labels)
        if p < 2 or k < 2:
            raise ValueError("P and K must both be at least 2 for triplets")
        self.by_id = [np.flatnonzero(labels == lab) for lab in np.unique(labels) if lab >= 0]
        self.by_id = [ix for ix in self.by_id if len(ix) >= min_per_identity]
        if len(self.by_id) < p:
            n = len(self.by_id)
            raise ValueError(f"only {n} identities with >= {min_per_identity} images; need P={p}")
        self.p, self.k, self.batches, self.seed = p, k, batches, seed
        self._epoch = 0

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self._epoch))
        self._epoch += 1
        for _ in range(self.batches):
            batch: list[int] = []
            for ident in rng.choice(len(self.by_id), self.p, replace=False):
                ix = rng.permutation(self.by_id[ident])
                batch.extend(int(ix[j % len(ix)]) for j in range(self.k))
            yield batch
