"""A face model switch is one journaled step: it shows in the history, undo makes the previous model active
again with the grouping threshold it had, and a re-embed brings the faces back exactly; nothing the user
said is lost."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from engine.errors import ModelError
from engine.models.quantize import from_bytes
from engine.store.schema import Face

from conftest import label_the_sample  # noqa: E402
from conftest import library_labels as _state  # noqa: E402

SFACE_ID = "sface-2021dec-int8bq"


def _other_space_model(lib, tmp_path, model_id: str = "sface-turned") -> str:
    """SFace followed by a random rotation of its 128-D space: a registered model whose distances are
    SFace's but whose space is another (not ``compatible_with`` SFace), built from the bundled file."""
    from engine.models.registry import SFACE, prepared_model_bytes
    from training.pack_head import graph_with_linear_head

    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(128, 128)))
    path = tmp_path / f"{model_id}.onnx"
    turned = graph_with_linear_head(prepared_model_bytes(SFACE), q.astype(np.float32), np.zeros(128, np.float32))
    path.write_bytes(turned)
    return lib.register_model(path, model_id)


def _embeddings(lib) -> dict[int, tuple[str, bytes]]:
    with lib.store.session() as s:
        return {f.id: (f.model_id, f.embedding) for f in s.scalars(select(Face))}


def test_switch_is_journaled_and_undo_goes_back_with_the_threshold_then_reembeds(imported, tmp_path):
    from engine.services.reembed import re_embed, switch_model

    other = _other_space_model(imported, tmp_path)
    label_the_sample(imported)
    imported.recluster(1.10, save=True)  # the user's own grouping threshold, in SFace's space
    before, stored = _state(imported), _embeddings(imported)

    last = list(switch_model(imported, other))[-1]
    assert last.stage == "done" and last.done == 6
    assert imported.active_model_id() == other
    assert {m for m, _ in _embeddings(imported).values()} == {other}
    assert imported.get_setting("cluster_threshold") is None  # SFace's 1.10 means nothing in the other space
    assert imported.history(1)[0][1] == f"Face model: {other} instead of {SFACE_ID}"

    assert imported.undo() == f"Face model: {other} instead of {SFACE_ID}"
    assert imported.active_model_id() == SFACE_ID and imported.embedder().model_id == SFACE_ID
    assert imported.get_setting("cluster_threshold") == 1.10
    assert imported.needs_reembed() == 6  # the other model's vectors replaced SFace's: they are looked at again
    assert _state(imported) == before
    assert list(re_embed(imported))[-1].done == 6
    assert imported.needs_reembed() == 0
    # Back to SFace's vectors: the import's and the re-embed's decode of a photo differ by at most a
    # storage step in a few components.
    now = _embeddings(imported)
    assert {m for m, _ in now.values()} == {SFACE_ID} and now.keys() == stored.keys()
    for fid, (_m, e) in now.items():
        assert float(from_bytes(e) @ from_bytes(stored[fid][1])) > 0.999
    assert _state(imported) == before

    # Redo switches to the other model again (and drops the threshold again).
    assert imported.redo() == f"Face model: {other} instead of {SFACE_ID}"
    assert imported.active_model_id() == other and imported.embedder().model_id == other
    assert imported.get_setting("cluster_threshold") is None and imported.needs_reembed() == 6


def test_cli_activation_is_journaled_too_and_a_compatible_model_keeps_the_threshold(imported, tmp_path):
    from engine.models.registry import SFACE, prepared_model_bytes
    from training.pack_head import graph_with_linear_head

    path = tmp_path / "personal.onnx"
    path.write_bytes(graph_with_linear_head(prepared_model_bytes(SFACE), np.eye(128, dtype=np.float32),
                                            np.zeros(128, np.float32)))
    imported.register_model(path, "personal", compatible_with=SFACE_ID)
    imported.recluster(1.10, save=True)
    imported.activate_model("personal")
    assert imported.history(1)[0][1] == f"Face model: personal instead of {SFACE_ID}"
    assert imported.get_setting("cluster_threshold") == 1.10  # trained into SFace's space: it still holds
    imported.undo()
    assert imported.active_model_id() == SFACE_ID and imported.get_setting("cluster_threshold") == 1.10
    # Only the face model changed: the regroup before it is the next step back.
    assert imported.history(2)[1][1].startswith("Regroup all faces")


def test_undo_refuses_when_the_previous_model_file_is_gone_and_changes_nothing(imported, tmp_path):
    other = _other_space_model(imported, tmp_path)
    imported.activate_model(other)
    imported.activate_model(SFACE_ID)
    (imported.models_dir / f"{other}.onnx").write_bytes(b"not a model any more")
    with pytest.raises(ModelError, match="wrong checksum"):
        imported.undo()
    assert imported.active_model_id() == SFACE_ID
    assert [undone for _i, _d, undone in imported.history(2)] == [False, False]
