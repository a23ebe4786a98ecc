"""How child-like a face looks to a model, and the penalty that keeps different children apart.

SFace puts different children's faces about as close together as one child's young and adult faces
(docs/clustering.md, "Children growing up"), so the grouping's wrong merges on family libraries are mostly
two children joined. A linear classifier on the model's own unit embeddings (logistic regression, fitted by
``bench/child_direction.py`` on lag-dev's "young" faces against its adults and the LFW people) gives each
face a likelihood c of being a child's; the stable grouping then lengthens every candidate edge by
``penalty * c_i * c_j`` (engine/grouping/density.py). Two adults (c ~ 0) and a child with an adult keep their
distance, so adults group as before and a child's photos may still join the same person's adult ones; two
children must be that much closer to join.

The classifier belongs to the model that made the embeddings, as its thresholds do. One ships for the bundled
SFace (``resources/models/child_direction.json``, SHA-256 checked like the weights); ``facenet-photos
calibrate`` fits one for any model with its thresholds and stores it with the model's record
(``ModelRecord.child_classifier``), where it wins over a shipped one. A model without its own uses that of
the model whose space it lives in (``compatible_with``, as for thresholds); with none, it groups without the
penalty.
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

    @classmethod
    def from_dict(cls, model_id: str, d: dict) -> ChildDirection:
        """From the form stored with a model record or shipped in the JSON file (extra keys ignored)."""
        weights = np.asarray(d["weights"], np.float64).reshape(-1)
        bias, penalty = float(d["bias"]), float(d["penalty"])
        if not (len(weights) and np.isfinite(weights).all() and np.isfinite(bias)):
            raise ValueError("a child classifier needs finite weights and bias")
        if not (0.0 <= penalty <= 1.0):
            raise ValueError(f"the children's penalty must be a squared distance between 0 and 1, not {penalty}")
        return cls(model_id, weights, bias, penalty)

    def as_dict(self, **about) -> dict:
        """The stored form; ``about`` adds how it was fitted (faces, AUC, ...), kept for the listing."""
        return {"weights": [round(float(v), 6) for v in self.weights], "bias": round(self.bias, 6),
                "penalty": round(self.penalty, 4), **about}

    def likelihood(self, emb: np.ndarray) -> np.ndarray:
        """(N,) float64 in 0..1 for unit embeddings (N, d) of this model."""
        emb = np.asarray(emb, dtype=np.float64)
        if emb.size == 0:
            return np.zeros(len(emb))
        emb = emb.reshape(len(emb), -1)
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
        out = {mid: ChildDirection.from_dict(mid, d) for mid, d in raw["models"].items()}
        _cache[key] = out
        return out


def model_child_direction(session, model_id: str) -> ChildDirection | None:
    """The classifier ``model_id``'s embeddings are grouped with: its own stored one, else the shipped one
    for it, else the same for each model whose space it lives in, nearest first; None: no penalty."""
    from engine.grouping.thresholds import compatible_chain

    shipped = load_directions()
    for mid, record in compatible_chain(session, model_id):
        if record is not None and record.child_classifier:
            return ChildDirection.from_dict(mid, record.child_classifier)
        if mid in shipped:
            return shipped[mid]
    return None


def active_child_direction(session, dim: int | None = None) -> ChildDirection | None:
    """The classifier of the library's active embedding model (:func:`model_child_direction`); with ``dim``,
    None unless it takes embeddings of that dimension."""
    from engine.grouping.thresholds import active_embedder_id

    direction = model_child_direction(session, active_embedder_id(session))
    if direction is None or (dim is not None and dim != len(direction.weights)):
        return None
    return direction


def set_model_child_direction(session, model_id: str, direction: ChildDirection | None, **about) -> None:
    """Store ``direction`` with ``model_id``'s record (None: remove it, back to the shipped or borrowed one)."""
    from engine.grouping.thresholds import embedder_record

    m = embedder_record(session, model_id)
    if direction is not None and m.dim and len(direction.weights) != m.dim:
        raise ValueError(f"a child classifier of dimension {len(direction.weights)} for {model_id}, whose "
                         f"embeddings have {m.dim}")
    m.child_classifier = direction.as_dict(**about) if direction is not None else None


def child_weights(session, emb: np.ndarray, config) -> tuple[np.ndarray | None, float]:
    """(each face's child likelihood, penalty) for grouping ``emb`` of this library with ``config``
    (a ClusterConfig); (None, 0.0) when off, for another method or a model without a classifier."""
    if not config.separate_children or config.method != "stable" or len(emb) == 0:
        return None, 0.0
    direction = active_child_direction(session, np.asarray(emb).shape[1])
    if direction is None or direction.penalty <= 0:
        return None, 0.0
    return direction.likelihood(emb), direction.penalty
