"""What the desktop app shows after each action (issue 15): results selected and in view, navigation that
returns where the user came from, search on what is shown, filters, the photo viewers and the review grid.
Real widgets (offscreen), real mouse and key events, the real engine and the bundled sample portraits."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest

from conftest import SAMPLE, close_window  # noqa: E402
from conftest import open_window as _open
from conftest import wait_idle as _idle

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import app.gui.pyside_compat  # noqa: E402, F401  (before pytest-qt makes any Qt call: see that module)

WAIT = 30_000
ID = Qt.ItemDataRole.UserRole + 2


def _close(qtbot, w, threads_before) -> None:
    close_window(qtbot, w, threads_before, WAIT)


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, imported, settings):
    w, before = _open(qtbot, imported, settings)
    qtbot.waitUntil(lambda: len(w.people_page.model.rows) == 4, timeout=WAIT)
    yield w
    if not w.is_closed:
        _close(qtbot, w, before)


def _pid(w, name_part: str) -> int:
    lib = w.controller.library
    for p in lib.people(include_hidden=True):
        if all(name_part in Path(f.path).name for f in lib.faces_of(p.id)):
            return p.id
    raise AssertionError(name_part)


def _click_item(qtbot, view, index, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, view.visualRect(index).center())


# -- 10: search what is shown, "at least N faces", sort ---------------------------------------------------------


def test_search_finds_the_shown_label_and_the_filter_and_sort_persist(qtbot, window, settings):
    w = window
    page = w.people_page
    macron = _pid(w, "macron")
    # "#N" finds "Unnamed #N" (the label on screen), not only names.
    qtbot.keyClicks(page.search, f"#{macron}")
    qtbot.waitUntil(lambda: [p.id for p in page.model.rows][:1] == [macron], timeout=WAIT)
    assert page.model.rows[0].label == f"Unnamed #{macron}"
    page.search.clear()
    qtbot.waitUntil(lambda: len(page.model.rows) == 4, timeout=WAIT)

    # At least 2 faces: Obama and Sunak (one photo each) leave the grid, and the count says so.
    page.min_faces.setFocus()
    qtbot.keyClick(page.min_faces, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: len(page.model.rows) == 2, timeout=WAIT)
    assert all(p.faces >= 2 for p in page.model.rows)
    assert "2 with fewer faces not shown" in page.count.text()

    # Sort by name: named people A to Z come first.
    lib = w.controller.library
    lib.rename(_pid(w, "ardern"), "Zoe")
    lib.rename(macron, "Adam")
    page.sort.setCurrentIndex(page.sort.findData("name"))
    qtbot.waitUntil(lambda: [p.label for p in page.model.rows] == ["Adam", "Zoe"], timeout=WAIT)
    _idle(qtbot, w)
    assert int(settings.value("people/min_faces")) == 2 and settings.value("people/sort") == "name"


def test_filter_and_sort_come_back_on_the_next_start(qtbot, imported, settings):
    settings.setValue("people/min_faces", 2)
    settings.setValue("people/sort", "recent")
    w, before = _open(qtbot, imported, settings)
    try:
        qtbot.waitUntil(lambda: len(w.people_page.model.rows) == 2, timeout=WAIT)
        assert w.people_page.min_faces.value() == 2 and w.people_page.sort.currentData() == "recent"
    finally:
        _close(qtbot, w, before)


def test_people_for_grid_sorts_by_most_recent_photo(imported):
    from engine.services.overview import people_for_grid

    grid = people_for_grid(imported, sort="recent")
    assert len(grid.people) == 4 and grid.fewer == 0
    with pytest.raises(ValueError, match="sort must be one of"):
        people_for_grid(imported, sort="age")


# -- 8: results stay in view ------------------------------------------------------------------------------------


def test_merged_person_is_selected_and_scrolled_to(qtbot, window):
    w = window
    page = w.people_page
    ardern, obama = _pid(w, "ardern"), _pid(w, "obama")
    # A narrow window: the grid scrolls.
    w.resize(820, 520)
    _idle(qtbot, w)
    _click_item(qtbot, page.view, page.model.index(page.model.row_of(ardern)))
    _click_item(qtbot, page.view, page.model.index(page.model.row_of(obama)), Qt.KeyboardModifier.ControlModifier)
    assert sorted(page.view.selected_ids()) == sorted([ardern, obama])
    qtbot.keyClick(page.view, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(page.model.rows) == 3, timeout=WAIT)
    _idle(qtbot, w)
    assert page.view.selected_ids() == [ardern]  # the merged person, alone, selected and current
    assert page.view.currentIndex().data(ID) == ardern
    rect = page.view.visualRect(page.view.currentIndex())
    assert page.view.viewport().rect().intersects(rect)


def test_new_person_opens_with_the_name_field_ready(qtbot, window):
    w = window
    lib = w.controller.library
    pid = _pid(w, "ardern")
    w.open_person(pid)
    page = w.person_page
    qtbot.waitUntil(lambda: len(page.faces_model.rows) == 2, timeout=WAIT)
    first = page.faces_model.rows[0].id
    _click_item(qtbot, page.faces_view, page.faces_model.index(0))
    qtbot.mouseClick(page.split_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.person_id not in (None, pid), timeout=WAIT)
    new_pid = lib.face(first).person_id
    assert page.person_id == new_pid
    qtbot.waitUntil(lambda: page.name_edit.hasFocus(), timeout=WAIT)
    qtbot.keyClicks(page.name_edit, "Jacinda")
    qtbot.keyClick(page.name_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: lib.person(new_pid).name == "Jacinda", timeout=WAIT)
    _idle(qtbot, w)


# -- 9: navigation ----------------------------------------------------------------------------------------------


def test_back_returns_to_photos_and_the_side_filter_starts_empty(qtbot, window):
    w = window
    people = w.people_page
    # An old search on the people page...
    qtbot.keyClicks(people.search, "nobody-like-this")
    qtbot.waitUntil(lambda: people.model.rows == [], timeout=WAIT)
    # ...then Photos, where a face box opens its person.
    w.show_section("photos")
    photos = w.photos_page
    qtbot.waitUntil(lambda: len(photos.model.photos) == 6, timeout=WAIT)
    photos.open_photo(0)
    qtbot.waitUntil(lambda: photos.viewer.image is not None and bool(photos.viewer.faces), timeout=WAIT)
    face = photos.viewer.faces[0]
    qtbot.mouseClick(photos.viewer, Qt.MouseButton.LeftButton, pos=photos.viewer.face_rect(face).center().toPoint())
    qtbot.waitUntil(lambda: w.stack.currentWidget() is w.person_page, timeout=WAIT)
    page = w.person_page
    assert page.back_btn.text() == "← Photos"
    qtbot.waitUntil(lambda: page.person is not None and bool(page.drop_model.rows), timeout=WAIT)
    qtbot.keyClicks(page.drop_filter, "zzz")
    assert page.drop_model.rows == []
    # Another person (clicked in the side list... here: opened directly) starts with the filter cleared.
    other = next(p.id for p in w.controller.library.people() if p.id != page.person_id)
    w.open_person(other)
    assert page.drop_filter.text() == ""
    qtbot.waitUntil(lambda: page.person is not None and page.person.id == other and bool(page.drop_model.rows),
                    timeout=WAIT)
    # Back (the button, a real click) goes to Photos, where the user came from.
    qtbot.mouseClick(page.back_btn, Qt.MouseButton.LeftButton)
    assert w.stack.currentWidget() is w.photos_page
    # And People, reached from the sidebar (a real click on it), does not keep the stale search.
    sidebar = w.sidebar
    item = w._items["people"]
    qtbot.mouseClick(sidebar.viewport(), Qt.MouseButton.LeftButton, pos=sidebar.visualItemRect(item).center())
    assert w.stack.currentWidget() is people and people.search.text() == ""
    qtbot.waitUntil(lambda: len(people.model.rows) == 4, timeout=WAIT)
    # The same from a person's page opened from Photos: the sidebar's People starts unfiltered.
    qtbot.keyClicks(people.search, "nobody-like-this")
    w.show_section("photos")
    w.open_person(other)
    w.show_section("people")
    assert people.search.text() == ""


def test_back_from_a_person_opened_from_people_keeps_the_search(qtbot, window):
    w = window
    people = w.people_page
    macron = _pid(w, "macron")
    qtbot.keyClicks(people.search, f"#{macron}")
    qtbot.waitUntil(lambda: [p.id for p in people.model.rows][:1] == [macron], timeout=WAIT)
    _click_item(qtbot, people.view, people.model.index(0))
    qtbot.keyClick(people.view, Qt.Key.Key_Return)  # Enter opens, like a double click
    qtbot.waitUntil(lambda: w.stack.currentWidget() is w.person_page, timeout=WAIT)
    assert w.person_page.back_btn.text() == "← People"
    w.person_page.faces_view.setFocus()
    qtbot.keyClick(w.person_page.faces_view, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert w.stack.currentWidget() is people and people.search.text() == f"#{macron}"
    _idle(qtbot, w)


# -- 12: the missing X11 library is named before Qt aborts ------------------------------------------------------


def test_gui_start_names_the_missing_xcb_library(monkeypatch, capsys, tmp_path):
    import app.gui.main as gui_main

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(gui_main, "_find_library", lambda name: None if name == "xcb-cursor" else f"lib{name}.so")
    monkeypatch.setattr(gui_main.sys, "platform", "linux")
    rc = gui_main.main(["facenet-photos-gui", "--library", str(tmp_path / "lib")])
    err = capsys.readouterr().err
    assert rc == 4
    assert "libxcb-cursor0" in err and "sudo apt install libxcb-cursor0" in err
    assert not (tmp_path / "lib").exists()  # stopped before opening anything


def test_no_xcb_check_off_x11():
    from app.gui.main import missing_display_libraries

    def none(_n):
        return None

    assert missing_display_libraries({"QT_QPA_PLATFORM": "offscreen"}, "linux", none) == []
    assert missing_display_libraries({"WAYLAND_DISPLAY": "wayland-0"}, "linux", none) == []
    assert missing_display_libraries({}, "darwin", none) == []
    assert missing_display_libraries({}, "linux", none) == ["libxcb-cursor0", "libxcb1", "libxkbcommon-x11-0"]


# -- the photo viewer: full screen with zoom, show in file manager, names that do not overlap -----------------


def _person_page_with_photo(qtbot, w, name_part="ardern"):
    w.open_person(_pid(w, name_part))
    page = w.person_page
    qtbot.waitUntil(lambda: page.viewer.image is not None and bool(page.viewer.faces), timeout=WAIT)
    return page


def test_full_screen_viewer_zooms_pans_and_closes(qtbot, window):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent

    w = window
    page = _person_page_with_photo(qtbot, w)
    # A double click on the photo opens it full screen.
    qtbot.mouseDClick(page.viewer, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    dlg = page.viewer.full_screen
    assert dlg is not None and dlg.isVisible() and dlg.isFullScreen()
    v = dlg.viewer
    qtbot.waitExposed(dlg)
    qtbot.waitUntil(dlg.isActiveWindow, timeout=WAIT)
    face = v.faces[0]
    fitted = v.face_rect(face)
    # The wheel zooms about the mouse: the face box grows with the photo, the point under the mouse stays.
    at = fitted.center()
    for _ in range(3):
        ev = QWheelEvent(at, v.mapToGlobal(at), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(v, ev)
    assert v.zoom == pytest.approx(1.25 ** 3)
    zoomed = v.face_rect(face)
    assert zoomed.width() == pytest.approx(fitted.width() * 1.25 ** 3, rel=1e-3)
    assert (zoomed.center() - at).manhattanLength() < 1.0
    # + and - keys.
    qtbot.keyClick(v, Qt.Key.Key_Plus)
    assert v.zoom == pytest.approx(1.25 ** 4)
    qtbot.keyClick(v, Qt.Key.Key_Minus)
    assert v.zoom == pytest.approx(1.25 ** 3)
    # Dragging moves the photo by as much as the mouse moved.
    before = v.face_rect(face).topLeft()
    start = QPoint(200, 200)
    qtbot.mousePress(v, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(v, start + QPoint(60, -40))
    qtbot.mouseRelease(v, Qt.MouseButton.LeftButton, pos=start + QPoint(60, -40))
    assert v.face_rect(face).topLeft() - before == QPointF(60, -40)
    # Esc closes it; the page is where it was.
    qtbot.keyClick(v, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: page.viewer.full_screen is None, timeout=WAIT)
    assert w.stack.currentWidget() is page
    # F on the page opens it too (the window manager would give the main window back its focus).
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=WAIT)
    page.faces_view.setFocus()
    qtbot.keyClick(page.faces_view, Qt.Key.Key_F)
    assert page.viewer.full_screen is not None and page.viewer.full_screen.isVisible()
    qtbot.waitUntil(page.viewer.full_screen.isActiveWindow, timeout=WAIT)
    qtbot.keyClick(page.viewer.full_screen.viewer, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: page.viewer.full_screen is None, timeout=WAIT)


def test_show_in_file_manager_opens_the_photos_folder(qtbot, window, monkeypatch):
    import app.gui.widgets as widgets

    opened = []
    monkeypatch.setattr(widgets, "open_url", lambda url: opened.append(url) or True)
    page = _person_page_with_photo(qtbot, window)
    qtbot.mouseClick(page.viewer, Qt.MouseButton.RightButton, pos=page.viewer.rect().center())
    page.viewer.customContextMenuRequested.emit(page.viewer.rect().center())  # offscreen: no context event
    menu = QApplication.activePopupWidget()
    assert menu is not None
    action = next(a for a in menu.actions() if a.text() == "Show in file manager")
    action.trigger()
    menu.close()
    assert [u.toLocalFile() for u in opened] == [str(Path(page.viewer.path).parent)]


def test_names_on_a_crowded_photo_do_not_overlap(qtbot):
    from PySide6.QtGui import QImage

    from app.gui.widgets import PhotoViewer
    from engine.services.library import FaceInfo

    # Twelve faces in a tight row, as in a group photo: boxes 40 px apart, names wider than that.
    faces = [FaceInfo(i, 1, "group.jpg", (20.0 + 42 * i, 200.0, 36.0, 40.0), 0.9, i, f"Person number {i}",
                      "cluster", None) for i in range(12)]
    img = QImage(560, 420, QImage.Format.Format_RGB888)
    img.fill(Qt.GlobalColor.darkGray)
    v = PhotoViewer()
    v.resize(560, 420)
    v.set_photo(img, 1.0, faces, highlight=3)
    v.show()
    qtbot.waitExposed(v)
    v.grab()  # paints
    rects = v.label_rects
    assert len(rects) == 12
    overlaps = [(i, j) for i in range(12) for j in range(i + 1, 12) if rects[i].intersects(rects[j])]
    assert overlaps == []
    assert all(QRectF_inside(r, v.rect()) for r in rects)
    v.close()


def QRectF_inside(r, bounds) -> bool:  # noqa: N802
    return r.left() >= bounds.left() - 0.5 and r.right() <= bounds.right() + 1.5 and r.top() >= 0 \
        and r.bottom() <= bounds.bottom() + 1.5


# -- the review grid, learning in plain words, a window that fits half a laptop screen --------------------------


@pytest.fixture
def review_library(tmp_path):
    """Four people named from one photo each; their second photos arrive as two suggestions to review."""
    import shutil

    from engine.services.library import Library

    sample = SAMPLE
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for n in ("ardern_2018.jpg", "macron_2014.jpg", "obama.jpg", "sunak.jpg"):
        shutil.copy2(sample / n, a / n)
    for n in ("ardern_2022.jpg", "macron_2025.jpg"):
        shutil.copy2(sample / n, b / n)
    library = Library(tmp_path / "lib")
    list(library.import_paths([a]))
    for p in library.people():
        library.rename(p.id, Path(library.faces_of(p.id)[0].path).stem.split("_")[0].title())
    list(library.import_paths([b]))
    assert len(library.review_queue()) == 2
    yield library
    library.close()


def test_review_grid_answers_the_selection_as_one_edit(qtbot, review_library):
    lib = review_library
    w, before = _open(qtbot, lib)
    try:
        w.show_section("review")
        page = w.review_page
        qtbot.waitUntil(lambda: len(page.queue) == 2, timeout=WAIT)
        qtbot.mouseClick(page.grid_btn, Qt.MouseButton.LeftButton)
        assert page.grid_mode and page.grid_box.isVisible() and not page.card.isVisible()
        assert [f.id for f in page.grid_model.rows] == [f.id for f, _c in page.queue]
        assert not page.grid_yes.isEnabled()
        # Ctrl+A then Y: both confirmed, in one journaled edit.
        history = len(lib.history(500))
        page.grid.setFocus()
        qtbot.keyClick(page.grid, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        assert page.grid_yes.isEnabled() and "2 faces selected" in page.grid_hint.text()
        ids = page.grid.selected_ids()
        qtbot.keyClick(page.grid, Qt.Key.Key_Y)
        qtbot.waitUntil(lambda: all(lib.face(i).assignment == "user" for i in ids), timeout=WAIT)
        _idle(qtbot, w)
        assert len(lib.history(500)) == history + 1
        qtbot.waitUntil(lambda: page.empty.isVisible(), timeout=WAIT)
        # One undo brings both back as suggestions; then No on one of them (a real click on it, then the button).
        w.controller.undo()
        _idle(qtbot, w)
        w.review_page.refresh()
        qtbot.waitUntil(lambda: len(page.grid_model.rows) == 2, timeout=WAIT)
        target = page.grid_model.rows[1]
        _click_item(qtbot, page.grid, page.grid_model.index(1))
        assert page.grid.selected_ids() == [target.id]
        qtbot.mouseClick(page.grid_no, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: lib.face(target.id).person_id != target.person_id, timeout=WAIT)
        qtbot.waitUntil(lambda: [f.id for f in page.grid_model.rows] == [page.grid_model.rows[0].id]
                        and len(page.grid_model.rows) == 1, timeout=WAIT)
        # Back to one at a time: the card asks about the one left.
        qtbot.mouseClick(page.grid_btn, Qt.MouseButton.LeftButton)
        assert not page.grid_mode and page.card.isVisible()
        _idle(qtbot, w)
    finally:
        _close(qtbot, w, before)


def test_window_fits_800_by_500_on_every_page(qtbot, review_library):
    w, before = _open(qtbot, review_library)
    try:
        for key in ("people", "review", "photos", "import"):
            w.show_section(key)
            _idle(qtbot, w)
            w.resize(800, 500)
            QApplication.processEvents()
            assert (w.width(), w.height()) == (800, 500), key
            if key == "review":  # with a question on its card, the tallest page
                assert w.review_page.card.isVisible()
        w.open_person(review_library.people()[0].id)
        _idle(qtbot, w)
        w.resize(800, 500)
        QApplication.processEvents()
        assert (w.width(), w.height()) == (800, 500)
        ms = w.minimumSizeHint()
        assert ms.width() <= 800 and ms.height() <= 500, ms
    finally:
        _close(qtbot, w, before)


def test_learning_result_in_plain_words():
    from types import SimpleNamespace as NS

    from app.gui.learning import plain_summary

    done = NS(stage="done", message="activated personal-3 (pair AUC 0.9997 …; LFW accuracy 99.10% before, 99.12%)",
              result=NS(activated=True, people=5, re_embedded=120, before=NS(accuracy=0.9), after=NS(accuracy=0.95)))
    text, details = plain_summary(done)
    assert "AUC" not in text and "LFW" not in text
    assert "5 people you named" in text and "120 faces" in text and "95%" in text and "90%" in text
    assert "AUC 0.9997" in details
    worse = NS(stage="refused", message="refused: the new model is worse on LFW (LFW accuracy …)", result=None)
    assert plain_summary(worse)[0].startswith("Nothing changed: the model it learnt was not better")
    need = NS(stage="refused", message="refused: need at least 2 named people with 2 or more faces each",
              result=None)
    assert plain_summary(need)[0] == ("Nothing changed: learning needs more names first "
                                      "(at least 2 named people with 2 or more faces each).")


def test_quitting_during_an_import_says_it_finishes_the_current_batch(qtbot, tmp_path):
    from engine.services.library import Library

    sample = SAMPLE
    photos = tmp_path / "many"
    photos.mkdir()
    srcs = sorted(sample.glob("*.jpg"))
    for i in range(30):  # distinct files (one more byte each), so none is a duplicate
        (photos / f"p{i:03d}.jpg").write_bytes(srcs[i % len(srcs)].read_bytes() + bytes([i]))
    library = Library(tmp_path / "lib")
    try:
        w, before = _open(qtbot, library)
        w.controller.import_paths([photos])
        qtbot.waitUntil(lambda: w.import_page.panel.bar.value() > 0, timeout=60_000)
        assert w.controller.importing
        w.close()  # as the window's close button does
        assert "current batch" in w.status_label.text()
        _close(qtbot, w, before)
    finally:
        library.close()
