"""Finding photos by people (AND, only these people) and by date taken (EXIF, else file time)."""

from __future__ import annotations

import os
from datetime import date, datetime

import pytest

from engine.errors import EditError
from engine.services.search import parse_day

from conftest import SAMPLE, side_by_side

FILE_TIME = datetime(2015, 1, 1, 12).timestamp()


@pytest.fixture(scope="module")
def group_library(tmp_path_factory):
    """The sample plus two group photos (Obama+Sunak in 2019, Obama+Sunak+Ardern in 2021), every face
    named after the file and place it comes from; the single portraits have only a file date."""
    from engine.services.library import Library

    base = tmp_path_factory.mktemp("search")
    photos = base / "photos"
    photos.mkdir()
    for n in ("obama.jpg", "sunak.jpg", "ardern_2018.jpg"):
        (photos / n).write_bytes((SAMPLE / n).read_bytes())
        os.utime(photos / n, (FILE_TIME, FILE_TIME))
    side_by_side(["obama.jpg", "sunak.jpg"], photos / "pair.jpg", "2019:06:01 10:00:00")
    side_by_side(["obama.jpg", "sunak.jpg", "ardern_2018.jpg"], photos / "trio.jpg", "2021:03:02 18:30:00")
    lib = Library(base / "lib")
    last = list(lib.import_paths([photos]))[-1]
    assert last.faces == 8, last.failures
    people: dict[str, list[int]] = {"Obama": [], "Sunak": [], "Ardern": []}
    order = ["Obama", "Sunak", "Ardern"]
    for ph in lib.photos():
        file = ph.path.rsplit("/", 1)[-1]
        for f in lib.faces_in_photo(ph.id):
            if file in ("pair.jpg", "trio.jpg"):
                people[order[int(f.box[0] // 400)]].append(f.id)
            else:
                people[{"obama.jpg": "Obama", "sunak.jpg": "Sunak", "ardern_2018.jpg": "Ardern"}[file]].append(f.id)
    for name, ids in people.items():
        lib.split(ids, name)
    yield lib
    lib.close()


def files(hits):
    return [h.path.rsplit("/", 1)[-1] for h in hits]


def test_with_one_person_all_their_photos_oldest_first(group_library):
    hits = group_library.find_photos(["Obama"])
    assert files(hits) == ["obama.jpg", "pair.jpg", "trio.jpg"]
    assert [h.date_source for h in hits] == ["file", "exif", "exif"]
    assert hits[0].date == datetime(2015, 1, 1, 12) and hits[1].date == datetime(2019, 6, 1, 10)
    assert [n for _i, n in hits[2].people] == ["Ardern", "Obama", "Sunak"]


def test_with_several_people_means_all_of_them(group_library):
    assert files(group_library.find_photos(["Obama", "sunak"])) == ["pair.jpg", "trio.jpg"]
    assert files(group_library.find_photos(["Obama", "Ardern"])) == ["trio.jpg"]


def test_only_these_people(group_library):
    assert files(group_library.find_photos(["Obama", "Sunak"], only=True)) == ["pair.jpg"]
    assert files(group_library.find_photos(["Obama"], only=True)) == ["obama.jpg"]
    # A hidden person (a stranger put away) does not spoil "only".
    ardern = group_library.find_person("Ardern")
    group_library.set_hidden([ardern.id], True)
    try:
        assert files(group_library.find_photos(["Obama", "Sunak"], only=True)) == ["pair.jpg", "trio.jpg"]
    finally:
        group_library.set_hidden([ardern.id], False)


def test_date_range_uses_exif_date_then_file_time(group_library):
    assert files(group_library.find_photos(["Obama"], date_from="2020")) == ["trio.jpg"]
    assert files(group_library.find_photos(["Obama"], date_to="2019-06")) == ["obama.jpg", "pair.jpg"]
    assert files(group_library.find_photos([], date_from="2019-06-01", date_to="2019-06-01")) == ["pair.jpg"]
    assert files(group_library.find_photos([], date_to="2015-12-31")) == ["ardern_2018.jpg", "obama.jpg", "sunak.jpg"]


def test_bad_input_is_said_in_words(group_library):
    with pytest.raises(EditError, match="not a date"):
        group_library.find_photos([], date_from="last summer")
    with pytest.raises(EditError, match="not a real date"):
        parse_day("2021-02-30")
    with pytest.raises(EditError, match="no person named"):
        group_library.find_photos(["Nobody"])
    with pytest.raises(EditError, match="empty"):
        group_library.find_photos([], date_from="2021", date_to="2020")
    with pytest.raises(EditError, match="--only needs"):
        group_library.find_photos([], only=True)


def test_parse_day_ends():
    assert parse_day("2020") == date(2020, 1, 1) and parse_day("2020", end=True) == date(2020, 12, 31)
    assert parse_day("2024-02", end=True) == date(2024, 2, 29)
