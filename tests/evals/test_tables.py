"""Pure parts of the paper-style tables (evals.robustness / storage / clustering / baseline):
degradations, storage variants on synthetic embeddings, sweep output structure. No models, no timing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from evals import evaluate_distances, squared_l2
from evals.baseline import CENTRE_BOX, centre_box, nearest_centre_box
from evals.clustering import best_row, threshold_sweep
from evals.robustness import (
    JPEG_QUALITIES,
    WIDTHS,
    Condition,
    condition_metrics,
    default_conditions,
    degrade_bytes,
    downscale,
    fixed_threshold_metrics,
    ijg_luma_table,
    jpeg_quality_estimate,
    jpeg_reencode,
)
from evals.storage import (
    evaluate_per_fold_transform,
    evaluate_storage,
    fit_pca,
    int8_roundtrip,
    one_blas_thread,
    storage_variants,
    truncate,
)


@pytest.fixture(autouse=True)
def _small_linear_algebra():
    """The matrices here are tiny; a multi-threaded BLAS on a busy machine only adds waiting."""
    with one_blas_thread():
        yield


def _image(w: int = 150, h: int = 150, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus texture: compresses differently at each quality."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1)
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


# -- degradations --------------------------------------------------------------------------------


def test_ijg_table_quality_50_is_the_standard_table():
    t = ijg_luma_table(50)
    assert t[:8].tolist() == [16, 11, 10, 16, 24, 40, 51, 61]
    assert ijg_luma_table(100).max() == 1 and ijg_luma_table(1).max() == 255


@pytest.mark.parametrize("q", JPEG_QUALITIES)
def test_jpeg_reencode_has_requested_quality(q):
    data = jpeg_reencode(_image(), q)
    assert data[:2] == b"\xff\xd8"
    assert jpeg_quality_estimate(data) == (q, True)
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (150, 150) and im.format == "JPEG"


def test_lower_jpeg_quality_is_smaller_and_worse():
    img = _image()
    sizes, errs = [], []
    for q in JPEG_QUALITIES:
        data = jpeg_reencode(img, q)
        back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float64)
        sizes.append(len(data))
        errs.append(np.abs(back - img).mean())
    assert sizes == sorted(sizes)
    assert errs == sorted(errs, reverse=True)


@pytest.mark.parametrize("w", WIDTHS)
def test_downscale_gives_requested_width_and_keeps_aspect(w):
    out = downscale(_image(150, 100), w)
    assert out.dtype == np.uint8 and out.shape == (round(100 * w / 150), w, 3)
    png = degrade_bytes(_image(150, 100), Condition("width", w))
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.size == (w, round(100 * w / 150))
        assert np.array_equal(np.asarray(im.convert("RGB")), out)  # lossless: only the size changes


def test_downscale_never_enlarges():
    with pytest.raises(ValueError):
        downscale(_image(100, 100), 120)
    same = downscale(_image(100, 100), 100)
    assert np.array_equal(same, _image(100, 100))


def test_conditions():
    names = [c.name for c in default_conditions()]
    assert names[0] == "original"
    assert names[1:] == [f"jpeg_{q}" for q in JPEG_QUALITIES] + [f"width_{w}" for w in WIDTHS]
    assert all(Condition.parse(n).name == n for n in names)
    assert Condition("width", 40).suffix == ".png" and Condition("jpeg", 10).suffix == ".jpg"
    for bad in (("jpeg", 0), ("jpeg", 101), ("width", 0), ("blur", 3)):
        with pytest.raises(ValueError):
            Condition(*bad)


def test_condition_metrics_fixed_thresholds():
    d = np.array([0.2, 0.5, 1.2, 1.4, 2.0, 0.1])
    s = np.array([True, True, True, False, False, False])
    m = fixed_threshold_metrics(d, s, t_acc=1.3, t_far=0.3)
    assert m["accuracy"] == pytest.approx(5 / 6)  # the different pair at 0.1 is accepted
    assert m["val"] == pytest.approx(1 / 3) and m["far"] == pytest.approx(1 / 3) and m["false_accepts"] == 1
    rng = np.random.default_rng(0)
    dd = np.r_[rng.uniform(0, 1, 300), rng.uniform(1.5, 3, 300)]
    ss = np.r_[np.ones(300, bool), np.zeros(300, bool)]
    fold = np.tile(np.repeat([0, 1, 2], 100), 2)
    out = condition_metrics(dd, ss, fold, t_acc_clean=1.25, t_far_clean=1.0)
    assert out["accuracy_mean"] == 1.0 and len(out["accuracy_per_fold"]) == 3
    assert out["fixed_clean_threshold"]["accuracy"] == 1.0


# -- storage -------------------------------------------------------------------------------------


def _synthetic(n_people: int = 120, per: int = 4, dim: int = 128, sub: int = 12, noise: float = 0.08, seed: int = 0):
    """Unit embeddings whose identity lives in a random ``sub``-dimensional subspace (rotated, so that no
    coordinate axis is special), plus isotropic noise; people split into 4 folds; matched and mismatched
    pairs within each fold."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:, :sub]
    centres = rng.normal(size=(n_people, sub))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    emb = np.repeat(centres, per, 0) @ basis.T + rng.normal(0, noise, (n_people * per, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    person = np.repeat(np.arange(n_people), per)
    row_fold = person % 4
    ia, ib, same, fold = [], [], [], []
    for f in range(4):
        ppl = np.flatnonzero(np.arange(n_people) % 4 == f)
        for p in ppl:
            ia.append(p * per)
            ib.append(p * per + 1)
            same.append(True)
            fold.append(f)
        for p, q in zip(ppl, np.roll(ppl, 1), strict=True):
            ia.append(p * per + 2)
            ib.append(q * per + 3)
            same.append(False)
            fold.append(f)
    return emb.astype(np.float32), np.array(ia), np.array(ib), np.array(same), np.array(fold), row_fold


def test_pca_and_truncation_basics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)) * np.array([5, 4, 3, 2, 1, 0.5, 0.2, 0.1])
    p = fit_pca(x, 3)
    assert p.components.shape == (3, 8)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(3), atol=1e-10)
    assert np.all(np.diff(p.explained) <= 0) and 0 < p.explained.sum() < 1
    y = p(x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0)
    t = truncate(x, 2)
    assert t.shape == (200, 2)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0)
    q = int8_roundtrip(y, 127 / np.abs(y).max())
    assert np.abs(q - y).max() < 0.02
    with pytest.raises(ValueError):
        fit_pca(x, 9)


