"""The arcface model pack: found in the installed wheel, checksum-checked, loaded in the embedder's
layout (normalisation in the graph, dynamic batch, 512-D, PRelu rewritten), and stored in 512 bytes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.config import EmbedConfig
from engine.errors import ModelError
from engine.models.packs import ARCFACE_MBF, installed_version, pack_file, pack_path
from engine.models.quantize import from_bytes, storage_error, to_bytes

needs_pack = pytest.mark.skipif(
    installed_version(ARCFACE_MBF) is None,
    reason='the arcface extra is not installed (pip install -e ".[arcface]")',
)


@pytest.fixture(scope="module")
def sample_crops():
    from engine.services.library import _probe_faces

    return _probe_faces()


@pytest.fixture(scope="module")
def arcface():
    from engine.pipeline.embed import Embedder

    return Embedder(EmbedConfig(threads=1), spec=ARCFACE_MBF.spec, path=pack_path(ARCFACE_MBF))


@needs_pack
def test_pack_is_found_in_the_installed_wheel_and_its_checksum_matches():
    from engine.checksums import sha256_file

    path = pack_file(ARCFACE_MBF)
    assert path is not None and path.name == "w600k_mbf.onnx"
    assert sha256_file(path) == ARCFACE_MBF.spec.sha256 and ARCFACE_MBF.spec.sha256.startswith("9cc6e4a7")
    assert pack_path(ARCFACE_MBF) == path


@needs_pack
def test_a_wrong_checksum_is_refused_in_plain_words():
    altered = replace(ARCFACE_MBF, spec=replace(ARCFACE_MBF.spec, sha256="0" * 64))
    with pytest.raises(ModelError, match=r"wrong checksum.*refusing to load it.*reinstall it with pip install"):
        pack_path(altered)


def test_an_absent_pack_says_what_to_install():
    absent = replace(ARCFACE_MBF, distribution="facenet-photos-no-such-wheel")
    assert pack_file(absent) is None
    with pytest.raises(ModelError) as exc:
        pack_path(absent)
    msg = str(exc.value)
    assert "\n" not in msg and "arcface-mbf is not installed" in msg and 'pip install "facenet-photos[arcface]"' in msg


@needs_pack
def test_graph_takes_0_255_rgb_with_a_dynamic_batch_and_gives_512_d(arcface, sample_crops):
    import onnx
    import onnxruntime as ort

    from engine.models.onnx_rewrite import prelu_as_relu_mix
    from engine.models.registry import prepared_model_bytes

    crops = sample_crops[:3]
    batch = arcface.embed(crops)
    single = np.concatenate([arcface.embed(c[None]) for c in crops])
    assert batch.shape == (3, 512)
    np.testing.assert_allclose(batch, single, atol=1e-5)
    # The same numbers as the untouched graph fed InsightFace's own (x - 127.5) / 127.5, one face at a time.
    raw = ort.InferenceSession(str(pack_path(ARCFACE_MBF)), providers=["CPUExecutionProvider"])
    name = raw.get_inputs()[0].name
    for i, c in enumerate(crops):
        x = ((c.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        y = raw.run(None, {name: x})[0][0]
        np.testing.assert_allclose(batch[i], y / np.linalg.norm(y), atol=1e-5)
    graph = onnx.load_from_string(prelu_as_relu_mix(prepared_model_bytes(ARCFACE_MBF.spec, pack_path(ARCFACE_MBF))))
    assert not [n for n in graph.graph.node if n.op_type == "PRelu"]
    assert graph.graph.input[0].name == "data"


@needs_pack
def test_512_d_faces_are_stored_in_512_bytes(arcface, sample_crops):
    emb = arcface.embed(sample_crops)
    blobs = [to_bytes(e) for e in emb]
    assert {len(b) for b in blobs} == {512}
    back = np.stack([from_bytes(b) for b in blobs])
    assert back.shape == emb.shape and float((back * emb).sum(1).min()) > 0.999
    biggest, change = storage_error(emb)
    assert biggest < 0.25 and change < 0.005  # within the 512-D clipping range, distances barely move
    # The same person (two photos of Ardern, of Macron) stays nearer than different people after storage.
    d = ((back[:, None] - back[None]) ** 2).sum(-1)
    assert d[0, 1] < d[0, 2:6].min() and d[2, 3] < d[2, [0, 1, 4, 5]].min()
