"""The Photos page (issue 13): a virtualised grid by date taken with month headers, the people and date
filters of ``find_photos``, the photo view where a missed face is drawn (real mouse drags) or found by a
rescan, birthdays on a person's page with ages on the photos, and a quiet terminal during the app's import.
Real widgets (offscreen), real events, the real engine, photos generated from the bundled sample portraits
with EXIF dates."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import re
import shutil
import threading
from datetime import datetime, timedelta

import pytest

from conftest import SAMPLE, close_window, open_copy, side_by_side  # noqa: E402
from conftest import wait_idle as _idle

pytest.importorskip("pytestqt")

from PySide6.QtCore import QObject, QPoint, QRectF, Qt, Signal  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

import app.gui.pyside_compat  # noqa: E402, F401  (before pytest-qt makes any Qt call: see that module)

WAIT = 30_000
FILE_TIME = datetime(2015, 1, 20, 12).timestamp()


# file -> (folder, people left to right, EXIF date taken or None: the file's time, 20 January 2015)
PHOTOS = {
    "sunak.jpg": ("2021", ["sunak.jpg"], "2021:03:20 09:00:00"),
    "trio.jpg": ("2021", ["obama.jpg", "sunak.jpg", "ardern_2018.jpg"], "2021:03:02 18:30:00"),
    "pair.jpg": ("2019", ["obama.jpg", "sunak.jpg"], "2019:06:01 10:00:00"),
    "ardern.jpg": ("2019", ["ardern_2018.jpg"], "2018:07:04 15:00:00"),
    "obama.jpg": ("2019", ["obama.jpg"], None),
}
WHO = {"obama.jpg": "Obama", "sunak.jpg": "Sunak", "ardern_2018.jpg": "Ardern"}
NEWEST_FIRST = ["sunak.jpg", "trio.jpg", "pair.jpg", "ardern.jpg", "obama.jpg"]


@pytest.fixture(scope="module")
def _dated_template(tmp_path_factory):
    """Five photos in two folders, four with an EXIF date taken and one with only its file time, every face
    named after the portrait it comes from."""
    from engine.services.library import Library

    base = tmp_path_factory.mktemp("dated")
    for name, (folder, parts, taken) in PHOTOS.items():
        (base / "photos" / folder).mkdir(parents=True, exist_ok=True)
        out = base / "photos" / folder / name
        side_by_side(parts, out, taken)
        if taken is None:
            os.utime(out, (FILE_TIME, FILE_TIME))
    with Library(base / "library") as lib:
        last = list(lib.import_paths([base / "photos"]))[-1]
        assert last.faces == 8, last.failures
        people: dict[str, list[int]] = {n: [] for n in WHO.values()}
        for ph in lib.photos():
            parts = PHOTOS[ph.path.rsplit("/", 1)[-1]][1]
            for f in lib.faces_in_photo(ph.id):
                people[WHO[parts[int(f.box[0] // 400)]]].append(f.id)
        for name, ids in people.items():
            lib.split(ids, name)
    return base


@pytest.fixture
def dated(tmp_path, _dated_template):
    lib = open_copy(_dated_template / "library", tmp_path / "library")
    yield lib
    lib.close()


@pytest.fixture
def window(qtbot, dated):
    from app.gui.main_window import MainWindow

    before = {t.ident for t in threading.enumerate()}
    w = MainWindow(dated, owns_library=False)
    w.resize(1100, 760)
    w.show()
    w.activateWindow()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: len(w.people_page.model.rows) == 3, timeout=WAIT)
    yield w
    if not w.is_closed:
        close_window(qtbot, w, before, WAIT)


def _shown(page) -> list[str]:
    return [p[1].rsplit("/", 1)[-1] for p in page.model.photos]


def _headers(page) -> list[str]:
    from app.gui.photo_grid import HEADER_ROLE

    m = page.model
    return [m.index(r, 0).data(HEADER_ROLE).label for r in m.header_rows()]


def _photos_page(qtbot, w):
    w.show_section("photos")
    page = w.photos_page
    qtbot.waitUntil(lambda: len(page.model.photos) == 5 and page.folder.count() == 3 and len(page.people_rows) == 3,
                    timeout=WAIT)
    return page


# -- the engine's side: the timeline behind the grid ---------------------------------------------------------------


def test_timeline_is_newest_first_by_exif_date_in_months_with_find_photos_filters(dated):
    tl = dated.photo_timeline()
    assert [p[1].rsplit("/", 1)[-1] for p in tl.photos] == NEWEST_FIRST
    assert [p[3] for p in tl.photos] == ["exif", "exif", "exif", "exif", "file"]
    assert [(m.label, m.start, m.count) for m in tl.months] == [
        ("March 2021", 0, 2), ("June 2019", 2, 1), ("July 2018", 3, 1), ("January 2015", 4, 1)]
    # The same photos as find_photos for every filter, only the order differs.
    for people, only, d0, d1 in [(["Obama"], False, None, None), (["Obama", "Sunak"], False, None, None),
                                 (["Obama", "Sunak"], True, None, None), (["Sunak"], False, "2020", "2021-03-10"),
                                 ([], False, "2018-07", "2019")]:
        got = dated.photo_timeline(people, only=only, date_from=d0, date_to=d1)
        want = dated.find_photos(people, only=only, date_from=d0, date_to=d1)
        assert sorted(p[0] for p in got.photos) == sorted(h.id for h in want) and len(want) > 0
    folder = str(next(p.path for p in dated.photos() if p.path.endswith("pair.jpg")).rsplit("/", 1)[0])
    assert [p[1].rsplit("/", 1)[-1] for p in dated.photo_timeline(folder=folder).photos] == [
        "pair.jpg", "ardern.jpg", "obama.jpg"]


# -- the grid: months, virtualisation, keys ---------------------------------------------------------------------


def _double_click(view, pos: QPoint) -> None:
    """As a mouse does it: a click, then the second press that is a double click."""
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)


class CountingThumbs(QObject):
    """Stands in for the thumbnail loader: records which photos the grid asked for."""

    ready = Signal(int)

    def __init__(self):
        super().__init__()
        self.asked: set[int] = set()

    def get(self, photo_id):
        self.asked.add(photo_id)
        return None


def _synthetic(n: int):
    """``n`` photo rows over about four years, newest first, as ``photo_timeline`` returns them."""
    from engine.services.search import Month, Timeline

    start = datetime(2024, 12, 31, 12)
    photos = [(i + 1, f"/photos/{i:06d}.jpg", start - timedelta(hours=7 * i), "exif") for i in range(n)]
    months, s = [], 0
    for i in range(1, n + 1):
        if i == n or (photos[i][2].year, photos[i][2].month) != (photos[s][2].year, photos[s][2].month):
            months.append(Month(photos[s][2].year, photos[s][2].month, s, i - s))
            s = i
    return Timeline(photos, months)


def test_grid_of_thousands_paints_only_what_is_on_screen_and_makes_no_widget_per_photo(qtbot):
    from app.gui.photo_grid import HEADER_ROLE, PhotoGridModel, PhotoGridView

    tl = _synthetic(5000)
    thumbs = CountingThumbs()
    model = PhotoGridModel(thumbs)
    view = PhotoGridView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    widgets_before = len(view.findChildren(QWidget))
    model.set_timeline(tl)
    QApplication.processEvents()
    view.repaint()
    cols = model.columnCount()
    assert cols == view.viewport().width() // 176 >= 4
    assert len(model.header_rows()) == len(tl.months) > 40
    # One row per month header plus the month's photos, as many a row as fit.
    assert model.rowCount() == sum(1 + -(-m.count // cols) for m in tl.months)
    # Only the cells on screen asked for a thumbnail: the first screen's photos, a few rows of them.
    on_screen = (700 // (view.viewport().width() // cols) + 2) * cols
    assert 0 < len(thumbs.asked) <= on_screen and max(thumbs.asked) <= on_screen
    assert len(view.findChildren(QWidget)) == widgets_before  # no widget per photo or per row
    # Scrolled to the end: the last photos, and not the ones in between.
    thumbs.asked.clear()
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum())
    view.repaint()
    assert thumbs.asked and min(thumbs.asked) > 5000 - 2 * on_screen and 5000 in thumbs.asked
    # Headers span the row and come newest first, ending with the oldest month.
    first, last = model.header_rows()[0], model.header_rows()[-1]
    assert view.columnSpan(first, 0) == cols and view.columnSpan(last, 0) == cols
    assert model.index(first, 0).data(HEADER_ROLE).label == "December 2024"
    assert model.index(last, 0).data(HEADER_ROLE) is tl.months[-1]


def test_keys_move_over_photos_and_skip_the_month_headers(qtbot):
    from app.gui.photo_grid import PhotoGridModel, PhotoGridView

    tl = _synthetic(300)
    model = PhotoGridModel(CountingThumbs())
    view = PhotoGridView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    model.set_timeline(tl)
    view.setFocus()
    opened = []
    view.photo_activated.connect(opened.append)
    view.select_photo(0)
    first = tl.months[0]
    # Right steps through a month's end into the next month's first photo (over its header).
    view.select_photo(first.count - 1)
    QTest.keyClick(view.viewport(), Qt.Key.Key_Right)
    assert view.current_photo() == first.count
    # Down from a month's last row goes to the next month's first row, same column or its last photo.
    view.select_photo(first.count - 1)
    QTest.keyClick(view.viewport(), Qt.Key.Key_Down)
    assert view.current_photo() >= first.count
    QTest.keyClick(view.viewport(), Qt.Key.Key_End)
    assert view.current_photo() == 299
    QTest.keyClick(view.viewport(), Qt.Key.Key_Return)
    assert opened == [299]
    # A double click on a photo opens it; on a header nothing happens.
    ix = model.index_of(2)
    view.scrollTo(ix)
    _double_click(view, view.visualRect(ix).center())
    assert opened == [299, 2]
    hx = model.index(model.header_rows()[0], 0)
    view.scrollTo(hx)
    _double_click(view, view.visualRect(hx).center())
    assert opened == [299, 2]


def test_photos_page_shows_months_by_date_taken_and_opens_the_photo(qtbot, window):
    w = window
    page = _photos_page(qtbot, w)
    assert _shown(page) == NEWEST_FIRST
    assert _headers(page) == ["March 2021", "June 2019", "July 2018", "January 2015"]
    assert page.count.text().startswith("5 photos, January 2015 – March 2021")
    # The months beside the grid: a click on June 2019 puts it at the top, its photo selected.
    months = page.months_view
    assert months.isVisible() and months.model().stringList() == _headers(page)
    assert months.currentIndex().row() == 0  # the month at the top of the grid
    june = months.model().index(1)
    qtbot.mouseClick(months.viewport(), Qt.MouseButton.LeftButton, pos=months.visualRect(june).center())
    assert page.grid.current_photo() == 2 and page.grid.rowAt(2) == page.model.header_rows()[1]
    assert months.currentIndex().row() == 1
    # Thumbnails arrive from the engine's cache, off the GUI thread.
    qtbot.waitUntil(lambda: all(page.thumbs.get(p[0]) is not None for p in page.model.photos), timeout=WAIT)
    # A double click on the second photo (the trio) opens it with its three named faces.
    grid = page.grid
    ix = page.model.index_of(1)
    _double_click(grid, grid.visualRect(ix).center())
    assert page.pages.currentWidget() is page.photo_page
    qtbot.waitUntil(lambda: page.viewer.image is not None and len(page.viewer.faces) == 3, timeout=WAIT)
    assert page.photo_title.text() == "trio.jpg" and page.photo_date.text() == "2 March 2021"
    # Right: the next (older) photo; Esc: back to the grid, on the photo last seen.
    QTest.keyClick(page.viewer, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: page.photo_title.text() == "pair.jpg" and len(page.viewer.faces) == 2, timeout=WAIT)
    QTest.keyClick(page.viewer, Qt.Key.Key_Escape)
    assert page.pages.currentWidget() is page.grid_page and grid.current_photo() == 2
    # Enter on the file-dated photo opens it and says where its date comes from.
    grid.setFocus()
    grid.select_photo(4)
    QTest.keyClick(grid.viewport(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.photo_title.text() == "obama.jpg", timeout=WAIT)
    assert "file date" in page.photo_date.text()
    # "Photos" in the sidebar, from a photo: back to the grid.
    item = w._items["photos"]
    qtbot.mouseClick(w.sidebar.viewport(), Qt.MouseButton.LeftButton, pos=w.sidebar.visualItemRect(item).center())
    assert page.pages.currentWidget() is page.grid_page
    _idle(qtbot, w)


def test_people_folder_and_date_filters_update_the_grid(qtbot, window):
    w = window
    page = _photos_page(qtbot, w)

    def pick(name):
        edit = page.person_pick.lineEdit()
        edit.setFocus()
        edit.clear()
        QTest.keyClicks(edit, name)
        QTest.keyClick(edit, Qt.Key.Key_Return)

    pick("obama")
    qtbot.waitUntil(lambda: _shown(page) == ["trio.jpg", "pair.jpg", "obama.jpg"], timeout=WAIT)
    assert [b.text() for b in page.findChildren(type(page.back_btn), "chip")][0].startswith("Obama")
    assert page.count.text().endswith("(filtered)")
    pick("Sunak")  # both of them (AND)
    qtbot.waitUntil(lambda: _shown(page) == ["trio.jpg", "pair.jpg"], timeout=WAIT)
    qtbot.mouseClick(page.only, Qt.MouseButton.LeftButton)  # only them: not the trio with Ardern
    qtbot.waitUntil(lambda: _shown(page) == ["pair.jpg"], timeout=WAIT)
    assert _headers(page) == ["June 2019"]
    qtbot.mouseClick(page.only, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_shown(page)) == 2, timeout=WAIT)
    # A date range, typed: from 2020 (a year means its first day).
    page.date_from.setFocus()
    QTest.keyClicks(page.date_from, "2020")
    QTest.keyClick(page.date_from, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _shown(page) == ["trio.jpg"], timeout=WAIT)
    # A chip's cross takes that person out of the filter.
    chip = next(b for b in page.findChildren(type(page.back_btn), "chip") if b.text().startswith("Obama"))
    qtbot.mouseClick(chip, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _shown(page) == ["sunak.jpg", "trio.jpg"], timeout=WAIT)
    # A date that is not one says so in words and the grid stays.
    page.date_to.setFocus()
    QTest.keyClicks(page.date_to, "last week")
    QTest.keyClick(page.date_to, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "is not a date" in w.status_label.text(), timeout=WAIT)
    assert _shown(page) == ["sunak.jpg", "trio.jpg"]
    qtbot.mouseClick(page.clear_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_shown(page)) == 5, timeout=WAIT)
    # The folder filter: the photos directly in the 2019 folder.
    i = next(i for i in range(page.folder.count()) if (page.folder.itemData(i) or "").endswith("2019"))
    page.folder.setCurrentIndex(i)
    page.folder.activated.emit(i)
    qtbot.waitUntil(lambda: _shown(page) == ["pair.jpg", "ardern.jpg", "obama.jpg"], timeout=WAIT)
    _idle(qtbot, w)


# -- drawing a missed face, rescanning --------------------------------------------------------------------------


def _drag(widget, a: QPoint, b: QPoint) -> None:
    QTest.mousePress(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(widget, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    QTest.mouseMove(widget, b)
    QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def _open(qtbot, page, name: str, faces: int) -> None:
    page.open_photo(_shown(page).index(name))
    qtbot.waitUntil(lambda: page.viewer.image is not None and page.photo_title.text() == name
                    and len(page.viewer.faces) == faces, timeout=WAIT)


def test_a_box_dragged_on_the_photo_becomes_a_named_face_and_ctrl_z_takes_it_back(qtbot, window):
    w = window
    page = _photos_page(qtbot, w)
    lib = w.controller.library
    _open(qtbot, page, "sunak.jpg", 1)
    v = page.viewer
    # D starts drawing; a drag over the top left of the photo (the background: no face was found there).
    QTest.keyClick(v, Qt.Key.Key_D)
    assert page.drawer.active and page.draw_btn.isChecked()
    r = v._transform().mapRect(QRectF(0, 0, 400, 480))
    a = QPoint(int(r.left() + r.width() * 0.05), int(r.top() + r.height() * 0.05))
    b = QPoint(int(r.left() + r.width() * 0.3), int(r.top() + r.height() * 0.3))
    _drag(v, a, b)
    assert not page.drawer.active  # one box at a time
    qtbot.waitUntil(lambda: getattr(page, "name_dialog", None) is not None, timeout=WAIT)
    dlg = page.name_dialog
    assert v.pending_box is not None  # the box stays on the photo while the name is asked
    QTest.keyClicks(dlg.name.lineEdit(), "Grandma")
    QTest.keyClick(dlg.name.lineEdit(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(v.faces) == 2 and v.pending_box is None, timeout=WAIT)
    new = next(f for f in v.faces if f.person_name == "Grandma")
    assert new.assignment == "user"
    x, y, bw, bh = new.box
    assert x < 0.1 * 400 and y < 0.1 * 480 and 0.15 * 400 < bw < 0.35 * 400
    assert "Grandma" in w.status_label.text()
    # Drawn on the photo afterwards: its name label is on screen.
    v.repaint()
    assert len(v.label_rects) == 2
    # Ctrl+Z (the window's shortcut) removes the drawn face and the person made for it.
    QTest.keyClick(v, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(v.faces) == 1, timeout=WAIT)
    assert not any(p.name == "Grandma" for p in lib.people(include_hidden=True))
    _idle(qtbot, w)


def test_escape_cancels_the_box_and_the_rescan_runs_as_an_edit(qtbot, window):
    w = window
    page = _photos_page(qtbot, w)
    _open(qtbot, page, "pair.jpg", 2)
    v = page.viewer
    qtbot.mouseClick(page.draw_btn, Qt.MouseButton.LeftButton)
    assert page.drawer.active
    QTest.keyClick(v, Qt.Key.Key_Escape)  # stops drawing, stays on the photo
    assert not page.drawer.active and page.pages.currentWidget() is page.photo_page
    # Cancelling the name question leaves the photo as it was.
    page.drawer.set_active(True)
    _drag(v, QPoint(v.width() // 2 - 60, 40), QPoint(v.width() // 2 + 20, 120))
    qtbot.waitUntil(lambda: getattr(page, "name_dialog", None) is not None, timeout=WAIT)
    page.name_dialog.reject()
    assert v.pending_box is None and len(v.faces) == 2
    # Rescan: the detector again at a lower threshold, through the edit queue (never on the GUI thread).
    done = []
    w.controller.edit_done.connect(done.append)
    qtbot.mouseClick(page.rescan_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "rescan" in done, timeout=WAIT)
    assert re.search(r"No more faces found|Found \d+ more face", w.status_label.text())
    qtbot.waitUntil(lambda: page.rescan_btn.isEnabled(), timeout=WAIT)
    _idle(qtbot, w)


# -- birthdays --------------------------------------------------------------------------------------------------


def test_birthday_typed_on_the_person_page_shows_ages_on_the_photos(qtbot, window):
    w = window
    lib = w.controller.library
    sunak = lib.find_person("Sunak")
    w.open_person(sunak.id)
    page = w.person_page
    qtbot.waitUntil(lambda: page.person is not None and page.person.id == sunak.id, timeout=WAIT)
    assert page.birth_edit.text() == ""
    page.birth_edit.setFocus()
    QTest.keyClicks(page.birth_edit, "1980-05-12")
    QTest.keyClick(page.birth_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: str(lib.birth_date(sunak.id)) == "1980-05-12", timeout=WAIT)
    # The photo viewer of the person page names them with their age on the photo's date.
    qtbot.waitUntil(lambda: bool(page.viewer.ages) and page.viewer.image is not None, timeout=WAIT)
    page.viewer.repaint()
    ages = set(page.viewer.ages.values())
    assert ages <= {40, 39} and ages
    # Each face of the grid says the age in its tooltip: 40 in March 2021, 39 in June 2019.
    qtbot.waitUntil(lambda: len(page.faces_model.ages) == 3, timeout=WAIT)
    assert sorted(page.faces_model.ages.values()) == [39, 40, 40]
    tips = [page.faces_model.index(i).data(Qt.ItemDataRole.ToolTipRole) for i in range(3)]
    assert sum("age 40 in this photo" in t for t in tips) == 2 and sum("age 39" in t for t in tips) == 1
    # In the Photos page: Sunak was 40 on 20 March 2021 and 39 on 1 June 2019.
    w.show_section("photos")
    photos = w.photos_page
    qtbot.waitUntil(lambda: len(photos.model.photos) == 5, timeout=WAIT)
    _open(qtbot, photos, "pair.jpg", 2)
    qtbot.waitUntil(lambda: bool(photos.viewer.ages), timeout=WAIT)
    face = next(f for f in photos.viewer.faces if f.person_id == sunak.id)
    assert photos.viewer.ages == {face.id: 39}
    assert photos.viewer._label(face) == "Sunak (39)"
    # A date that is not one: said in words, nothing stored.
    w.open_person(sunak.id)
    qtbot.waitUntil(lambda: page.birth_edit.text() == "1980-05-12", timeout=WAIT)
    page.birth_edit.setFocus()
    page.birth_edit.selectAll()
    QTest.keyClicks(page.birth_edit, "12/05/80")
    QTest.keyClick(page.birth_edit, Qt.Key.Key_Return)
    assert "is not a date" in w.status_label.text() and page.birth_edit.text() == "1980-05-12"
    # Undo takes the birthday away again.
    _idle(qtbot, w)
    QTest.keyClick(page.faces_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: lib.birth_date(sunak.id) is None, timeout=WAIT)
    _idle(qtbot, w)


# -- a quiet terminal during the app's import -------------------------------------------------------------------

NOISE = re.compile(r"TIFF|JPEGLib|ZIPDecode|LZWDecode|libpng|Warning|warn|decoder error|Corrupt|Premature")


def test_the_apps_import_sends_decoder_messages_to_the_library_log(qtbot, library, tmp_path, capfd):
    from malformed_images import write_corpus

    from app.gui.main_window import MainWindow

    corpus = write_corpus(tmp_path / "corpus", copies=1)
    folder = tmp_path / "photos"
    folder.mkdir()
    # The kinds that make C decoders talk: broken TIFF strips, PNG chunks, BMP headers, and one real photo.
    picked = [p for p in corpus if p.suffix.lower() in (".tif", ".tiff", ".png", ".bmp", ".gif")][:90]
    for p in picked:
        shutil.copy(p, folder / p.name)
    shutil.copy(SAMPLE / "obama.jpg", folder / "obama.jpg")
    before = {t.ident for t in threading.enumerate()}
    w = MainWindow(library, owns_library=False)
    w.show()
    qtbot.waitExposed(w)
    capfd.readouterr()
    done = []
    w.controller.import_finished.connect(done.append)
    w.controller.import_paths([folder])
    qtbot.waitUntil(lambda: bool(done), timeout=120_000)
    _idle(qtbot, w)
    err = capfd.readouterr().err
    assert [ln for ln in err.splitlines() if NOISE.search(ln)] == []
    progress = done[0]
    assert progress.faces == 1 and len(progress.failures) >= 60
    log = (library.root / "logs" / "facenet-photos.log").read_text()
    assert "---- import" in log and NOISE.search(log)
    close_window(qtbot, w, before, WAIT)
