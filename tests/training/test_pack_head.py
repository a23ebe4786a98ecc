"""The arcface-mbf trunk with a linear 128-D head, exported without torch and registered in a library."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import EmbedConfig
from engine.models.packs import ARCFACE_MBF, installed_version, pack_path
from engine.models.quantize import storage_error

pytestmark = pytest.mark.skipif(installed_version(ARCFACE_MBF) is None,
                                reason='the arcface extra is not installed (pip install -e ".[arcface]")')


def test_head_graph_equals_the_head_applied_to_the_pack_embedding(tmp_path, library):
    from engine.pipeline.embed import Embedder
    from engine.services.library import _probe_faces
    from training.pack_head import write_pack_head_model

    rng = np.random.default_rng(0)
    w = rng.normal(0, 1 / np.sqrt(512), (128, 512)).astype(np.float32)
    b = rng.normal(0, 0.01, 128).astype(np.float32)
    path = write_pack_head_model(ARCFACE_MBF, w, b, tmp_path / "h128.onnx")
    faces = _probe_faces()[:4]
    mbf = Embedder(EmbedConfig(threads=1), spec=ARCFACE_MBF.spec, path=pack_path(ARCFACE_MBF)).embed(faces)
    want = mbf @ w.T + b
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    # Registered like any trained model: hash recorded, 128-D, fits 128-byte storage.
    library.register_model(path, "arcface-mbf-h128", compatible_with="sface-2021dec-int8bq")
    got = library.model_embedder("arcface-mbf-h128", EmbedConfig(threads=1)).embed(faces)
    np.testing.assert_allclose(got, want, atol=1e-4)
    row = {m["id"]: m for m in library.models()}["arcface-mbf-h128"]
    assert row["dim"] == 128 and row["compatible_with"] == "sface-2021dec-int8bq"
    assert row["thresholds"]["verify"] == 1.33  # SFace's space, so SFace's thresholds
    assert storage_error(got)[1] < 0.02


def test_learning_from_corrections_refuses_while_a_512_d_model_is_active(imported):
    from engine.services.progress import Stage
    from training.personalise import learn_from_corrections

    imported.activate_model("arcface-mbf")
    last = list(learn_from_corrections(imported))[-1]
    assert last.stage == Stage.REFUSED and not last.result.activated
    assert "active model arcface-mbf is 512-D" in last.message and "--activate sface-2021dec-int8bq" in last.message


def test_non_linear_head_and_retrained_last_layer_match_numpy(tmp_path):
    """The residual hidden branch, and a replaced last layer (here the pack's own with its 512 outputs
    permuted, which the numpy reference can reproduce from the pack's embedding)."""
    from engine.checksums import sha256_file
    from engine.models.registry import ModelSpec, arcface_graph
    from engine.pipeline.embed import Embedder
    from engine.services.library import _probe_faces
    from training.pack_head import folded_last_layer, write_pack_head_model

    rng = np.random.default_rng(1)
    w = rng.normal(0, 1 / np.sqrt(512), (128, 512)).astype(np.float32)
    b = rng.normal(0, 0.01, 128).astype(np.float32)
    w1 = rng.normal(0, 1 / np.sqrt(512), (64, 512)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 64).astype(np.float32)
    w2 = rng.normal(0, 1 / 8, (128, 64)).astype(np.float32)
    fw, fb = folded_last_layer(arcface_graph(pack_path(ARCFACE_MBF).read_bytes()))
    perm = rng.permutation(512)
    path = write_pack_head_model(ARCFACE_MBF, w, b, tmp_path / "h.onnx", hidden=(w1, b1, w2), fc=(fw[perm], fb[perm]))
    faces = _probe_faces()[:4]
    mbf = Embedder(EmbedConfig(threads=1), spec=ARCFACE_MBF.spec, path=pack_path(ARCFACE_MBF)).embed(faces)
    u = mbf[:, perm]
    want = u @ w.T + b + np.maximum(u @ w1.T + b1, 0) @ w2.T
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    spec = ModelSpec("h-test", path.name, "embedder", sha256_file(path), 128, 112)
    got = Embedder(EmbedConfig(threads=1), spec=spec, path=path).embed(faces)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Without the permutation the replaced layer is the pack's own: the plain linear head's output.
    plain = write_pack_head_model(ARCFACE_MBF, w, b, tmp_path / "p.onnx", fc=(fw, fb))
    spec_p = ModelSpec("p-test", plain.name, "embedder", sha256_file(plain), 128, 112)
    lin = mbf @ w.T + b
    lin /= np.linalg.norm(lin, axis=1, keepdims=True)
    np.testing.assert_allclose(Embedder(EmbedConfig(threads=1), spec=spec_p, path=plain).embed(faces), lin, atol=1e-4)
