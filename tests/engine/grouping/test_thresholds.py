"""Thresholds belong to the embedding model: stored with its record, read by every grouping, verification
and recognition, chosen by `facenet-photos calibrate` (engine/grouping/thresholds.py, evals/family.py)."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from engine.models.registry import SFACE, verified_path
from engine.services.library import Library

from conftest import SHARED, old_library
from conftest import run_cli as fp

LAG = SHARED / "lag-dev"
LFW_IMAGES = SHARED / "lfw" / "images"


def _second_model(tmp_path, lib: Library, model_id: str, compatible_with: str | None = None) -> str:
    copy = tmp_path / f"{model_id}.onnx"
    shutil.copyfile(verified_path(SFACE), copy)
    return lib.register_model(copy, model_id, compatible_with=compatible_with)


def test_bundled_model_has_its_thresholds_and_others_do_not_borrow_them_silently(tmp_path):
    with Library(tmp_path / "lib") as lib:
        t = lib.model_thresholds()
        assert t.model_id == SFACE.model_id and t.calibrated
        assert (t.verify, t.cluster, t.recognise) == (1.33, 1.20, 1.0)
        _second_model(tmp_path, lib, "personal-1")
        _second_model(tmp_path, lib, "upgrade-1", compatible_with=SFACE.model_id)
        assert not lib.model_thresholds("personal-1").calibrated
        # A harmonically compatible model lives in SFace's space: it uses SFace's calibration, and says so.
        up = lib.model_thresholds("upgrade-1")
        assert up.calibrated and up.source == SFACE.model_id
        lib.set_model_thresholds("personal-1", 1.2, 0.9, 0.8)
        lib.activate_model("personal-1")
        cfg = lib.cluster_config()
        assert (cfg.threshold, cfg.recognise_threshold) == (0.9, 0.8)
        assert lib.model_thresholds().verify == 1.2
        # The user's own saved grouping threshold still wins.
        lib.set_setting("cluster_threshold", 1.4)
        assert lib.cluster_config().threshold == 1.4
        with pytest.raises(ValueError, match="between 0 and 4"):
            lib.set_model_thresholds("personal-1", 1.2, 5.0, 0.8)
        models = {m["id"]: m for m in lib.models()}
        own = models["personal-1"]["thresholds"]
        assert (own["verify"], own["cluster"], own["recognise"], own["calibrated"]) == (1.2, 0.9, 0.8, True)
        # The listing shows a borrowed calibration as borrowed.
        assert models["upgrade-1"]["thresholds"]["source"] == SFACE.model_id


def test_import_groups_with_the_active_models_threshold(tmp_path, sample_dir):
    """The import used ClusterConfig()'s constant whatever the model (and the user's saved threshold)."""
    with Library(tmp_path / "lib") as lib:
        t = lib.model_thresholds()
        lib.set_model_thresholds(SFACE.model_id, t.verify, 0.01, 0.01)  # nothing is that close: all apart
        for _ in lib.import_paths([sample_dir]):
            pass
        assert len(lib.people()) == 6
        lib.set_model_thresholds(SFACE.model_id, t.verify, t.cluster, t.recognise)
        lib.recluster()
        assert len(lib.people()) == 4  # Ardern x2, Macron x2, Obama, Sunak


def test_migration_adds_threshold_columns_after_a_backup(tmp_path):
    root = old_library(tmp_path / "old", "0002")
    with Library(root) as lib:
        assert lib.model_thresholds().cluster == 1.20
    backups = list((root / "backups").glob("*.sqlite"))
    assert len(backups) == 1
    raw = sqlite3.connect(backups[0])
    try:
        cols = {r[1] for r in raw.execute("PRAGMA table_info(models)")}
        assert "cluster_threshold" not in cols  # the backup is the old schema
    finally:
        raw.close()


@pytest.mark.skipif(not (LAG / "labels.tsv").exists() or not LFW_IMAGES.is_dir(),
                    reason=f"lag-dev or LFW not found under {SHARED}")
def test_cli_calibrate_stores_the_models_thresholds(tmp_path):
    """A small slice of lag-dev and LFW (the command on the full sets takes ~10 minutes)."""
    lag = tmp_path / "lag"
    (lag / "images").mkdir(parents=True)
    lines = (LAG / "labels.tsv").read_text().splitlines()
    head, rows = lines[0], lines[1:81]
    (lag / "labels.tsv").write_text("\n".join([head, *rows]) + "\n")
    for r in rows:
        f = r.split("\t")[0]
        (lag / "images" / f).symlink_to(LAG / "images" / f)
    lfw = tmp_path / "lfw"
    people = sorted(p for p in LFW_IMAGES.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 10)[:8]
    for p in people:
        (lfw / p.name).mkdir(parents=True)
        for f in sorted(p.glob("*.jpg"))[:10]:
            (lfw / p.name / f.name).symlink_to(f)
    libdir = tmp_path / "lib"
    with Library(libdir) as lib:
        _second_model(tmp_path, lib, "personal-1")
        lib.activate_model("personal-1")
    r = fp("models", lib=libdir, check=0)
    assert "not calibrated" in r.stdout and "has no thresholds of its own" in r.stderr
    r = fp("calibrate", "--model", "personal-1", "--lag", lag, "--lfw", lfw, "--json", lib=libdir, check=0)
    res = json.loads(r.stdout)
    assert res["model"] == "personal-1" and res["faces"] > 0
    assert 0.8 <= res["cluster"] <= 1.6 and 0.5 <= res["verify"] <= 2.0 and 0 < res["recognise"] <= res["cluster"]
    assert "no thresholds of its own" not in fp("models", lib=libdir, check=0).stderr
    models = {m["id"]: m for m in json.loads(fp("models", "--json", lib=libdir, check=0).stdout)}
    th = models["personal-1"]["thresholds"]
    assert {k: th[k] for k in ("verify", "cluster", "recognise")} == {
        "verify": res["verify"], "cluster": res["cluster"], "recognise": res["recognise"]}
    assert th["calibrated"] and th["source"] == "personal-1"
    # The child classifier is fitted on the same faces (42 of the 80 lag-dev ones are young) and stored too.
    assert res["child_young"] == 42 and 0.5 < res["child_auc"] <= 1.0
    assert th["children"] == {"source": "personal-1", "penalty": res["child_penalty"]}
    listing = fp("models", lib=libdir, check=0).stdout
    assert "children kept apart:" in listing and "'same person?' questions ranked with:" in listing
    # The queue's weights are fitted on the same libraries where they hold enough examples, and stored.
    fitted = set(res["questions"]) - {"pairs", "faces"}
    assert res["questions"]["pairs"] >= 0 and res["questions"]["faces"] > 0
    assert th["questions"] == {"source": "personal-1" if fitted else None, "stored": bool(fitted)}
    # Bad input: a plain error, nothing stored.
    r = fp("calibrate", "--model", "nope", "--lag", lag, "--lfw", lfw, lib=libdir, check=1)
    assert "no embedding model 'nope'" in r.stderr
    r = fp("calibrate", "--model", "personal-1", "--lag", lfw, "--lfw", lfw, lib=libdir, check=1)
    assert "labels.tsv is missing" in r.stderr
