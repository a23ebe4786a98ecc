""""Same person?" questions on the bundled sample portraits: the queue, yes (merge), no (cannot-link kept by every
later grouping), skip, "not someone I know", and undo of each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.errors import EditError
from engine.grouping.children import active_child_direction
from engine.grouping.people import load_faces
from engine.grouping.same_person import QuestionConfig, same_probability
from engine.grouping.thresholds import stored_cluster_config
from engine.services.library import Library
from engine.store.schema import NOT_KNOWN, CannotLink, Face

from conftest import old_library


def _groups(lib) -> list[list[str]]:
    """Each person's photo names, sorted: what the user sees."""
    return sorted(sorted(Path(f.path).stem for f in lib.faces_of(p.id)) for p in lib.people(include_hidden=True))


def _pid(lib, stem: str) -> int:
    return next(f.person_id for p in lib.people(include_hidden=True) for f in lib.faces_of(p.id)
                if Path(f.path).stem == stem)


def _question(lib, stem_a: str, stem_b: str):
    pair = {_pid(lib, stem_a), _pid(lib, stem_b)}
    return next(q for q in lib.same_person_questions(None) if {q.person_a, q.person_b} == pair)


@pytest.fixture
def split(imported):
    """The sample grouped strictly (0.5, not saved): the two Macron photos are two groups; the library's own
    threshold (the default, 1.20) would put them together, as any later grouping does."""
    imported.recluster(0.5)
    groups = _groups(imported)
    assert ["macron_2014"] in groups and ["macron_2025"] in groups
    return imported


def test_queue_is_ranked_and_shows_both_sides(split):
    qs = split.same_person_questions(None)
    assert len(qs) >= 2
    scores = [q.score for q in qs]
    assert scores == sorted(scores, reverse=True)
    cfg = QuestionConfig()
    # The curve is relative to the library's grouping threshold (not the 0.5 of this one-off grouping).
    with split.store.session() as s:
        threshold = stored_cluster_config(s).threshold
        # The model has a child classifier (SFace's shipped one): the child curve, in the two groups' mean
        # child likelihoods.
        faces = load_faces(s, Face.person_id.is_not(None))
        c = active_child_direction(s).likelihood(faces.emb)
    child = {int(p): float(c[faces.person_ids == p].mean()) for p in np.unique(faces.person_ids)}
    for q in qs:
        # Asked when the distance curve finds it worth it; the probability shown is the child curve's.
        assert any(float(same_probability(q.distance, threshold, cfg, r)) >= cfg.min_probability
                   for r in range(cfg.neighbours + 1))
        # The curve of the distance and of how many groups are nearer one side than the other (0..neighbours).
        cp = child[q.person_a] * child[q.person_b]
        assert any(q.probability == pytest.approx(float(same_probability(q.distance, threshold, cfg, r, cp)), abs=1e-9)
                   for r in range(cfg.neighbours + 1))
        assert q.probability != pytest.approx(float(same_probability(q.distance, threshold, cfg)), abs=1e-6)
        assert q.id == f"{q.person_a}-{q.person_b}"
        assert {split.face(f).person_id for f in q.faces_a} == {q.person_a}
        assert {split.face(f).person_id for f in q.faces_b} == {q.person_b}
        assert len(q.faces_a) == min(q.size_a, cfg.strip) and len(q.faces_b) == min(q.size_b, cfg.strip)
    # The split Macron is asked about, and it is very likely the same person.
    q = _question(split, "macron_2014", "macron_2025")
    assert q.probability > 0.9
    # The limit cuts the same ranking.
    assert [x.id for x in split.same_person_questions(1)] == [qs[0].id]


def test_yes_merges_the_named_side_wins_and_undo_splits_again(split):
    split.rename(_pid(split, "macron_2025"), "Emmanuel")
    q = _question(split, "macron_2014", "macron_2025")
    assert q.name_a == "Emmanuel" and q.name_b is None  # the named side first
    kept = split.answer(q.id, "yes")
    assert kept == _pid(split, "macron_2014") == _pid(split, "macron_2025")
    assert split.person(kept).name == "Emmanuel"
    assert all(f.assignment == "user" for f in split.faces_of(kept))
    assert q.id not in {x.id for x in split.same_person_questions(None)}
    assert split.undo().startswith("Merge")
    assert _pid(split, "macron_2014") != _pid(split, "macron_2025")
    assert q.id in {x.id for x in split.same_person_questions(None)}


