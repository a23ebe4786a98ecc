"""How child-like a face looks to a model, and the penalty that keeps different children apart.

SFace puts different children's faces about as close together as one child's young and adult faces
(docs/clustering.md, "Children growing up"), so the grouping's wrong merges on family libraries are mostly
two children joined. A linear classifier on the model's own unit embeddings (logistic regression, fitted by
``bench/child_direction.py`` on lag-dev's "young" faces against its adults and the LFW people) gives each
face a likelihood c of being a child's; the stable grouping then lengthens every candidate edge by
``penalty * c_i * c_j`` (engine/grouping/density.py). Two adults (c ~ 0) and a child with an adult keep their
distance, so adults group as before and a child's photos may still join the same person's adult ones; two
children must be that much closer to join.

The classifier belongs to the model that made the embeddings, as its thresholds do: it ships for the bundled
SFace only (``resources/models/child_direction.json``, SHA-256 checked like the weights), and a model in
SFace's space (one trained compatible with it) uses SFace's. Any other model groups without the penalty.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.checksums import sha256_file
from engine.errors import ModelError
from engine.models.registry import models_dir

FILENAME = "child_direction.json"
SHA256 = "cc32f5f4025a3c9c92945dfb7bc422382c818f92b9c6c5c7541fa673ff6214f0"


@dataclass(frozen=True)
class ChildDirection:
    """One model's child-face classifier: p(child) = sigmoid(emb . weights + bias)."""

    model_id: str
    weights: np.ndarray  # (d,) float64
    bias: float
    # Squared-L2 added to an edge between two faces that are surely children (c = 1 both).
    penalty: float

    def likelihood(self, emb: np.ndarray) -> np.ndarray:
        """(N,) float64 in 0..1 for unit embeddings (N, d) of this model."""
        emb = np.asarray(emb, dtype=np.float64).reshape(len(emb), -1)
        if emb.shape[1] != len(self.weights):
            raise ValueError(f"embeddings of dimension {emb.shape[1]}, the classifier takes {len(self.weights)}")
        z = emb @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


_cache: dict[str, dict[str, ChildDirection]] = {}
_lock = threading.Lock()


def load_directions(path: Path | None = None, sha256: str | None = SHA256) -> dict[str, ChildDirection]:
    """The shipped classifiers by model id (``path``/``sha256``: another file, for tests)."""
    path = Path(path) if path is not None else models_dir() / FILENAME
    key = str(path)
    with _lock:
        got = _cache.get(key)
        if got is not None:
            return got
        if not path.is_file():
            raise ModelError(f"{path.name} not found (reinstall facenet-photos)")
        if sha256 is not None and sha256_file(path) != sha256:
            raise ModelError(f"{path.name} has the wrong checksum; refusing to use it")
        raw = json.loads(path.read_text(encoding="utf-8"))
        out = {
            mid: ChildDirection(mid, np.asarray(d["weights"], np.float64), float(d["bias"]), float(d["penalty"]))
            for mid, d in raw["models"].items()
        }
        _cache[key] = out
        return out


def active_child_direction(session) -> ChildDirection | None:
    """The classifier of the library's active embedding model, through the models it is compatible with."""
    from engine.grouping.thresholds import active_embedder_id
    from engine.store.schema import ModelRecord

    mid = active_embedder_id(session)
    chain: list[str] = []
    seen = {mid}
    m = session.get(ModelRecord, mid)
    while m is not None and m.compatible_with and m.compatible_with not in seen:
        chain.append(m.compatible_with)
        seen.add(m.compatible_with)
        m = session.get(ModelRecord, m.compatible_with)
    return child_direction(mid, tuple(chain))


def child_weights(session, emb: np.ndarray, config) -> tuple[np.ndarray | None, float]:
    """(each face's child likelihood, penalty) for grouping ``emb`` of this library with ``config``
    (a ClusterConfig); (None, 0.0) when off, for another method or a model without a classifier."""
    if not config.separate_children or config.method != "stable" or len(emb) == 0:
        return None, 0.0
    direction = active_child_direction(session)
    if direction is None or direction.penalty <= 0 or np.asarray(emb).shape[1] != len(direction.weights):
        return None, 0.0
    return direction.likelihood(emb), direction.penalty


def child_direction(model_id: str, compatible: tuple[str, ...] = ()) -> ChildDirection | None:
    """The classifier for ``model_id``, else for the first model of ``compatible`` (the models whose
    space it was trained into, nearest first) that has one; None: group without the penalty."""
    directions = load_directions()
    for mid in (model_id, *compatible):
        if mid in directions:
            return directions[mid]
    return None
