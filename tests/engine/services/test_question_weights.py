""""Same person?" weights that belong to the model: `calibrate` stores them with its record, the queue is ranked
with them (a model in its space borrows them), and a library from before them is migrated after a backup."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from engine.grouping.same_person import QuestionConfig, with_model_weights
from engine.models.registry import SFACE, verified_path

from conftest import old_library


def _macron_pair(lib, cfg=None):
    pair = {next(f.person_id for p in lib.people() for f in lib.faces_of(p.id) if stem in f.path)
            for stem in ("macron_2014", "macron_2025")}
    return next(q for q in lib.same_person_questions(None, cfg) if {q.person_a, q.person_b} == pair)


def _listed(lib, model_id):
    return next(m for m in lib.models() if m["id"] == model_id)["thresholds"]["questions"]


def test_stored_weights_rank_the_queue_a_compatible_model_borrows_them_and_none_goes_back(imported, tmp_path):
    imported.recluster(0.5)  # the two Macron photos apart: one pair question about them
    shipped = _macron_pair(imported)
    assert _listed(imported, SFACE.model_id) == {"source": SFACE.model_id, "stored": False}
    # Weights fitted for SFace that put p(same) = 0.5 well inside the threshold: the pair (0.78 apart, T 1.20)
    # is now less likely one person.
    nearer = {"offset": -0.6, "child_offset": -0.6, "pairs": 10, "faces": 10}
    imported.set_model_question_weights(SFACE.model_id, nearer)
    fitted = _macron_pair(imported)
    assert shipped.probability > 0.99 and fitted.probability < 0.9
    assert _listed(imported, SFACE.model_id) == {"source": SFACE.model_id, "stored": True}
    # The caller may ask for the shipped weights (the simulated user's comparisons do).
    assert _macron_pair(imported, QuestionConfig(model_weights=False)).probability == pytest.approx(shipped.probability)
    # A model in SFace's space that was never calibrated borrows SFace's weights.
    copy = tmp_path / "up.onnx"
    shutil.copyfile(verified_path(SFACE), copy)
    imported.register_model(copy, "upgrade-1", compatible_with=SFACE.model_id)
    assert _listed(imported, "upgrade-1") == {"source": SFACE.model_id, "stored": True}
    # Removed: back to the shipped weights.
    imported.set_model_question_weights(SFACE.model_id, None)
    assert _macron_pair(imported).probability == pytest.approx(shipped.probability)
    assert _listed(imported, "upgrade-1") == {"source": SFACE.model_id, "stored": False}
    with pytest.raises(ValueError, match="no question weights"):
        imported.set_model_question_weights(SFACE.model_id, {"pairs": 3})


def test_a_model_of_its_own_space_without_weights_is_listed_as_using_sfaces(library, tmp_path):
    copy = tmp_path / "own.onnx"
    shutil.copyfile(verified_path(SFACE), copy)
    library.register_model(copy, "personal-1")
    assert _listed(library, "personal-1") == {"source": None, "stored": False}
    library.set_model_question_weights("personal-1", {"offset": 0.07, "scale": 0.07})
    assert _listed(library, "personal-1") == {"source": "personal-1", "stored": True}


def test_malformed_stored_weights_keep_the_shipped_values():
    cfg = QuestionConfig()
    got = with_model_weights(cfg, {"offset": 0.05, "scale": -1.0, "child_scale": "x", "child_weight": float("nan"),
                                   "face_weights": [1.0, 2.0], "face_child_weights": [0.5] * 7, "pairs": 9,
                                   "min_probability": 0.7})
    assert got.offset == 0.05 and got.face_child_weights == (0.5,) * 7
    assert (got.scale, got.child_scale, got.child_weight, got.face_weights, got.min_probability) == (
        cfg.scale, cfg.child_scale, cfg.child_weight, cfg.face_weights, cfg.min_probability)
    assert with_model_weights(cfg, {"min_probability": 0.012}).min_probability == 0.012
    assert with_model_weights(QuestionConfig(model_weights=False), {"offset": 0.05}).offset == cfg.offset
    assert with_model_weights(cfg, None) is cfg


def test_migration_adds_the_question_weights_column_after_a_backup(tmp_path):
    from engine.services.library import Library

    root = old_library(tmp_path / "old", "0006_child_classifiers")
    with Library(root) as lib:
        assert _listed(lib, SFACE.model_id) == {"source": SFACE.model_id, "stored": False}
        lib.set_model_question_weights(SFACE.model_id, {"offset": 0.2})
    backups = list((root / "backups").glob("*.sqlite"))
    assert len(backups) == 1
    raw = sqlite3.connect(backups[0])
    try:
        assert "question_weights" not in {r[1] for r in raw.execute("PRAGMA table_info(models)")}
    finally:
        raw.close()