def test_no_is_kept_by_a_full_regrouping_and_undo_takes_it_back(split):
    q = _question(split, "macron_2014", "macron_2025")
    assert split.answer(q, "no") is None
    with split.store.session() as s:
        (link,) = s.query(CannotLink).all()
        assert {tuple(link.faces_a), tuple(link.faces_b)} == {tuple(f.id for f in split.faces_of(q.person_a)),
                                                              tuple(f.id for f in split.faces_of(q.person_b))}
    assert q.id not in {x.id for x in split.same_person_questions(None)}  # answered: never again
    journal = split.history(500)
    split.recluster()  # the library's threshold would merge them: the no keeps them apart
    assert _pid(split, "macron_2014") != _pid(split, "macron_2025")
    assert split.history(500) == journal  # so nothing changed
    assert not any({x.person_a, x.person_b} == {_pid(split, "macron_2014"), _pid(split, "macron_2025")}
                   for x in split.same_person_questions(None))
    assert split.undo().startswith("Not the same person")
    with split.store.session() as s:
        assert s.query(CannotLink).count() == 0
    split.recluster()
    assert _pid(split, "macron_2014") == _pid(split, "macron_2025")


def test_no_beside_a_named_person_keeps_the_faces_out_of_them(split):
    split.rename(_pid(split, "macron_2014"), "Emmanuel")
    q = _question(split, "macron_2014", "macron_2025")
    split.answer(q.id, "no")
    split.recluster()
    assert _pid(split, "macron_2025") != _pid(split, "macron_2014")
    split.rename(_pid(split, "macron_2025"), "Other")
    with pytest.raises(EditError, match="both named"):
        split.answer(f"{_pid(split, 'macron_2014')}-{_pid(split, 'macron_2025')}", "no")


def _covered_copy(src: Path, dest: Path) -> Path:
    """The photo with the upper half of the face covered (a hat, a hand): still the person, but far."""
    from engine.pipeline.faces import FaceFinder

    (face,) = FaceFinder().find(src).faces
    x, y, w, h = face.box
    im = Image.open(src).convert("RGB")
    ImageDraw.Draw(im).rectangle([x - 5, y, x + w + 5, y + 0.45 * h], fill=(120, 120, 120))
    dest.parent.mkdir(parents=True, exist_ok=True)
    im.save(dest, quality=92)
    return dest


def test_no_is_kept_by_an_incremental_import_whose_doubtful_face_is_asked(split, tmp_path):
    q = _question(split, "macron_2014", "macron_2025")
    split.answer(q, "no")
    for p in split.people():
        split.rename(p.id, f"P{p.id}")  # every group named: only the new face is free
    obama = _pid(split, "obama")
    sample = Path(split.face(split.faces_of(obama)[0].id).path).parent
    new = _covered_copy(sample / "obama.jpg", tmp_path / "new" / "obama_hat.jpg")
    for _ in split.import_paths([new.parent]):
        pass
    assert _pid(split, "macron_2014") != _pid(split, "macron_2025")  # the import's grouping kept the no
    fresh = _pid(split, "obama_hat")
    assert fresh != obama  # too far to be suggested ...
    asked = [x for x in split.same_person_questions(None) if fresh in (x.person_a, x.person_b)]
    assert asked and asked[0].person_a == obama and asked[0].name_a == f"P{obama}"  # ... so it is asked
    split.answer(asked[0], "yes")
    assert _pid(split, "obama_hat") == obama


def test_skip_lasts_for_the_session_only(split):
    q = split.same_person_questions(1)[0]
    journal = split.history(500)
    assert split.answer(q.id, "skip") is None
    assert q.id not in {x.id for x in split.same_person_questions(None)}
    assert split.history(500) == journal  # nothing stored
    root = split.root
    split.close()
    with Library(root) as again:  # another session (the CLI, the next start of the app)
        assert again.same_person_questions(1)[0].id == q.id


