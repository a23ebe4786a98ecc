"""Birthdays: ages on faces, and no face from a photo taken before someone's birth is suggested for them."""

from __future__ import annotations

from datetime import date

import pytest
from PIL import Image

from engine.errors import EditError
from engine.store.dates import age_on

from conftest import SAMPLE


def _copy_taken(src, dest, taken: str):
    """A mirrored copy (a near-identical embedding) with an EXIF date taken."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    Image.open(src).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(dest, exif=exif, quality=95)


@pytest.fixture
def ardern(library, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    (first / "ardern.jpg").write_bytes((SAMPLE / "ardern_2018.jpg").read_bytes())
    list(library.import_paths([first]))
    (p,) = library.people()
    library.rename(p.id, "Jacinda")
    later = tmp_path / "later"
    later.mkdir()
    _copy_taken(SAMPLE / "ardern_2018.jpg", later / "in_1975.jpg", "1975:06:01 12:00:00")
    _copy_taken(SAMPLE / "ardern_2018.jpg", later / "in_2019.jpg", "2019:06:01 12:00:00")
    return library, p.id, later


def _where(lib, pid):
    return {f.path.rsplit("/", 1)[-1]: f.assignment for f in lib.faces_of(pid)}


def test_no_suggestion_from_before_the_birth(ardern):
    lib, pid, later = ardern
    lib.set_birthday(pid, "1980-07-26")
    list(lib.import_paths([later]))
    assert _where(lib, pid) == {"ardern.jpg": "cluster", "in_2019.jpg": "suggestion"}
    # The 1975 face is somebody else's (a parent, say): a person of its own.
    others = [p for p in lib.people() if p.id != pid]
    assert [lib.faces_of(p.id)[0].path.rsplit("/", 1)[-1] for p in others] == ["in_1975.jpg"]


def test_without_a_birthday_both_are_suggested(ardern):
    # The rule above is what keeps the 1975 face out: without it, it is suggested too.
    lib, pid, later = ardern
    list(lib.import_paths([later]))
    assert _where(lib, pid) == {"ardern.jpg": "cluster", "in_1975.jpg": "suggestion", "in_2019.jpg": "suggestion"}


def test_birthday_set_later_takes_earlier_suggestions_away_and_undo_brings_them_back(ardern):
    lib, pid, later = ardern
    list(lib.import_paths([later]))
    freed = lib.set_birthday(pid, "1980-07-26")
    assert len(freed) == 1
    assert _where(lib, pid) == {"ardern.jpg": "cluster", "in_2019.jpg": "suggestion"}
    assert lib.birth_date(pid) == date(1980, 7, 26)
    # Regrouped, but never back with her.
    lib.recluster()
    assert "in_1975.jpg" not in _where(lib, pid)
    assert lib.undo().startswith("Jacinda: born 1980-07-26")
    assert lib.birth_date(pid) is None
    assert "in_1975.jpg" in _where(lib, pid)


def test_confirmed_faces_stay_and_mistakes_are_words(ardern):
    lib, pid, later = ardern
    list(lib.import_paths([later]))
    early = next(f.id for f in lib.faces_of(pid) if f.path.endswith("in_1975.jpg"))
    lib.confirm([early])  # the user's own word is kept, even against a birthday
    assert lib.set_birthday(pid, "1980-07-26") == []
    assert early in {f.id for f in lib.faces_of(pid)}
    with pytest.raises(EditError, match="not a date"):
        lib.set_birthday(pid, "26/07/1980")
    with pytest.raises(EditError, match="in the future"):
        lib.set_birthday(pid, "2999-01-01")


def test_age_on():
    born = date(1980, 7, 26)
    assert age_on(born, date(1980, 7, 26)) == 0
    assert age_on(born, date(2019, 7, 25)) == 38 and age_on(born, date(2019, 7, 26)) == 39
    assert age_on(born, date(1975, 6, 1)) < 0 and age_on(born, date(1980, 7, 25)) < 0
