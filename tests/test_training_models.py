"""Torch port of SFace, training steps and ONNX export, on real faces where the shared data exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.data import Aligner, load_folder, read_pairs  # noqa: E402
from training.export import export_and_check, model_spec  # noqa: E402
from training.losses import normalise, pairwise_sq_dist  # noqa: E402
from training.models import TinyCNN, load_sface  # noqa: E402
from training.models.sface_torch import SFACE_ARCH, arch_from_onnx  # noqa: E402
from training.registry import available, create  # noqa: E402
from training.train import TrainConfig, load_checkpoint, save_checkpoint, split_model, train  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LFW = SHARED / "lfw"
ATT = SHARED / "att_faces"
needs_lfw = pytest.mark.skipif(not (LFW / "pairs.txt").is_file(), reason=f"LFW not found at {LFW}")
needs_att = pytest.mark.skipif(not ATT.is_dir(), reason=f"AT&T faces not found at {ATT}")


@pytest.fixture(scope="module")
def sface():
    return load_sface()


@pytest.fixture(scope="module")
def att(tmp_path_factory):
    if not ATT.is_dir():
        pytest.skip(f"AT&T faces not found at {ATT}")
    return load_folder(ATT, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def lfw_crops():
    """24 real LFW faces (first image of each person in the first pairs of fold 1), aligned."""
    if not (LFW / "pairs.txt").is_file():
        pytest.skip(f"LFW not found at {LFW}")
    from training.data import read_rgb

    keys = list(dict.fromkeys(k for p in read_pairs(LFW)[:40] for k in (p.key1, p.key2)))[:24]
    imgs = [read_rgb(LFW / "images" / k.rsplit("_", 1)[0] / f"{k}.jpg") for k in keys]
    crops, fallbacks = Aligner().align_many(imgs)
    assert fallbacks == 0
    return crops


def _torch_embed(model, crops):
    with torch.inference_mode():
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
        return normalise(model.eval()(x)).numpy()


def test_arch_is_read_from_the_bundled_graph():
    from engine.models import SFACE, folded_model_bytes

    arch = arch_from_onnx(folded_model_bytes(SFACE))
    assert arch == SFACE_ARCH
    assert len(arch.convs) == 27 and arch.feature_size == 7 and arch.embedding_dim == 128
    assert available() == ["sface", "tiny-cnn"]
    with pytest.raises(ValueError):
        arch_from_onnx(b"not a graph")


@needs_lfw
def test_torch_port_matches_onnxruntime_on_lfw(sface, lfw_crops):
    from engine.embed import Embedder

    ref = Embedder().embed(lfw_crops)
    got = _torch_embed(sface, lfw_crops)
    cos = (ref * got).sum(1)
    assert cos.min() >= 0.999
    assert np.abs(ref - got).max() < 1e-4


def test_split_model_and_freezing(sface):
    x = torch.rand(1, 3, 112, 112) * 255
    for model, cuts in ((sface.eval(), (1, 3)), (create("tiny-cnn").eval(), (1, 2, 3, 5))):
        with torch.inference_mode():
            full = model(x)
        for n in cuts:
            prefix, suffix, trainable = split_model(model, n)
            with torch.inference_mode():
                assert torch.allclose(suffix(prefix(x)), full, atol=1e-5)
            assert len(trainable) >= n
        with pytest.raises(ValueError):
            split_model(model, 0)


def _all_triplet_loss(model, crops, labels, margin=0.2):
    """Mean hinge over every (a, p, n) triplet of a fixed set: a mining-independent loss. BatchNorm
    uses the set's own statistics (train mode, no gradient): after a dozen steps the running
    averages used in eval mode still mostly reflect the random initialisation."""
    model.train()
    with torch.no_grad():
        e = normalise(model(torch.from_numpy(crops).permute(0, 3, 1, 2).float()))
        d = pairwise_sq_dist(e)
    lab = torch.from_numpy(labels)
    same = lab[:, None] == lab[None, :]
    pos = same & ~torch.eye(len(lab), dtype=torch.bool)
    h = torch.relu(d[:, :, None] - d[:, None, :] + margin)  # [a, p, n]
    mask = pos[:, :, None] & ~same[:, None, :]
    return float(h[mask].mean())


@needs_att
def test_a_few_steps_reduce_loss_on_att_faces(att):
    keep = att.labels < 12
    crops, labels = att.crops[keep], att.labels[keep]
    torch.manual_seed(0)
    model = TinyCNN(widths=(8, 16, 32, 64))
    before = _all_triplet_loss(model, crops, labels)
    cfg = TrainConfig(
        model="tiny-cnn", pretrained=False, optimizer="adamw", lr=3e-3, p=6, k=4, steps=12, progress=False
    )
    res = train(cfg, crops, labels, model=model)
    after = _all_triplet_loss(res.model, crops, labels)
    assert len(res.history) == 12
    h = res.history[0]
    assert h.triplets == 6 * 4 * 3 and 0 <= h.frac_semi_hard <= h.frac_active <= 1 and h.emb_norm > 0
    assert after < 0.6 * before, (before, after)


@needs_att
def test_train_last_only_changes_the_head(att, tmp_path):
    model = create("tiny-cnn", pretrained=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(
        model="tiny-cnn", optimizer="adagrad", lr=0.05, p=4, k=2, steps=3, train_last=1, progress=False
    )
    res = train(cfg, att.crops[:40], att.labels[:40], model=model)
    after = res.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("fc.") for k in changed)
    # Harmonic loss against fixed "old" embeddings runs and logs the mixed pool's statistics.
    old = np.random.default_rng(0).standard_normal((40, 128)).astype(np.float32)
    hres = train(
        TrainConfig(model="tiny-cnn", pretrained=False, harmonic=True, p=4, k=2, steps=2, progress=False),
        att.crops[:40],
        att.labels[:40],
        old_embeddings=old,
    )
    assert hres.history[-1].triplets > 0
    save_checkpoint(tmp_path / "ck.pt", res)
    loaded, config = load_checkpoint(tmp_path / "ck.pt")
    assert config == cfg
    assert np.allclose(_torch_embed(loaded, att.crops[:4]), _torch_embed(res.model, att.crops[:4]), atol=1e-6)


@needs_att
def test_onnx_export_parity_tiny(att, tmp_path):
    model = create("tiny-cnn", pretrained=False)
    res = export_and_check(model, tmp_path / "tiny.onnx", att.crops[:32])
    assert res.max_abs_diff is not None and res.max_abs_diff <= 1e-4
    assert len(res.sha256) == 64
    from engine.embed import Embedder

    spec = model_spec(res.path, "tiny-test")
    emb = Embedder(spec=spec, path=res.path).embed(att.crops[:5])
    assert np.abs(emb - _torch_embed(model, att.crops[:5])).max() < 1e-4


@pytest.mark.slow
@needs_att
def test_onnx_export_parity_sface(sface, att, tmp_path):
    res = export_and_check(sface, tmp_path / "sface.onnx", att.crops[:16])
    assert res.max_abs_diff <= 1e-4 and res.min_cosine > 0.9999