def test_bad_answers_are_refused_in_plain_words(split):
    q = split.same_person_questions(1)[0]
    with pytest.raises(EditError, match="yes, no or skip"):
        split.answer(q, "maybe")
    with pytest.raises(EditError, match="not a question id"):
        split.answer("12", "yes")
    with pytest.raises(EditError, match="out of date|no person"):
        split.answer("998-999", "yes")


def test_not_someone_i_know_stays_out_of_people_questions_and_groupings(split):
    sunak = _pid(split, "sunak")
    face = split.faces_of(sunak)[0].id
    assert any(sunak in (x.person_a, x.person_b) for x in split.same_person_questions(None))
    split.not_known_people([sunak])
    assert split.face(face).assignment == NOT_KNOWN and split.face(face).person_id is None
    assert ["sunak"] not in _groups(split)
    assert not any(face in x.faces_a + x.faces_b for x in split.same_person_questions(None))
    split.recluster(2.0)  # even a grouping that merges everything leaves the stranger out
    assert split.face(face).person_id is None
    assert split.stats()["faces"] == 6 and split.stats()["ungrouped"] == 0  # still a face of its photo
    assert split.undo().startswith("Regroup")
    assert split.undo().startswith("Mark 1 face")
    assert split.face(face).person_id is not None and ["sunak"] in _groups(split)


def test_people_are_listed_largest_first(split):
    sizes = [p.faces for p in split.people()]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 2


def test_cannot_link_keyword_keeps_faces_apart():
    from engine.grouping.cluster import cluster_faces

    rng = np.random.default_rng(0)
    centre = rng.normal(size=16)
    emb = centre + 0.05 * rng.normal(size=(6, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert len(set(cluster_faces(emb, 1.0).tolist())) == 1
    lab = cluster_faces(emb, 1.0, cannot_link=(np.array([0, 0, 1, 1]), np.array([2, 3, 2, 3])))
    assert lab[0] != lab[2] and lab[0] != lab[3] and lab[1] != lab[2] and lab[1] != lab[3]
    with pytest.raises(ValueError, match="outside"):
        cluster_faces(emb, 1.0, cannot_link=(np.array([0]), np.array([6])))


def test_no_is_kept_when_faces_left_by_an_interrupted_import_are_grouped(split):
    q = _question(split, "macron_2014", "macron_2025")
    split.answer(q, "no")
    later = next(f.id for f in split.faces_of(_pid(split, "macron_2025")))
    with split.store.transaction() as s:  # as an import killed before its grouping leaves a face
        from engine.store.schema import Face

        s.get(Face, later).person_id = None
        s.get(Face, later).assignment = None
    assert split.group_leftovers() == 1
    assert split.face(later).person_id is not None
    assert split.face(later).person_id != _pid(split, "macron_2014")


def test_migration_adds_the_cannot_links_table_after_a_backup(tmp_path):
    import sqlite3

    root = old_library(tmp_path / "old", "0004")
    with Library(root) as lib:
        assert lib.same_person_questions() == []
        with lib.store.session() as s:
            assert s.query(CannotLink).count() == 0
    (backup,) = (root / "backups").glob("*.sqlite")
    raw = sqlite3.connect(backup)
    try:
        tables = {r[0] for r in raw.execute("select name from sqlite_master where type='table'")}
        assert "people" in tables and "cannot_links" not in tables  # the backup is the old schema
    finally:
        raw.close()


def test_a_stranger_stays_one_when_the_changed_photo_is_imported_again(library, sample_dir):
    for _ in library.import_paths([sample_dir]):
        pass
    (face,) = [f for f in library.faces_in_photo(next(p.id for p in library.photos() if p.path.endswith("obama.jpg")))]
    library.not_known([face.id])
    photo = sample_dir / "obama.jpg"
    photo.write_bytes(photo.read_bytes() + b"\0")  # edited: imported again, its faces detected again
    assert list(library.import_paths([sample_dir]))[-1].done == 1
    (again,) = library.faces_in_photo(face.photo_id)
    assert again.id != face.id and again.assignment == NOT_KNOWN and again.person_id is None
    assert len(library.people()) == 3
