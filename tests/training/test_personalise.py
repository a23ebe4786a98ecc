"""Learning from the user's corrections: fine-tune on a small library, keep the model only if it helps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE, SAMPLE_PEOPLE, open_copy

torch = pytest.importorskip("torch")

from engine.services.jobs import run_job  # noqa: E402
from training.jobs import LEARN  # noqa: E402


@pytest.fixture(scope="module")
def _named_template(tmp_path_factory):
    """The six sample portraits plus mirrored and darker copies (18 photos, 3-6 faces a person), named."""
    from PIL import Image, ImageEnhance, ImageOps

    from engine.services.library import Library

    base = tmp_path_factory.mktemp("personal")
    photos = base / "photos"
    photos.mkdir()
    for src in sorted(SAMPLE.glob("*.jpg")):
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
    lib = open_copy(_named_template / "library", tmp_path / "library")
    yield lib
    lib.close()


def test_split_holdout():
    from training.personalise import split_holdout

    labels = np.array([0] * 10 + [1] * 3 + [2] * 2)
    train, held = split_holdout(labels, 0.2)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(15))
    assert np.bincount(labels[held], minlength=3).tolist() == [2, 1, 0]


class _Scripted:
    """Stands in for ``_checkpoint_score``: runs the real one (so it is exercised) unless told not to,
    records the model's state at each check, and returns the scripted (accuracy, AUC) of that check."""

    def __init__(self, real, scores, run_real):
        self.real, self.scores, self.run_real, self.states, self.calls = real, list(scores), run_real, [], 0

    def __call__(self, suffix, features, labels, held, gallery):
        from training.personalise import HeldOut

        if self.run_real:
            self.real(suffix, features, labels, held, gallery)
        self.states.append({k: v.clone() for k, v in suffix.model.state_dict().items()})
        acc, auc = self.scores[min(self.calls, len(self.scores) - 1)]
        self.calls += 1
        return HeldOut(acc, auc, len(held), len(held) * len(gallery))


@pytest.fixture
def scripted(monkeypatch):
    import training.personalise as tp

    def install(*scores, run_real=True):
        s = _Scripted(tp._checkpoint_score, scores, run_real)
        monkeypatch.setattr(tp, "_checkpoint_score", s)
        return s

    return install


@pytest.fixture
def no_lfw_data(monkeypatch, tmp_path):
    from training.jobs import LFW_ENV

    monkeypatch.setenv(LFW_ENV, str(tmp_path / "no-lfw"))


@pytest.fixture
def fake_lfw(monkeypatch, tmp_path):
    """LFW "present" (a pairs.txt), scored by a script: the accuracies of successive calls."""
    import training.personalise as tp

    root = tmp_path / "lfw"
    root.mkdir()
    (root / "pairs.txt").write_text("10\t300\n")
    from training.jobs import LFW_ENV

    monkeypatch.setenv(LFW_ENV, str(root))  # the learning job finds LFW through the setting, not the source tree

    def install(*accuracies):
        calls = []

        def fake(embed, n_pairs, lfw_root):
            assert lfw_root == root
            calls.append(n_pairs)
            return accuracies[len(calls) - 1]

        monkeypatch.setattr(tp, "_lfw_accuracy", fake)
        return calls

    return install


def _models_untouched(lib) -> bool:
    models = lib.root / "models"
    return lib.embedder().model_id == "sface-2021dec-int8bq" and (not models.exists() or not list(models.iterdir()))


def test_learn_activates_a_model_that_is_not_worse(named, tmp_path, scripted, no_lfw_data):

    lib = named
    people_before = [(p.id, p.name, p.faces) for p in lib.people()]
    scripted((0.5, 0.5), (0.75, 0.75), (1.0, 0.9))  # step 2 wins
    items = list(run_job(LEARN, lib, method="finetune", max_steps=2, eval_every=1, k=2))
    stages = [i.stage for i in items]
    assert {"examples", "train", "export", "evaluate"} <= set(stages)
    res = items[-1].result
    assert res is not None and res.before is not None and res.after is not None
    assert res.chosen_step == 2 and [s for s, _ in res.checkpoints] == [0, 1, 2]
    print(res.message)
    if items[-1].stage != "done":  # the real check through the engine found it worse
        assert items[-1].stage == "refused" and not res.activated and "worse on your held-out" in res.message
        assert [(p.id, p.name, p.faces) for p in lib.people()] == people_before
        return
    assert "kept step 2 of 2" in res.message and "LFW check skipped (data not found)" in res.message
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


