from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from engine.errors import ModelError
from engine.models.quantize import dequantize, from_bytes, quantize, to_bytes
from engine.models.registry import SFACE, YUNET, fold_constants, models_dir, verified_path
from engine.pipeline.embed import Embedder
from engine.pipeline.faces import FaceFinder

from conftest import SAMPLE, SAMPLE_PEOPLE


@pytest.fixture(scope="module")
def finder():
    return FaceFinder()


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


def embed_one(finder, embedder, path):
    found = finder.find(path)
    assert len(found.faces) == 1, f"{path.name}: {len(found.faces)} faces"
    return embedder.embed(found.faces[0].crop[None])[0]


def test_bundled_models_verify():
    assert verified_path(YUNET).name == YUNET.filename
    assert verified_path(SFACE).name == SFACE.filename


def test_wrong_hash_and_corrupt_model_are_refused(tmp_path):
    bad = tmp_path / SFACE.filename
    shutil.copy(models_dir() / SFACE.filename, bad)
    with open(bad, "r+b") as f:
        f.seek(5000)
        f.write(b"\x00" * 16)
    with pytest.raises(ModelError, match="wrong checksum"):
        Embedder(path=bad)
    with pytest.raises(ModelError, match="not found"):
        Embedder(path=tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="not a valid ONNX"):
        fold_constants(b"this is not a protobuf \xff\xfe" * 10)


def test_sample_faces_group_by_person(finder, embedder):
    paths = sorted(SAMPLE.glob("*.jpg"))
    emb = np.stack([embed_one(finder, embedder, p) for p in paths])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    names = [SAMPLE_PEOPLE[p.name] for p in paths]
    same = [d[i, j] for i in range(6) for j in range(i + 1, 6) if names[i] == names[j]]
    diff = [d[i, j] for i in range(6) for j in range(i + 1, 6) if names[i] != names[j]]
    assert max(same) < 1.0 < min(diff), (same, diff)


def test_exif_rotation_is_applied(tmp_path, finder, embedder):
    src = SAMPLE / "obama.jpg"
    ref = embed_one(finder, embedder, src)
    img = Image.open(src)
    # Store the pixels rotated and tell viewers (EXIF 6 = rotate 90 CW to display) to undo it.
    rotated = img.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "rotated.jpg"
    rotated.save(p, quality=95, exif=exif.tobytes())
    found = finder.find(p)
    assert (found.width, found.height) == img.size
    e = embedder.embed(found.faces[0].crop[None])[0]
    assert ((e - ref) ** 2).sum() < 0.1


def test_large_photo_reduced_decode_matches(tmp_path, finder, embedder):
    """A 12 MP JPEG is detected at reduced scale and cropped sharp: same embedding as the original."""
    src = SAMPLE / "macron_2025.jpg"
    ref = embed_one(finder, embedder, src)
    img = Image.open(src).convert("RGB")
    canvas = Image.new("RGB", (4000, 3000), (90, 110, 120))
    big = img.resize((img.width * 3, img.height * 3), Image.Resampling.LANCZOS)
    canvas.paste(big.crop((0, 0, min(big.width, 4000), min(big.height, 3000))), (800, 0))
    p = tmp_path / "big.jpg"
    canvas.save(p, quality=92)
    found = finder.find(p)
    assert (found.width, found.height) == (4000, 3000)
    assert len(found.faces) == 1
    x, y, w, h = found.faces[0].box
    assert w > 500  # reported in original pixels
    e = embedder.embed(found.faces[0].crop[None])[0]
    assert ((e - ref) ** 2).sum() < 0.15


def test_batch_axis_is_dynamic(finder, embedder):
    crops = np.stack([finder.find(p).faces[0].crop for p in sorted(SAMPLE.glob("*.jpg"))])
    one_by_one = np.stack([embedder.embed(c[None])[0] for c in crops])
    batched = embedder.embed(crops)
    assert batched.shape == (6, 128)
    assert np.abs(batched - one_by_one).max() < 1e-4