def test_per_fold_transform_identity_equals_plain_protocol():
    emb, ia, ib, same, fold, row_fold = _synthetic()
    ident = evaluate_per_fold_transform(emb, ia, ib, same, fold, lambda x: (lambda e: e), lambda f: row_fold != f)
    plain = evaluate_distances(squared_l2(emb[ia], emb[ib]), same, fold)
    np.testing.assert_allclose(ident.accuracy, plain.accuracy)
    np.testing.assert_allclose(ident.threshold, plain.threshold)
    np.testing.assert_allclose(ident.val, plain.val)
    assert ident.auc == pytest.approx(plain.auc)


def test_per_fold_transform_learns_only_from_other_folds():
    emb, ia, ib, same, fold, row_fold = _synthetic()
    seen = []

    def fit(x):
        seen.append(len(x))
        return lambda e: e

    def rows(f):
        mask = row_fold != f
        # no image of a test-fold person may be used for learning
        assert not np.isin(np.r_[ia[fold == f], ib[fold == f]], np.flatnonzero(mask)).any()
        return mask

    evaluate_per_fold_transform(emb, ia, ib, same, fold, fit, rows)
    assert seen == [int((row_fold != f).sum()) for f in range(4)]


def test_storage_variants_on_synthetic_subspace():
    emb, ia, ib, same, fold, row_fold = _synthetic()
    out = evaluate_storage(emb, ia, ib, same, fold, row_fold, dims=(16, 4))
    assert list(out) == storage_variants((16, 4))
    assert out["float32"]["bytes_per_face"] == 512 and out["int8"]["bytes_per_face"] == 128
    assert out["pca16_int8"]["bytes_per_face"] == 16 and out["trunc4"]["bytes_per_face"] == 16
    for v in out.values():
        assert 0.0 <= v["accuracy_mean"] <= 1.0 and v["n_folds"] == 4
    # Identity lives in 12 rotated dimensions: PCA to 16 keeps it, truncation to 16 coordinates does not,
    # and 4 dimensions are too few for either.
    assert out["float32"]["accuracy_mean"] > 0.98
    assert out["int8"]["accuracy_mean"] == pytest.approx(out["float32"]["accuracy_mean"], abs=0.01)
    assert out["pca16"]["accuracy_mean"] >= out["float32"]["accuracy_mean"] - 0.01
    assert out["pca16"]["accuracy_mean"] > out["trunc16"]["accuracy_mean"]
    assert out["pca4"]["accuracy_mean"] < out["pca16"]["accuracy_mean"]
    assert out["pca16"]["explained_variance_mean"] > 0.5


# -- clustering sweeps ---------------------------------------------------------------------------


def _blobs(n_people: int = 30, per: int = 5, seed: int = 1):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n_people, 32))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = np.repeat(c, per, 0) + rng.normal(0, 0.03, (n_people * per, 32))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), np.repeat(np.arange(n_people), per)


def test_threshold_sweep_structure_and_best():
    x, truth = _blobs()
    ts = [0.01, 0.5, 1.0, 3.9]
    rows = threshold_sweep(x, truth, ts)
    assert [r["threshold"] for r in rows] == ts
    keys = {"threshold", "bcubed_precision", "bcubed_recall", "bcubed_f1", "pairwise_precision",
            "pairwise_recall", "pairwise_f1", "n_clusters", "n_classes", "n_singletons", "seconds"}
    assert all(set(r) == keys for r in rows)
    assert rows[0]["n_clusters"] == len(x) and rows[0]["bcubed_precision"] == 1.0  # nothing merged
    assert rows[-1]["n_clusters"] < 30 and rows[-1]["bcubed_recall"] == 1.0  # over-merged
    b = best_row(rows)
    assert b["threshold"] in (0.5, 1.0) and b["bcubed_f1"] == 1.0 and b["n_clusters"] == 30
    assert best_row(rows)["threshold"] == 0.5  # ties: the lowest threshold


def test_threshold_sweep_with_other_algorithm():
    x, truth = _blobs(n_people=5, per=3)
    rows = threshold_sweep(x, truth, [0.1, 0.2], cluster_fn=lambda e, t: np.zeros(len(e), np.int64))
    assert all(r["n_clusters"] == 1 and r["bcubed_recall"] == 1.0 for r in rows)


# -- dlib baseline helpers -----------------------------------------------------------------------


def test_dlib_face_choice_helpers():
    boxes = [(10, 60, 60, 10), (50, 100, 100, 50), (0, 150, 40, 110)]  # top, right, bottom, left
    assert nearest_centre_box(boxes, 150, 150) == (50, 100, 100, 50)
    top, right, bottom, left = centre_box(150, 150)
    assert (top, right, bottom, left) == tuple(round(v * 150) for v in CENTRE_BOX)
    assert left < right and top < bottom and right - left == pytest.approx(0.41 * 150, abs=3)
