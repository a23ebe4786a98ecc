"""Learning from the library: training examples, model registration/activation and re-embedding."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelError

from conftest import SAMPLE_PEOPLE


def name_people(lib) -> dict[str, int]:
    """Name every sample person after its file; returns name -> person id."""
    ids = {}
    for p in lib.people():
        name = SAMPLE_PEOPLE[Path(lib.faces_of(p.id)[0].path).name]
        lib.rename(p.id, name)
        ids[name] = p.id
    return ids


def test_library_examples(imported):
    from engine.services.examples import library_examples

    lib = imported
    ids = name_people(lib)
    crops, labels, person_ids, negatives = library_examples(lib)
    assert crops.dtype == np.uint8 and crops.shape[1:] == (112, 112, 3)
    assert sorted(person_ids) == sorted([ids["ardern"], ids["macron"]])  # two faces each
    assert np.bincount(labels).tolist() == [2, 2]
    assert negatives == []
    # The crops match the importer's: same model gives (nearly) the stored embeddings.
    face_ids = [f.id for pid in person_ids for f in lib.faces_of(pid)]
    stored = lib.embeddings(face_ids)
    fresh = lib.embedder().embed(crops)
    assert (fresh * stored).sum(1).min() > 0.95

    crops1, labels1, person_ids1, _ = library_examples(lib, min_faces=1)
    assert len(crops1) == 6 and len(person_ids1) == 4
    # A "no" keeps the face out of the person and becomes a negative once the face is named.
    obama = lib.faces_of(ids["obama"])[0].id
    (lone,) = lib.not_this_person([obama])
    lib.rename(lone, "someone")
    _, labels2, person_ids2, negatives2 = library_examples(lib, min_faces=1)
    assert ids["obama"] not in person_ids2
    assert len(negatives2) == 1 and negatives2[0][1] == ids["obama"]
    assert person_ids2[labels2[negatives2[0][0]]] == lone


def test_library_examples_bring_the_faces_taken_from_a_person(imported):
    """A face the user took away from a named person is in no named person, yet its crop comes back
    (label -1, after the labelled faces) with the statement, so that training can push it away."""
    from engine.services.examples import library_examples

    lib = imported
    ids = name_people(lib)
    crops, labels, person_ids, _ = library_examples(lib, min_faces=1)
    face = lib.faces_of(ids["macron"])[0].id
    before = crops[[f.id for pid in person_ids for f in lib.faces_of(pid)].index(face)]
    lib.not_this_person([face])  # now alone in an unnamed person
    crops2, labels2, person_ids2, negatives2 = library_examples(lib, min_faces=1)
    assert person_ids2 == person_ids and len(crops2) == len(crops) and labels2.tolist()[-1] == -1
    assert (labels2 >= 0).sum() == len(crops) - 1 and np.all(labels2[:-1] >= 0)
    assert negatives2 == [(len(crops2) - 1, ids["macron"])]
    assert np.array_equal(crops2[-1], before)
    # With min_faces=2 Macron has one face left and drops out: the statement is no use, no extra crop.
    crops3, labels3, person_ids3, negatives3 = library_examples(lib)
    assert ids["macron"] not in person_ids3 and negatives3 == [] and np.all(labels3 >= 0)


def test_library_examples_skip_vanished_photos(tmp_path, sample_dir):
    from engine.services.examples import library_examples
    from engine.services.library import Library

    with Library(tmp_path / "lib") as lib:
        for _ in lib.import_paths([sample_dir]):
            pass
        ids = name_people(lib)
        (sample_dir / "ardern_2022.jpg").unlink()
        crops, labels, person_ids, _ = library_examples(lib)
        assert person_ids == [ids["macron"]] and len(crops) == 2
        shutil.rmtree(sample_dir)
        crops, labels, person_ids, _ = library_examples(lib)
        assert len(crops) == 0 and person_ids == []


def _snapshot(lib):
    from sqlalchemy import select

    from engine.store.schema import Constraint, Face, Person

    with lib.store.session() as s:
        people = sorted((p.id, p.name, p.hidden, p.cover_face_id) for p in s.scalars(select(Person)))
        faces = sorted((f.id, f.person_id, f.assignment, f.confidence) for f in s.scalars(select(Face)))
        cons = sorted((c.face_id, c.person_id, c.kind) for c in s.scalars(select(Constraint)))
        models = {f.model_id for f in s.scalars(select(Face))}
    return people, faces, cons, models


def _new_model_file(tmp_path) -> Path:
    """A stand-in for a trained model: a copy of the bundled embedder under another name."""
    from engine.models.registry import SFACE, models_dir

    dst = tmp_path / "personal.onnx"
    shutil.copyfile(models_dir() / SFACE.filename, dst)
    return dst


def test_register_activate_and_re_embed_keep_people(imported, tmp_path):
    from engine.services.reembed import re_embed, stale_face_count

    lib = imported
    ids = name_people(lib)
    lib.confirm([f.id for f in lib.faces_of(ids["ardern"])])
    lib.not_this_person([lib.faces_of(ids["sunak"])[0].id])
    people, faces, cons, models = _snapshot(lib)
    assert models == {"sface-2021dec-int8bq"}

    assert lib.register_model(_new_model_file(tmp_path), "personal-1", compatible_with="sface-2021dec-int8bq")
    listed = {m["id"]: m for m in lib.models()}
    assert not listed["personal-1"]["active"] and listed["personal-1"]["compatible_with"] == "sface-2021dec-int8bq"
    assert (lib.root / "models" / "personal-1.onnx").is_file()
    lib.activate_model("personal-1")
    assert lib.embedder().model_id == "personal-1" == lib.active_model_id()
    assert [m["id"] for m in lib.models() if m["active"] and m["kind"] == "embedder"] == ["personal-1"]
    assert stale_face_count(lib) == 6

    cancel = __import__("threading").Event()
    it = re_embed(lib, cancel, commit_every=1)
    next(it), next(it)
    cancel.set()
    assert list(it)[-1].stage == "cancelled"
    assert 0 < stale_face_count(lib) < 6  # committed part stays; the rest resumes
    last = list(re_embed(lib))[-1]
    assert last.stage == "done" and last.failed == 0 and last.done == last.total > 0
    assert stale_face_count(lib) == 0

    people2, faces2, cons2, models2 = _snapshot(lib)
    assert models2 == {"personal-1"}
    assert (people2, faces2, cons2) == (people, faces, cons)

    # A fresh open of the library loads the active model, hash-checked.
    from engine.services.library import Library

    lib.close()
    with Library(lib.root) as again:
        assert again.embedder().model_id == "personal-1"


def test_model_files_are_checked(library, tmp_path):
    import pytest

    from engine.errors import ModelError

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        library.register_model(bad, "bad")
    assert "bad" not in {m["id"] for m in library.models()}
    library.register_model(_new_model_file(tmp_path), "personal-1")
    path = library.root / "models" / "personal-1.onnx"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        library.activate_model("personal-1")
    assert library.embedder().model_id == "sface-2021dec-int8bq"
    with pytest.raises(ModelError):
        library.activate_model("nope")



def test_doctor_checks_registered_models(imported, tmp_path):
    from sqlalchemy import update

    from engine.models.registry import SFACE
    from engine.services.reembed import stale_face_count
    from engine.store.schema import Face

    lib = imported
    name_people(lib)
    lib.register_model(_new_model_file(tmp_path), "personal-1")
    lib.register_model(_new_model_file(tmp_path), "personal-2")
    lib.activate_model("personal-1")
    # personal-1 is a copy of the bundled model, so re-embedding would store the same vectors:
    # only the faces' model id changes.
    with lib.store.transaction() as s:
        s.execute(update(Face).values(model_id="personal-1"))
    assert lib.doctor(repair=False).ok
    people, faces, cons, _ = _snapshot(lib)

    active = lib.root / "models" / "personal-1.onnx"
    data = bytearray(active.read_bytes())
    data[-10] ^= 0xFF
    active.write_bytes(bytes(data))
    gone = lib.root / "models" / "personal-2.onnx"
    gone.unlink()

    rep = lib.doctor(repair=False)
    assert f"model personal-2: file missing at {gone}" in rep.problems
    (changed,) = [p for p in rep.problems if p.startswith("model personal-1: ")]
    assert "file changed (SHA-256 " in changed and "!= recorded " in changed
    assert not any("active face model" in x for x in rep.repaired)
    assert lib.active_model_id() == "personal-1"

    rep = lib.doctor(repair=True)
    assert len([p for p in rep.problems if p.startswith("model ")]) == 2
    (switched,) = [x for x in rep.repaired if "active face model" in x]
    assert f"from personal-1 back to the bundled {SFACE.model_id}" in switched
    assert "6 face(s) embedded by personal-1" in switched and "re-embedding" in switched
    assert lib.active_model_id() == SFACE.model_id == lib.embedder().model_id
    # Nothing is deleted: the rows, the broken file, the faces, people and names stay.
    assert {"personal-1", "personal-2"} <= {m["id"] for m in lib.models()}
    assert active.is_file()
    assert _snapshot(lib)[:3] == (people, faces, cons)
    assert stale_face_count(lib) == 6  # waiting for re-embedding with the bundled model

    # The problems are still reported, but there is nothing more to switch.
    rep = lib.doctor(repair=True)
    assert len([p for p in rep.problems if p.startswith("model ")]) == 2
    assert not any("active face model" in x for x in rep.repaired)

def test_recognition_after_upgrade(tmp_path, sample_dir):
    from engine.services.library import Library
    from engine.services.reembed import re_embed

    later = tmp_path / "later"
    later.mkdir()
    shutil.move(sample_dir / "ardern_2022.jpg", later / "ardern_2022.jpg")
    with Library(tmp_path / "lib") as lib:
        for _ in lib.import_paths([sample_dir]):
            pass
        ids = name_people(lib)
        lib.register_model(_new_model_file(tmp_path), "personal-1")
        lib.activate_model("personal-1")
        assert list(re_embed(lib))[-1].stage == "done"
        last = list(lib.import_paths([later]))[-1]
        (face,) = last.new_face_ids
        info = lib.face(face)
        assert info.person_id == ids["ardern"], info
        assert lib.person(ids["ardern"]).faces == 2
        from engine.store.schema import Face

        with lib.store.session() as s:
            assert s.get(Face, face).model_id == "personal-1"


def test_registration_checks_128_byte_storage(library, tmp_path, monkeypatch):
    """A new model is registered only if its embeddings of real faces survive 128-byte storage: the
    bundled model passes with room to spare, and a model whose components exceed the int8 range is
    refused with the reason."""
    import shutil

    import engine.services.library as lib_mod
    from engine.models.quantize import storage_error
    from engine.models.registry import SFACE, verified_path

    faces = lib_mod._probe_faces()
    assert len(faces) == 12  # the six sample portraits and their mirror images
    biggest, change = storage_error(library.embedder().embed(faces))
    assert biggest < 0.5 and change < 0.01 < lib_mod.STORAGE_TOLERANCE
    copy = tmp_path / "m.onnx"
    shutil.copyfile(verified_path(SFACE), copy)
    assert library.register_model(copy, "fits") == "fits"

    # a model whose embeddings put most of their length in a few dimensions
    def peaky(self, x):
        out = np.zeros((len(x), 128), np.float32)
        out[:, 0], out[:, 1] = 0.9, np.linspace(-0.4, 0.4, len(x))
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    monkeypatch.setattr(lib_mod.Embedder, "embed", peaky)
    with pytest.raises(ModelError, match="does not fit 128-byte storage"):
        library.register_model(copy, "peaky")
    assert [m["id"] for m in library.models() if m["id"] == "peaky"] == []
    assert not (library.models_dir / "peaky.onnx").exists()
