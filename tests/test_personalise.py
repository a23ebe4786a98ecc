"""Learning from the user's corrections: fine-tune on a small library, keep the model only if it helps."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE_PEOPLE

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def _named_template(tmp_path_factory):
    """The six sample portraits plus mirrored and darker copies (18 photos, 3-6 faces a person), named."""
    from PIL import Image, ImageEnhance, ImageOps

    from engine.library import Library

    base = tmp_path_factory.mktemp("personal")
    photos = base / "photos"
    photos.mkdir()
    for src in sorted(Path(__file__).resolve().parents[1].joinpath("resources", "sample").glob("*.jpg")):
        img = Image.open(src).convert("RGB")
        img.save(photos / src.name)
        ImageOps.mirror(img).save(photos / f"m_{src.name}")
        ImageEnhance.Brightness(img).enhance(0.7).save(photos / f"d_{src.name}")
    with Library(base / "library") as lib:
        for _ in lib.import_paths([photos]):
            pass
        for p in lib.people():
            names = {SAMPLE_PEOPLE[Path(f.path).name.removeprefix("m_").removeprefix("d_")] for f in lib.faces_of(p.id)}
            lib.rename(p.id, "/".join(sorted(names)))
    return base


@pytest.fixture
def named(tmp_path, _named_template):
    from engine.library import Library

    shutil.copytree(_named_template / "library", tmp_path / "library", ignore=shutil.ignore_patterns(".lock"))
    lib = Library(tmp_path / "library")
    yield lib
    lib.close()


def test_split_holdout():
    from training.personalise import split_holdout

    labels = np.array([0] * 10 + [1] * 3 + [2] * 2)
    train, held = split_holdout(labels, 0.2)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(15))
    assert np.bincount(labels[held], minlength=3).tolist() == [2, 1, 0]


def test_learn_activates_a_model_that_is_not_worse(named, tmp_path):
    from training.personalise import PersonaliseConfig, learn_from_corrections

    lib = named
    people_before = [(p.id, p.name, p.faces) for p in lib.people()]
    items = list(learn_from_corrections(lib, config=PersonaliseConfig(steps=3, k=2)))
    stages = [i.stage for i in items]
    assert {"examples", "train", "export", "evaluate"} <= set(stages)
    res = items[-1].result
    if items[-1].stage != "done":
        assert [(p.id, p.name, p.faces) for p in lib.people()] == people_before
    assert res is not None and res.before is not None and res.after is not None
    print(res.message)
    if items[-1].stage == "done":
        assert res.activated and lib.embedder().model_id == res.model_id
        assert res.after.accuracy >= res.before.accuracy and res.after.auc >= res.before.auc
        assert res.re_embedded == lib.stats()["faces"]
        active = [m for m in lib.models() if m["active"] and m["kind"] == "embedder"]
        assert [m["compatible_with"] for m in active] == ["sface-2021dec-int8bq"]
        assert [(p.id, p.name, p.faces) for p in lib.people()] == people_before
        # A new photo is embedded by the new model and recognised as the named person.
        from PIL import Image, ImageEnhance

        from conftest import SAMPLE

        later = tmp_path / "later"
        later.mkdir()
        img = Image.open(SAMPLE / "macron_2025.jpg").convert("RGB").rotate(4)
        ImageEnhance.Brightness(img).enhance(1.2).save(later / "macron_new.jpg")
        (face,) = list(lib.import_paths([later]))[-1].new_face_ids
        assert lib.face(face).person_name == "macron"
    else:
        assert items[-1].stage == "refused" and not res.activated


def test_learn_refuses_a_model_that_is_not_better_enough(named):
    from training.personalise import PersonaliseConfig, learn_from_corrections

    lib = named
    last = list(learn_from_corrections(lib, config=PersonaliseConfig(steps=1, k=2, max_drop=-2.0)))[-1]
    assert last.stage == "refused" and last.message.startswith("refused:")
    assert not last.result.activated
    assert lib.embedder().model_id == "sface-2021dec-int8bq"
    assert not (lib.root / "models").exists() or not list((lib.root / "models").iterdir())


def test_learn_needs_named_people(imported):
    from training.personalise import learn_from_corrections

    last = list(learn_from_corrections(imported))[-1]
    assert last.stage == "refused" and "named people" in last.message
