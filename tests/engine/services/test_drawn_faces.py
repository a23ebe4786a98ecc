"""Faces the detector missed: drawn boxes (add-face) and rescans at a lower threshold; undo, redo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter
from sqlalchemy import func, select

from engine.errors import EditError
from engine.store.schema import Constraint, Face

from conftest import SAMPLE


def _faint_sunak(path):
    """Sunak, blurred and at a tenth of the contrast: YuNet scores him about 0.55, under the
    import's 0.6, so the import finds no face here."""
    im = Image.open(SAMPLE / "sunak.jpg").convert("RGB").filter(ImageFilter.GaussianBlur(4))
    ImageEnhance.Contrast(im).enhance(0.1).resize((374, 450)).save(path)


def _with_tiny_obama(path):
    """A grey photo with Obama's face 17 px wide: below the detector's 20 px floor."""
    canvas = Image.new("RGB", (400, 300), (128, 128, 128))
    face = Image.open(SAMPLE / "obama.jpg").convert("RGB").crop((200, 130, 480, 520)).resize((17, 24))
    canvas.paste(face, (150, 100))
    canvas.save(path)


def _n_faces(lib):
    with lib.store.session() as s:
        return s.scalar(select(func.count(Face.id)))


@pytest.fixture
def lib_with_misses(imported, tmp_path):
    """The imported sample with every person named, plus two photos whose faces the import missed."""
    for p in imported.people():
        file = imported.faces_of(p.id)[0].path.rsplit("/", 1)[-1]
        imported.rename(p.id, file.split("_")[0].removesuffix(".jpg").title())
    folder = tmp_path / "missed"
    folder.mkdir()
    _faint_sunak(folder / "faint.png")
    _with_tiny_obama(folder / "tiny.png")
    last = list(imported.import_paths([folder]))[-1]
    assert last.faces == 0 and not last.failures
    return imported, folder


def test_drawn_box_finds_landmarks_names_the_face_and_undo_redo_restore_it(lib_with_misses):
    lib, folder = lib_with_misses
    before = _n_faces(lib)
    a = lib.add_face(folder / "tiny.png", (148, 98, 21, 28), "Small Obama")
    assert (a.aligned_by, a.assignment, a.person_name) == ("landmarks", "user", "Small Obama")
    assert _n_faces(lib) == before + 1 and lib.thumbnail(a.face_id).exists()
    row = lib.face(a.face_id)
    assert row.person_name == "Small Obama" and row.box == (148, 98, 21, 28)
    with lib.store.session() as s:
        assert s.scalar(select(Constraint.kind).where(Constraint.face_id == a.face_id)) == "is"
        emb = s.get(Face, a.face_id).embedding
    assert len(emb) == 128
    assert lib.undo().startswith("Add a face to tiny.png")
    assert _n_faces(lib) == before
    with pytest.raises(EditError):
        lib.find_person("Small Obama")
    assert lib.redo().startswith("Add a face")
    back = lib.face(a.face_id)
    assert back.person_name == "Small Obama" and back.box == row.box
    with lib.store.session() as s:
        assert s.get(Face, a.face_id).embedding == emb


def test_box_without_a_face_is_aligned_from_the_box_and_starts_its_own_person(lib_with_misses):
    lib, folder = lib_with_misses
    people = len(lib.people())
    a = lib.add_face(folder / "tiny.png", (10, 10, 80, 100))  # grey: the back of a head
    assert (a.aligned_by, a.assignment, a.person_name) == ("box", "cluster", None)
    assert len(lib.people()) == people + 1
    # A box-aligned face uses the template's landmarks placed in the box.
    with lib.store.session() as s:
        lm = np.array(s.get(Face, a.face_id).landmarks)
    assert lm.shape == (5, 2) and (lm[:, 0] > 10).all() and (lm[:, 0] < 90).all()
    lib.undo()
    assert len(lib.people()) == people


def test_drawn_box_on_a_known_face_is_suggested_for_that_person(lib_with_misses):
    lib, folder = lib_with_misses
    a = lib.add_face(folder / "faint.png", (90, 80, 200, 270))
    assert a.aligned_by == "landmarks"
    assert (a.assignment, a.person_name) == ("suggestion", "Sunak")


def test_rescan_at_a_lower_threshold_adds_the_missed_face_once(lib_with_misses):
    lib, folder = lib_with_misses
    before = _n_faces(lib)
    assert lib.rescan(folder / "faint.png", threshold=0.7) == []
    (a,) = lib.rescan(folder / "faint.png")
    assert a.aligned_by == "landmarks" and _n_faces(lib) == before + 1
    assert lib.rescan(folder / "faint.png") == []  # the face it found is there now
    assert lib.undo().startswith("Rescan faint.png: 1 new face")
    assert _n_faces(lib) == before


def test_mistakes_are_said_in_words(lib_with_misses, tmp_path):
    lib, folder = lib_with_misses
    with pytest.raises(EditError, match="outside the photo"):
        lib.add_face(folder / "tiny.png", (500, 500, 40, 40))
    with pytest.raises(EditError, match="width and a height"):
        lib.add_face(folder / "tiny.png", (10, 10, 0, 40))
    with pytest.raises(EditError, match="not a photo of this library"):
        lib.add_face(tmp_path / "elsewhere.jpg", (10, 10, 40, 40))
    with pytest.raises(EditError, match="between 0.05 and 0.99"):
        lib.rescan(folder / "tiny.png", threshold=3)
