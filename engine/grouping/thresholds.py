"""Thresholds of embedding models: "same person?", grouping and recognition squared-L2 distances.

They belong to the model that made the embeddings (another model's distances mean something else), so they
are stored with its record in the models table and chosen per model by ``facenet-photos calibrate``
(``Library.calibrate_model``, evals/family.py). The bundled SFace's are the values measured for
it (engine/config.py). Every grouping reads them through :func:`stored_cluster_config`, imports included.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from engine.config import ClusterConfig, VerifyConfig
from engine.errors import ModelError
from engine.models.packs import PACKS
from engine.models.registry import SFACE
from engine.store.schema import ModelRecord, Setting


@dataclass(frozen=True)
class ModelThresholds:
    model_id: str
    verify: float
    cluster: float
    recognise: float
    # False: the model was never calibrated and nothing it is compatible with was either; these are the
    # bundled model's numbers, which the CLI and the doctor point out.
    calibrated: bool = True
    source: str | None = None  # the model whose calibration these are (itself, or one it is compatible with)

    @classmethod
    def bundled(cls, model_id: str, calibrated: bool = True) -> ModelThresholds:
        c = ClusterConfig()
        return cls(model_id, VerifyConfig().threshold, c.threshold, c.recognise_threshold, calibrated,
                   SFACE.model_id if calibrated else None)


def active_embedder_id(session) -> str:
    row = session.scalars(
        select(ModelRecord)
        .where(ModelRecord.active.is_(True), ModelRecord.kind == "embedder")
        .order_by(ModelRecord.created_at.desc())
    ).first()
    return row.id if row is not None else SFACE.model_id


def compatible_chain(session, model_id: str) -> list[tuple[str, ModelRecord | None]]:
    """``model_id`` and the models whose space it lives in, nearest first (its ``compatible_with``, that
    model's, ...), each with its record (None for a model this library has no record of, which ends the
    chain). What a model has not been calibrated for itself it borrows along this chain."""
    out: list[tuple[str, ModelRecord | None]] = []
    seen: set[str] = set()
    cur: str | None = model_id
    while cur and cur not in seen:
        seen.add(cur)
        m = session.get(ModelRecord, cur)
        out.append((cur, m))
        if m is None:
            break
        cur = m.compatible_with
    return out


def model_thresholds(session, model_id: str | None = None) -> ModelThresholds:
    """A model's thresholds (default: the active embedder's). An uncalibrated model borrows those of the
    model it is harmonically compatible with (its embeddings live in that model's space)."""
    mid = model_id or active_embedder_id(session)
    for cur, m in compatible_chain(session, mid):
        if m is None:
            if cur == mid and mid != SFACE.model_id:
                raise ModelError(f"no embedding model {mid!r} in this library")
            break
        if m.cluster_threshold is not None:
            return ModelThresholds(mid, float(m.verify_threshold), float(m.cluster_threshold),
                                   float(m.recognise_threshold), calibrated=True, source=m.id)
        pack = PACKS.get(cur)
        if pack is not None and pack.thresholds is not None:
            # A model pack's own numbers (its LFW threshold; grouping scaled from SFace's), until calibrated.
            p = pack.thresholds
            return ModelThresholds(mid, p.verify, p.cluster, p.recognise, calibrated=False, source=cur)
    return ModelThresholds.bundled(mid, calibrated=mid == SFACE.model_id)


def embedder_record(session, model_id: str) -> ModelRecord:
    """The record of an embedding model of this library, where what `calibrate` fits is stored; ModelError
    when there is none."""
    m = session.get(ModelRecord, model_id)
    if m is None or m.kind != "embedder":
        raise ModelError(f"no embedding model {model_id!r} in this library")
    return m


def set_model_thresholds(session, model_id: str, verify: float, cluster: float, recognise: float) -> None:
    for name, v in (("verification", verify), ("grouping", cluster), ("recognition", recognise)):
        if not (0.0 < float(v) < 4.0):
            raise ValueError(f"the {name} threshold must be a squared distance between 0 and 4, not {v}")
    m = embedder_record(session, model_id)
    m.verify_threshold, m.cluster_threshold, m.recognise_threshold = float(verify), float(cluster), float(recognise)


def stored_cluster_config(session) -> ClusterConfig:
    """Grouping settings of a library: the active model's thresholds, unless the user saved a grouping
    threshold (``cluster_threshold`` setting)."""
    base = ClusterConfig()
    mt = model_thresholds(session)
    row = session.get(Setting, "cluster_threshold")
    t = row.value if row is not None else None
    return ClusterConfig(threshold=float(t) if t else mt.cluster, method=base.method, k=base.k,
                         recognise_threshold=mt.recognise, min_group_size=base.min_group_size, centre=base.centre)
