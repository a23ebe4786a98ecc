""""Learn from my corrections" as a linear adapter on the active model's embeddings (the measured gain)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from conftest import LAG, SAMPLE_PEOPLE
from conftest import library_labels as _state  # noqa: E402

torch = pytest.importorskip("torch")

from engine.services.jobs import run_job  # noqa: E402
from engine.store.schema import Face  # noqa: E402
from training.jobs import LEARN  # noqa: E402


def _stored(lib) -> dict[int, tuple[str, np.ndarray]]:
    from engine.models.quantize import from_bytes

    with lib.store.session() as s:
        return {i: (m, from_bytes(e)) for i, m, e in s.execute(select(Face.id, Face.model_id, Face.embedding))}


def _name_sample(lib) -> None:
    from pathlib import Path

    for p in lib.people():
        names = {SAMPLE_PEOPLE[Path(f.path).name] for f in lib.faces_of(p.id)}
        lib.rename(p.id, "/".join(sorted(names)))


def _adapter(d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (np.eye(d) + 0.05 * rng.standard_normal((d, d))).astype(np.float32), (0.01 * rng.standard_normal(d)).astype(
        np.float32)


@pytest.mark.parametrize("model", ["sface-2021dec-int8bq", "arcface-mbf"])
def test_the_adapter_model_file_is_the_active_model_then_the_linear_map(imported, tmp_path, model):
    from engine.config import EmbedConfig
    from engine.models.packs import ARCFACE_MBF, installed_version
    from engine.models.registry import prepared_model_bytes
    from engine.services.examples import library_examples
    from training.adapter import apply_adapter
    from training.pack_head import graph_with_linear_head

    if model == "arcface-mbf":
        if installed_version(ARCFACE_MBF) is None:
            pytest.skip("the arcface extra is not installed")
        imported.activate_model(model)
    _name_sample(imported)
    crops = library_examples(imported, 1)[0]
    active = imported.embedder()
    w, b = _adapter(active.dim)
    path = tmp_path / "adapted.onnx"
    path.write_bytes(graph_with_linear_head(prepared_model_bytes(active.spec, active.path), w, b))
    imported.register_model(path, "personal-test", compatible_with=model)
    got = imported.model_embedder("personal-test", EmbedConfig(threads=1)).embed(crops)
    want = apply_adapter(active.embed(crops), w, b)
    assert got.shape == (6, active.dim)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_transform_embeddings_maps_every_stored_face_and_keeps_people(imported):
    from engine.models.quantize import from_bytes, to_bytes
    from engine.services.reembed import transform_embeddings
    from training.adapter import apply_adapter

    _name_sample(imported)
    before, stored = _state(imported), _stored(imported)
    w, b = _adapter(128, seed=1)
    *_, last = transform_embeddings(imported, "sface-2021dec-int8bq", "personal-x", w, b)
    assert last.stage == "done" and last.done == last.total == 6
    after = _stored(imported)
    for fid, (model, e) in after.items():
        assert model == "personal-x"
        want = from_bytes(to_bytes(apply_adapter(stored[fid][1][None], w, b)[0]))
        np.testing.assert_allclose(e, want, atol=1e-6)
    assert _state(imported) == before


def test_the_adapter_learner_refuses_without_faces_to_check_it_on(imported):
    """The six sample portraits: nobody has 3 faces, so no face can be kept aside to check a new model;
    nothing changes and the summary says why."""
    from app.gui.learning import plain_summary

    _name_sample(imported)
    before = _state(imported)
    last = list(run_job(LEARN, imported, lfw=False))[-1]
    assert last.stage == "refused" and not last.result.activated
    assert "at least 3 faces" in last.message
    assert imported.active_model_id() == "sface-2021dec-int8bq" and _state(imported) == before
    assert plain_summary(last)[0].startswith("Nothing changed")


@pytest.mark.lag
def test_learning_from_a_family_that_confirmed_child_and_adult_photos(tmp_path):
    """lag-dev as a family: 24 people photographed as children and as adults, grouped by the app, named and
    corrected by the "user" (every face moved to its person). The adapter is trained on their stored
    embeddings; the held-out child/adult faces decide; the library keeps everything and moves to it."""
    import cv2

    from app.gui.learning import plain_summary
    from engine.services.library import Library
    from evals.family import read_lag_labels

    rows = read_lag_labels(LAG)
    by_id: dict[str, list[tuple[str, str]]] = {}
    for f, ident, age in rows:
        by_id.setdefault(ident, []).append((f, age))
    people = [i for i, v in sorted(by_id.items()) if len(v) >= 5 and {a for _, a in v} == {"young", "adult"}][:24]
    photos = tmp_path / "photos"
    photos.mkdir()
    truth = {}
    for ident in people:
        for f, _age in by_id[ident][:6]:
            img = cv2.imread(str(LAG / "images" / f))
            pad = max(img.shape[:2]) // 2  # lag-dev crops are all face: give the detector a photo around it
            cv2.imwrite(str(photos / f"{f}.jpg"), cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                                                    value=(128, 128, 128)))
            truth[f"{f}.jpg"] = ident
    with Library(tmp_path / "library") as lib:
        for _ in lib.import_paths([photos]):
            pass
        faces = {}
        for p in lib.photos():
            fs = lib.faces_in_photo(p.id)
            if fs:
                faces[max(fs, key=lambda f: f.box[2] * f.box[3]).id] = truth[p.path.rsplit("/", 1)[-1]]
        for ident in people:
            mine = [f for f, i in faces.items() if i == ident]
            if len(mine) >= 2:
                lib.split(mine, ident)  # the user gathers and names the person's faces
        before = _state(lib)
        stored = _stored(lib)
        items = list(run_job(LEARN, lib, lfw=False))
        last = items[-1]
        res = last.result
        assert {"examples", "split", "train"} <= {i.stage for i in items}
        assert res.people >= 20 and res.heldout_faces >= 20 and res.before is not None
        assert res.before.auc < 1.0  # child vs adult: there is something to learn
        assert last.stage == "done", last.message
        assert res.activated and res.after.auc > res.before.auc and res.chosen_step > 0
        assert lib.active_model_id() == res.model_id and res.re_embedded == len(stored)
        assert {m for m, _ in _stored(lib).values()} == {res.model_id}
        assert _state(lib) == before
        text = plain_summary(last)[0]
        assert "people you named" in text and "kept aside to check it" in text
        active = [m for m in lib.models() if m["active"] and m["kind"] == "embedder"]
        assert [m["compatible_with"] for m in active] == ["sface-2021dec-int8bq"]
