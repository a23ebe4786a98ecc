"""The dlib baseline of the robustness evaluation (``run_robustness_eval(baseline="dlib")``): dlib on the same
degraded files as ours, its per-condition cache and the budget. The end-to-end part runs on a tiny LFW subset
(5 folds x 8 pairs, the original images and 40 px wide copies) and needs face_recognition (the bench extra)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from engine.errors import FacenetPhotosError
from evals.lfw import LfwPair
from evals.robustness import Condition, _first_pairs_per_fold, run_robustness_eval

from conftest import LFW

_ABSENT = [m for m in ("dlib", "face_recognition_models", "face_recognition") if importlib.util.find_spec(m) is None]
needs_face_recognition = pytest.mark.skipif(
    bool(_ABSENT), reason=f"the dlib baseline needs the bench extra; not installed: {', '.join(_ABSENT)}")

FOLDS = (0, 1, 2, 3, 4)
PAIRS_PER_FOLD = 8
CONDS = [Condition("original"), Condition("width", 40)]


def test_first_pairs_per_fold():
    pairs = [LfwPair(f"a{f}{i}", f"b{f}{i}", i < 5, f) for f in range(3) for i in range(10)]
    sub = _first_pairs_per_fold(pairs, 4)
    assert [(p.fold, p.same) for p in sub] == [(f, s) for f in range(3) for s in (True, True, False, False)]
    assert [p.a for p in sub[:4]] == ["a00", "a01", "a05", "a06"]
    assert _first_pairs_per_fold(pairs, None) == pairs


def test_baseline_needs_face_recognition(monkeypatch, tmp_path):
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "face_recognition" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(FacenetPhotosError, match="face_recognition.*pip install"):
        run_robustness_eval(tmp_path / "lfw", tmp_path / "out", tmp_path / "cache", baseline="dlib")
    with pytest.raises(ValueError, match="unknown baseline"):
        run_robustness_eval(tmp_path / "lfw", tmp_path / "out", tmp_path / "cache", baseline="arcface")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Ours alone, then with dlib and no time left, then with dlib to the end, then again from the caches."""
    base = tmp_path_factory.mktemp("robustness")
    kw = dict(conditions=CONDS, folds=FOLDS, pairs_per_fold=PAIRS_PER_FOLD)
    ours_only = run_robustness_eval(LFW, base / "out0", base / "cache", **kw)
    no_time = run_robustness_eval(LFW, base / "out1", base / "cache", baseline="dlib", time_budget_s=0, **kw)
    full = run_robustness_eval(LFW, base / "out2", base / "cache", baseline="dlib", **kw)
    again = run_robustness_eval(LFW, base / "out3", base / "cache", baseline="dlib", **kw)
    return base, ours_only, no_time, full, again


@pytest.mark.lfw
@pytest.mark.slow
@needs_face_recognition
def test_dlib_baseline_on_the_same_degraded_images(runs):
    base, ours_only, no_time, full, again = runs
    assert ours_only["complete"] and "baseline" not in ours_only and "dlib" not in ours_only["conditions"]["original"]

    # No time left: ours comes from its cache, nothing of dlib is embedded, and the run says so.
    assert not no_time["complete"] and no_time["missing"] == []
    assert no_time["baseline_missing"] == ["original", "width_40", "rest"]
    assert all("dlib" not in r for r in no_time["conditions"].values())
    assert no_time["side_by_side"]["width_40"]["dlib_accuracy_mean"] is None

    assert full["complete"] and full["baseline_missing"] == [] and full["dataset"]["n_pairs"] == 40
    on_disk = json.loads((base / "out2" / "robustness_result.json").read_text())
    assert on_disk["side_by_side"] == full["side_by_side"]
    assert (base / "out2" / "robustness.png").stat().st_size > 0
    assert sorted(p.name for p in (base / "cache" / "dlib").glob("*.npz")) == ["original.npz", "rest.npz",
                                                                              "width_40.npz"]
    ours = {n: r["degraded_vs_degraded"] for n, r in full["conditions"].items()}
    dlib = {n: r["dlib"]["degraded_vs_degraded"] for n, r in full["conditions"].items()}
    for name in ("original", "width_40"):
        for m in (ours[name], dlib[name]):
            assert 0.5 <= m["accuracy_mean"] <= 1.0 and len(m["accuracy_per_fold"]) == len(FOLDS)
            assert 0.5 <= m["fixed_clean_threshold"]["accuracy"] <= 1.0
        side = full["side_by_side"][name]
        assert side["ours_accuracy_mean"] == ours[name]["accuracy_mean"]
        assert side["dlib_accuracy_mean"] == dlib[name]["accuracy_mean"]
        assert side["dlib_accuracy_std"] == dlib[name]["accuracy_std"]
    # The original images are easy for both; 16 px faces are harder for both. On these 40 pairs the
    # accuracy drop is one pair for ours (four for dlib), so the strict test is on the AUC (the ranking of
    # all 400 same/different pair combinations), and the accuracy only must not rise.
    for m in (ours, dlib):
        assert m["original"]["accuracy_mean"] >= 0.9
        assert m["width_40"]["auc"] < m["original"]["auc"]
        assert m["width_40"]["accuracy_mean"] <= m["original"]["accuracy_mean"]
    assert dlib["width_40"]["accuracy_mean"] < dlib["original"]["accuracy_mean"]
    # dlib read the very bytes ours read, and its HOG finds no 16 px face without extra upsampling.
    w40 = full["conditions"]["width_40"]["dlib"]
    assert w40["files_check"] == "sha256 equal"
    assert w40["detection"]["detected"] == 0 and sum(w40["detection"].values()) == full["dataset"]["n_images"]
    # dlib's raw descriptors: its squared-distance thresholds are its own (about 0.36 = 0.6 Euclidean).
    assert 0.1 < full["baseline"]["clean_thresholds"]["accuracy"] < 1.0

    # A rerun embeds nothing and gives the same table.
    assert all(r["embedding_cached"] and r["dlib"]["embedding_cached"] for r in again["conditions"].values())
    assert again["side_by_side"] == full["side_by_side"]
