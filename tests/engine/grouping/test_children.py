"""Keeping different children apart: the model's child classifier and the stable grouping's penalty
(engine/grouping/children.py, engine/grouping/density.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.config import ClusterConfig
from engine.errors import ModelError
from engine.grouping.children import FILENAME, SHA256, child_weights, load_directions
from engine.grouping.density import cluster_faces_stable
from engine.models.registry import SFACE, models_dir, verified_path
from engine.services.library import Library

from conftest import SHARED

LAG = SHARED / "lag-dev"


def _sface():
    return load_directions()[SFACE.model_id]


def _two_groups(gap: float, n: int = 4, seed: int = 0) -> np.ndarray:
    """Two tight groups of ``n`` unit vectors whose centres are ``gap`` apart (squared L2)."""
    rng = np.random.default_rng(seed)
    a = np.zeros(128)
    a[0] = 1.0
    b = np.zeros(128)
    cos = 1.0 - gap / 2.0
    b[0], b[1] = cos, np.sqrt(1.0 - cos * cos)
    pts = [c + 0.01 * rng.standard_normal(128) for c in (a, b) for _ in range(n)]
    pts = np.array(pts)
    return (pts / np.linalg.norm(pts, axis=1, keepdims=True)).astype(np.float32)


def test_the_penalty_parts_two_children_only():
    emb = _two_groups(0.8)  # well within 0.78 T at T 1.2: the stable method always joins them
    both_children, no_children = np.ones(8), np.zeros(8)
    one_child_group = np.r_[np.ones(4), np.zeros(4)]
    assert len(set(cluster_faces_stable(emb, 1.2).tolist())) == 1
    # An edge between two children grows past the cap (1.13 T): the two children stay two groups...
    apart = cluster_faces_stable(emb, 1.2, child=both_children, child_penalty=1.0)
    assert len(set(apart[:4].tolist())) == 1 and len(set(apart[4:].tolist())) == 1 and apart[0] != apart[4]
    # ...while adults, and a child with an adult, keep their distances.
    assert len(set(cluster_faces_stable(emb, 1.2, child=no_children, child_penalty=1.0).tolist())) == 1
    assert len(set(cluster_faces_stable(emb, 1.2, child=one_child_group, child_penalty=1.0).tolist())) == 1
    # No penalty, no change.
    assert (cluster_faces_stable(emb, 1.2, child=both_children, child_penalty=0.0)
            == cluster_faces_stable(emb, 1.2)).all()
    with pytest.raises(ValueError, match="child has 3 entries for 8 faces"):
        cluster_faces_stable(emb, 1.2, child=np.ones(3), child_penalty=0.1)


def test_the_shipped_classifier_is_checked_and_belongs_to_sface(tmp_path):
    d = _sface()
    assert d.weights.shape == (128,) and d.penalty == pytest.approx(0.1)
    assert set(load_directions()) == {SFACE.model_id}
    bad = tmp_path / FILENAME
    doc = json.loads((models_dir() / FILENAME).read_text())
    doc["models"][SFACE.model_id]["penalty"] = 2.0
    bad.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="wrong checksum"):
        load_directions(bad, SHA256)
    with pytest.raises(ModelError, match="not found"):
        load_directions(tmp_path / "missing.json", SHA256)


def test_adults_of_the_bundled_sample_do_not_look_like_children(sample_dir):
    from engine.pipeline.embed import Embedder
    from engine.pipeline.faces import FaceFinder

    finder, embedder = FaceFinder(), Embedder()
    crops = [f.crop for p in sorted(sample_dir.glob("*.jpg")) for f in finder.find(p).faces]
    assert len(crops) >= 6
    c = _sface().likelihood(embedder.embed(np.stack(crops)))
    assert (c < 0.5).all(), c


@pytest.mark.skipif(not (LAG / "labels.tsv").exists(), reason="needs ../shared/data/lag-dev (not on a user machine)")
def test_lag_dev_children_score_above_its_adults():
    """The classifier was fitted on lag-dev (bench/child_direction.py: out-of-fold ROC AUC 0.925 there); this
    checks the shipped file against the app's own detector, alignment and SFace, e.g. a colour order or model
    mix-up would bring it to chance."""
    from sklearn.metrics import roc_auc_score

    from engine.pipeline.embed import Embedder
    from engine.pipeline.faces import FaceFinder

    rows = [line.split("\t") for line in (LAG / "labels.tsv").read_text().splitlines()[1:]]
    rng = np.random.default_rng(3)
    pick = [rows[i] for i in rng.choice(len(rows), 80, replace=False)]
    finder, embedder = FaceFinder(), Embedder()
    crops, young = [], []
    for name, _person, age in pick:
        faces = finder.find(LAG / "images" / name).faces
        if faces:
            crops.append(max(faces, key=lambda f: f.box[2]).crop)
            young.append(age.strip() == "young")
    c = _sface().likelihood(embedder.embed(np.stack(crops)))
    assert 10 <= sum(young) <= len(young) - 10
    assert roc_auc_score(young, c) > 0.85


def test_grouping_uses_the_active_models_classifier(tmp_path):
    emb = _two_groups(0.8)
    with Library(tmp_path / "lib") as lib:
        cfg = lib.cluster_config()
        with lib.store.session() as s:
            child, penalty = child_weights(s, emb, cfg)
            assert child is not None and child.shape == (8,) and penalty == pytest.approx(0.1)
            assert child_weights(s, emb, ClusterConfig(separate_children=False)) == (None, 0.0)
            assert child_weights(s, emb, ClusterConfig(method="average")) == (None, 0.0)
        # A model trained into SFace's space uses SFace's classifier; an unrelated one groups without.
        for model_id, compatible, expect in (("upgrade-1", SFACE.model_id, True), ("personal-1", None, False)):
            copy = tmp_path / f"{model_id}.onnx"
            shutil.copyfile(verified_path(SFACE), copy)
            lib.activate_model(lib.register_model(copy, model_id, compatible_with=compatible))
            with lib.store.session() as s:
                assert (child_weights(s, emb, lib.cluster_config())[0] is not None) is expect


def test_the_classifier_file_is_listed_with_the_weights():
    listed = dict(line.split()[::-1] for line in (models_dir() / "checksums.sha256").read_text().splitlines())
    assert listed[FILENAME] == SHA256
    assert Path(models_dir() / FILENAME).is_file()


def test_a_models_own_classifier_is_stored_listed_and_wins(tmp_path):
    """`facenet-photos calibrate` stores a classifier with the model's record: it is used over the shipped
    one, a model in its space borrows it, and removing it goes back to what was there before."""
    from engine.grouping.children import ChildDirection, model_child_direction

    emb = _two_groups(0.8)
    axis = np.zeros(128)
    axis[1] = 40.0  # the second group's faces lie along axis 1: a classifier that calls only them children
    own = ChildDirection("personal-1", axis, -20.0, 0.5)
    with Library(tmp_path / "lib") as lib:
        for model_id, compatible in (("personal-1", None), ("upgrade-1", "personal-1")):
            copy = tmp_path / f"{model_id}.onnx"
            shutil.copyfile(verified_path(SFACE), copy)
            lib.register_model(copy, model_id, compatible_with=compatible)
        lib.activate_model("upgrade-1")
        listed = {m["id"]: m["thresholds"]["children"] for m in lib.models()
                  if m["kind"] == "embedder" and m["status"] in ("bundled", "registered")}
        assert listed == {SFACE.model_id: {"source": SFACE.model_id, "penalty": 0.1},
                          "personal-1": None, "upgrade-1": None}
        lib.set_model_child_direction("personal-1", own, faces=10, auc=0.9)
        with lib.store.session() as s:
            got = model_child_direction(s, "upgrade-1")
            assert got.model_id == "personal-1" and got.penalty == 0.5
            child, penalty = child_weights(s, emb, lib.cluster_config())
        assert penalty == 0.5 and (child[4:] > 0.99).all() and (child[:4] < 0.01).all()
        listed = {m["id"]: m["thresholds"] for m in lib.models() if m["status"] == "registered"}
        assert listed["upgrade-1"]["children"] == {"source": "personal-1", "penalty": 0.5}
        # Stored for SFace too, it wins over the shipped file (a penalty of 0: calibrated off).
        lib.set_model_child_direction(SFACE.model_id, ChildDirection(SFACE.model_id, np.zeros(128), 0.0, 0.0))
        lib.activate_model(SFACE.model_id)
        with lib.store.session() as s:
            assert child_weights(s, emb, lib.cluster_config()) == (None, 0.0)
        lib.set_model_child_direction(SFACE.model_id, None)
        with lib.store.session() as s:
            assert child_weights(s, emb, lib.cluster_config())[1] == pytest.approx(0.1)
        # Plain errors for what cannot be stored.
        with pytest.raises(ValueError, match="dimension 3"):
            lib.set_model_child_direction("personal-1", ChildDirection("personal-1", np.ones(3), 0.0, 0.1))
        with pytest.raises(ModelError, match="no embedding model 'nope'"):
            lib.set_model_child_direction("nope", own)
        with pytest.raises(ValueError, match="between 0 and 1"):
            ChildDirection.from_dict("x", {"weights": [1.0], "bias": 0.0, "penalty": 3.0})


def test_migration_keeps_models_and_adds_the_classifier_column_after_a_backup(tmp_path):
    import sqlite3

    from conftest import old_library

    root = old_library(tmp_path / "old", "0005_cannot_links")
    with Library(root) as lib:
        sface = next(m for m in lib.models() if m["id"] == SFACE.model_id)
        assert sface["thresholds"]["children"] == {"source": SFACE.model_id, "penalty": 0.1}
    backups = list((root / "backups").glob("*.sqlite"))
    assert len(backups) == 1
    raw = sqlite3.connect(backups[0])
    try:
        assert "child_classifier" not in {r[1] for r in raw.execute("PRAGMA table_info(models)")}
    finally:
        raw.close()


def test_a_named_child_does_not_take_another_childs_new_faces():
    """Recognition lengthens distances between child-like faces by the same penalty as the grouping."""
    from engine.grouping.people import FaceTable, recognise

    emb = _two_groups(0.8)  # 0.8 apart: within SFace's recognition threshold (1.0)
    known = FaceTable(ids=np.arange(4), photo_ids=np.arange(4), person_ids=np.full(4, 7),
                      assignment=["cluster"] * 4, emb=emb[:4])
    query = emb[4:]
    assert (recognise(known, query, 1.0)[0] == 7).all()
    kids, adults = np.ones(4), np.zeros(4)
    pids, dists = recognise(known, query, 1.0, known_child=kids, query_child=kids, child_penalty=0.3)
    assert (pids == -1).all()
    # A child's new photo may still join a named adult (their own grown-up photos), and adults as before.
    assert (recognise(known, query, 1.0, known_child=adults, query_child=kids, child_penalty=0.3)[0] == 7).all()
    # The penalty shows in the evidence distance kept with the suggestion.
    near = recognise(known, emb[:4] * 0.999, 1.0, known_child=kids, query_child=kids, child_penalty=0.3)
    assert (near[0] == 7).all() and (near[1] >= 0.3 - 1e-3).all()
