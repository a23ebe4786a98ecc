"""Learning from the library: training examples, model registration/activation and re-embedding."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

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
    from engine.training_data import library_examples

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


def test_library_examples_skip_vanished_photos(tmp_path, sample_dir):
    from engine.library import Library
    from engine.training_data import library_examples

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