def test_learn_keeps_the_best_checkpoint_and_never_trains_on_held_out_faces(named, scripted, monkeypatch):
    import training.export
    import training.train
    from engine.services.examples import library_examples
    from training.personalise import PersonaliseConfig, learn_from_corrections

    lib = named
    macron = next(p.id for p in lib.people() if p.name == "macron")
    taken = lib.faces_of(macron)[0].id
    lib.not_this_person([taken])  # "not Macron": a negative for training
    crops, labels, person_ids, _ = library_examples(lib)
    named_rows = np.flatnonzero(labels >= 0)
    _, held = split_holdout_of(labels[named_rows])
    held_crops = {crops[named_rows[i]].tobytes() for i in held}

    seen = {}
    real_train = training.train.train

    def spy_train(config, tr_crops, tr_labels, **kw):
        seen.update(crops=tr_crops, labels=tr_labels, negatives=kw["negatives"])
        return real_train(config, tr_crops, tr_labels, **kw)

    def spy_export(model, path, *a, **kw):
        seen["exported"] = {k: v.clone() for k, v in model.state_dict().items()}
        raise RuntimeError("stop here")  # the rest is another test's

    monkeypatch.setattr(training.train, "train", spy_train)
    monkeypatch.setattr(training.export, "export_and_check", spy_export)
    script = scripted((0.5, 0.5), (0.75, 0.9), (0.75, 0.8), (0.75, 0.9))  # step 1 wins; step 3 only ties
    with pytest.raises(RuntimeError, match="stop here"):
        list(learn_from_corrections(lib, config=PersonaliseConfig(max_steps=3, eval_every=1, k=2, lfw=False)))
    assert script.calls == 4
    equal = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert equal(seen["exported"], script.states[1]) and not equal(seen["exported"], script.states[3])
    assert not equal(script.states[0], script.states[1])  # it did train
    assert not {c.tobytes() for c in seen["crops"]} & held_crops
    # The taken face trains as nobody's, as a negative of Macron.
    ((row, lab),) = seen["negatives"]
    assert seen["labels"][row] == -1 and person_ids[lab] == macron
    assert seen["crops"][row].tobytes() == crops[-1].tobytes() and labels[-1] == -1


def split_holdout_of(labels):
    from training.personalise import PersonaliseConfig, split_holdout

    cfg = PersonaliseConfig()
    return split_holdout(labels, cfg.holdout, cfg.seed)


def test_learn_refuses_when_the_untouched_model_is_best(named, scripted, monkeypatch):
    import training.export
    import training.train
    from training.personalise import PersonaliseConfig, learn_from_corrections

    def no_export(*a, **kw):
        raise AssertionError("nothing to export")

    monkeypatch.setattr(training.export, "export_and_check", no_export)
    lib = named
    # Real scores: SFace already tells the four sample people apart, so training does not even start.
    calls = []
    real_train = training.train.train
    monkeypatch.setattr(training.train, "train", lambda *a, **kw: calls.append(1) or real_train(*a, **kw))
    last = list(learn_from_corrections(lib, config=PersonaliseConfig(max_steps=2, eval_every=1, k=2)))[-1]
    assert last.stage == "refused" and "nothing to learn" in last.message and calls == []
    assert last.result.chosen_step == 0 and [s for s, _ in last.result.checkpoints] == [0]
    # Scripted: no later check beats step 0 (a tie is not enough).
    scripted((0.75, 0.9), (0.5, 0.8), (0.75, 0.9))
    last = list(learn_from_corrections(lib, config=PersonaliseConfig(max_steps=2, eval_every=1, k=2)))[-1]
    assert last.stage == "refused" and "no training step" in last.message and calls == [1]
    assert last.result.chosen_step == 0 and not last.result.activated and _models_untouched(lib)


def test_learn_refuses_a_model_worse_on_held_out_faces(named, scripted, fake_lfw, monkeypatch):
    import training.personalise as tp

    scripted((0.5, 0.5), (1.0, 1.0), run_real=False)  # the real one would call heldout_score
    lfw_calls = fake_lfw(0.99, 0.99)
    scores = iter([tp.HeldOut(1.0, 1.0, 4, 56), tp.HeldOut(0.75, 1.0, 4, 56)])  # before, after
    monkeypatch.setattr(tp, "heldout_score", lambda *a: next(scores))
    lib = named
    last = list(run_job(LEARN, lib, method="finetune", max_steps=1, k=2))[-1]
    assert last.stage == "refused" and "worse on your held-out faces" in last.message, last.message
    assert "75.0%" in last.message and not last.result.activated and _models_untouched(lib)
    assert lfw_calls == []  # no need to ask LFW


def test_learn_refuses_a_model_worse_on_lfw(named, scripted, fake_lfw, monkeypatch):

    scripted((0.5, 0.5), (1.0, 1.0))
    lfw_calls = fake_lfw(0.99, 0.97)
    lib = named
    last = list(run_job(LEARN, lib, method="finetune", max_steps=1, k=2))[-1]
    res = last.result
    print(last.message)
    assert last.stage == "refused" and "worse on LFW" in last.message, last.message
    assert "99.00% before, 97.00% after" in last.message and (res.lfw_before, res.lfw_after) == (0.99, 0.97)
    assert lfw_calls == [300, 300] and not res.activated and _models_untouched(lib)


def test_checkpoint_score_is_the_models_own_score(monkeypatch):
    import training.personalise as tp
    from training.registry import create
    from training.train import precompute, split_model

    crops = np.random.default_rng(0).integers(0, 256, (8, 112, 112, 3), dtype=np.uint8)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    held, gallery = np.array([0, 3]), np.array([1, 2, 4, 5, 6, 7])
    model = create("sface", True)
    prefix, suffix, _ = split_model(model, 2)
    features = precompute(prefix, crops, torch.device("cpu"))
    seen = []
    monkeypatch.setattr(tp, "heldout_score", lambda *args: seen.append(args) or "score")
    model.train()
    assert tp._checkpoint_score(suffix, features, labels, held, gallery) == "score"
    assert all(m.training for m in model.modules())  # the mode is put back
    with torch.no_grad():
        e = torch.nn.functional.normalize(model.eval()(torch.from_numpy(crops).permute(0, 3, 1, 2).float())).numpy()
    ((query, q_labels, gal, g_labels),) = seen
    assert q_labels.tolist() == [0, 1] and g_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.abs(query - e[held]).max() < 0.02 and np.abs(gal - e[gallery]).max() < 0.02  # float16 features
