"""The FaceNet pair-verification protocol (evals) on cases with known answers, and LFW parsing."""

from __future__ import annotations

import numpy as np
import pytest

from evals import evaluate_distances, evaluate_pairs, parse_pairs, parse_people, roc_curve
from evals.lfw import image_relpath, pair_images
from evals.protocol import best_accuracy_threshold, fold_ids, threshold_for_far

from conftest import LFW  # noqa: E402


def _folded(same_d: np.ndarray, diff_d: np.ndarray, n_folds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances, labels and fold ids with the per-fold arrays repeated in every fold."""
    d = np.concatenate([np.r_[same_d, diff_d]] * n_folds)
    s = np.concatenate([np.r_[np.ones(len(same_d), bool), np.zeros(len(diff_d), bool)]] * n_folds)
    f = np.repeat(np.arange(n_folds), len(same_d) + len(diff_d))
    return d, s, f


def test_perfectly_separable_gives_100_percent():
    rng = np.random.default_rng(0)
    d = np.r_[rng.uniform(0.1, 0.9, 3000), rng.uniform(1.6, 3.5, 3000)]
    s = np.r_[np.ones(3000, bool), np.zeros(3000, bool)]
    perm = rng.permutation(6000)
    ev = evaluate_distances(d[perm], s[perm], 10)
    assert ev.n_folds == 10 and ev.n_pairs == 6000 and ev.n_same == 3000
    assert ev.accuracy_mean == 1.0 and ev.accuracy_std == 0.0
    # Ties are resolved to the middle of the plateau between the two groups.
    assert 0.9 < ev.threshold_mean < 1.6
    assert abs(ev.threshold_mean - 1.25) < 0.1
    # The FAR threshold may go as far as 1e-3 of the training mismatched pairs into the "different" group.
    assert ev.val_mean == 1.0 and ev.far_mean < 3e-3
    assert ev.auc == pytest.approx(1.0)


def test_shuffled_labels_give_chance():
    rng = np.random.default_rng(1)
    d = rng.uniform(0, 4, 6000)
    s = rng.permutation(np.r_[np.ones(3000, bool), np.zeros(3000, bool)])
    ev = evaluate_distances(d, s, 10)
    assert 0.45 < ev.accuracy_mean < 0.56
    assert 0.4 < ev.auc < 0.6


def test_known_accuracy_and_threshold():
    # Per fold: 300 same pairs at 0.5, 297 different at 1.5 and 3 different at 0.4 (unavoidable errors).
    d, s, f = _folded(np.full(300, 0.5), np.r_[np.full(297, 1.5), np.full(3, 0.4)], 10)
    ev = evaluate_distances(d, s, f)
    np.testing.assert_allclose(ev.accuracy, 597 / 600)
    # Max accuracy on [0.5, 1.5): the middle of the plateau.
    np.testing.assert_allclose(ev.threshold, 1.0, atol=1e-3)
    t, acc = best_accuracy_threshold(d, s)
    assert acc == pytest.approx(597 / 600) and 0.5 <= t < 1.5


def test_decision_is_distance_at_most_threshold():
    d = np.array([0.2, 0.5, 0.5, 0.9])
    s = np.array([True, True, False, False])
    # t = 0.5 accepts both pairs at 0.5: accuracy 3/4; t just below 0.5 also 3/4, just above 0.9 2/4.
    from evals.protocol import accuracy_curve

    acc = accuracy_curve(d, s, np.array([0.4995, 0.5, 0.9]))
    np.testing.assert_allclose(acc, [0.75, 0.75, 0.5])


def test_val_at_far_one_false_accept_per_fold():
    # Per fold: 50 same at 0.2, 50 same at 1.0; 1 different at 0.5 and 999 at 3.0.
    # Training folds: 9 / 9000 = 1e-3 false accepts below 3.0 -> largest threshold just below 3.0.
    d, s, f = _folded(np.r_[np.full(50, 0.2), np.full(50, 1.0)], np.r_[0.5, np.full(999, 3.0)], 10)
    ev = evaluate_distances(d, s, f, far_target=1e-3)
    np.testing.assert_allclose(ev.val_threshold, 2.9995)
    np.testing.assert_allclose(ev.val, 1.0)
    np.testing.assert_allclose(ev.far, 1e-3)
    assert ev.val_std == 0.0 and ev.far_std == pytest.approx(0.0, abs=1e-12)


def test_val_at_far_two_false_accepts_per_fold():
    # Now 18 / 9000 = 2e-3 > 1e-3 at 0.5: the threshold must stay below 0.5, so only the 0.2 half passes.
    d, s, f = _folded(np.r_[np.full(50, 0.2), np.full(50, 1.0)], np.r_[0.5, 0.5, np.full(998, 3.0)], 10)
    ev = evaluate_distances(d, s, f, far_target=1e-3)
    np.testing.assert_allclose(ev.val_threshold, 0.4995)
    assert ev.val_mean == pytest.approx(0.5)
    assert ev.far_mean == 0.0
    assert threshold_for_far(d, s, 1e-3) == pytest.approx(0.4995)


def test_evaluate_pairs_on_embeddings():
    rng = np.random.default_rng(2)
    n = 400
    base = rng.normal(size=(n, 16))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    noisy = base + rng.normal(scale=0.05, size=base.shape)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    same = np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)]
    b = np.where(same[:, None], noisy, np.roll(base, 1, axis=0))
    ev = evaluate_pairs(base, b, same, folds=4)
    assert ev.n_folds == 4 and ev.accuracy_mean == 1.0
    d = ev.to_dict()
    assert d["n_pairs"] == n and len(d["accuracy_per_fold"]) == 4
    with pytest.raises(ValueError):
        evaluate_pairs(base, b[:, :8], same)


def test_roc_curve_points():
    fpr, tpr, thr, auc = roc_curve(np.array([0.1, 0.2, 0.3, 0.4]), np.array([True, False, True, False]))
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    assert auc == pytest.approx(0.75)


def test_fold_ids():
    np.testing.assert_array_equal(fold_ids(6, 3), [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError):
        fold_ids(7, 3)
    with pytest.raises(ValueError):
        fold_ids(4, np.zeros(4))


def test_parse_pairs_tiny_file(tmp_path):
    p = tmp_path / "pairs.txt"
    p.write_text(
        "2\t2\n"
        "Ann_A\t1\t2\nBob_B\t1\t3\nAnn_A\t1\tBob_B\t2\nCy_C\t4\tAnn_A\t2\n"
        "Cy_C\t1\t2\nAnn_A\t2\t3\nBob_B\t1\tCy_C\t1\nBob_B\t3\tAnn_A\t1\n"
    )
    pairs = parse_pairs(p)
    assert len(pairs) == 8
    assert [x.fold for x in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [x.same for x in pairs] == [True, True, False, False] * 2
    assert pairs[0].a == "Ann_A/Ann_A_0001.jpg" and pairs[0].b == "Ann_A/Ann_A_0002.jpg"
    assert pairs[3].a == "Cy_C/Cy_C_0004.jpg" and pairs[3].b == "Ann_A/Ann_A_0002.jpg"
    assert image_relpath("X_Y", "12") == "X_Y/X_Y_0012.jpg"
    assert len(pair_images(pairs)) == 9
    bad = tmp_path / "bad.txt"
    bad.write_text("1\t2\nAnn_A\t1\t2\n")
    with pytest.raises(ValueError):
        parse_pairs(bad)


def test_parse_people_tiny_files(tmp_path):
    p = tmp_path / "people.txt"
    p.write_text("2\n2\nAnn_A\t3\nBob_B\t1\n1\nCy_C\t4\n")
    assert parse_people(p) == [[("Ann_A", 3), ("Bob_B", 1)], [("Cy_C", 4)]]
    q = tmp_path / "peopleDev.txt"
    q.write_text("2\nAnn_A\t3\nBob_B\t1\n")
    assert parse_people(q) == [[("Ann_A", 3), ("Bob_B", 1)]]


def test_image_without_face_falls_back_to_template(tmp_path):
    from PIL import Image

    from evals import embed_lfw_images

    path = tmp_path / "blank.jpg"
    Image.new("RGB", (150, 150), (128, 128, 128)).save(path)
    items = list(embed_lfw_images([path]))
    assert len(items) == 1 and items[0].done == 1
    res = items[-1].result
    assert res is not None and res.outcome == ["template"] and res.counts()["template"] == 1
    assert res.emb.shape == (1, 128) and abs(float(np.linalg.norm(res.emb[0])) - 1) < 1e-5


@pytest.mark.lfw
def test_lfw_matched_pairs_are_closer():
    from evals import embed_lfw
    from evals.lfw import images_dir, pair_arrays
    from evals.protocol import squared_l2

    pairs = parse_pairs(LFW / "pairs.txt")
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    chosen = pairs[:10] + pairs[300:310]  # 10 matched and 10 mismatched pairs of fold 1
    rel = pair_images(chosen)
    res = embed_lfw([images_dir(LFW) / r for r in rel])
    ia, ib, same, _ = pair_arrays(chosen, {r: i for i, r in enumerate(rel)})
    d = squared_l2(res.emb[ia], res.emb[ib])
    assert d[same].mean() < d[~same].mean()
    assert res.counts()["detected"] >= len(rel) - 2


@pytest.mark.lfw
def test_run_lfw_eval_writes_result_and_roc(tmp_path):
    import json

    from evals import run_lfw_eval
    from evals.lfw import images_dir

    pairs = parse_pairs(LFW / "pairs.txt")
    chosen = pairs[0:2] + pairs[300:302] + pairs[600:602] + pairs[900:902]  # 2 folds x (2 matched + 2 mismatched)
    root = tmp_path / "lfw"
    lines = ["2\t2"]
    for p in chosen:
        for rel in (p.a, p.b):
            dst = root / "images" / rel
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(images_dir(LFW) / rel)
        na, ia = p.a.split("/")[0], int(p.a[-8:-4])
        nb, ib = p.b.split("/")[0], int(p.b[-8:-4])
        lines.append(f"{na}\t{ia}\t{ib}" if p.same else f"{na}\t{ia}\t{nb}\t{ib}")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    res = run_lfw_eval(root, out)
    saved = json.loads((out / "lfw_result.json").read_text())
    assert saved["dataset"]["n_pairs"] == 8 and saved["dataset"]["n_folds"] == 2
    assert (out / "lfw_roc.png").stat().st_size > 0
    assert sum(saved["detection"]["counts"].values()) == saved["dataset"]["n_images"]
    assert 0.0 <= res["accuracy_mean"] <= 1.0 and "int8" in res and "float32_errors" in res
    again = run_lfw_eval(root, out, reuse_embeddings=True)
    assert again["timing"]["embeddings_reused"] is True
    assert again["float32"]["accuracy_per_fold"] == res["float32"]["accuracy_per_fold"]
