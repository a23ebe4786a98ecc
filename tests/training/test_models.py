"""Torch port of SFace, training steps and ONNX export, on real faces where the shared data exists."""

from __future__ import annotations

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

from conftest import ATT, LFW  # noqa: E402


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
    from engine.models.registry import SFACE, folded_model_bytes

    arch = arch_from_onnx(folded_model_bytes(SFACE))
    assert arch == SFACE_ARCH
    assert len(arch.convs) == 27 and arch.feature_size == 7 and arch.embedding_dim == 128
    assert available() == ["sface", "tiny-cnn"]
    with pytest.raises(ValueError):
        arch_from_onnx(b"not a graph")


@pytest.mark.lfw
def test_torch_port_matches_onnxruntime_on_lfw(sface, lfw_crops):
    from engine.pipeline.embed import Embedder

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


@pytest.mark.att
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


@pytest.mark.att
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


@pytest.mark.att
def test_onnx_export_parity_tiny(att, tmp_path):
    model = create("tiny-cnn", pretrained=False)
    res = export_and_check(model, tmp_path / "tiny.onnx", att.crops[:32])
    assert res.max_abs_diff is not None and res.max_abs_diff <= 1e-4
    assert len(res.sha256) == 64
    from engine.pipeline.embed import Embedder

    spec = model_spec(res.path, "tiny-test")
    emb = Embedder(spec=spec, path=res.path).embed(att.crops[:5])
    assert np.abs(emb - _torch_embed(model, att.crops[:5])).max() < 1e-4


@pytest.mark.slow
@pytest.mark.att
def test_onnx_export_parity_sface(sface, att, tmp_path):
    res = export_and_check(sface, tmp_path / "sface.onnx", att.crops[:16])
    assert res.max_abs_diff <= 1e-4 and res.min_cosine > 0.9999


def _negative_case():
    """Cached "frozen features" for 4 identities x 6 faces, plus face x of identity 1 that sits closer to
    identity 0's centre than identity 0's own faces do (a stand-in for a face the user took away from 0)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 64))
    feats = [centres[i] + 0.8 * rng.standard_normal(64) for i in range(4) for _ in range(6)]
    feats.append(0.85 * centres[0] + 0.15 * centres[1] + 0.2 * rng.standard_normal(64))
    labels = np.array([i for i in range(4) for _ in range(6)] + [1])
    features = torch.tensor(np.stack(feats), dtype=torch.float32)[:, :, None, None]  # TinyCNN head input
    crops = np.zeros((len(labels), 112, 112, 3), np.uint8)  # not read: the features are given
    return crops, labels, features


def _head_embed(model, features):
    with torch.no_grad():
        return normalise(model.eval().head(features)).numpy()


@pytest.mark.parametrize("harmonic", [False, True])
def test_not_this_person_negatives_push_the_face_away(harmonic):
    crops, labels, features = _negative_case()
    x = len(labels) - 1
    cfg = TrainConfig(model="tiny-cnn", pretrained=False, optimizer="adamw", lr=1e-2, p=4, k=2, steps=10,
                      train_last=1, harmonic=harmonic, progress=False)

    def run(negatives):
        torch.manual_seed(0)
        model = TinyCNN(widths=(8, 16, 32, 64))
        start = _head_embed(model, features)
        old = start if harmonic else None
        res = train(cfg, crops, labels, model=model, old_embeddings=old, frozen_features=features, negatives=negatives)
        e = _head_embed(res.model, features)
        d_xa = lambda emb: float(((emb[labels == 0] - emb[x]) ** 2).sum(1).mean())  # noqa: E731
        return d_xa(start), d_xa(e), res.history

    start, plain, hist_plain = run(None)
    start2, pushed, hist = run([(x, 0)])
    assert start == start2 and start < 0.5  # x starts near identity 0
    assert pushed > plain + 0.05 and pushed > start, (start, plain, pushed)
    assert all(h.forced_triplets == 1 for h in hist) and hist[0].forced_hinge > 0 and hist[0].forced_active == 1.0
    assert all(h.forced_triplets == 0 and h.forced_hinge == 0.0 for h in hist_plain)
    # Statements that cannot make a triplet are dropped: the face's own label, a label without 2 faces,
    # an index out of range. Training is then the same as without negatives.
    _, same, hist_none = run([(x, 1), (0, 7), (len(labels), 0)])
    assert same == plain and [h.loss for h in hist_none] == [h.loss for h in hist_plain]


@pytest.mark.att
def test_negatives_on_images_sample_and_use_faces_of_no_identity(att, monkeypatch):
    import training.train as tt

    keep = att.labels < 4
    crops = np.concatenate([att.crops[keep], att.crops[att.labels == 4][:3]])
    labels = np.concatenate([att.labels[keep], [-1, -1, -1]])  # three faces of nobody: never sampled
    nobody = np.flatnonzero(labels < 0)
    negatives = [(int(i), lab) for i in nobody for lab in (0, 1)]  # six statements
    cfg = TrainConfig(model="tiny-cnn", pretrained=False, optimizer="adamw", lr=1e-3, p=4, k=2, steps=3,
                      negatives_per_step=4, progress=False)
    seen = []
    real = tt._forced_triplets

    def spy(forced, by_label, per_step, idx, rng):
        out = real(forced, by_label, per_step, idx, rng)
        seen.append((list(idx), out))
        return out

    monkeypatch.setattr(tt, "_forced_triplets", spy)
    res = train(cfg, crops, labels, model=TinyCNN(widths=(8, 16, 32, 64)), negatives=negatives)
    assert [h.forced_triplets for h in res.history] == [4, 4, 4]
    for idx, (extra, fa, fp, fn) in seen:
        assert not set(idx) & set(nobody.tolist())  # the sampler never draws them
        batch = idx + extra
        for a, p, n in zip(fa, fp, fn, strict=True):
            assert a != p and labels[batch[a]] == labels[batch[p]] in (0, 1) and batch[n] in nobody
            assert (batch[n], int(labels[batch[a]])) in negatives