def test_quantisation_keeps_distances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert np.abs(x).max() < 0.5  # like real embeddings (LFW: at most 0.47)
    q = quantize(x)
    assert q.dtype == np.int8 and q.nbytes == 200 * 128
    assert len(to_bytes(x[0])) == 128
    y = dequantize(q)
    d_true = ((x[:100] - x[100:]) ** 2).sum(-1)
    d_q = ((y[:100] - y[100:]) ** 2).sum(-1)
    # half a step (1/508) per component: squared distances move by well under 1 %
    assert np.abs(d_true - d_q).max() < 0.01
    assert np.abs(d_true - d_q).mean() < 0.003
    assert np.allclose(from_bytes(to_bytes(x[3])), y[3])


def test_prelu_rewrite_matches_original_graph(finder, embedder):
    """The PRelu rewrite the embedder applies is exact: same embeddings as the folded graph as
    shipped, on the sample faces, and on a toy graph with slopes below 0, between 0 and 1 and above 1."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from engine.models.onnx_rewrite import prelu_as_relu_mix
    from engine.models.registry import folded_model_bytes

    crops = np.stack([finder.find(p).faces[0].crop for p in sorted(SAMPLE.glob("*.jpg"))])
    x = crops.astype(np.float32).transpose(0, 3, 1, 2).copy()
    original = folded_model_bytes(SFACE)
    rewritten = prelu_as_relu_mix(original)
    assert b"PRelu" in original and b"PRelu" not in rewritten
    ref = ort.InferenceSession(original, providers=["CPUExecutionProvider"]).run(None, {"data": x})[0]
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.abs(embedder.embed(crops) - ref).max() < 1e-5

    slope = np.array([-0.8, 0.0, 0.25, 1.0, 1.12], np.float32).reshape(5, 1, 1)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "a"], ["y"])], "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 5, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5, 3, 3])],
        initializer=[numpy_helper.from_array(slope, "a")],
    )
    toy = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    v = np.random.default_rng(0).normal(size=(4, 5, 3, 3)).astype(np.float32)
    y = ort.InferenceSession(prelu_as_relu_mix(toy), providers=["CPUExecutionProvider"]).run(None, {"x": v})[0]
    np.testing.assert_allclose(y, np.where(v > 0, v, slope * v), rtol=0, atol=1e-6)
    assert onnx.load_from_string(prelu_as_relu_mix(toy)).graph.node[0].op_type == "Relu"


def test_side_by_side_calls_keep_order_and_values(finder):
    """Embedder(threads=2) splits a batch into calls of batch_size run on two threads: the faces come
    back in their order, with the values of one call at a time, and no thread outlives embed()."""
    import threading

    from engine.config import EmbedConfig

    crops = np.stack([finder.find(p).faces[0].crop for p in sorted(SAMPLE.glob("*.jpg"))])
    # 6 faces and their mirrors, shuffled: 12 faces make 3 calls of 4 (and 6 of 2 below).
    faces = np.concatenate([crops, crops[:, :, ::-1]])[np.random.default_rng(0).permutation(12)]
    serial = Embedder(EmbedConfig(threads=1))
    assert serial.parallel == 1
    expected = np.stack([serial.embed(f[None])[0] for f in faces])
    for batch in (4, 2):
        side_by_side = Embedder(EmbedConfig(threads=2, batch_size=batch))
        before = threading.active_count()
        got = side_by_side.embed(faces)
        assert threading.active_count() == before
        assert not [t for t in threading.enumerate() if t.name.startswith("facenet-embed")]
        assert got.shape == (12, 128)
        assert np.abs(got - expected).max() < 1e-5
        # Mirrored faces differ from their originals: a swapped order would show.
        assert np.abs(got[:-1] - expected[1:]).max() > 0.1
