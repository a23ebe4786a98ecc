"""Photos: every photo by date taken in a grid with a header per month, filtered by folder, by the people in
it and by date; a double click (or Enter) opens the photo, where a missed face can be drawn and named.

The grid is ``photo_grid``'s; the filters have ``Library.find_photos``' meaning (every chosen person is in
the photo, "only these people", inclusive days) and run on a pool thread, as does every load here.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from PySide6.QtCore import QRectF, QStringListModel, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.services.overview import folder_summary

from .box_drawing import BoxDrawer
from .controller import ERROR, plural
from .photo_grid import THUMB_PX, PhotoGridModel, PhotoGridView, date_text
from .thumbs import Thumbnails, load_photo_image
from .widgets import PhotoViewer, display_path, load_photo_with_ages

ALL_FOLDERS = "All folders"
PHOTO_CACHE = 600  # thumbnails kept (about two screens of a large window at 200 px, several times over)


def grid_people(library):
    """The people to filter by: named first (A to Z), then the unnamed by size."""
    people = library.people(min_faces=1)
    return sorted(people, key=lambda p: (p.name is None, (p.name or "").lower(), -p.faces))


class NameFaceDialog(QDialog):
    """Who is the face just drawn? A name (completion over the people), or nobody yet."""

    def __init__(self, names: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Add a face")
        self.name = QComboBox()
        self.name.setEditable(True)
        self.name.addItems(names)
        self.name.setCurrentIndex(-1)
        self.name.lineEdit().setPlaceholderText("Who is it? (leave empty if you do not know)")
        comp = QCompleter(names, self)
        comp.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        comp.setFilterMode(Qt.MatchFlag.MatchContains)
        self.name.setCompleter(comp)
        self.name.setMinimumWidth(320)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add face")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("The box becomes a face of this photo. A name puts it with that person "
                             "(a new name makes a new person); without one the app suggests who it is."))
        lay.itemAt(0).widget().setWordWrap(True)
        lay.addWidget(self.name)
        lay.addWidget(buttons)

    def chosen(self) -> str | None:
        return " ".join(self.name.currentText().split()) or None


class PhotosPage(QWidget):
    open_person = Signal(int)

    def __init__(self, controller, thumbs: Thumbnails | None = None, parent=None):
        super().__init__(parent)
        self.controller = controller
        if thumbs is None:
            screen = QGuiApplication.primaryScreen()
            thumbs = Thumbnails(controller.jobs, controller.library, size=THUMB_PX, capacity=PHOTO_CACHE,
                                dpr=screen.devicePixelRatio() if screen else 1.0, loader=load_photo_image,
                                parent=self)
        self.thumbs = thumbs
        # The grid knows each photo's path: the loader passes it on (no database query per thumbnail).
        thumbs.loader = lambda lib, pid, px, round_: load_photo_image(lib, pid, px, round_, self.model.path_of(pid))
        self._gen = self._grid_gen = self._photo_gen = 0
        self.people_rows: list = []
        self._pick_ids: list[int] = []  # the person of each item of ``person_pick``
        self.chosen: list[int] = []  # person ids, every one of them in the photo
        self.timeline = None
        self.current: int | None = None  # the photo open in the viewer (index in the timeline)
        self._pending_box = None

        # -- the grid page --
        title = QLabel("Photos")
        title.setObjectName("pageTitle")
        self.count = QLabel()
        self.count.setObjectName("muted")
        head = QHBoxLayout()
        head.addWidget(title)
        head.addWidget(self.count, 1)

        self.folder = QComboBox()
        self.folder.setMinimumContentsLength(14)
        self.folder.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.folder.setToolTip("Only the photos directly in this folder")
        self.person_pick = QComboBox()
        self.person_pick.setEditable(True)
        # A plain string list: thousands of people in one call (a QStandardItem each took ~100 ms).
        self.pick_model = QStringListModel(self)
        self.person_pick.setModel(self.pick_model)
        comp = self.person_pick.completer()  # any part of a name: "gul" finds Abdullah Gul
        comp.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        comp.setFilterMode(Qt.MatchFlag.MatchContains)
        comp.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.person_pick.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.person_pick.lineEdit().setPlaceholderText("With a person…")
        self.person_pick.setMinimumContentsLength(12)
        self.person_pick.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.person_pick.setToolTip("Photos with this person in them; add several: photos with all of them")
        self.chips = QHBoxLayout()
        self.chips.setSpacing(4)
        self.only = QCheckBox("only them")
        self.only.setToolTip("Photos with nobody else in them (people you hid do not count)")
        self.date_from = QLineEdit()
        self.date_to = QLineEdit()
        for e, what in ((self.date_from, "from"), (self.date_to, "to")):
            e.setPlaceholderText(f"{what}: YYYY-MM-DD")
            e.setToolTip(f"Photos taken {what} this day; a year (2021) or a month (2021-06) also works")
            e.setMaximumWidth(130)
            e.setClearButtonEnabled(True)
        self.clear_btn = QPushButton("Clear filters")
        filters = QHBoxLayout()
        filters.setSpacing(6)
        filters.addWidget(self.folder)
        filters.addWidget(self.person_pick)
        filters.addLayout(self.chips)
        filters.addWidget(self.only)
        filters.addWidget(self.date_from)
        filters.addWidget(self.date_to)
        filters.addWidget(self.clear_btn)
        filters.addStretch(1)

        self.model = PhotoGridModel(self.thumbs, self)
        self.grid = PhotoGridView()
        self.grid.setModel(self.model)
        # The months beside the grid: a click jumps there, and the month at the top of the grid is marked.
        self.months_model = QStringListModel(self)
        self.months_view = QListView()
        self.months_view.setObjectName("months")
        self.months_view.setModel(self.months_model)
        self.months_view.setUniformItemSizes(True)
        self.months_view.setSpacing(2)
        self.months_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.months_view.setFixedWidth(130)
        self.months_view.setFrameShape(QListView.Shape.NoFrame)
        self.months_view.setToolTip("Jump to a month")
        self.months_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys stay with the grid
        self.empty = QLabel()
        self.empty.setObjectName("emptyHint")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.hide()

        grid_page = QWidget()
        gl = QVBoxLayout(grid_page)
        gl.setContentsMargins(12, 10, 12, 8)
        gl.addLayout(head)
        gl.addLayout(filters)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.grid, 1)
        row.addWidget(self.months_view)
        gl.addLayout(row, 1)
        gl.addWidget(self.empty, 1)

        # -- the photo page --
        self.back_btn = QToolButton()
        self.back_btn.setText("← Photos")
        self.back_btn.setToolTip("Back to the grid (Esc)")
        self.photo_title = QLabel()
        self.photo_title.setObjectName("sectionTitle")
        self.photo_date = QLabel()
        self.photo_date.setObjectName("muted")
        self.prev_btn = QToolButton()
        self.prev_btn.setText("‹")
        self.prev_btn.setToolTip("Newer photo (Left)")
        self.next_btn = QToolButton()
        self.next_btn.setText("›")
        self.next_btn.setToolTip("Older photo (Right)")
        self.draw_btn = QPushButton("Draw a missed face")
        self.draw_btn.setCheckable(True)
        self.draw_btn.setToolTip("Drag a box around a face the app did not find (D); Esc stops")
        self.rescan_btn = QPushButton("Rescan this photo")
        self.rescan_btn.setToolTip("Look again for smaller or fainter faces (a lower detection threshold)")
        bar = QHBoxLayout()
        bar.addWidget(self.back_btn)
        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.photo_title)
        names.addWidget(self.photo_date)
        bar.addLayout(names, 1)
        for w in (self.prev_btn, self.next_btn, self.draw_btn, self.rescan_btn):
            bar.addWidget(w)
        self.viewer = PhotoViewer(self)
        self.viewer.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # its keys: Left/Right, D, Esc, F
        self.drawer = BoxDrawer(self.viewer)
        photo_page = QWidget()
        pl = QVBoxLayout(photo_page)
        pl.setContentsMargins(12, 10, 12, 8)
        pl.addLayout(bar)
        pl.addWidget(self.viewer, 1)

        self.pages = QStackedWidget()
        self.pages.addWidget(grid_page)
        self.pages.addWidget(photo_page)
        self.grid_page, self.photo_page = grid_page, photo_page
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.pages)

        # -- wiring --
        self.folder.activated.connect(lambda _i: self.reload_grid())
        self.person_pick.activated.connect(self._person_picked)
        self.person_pick.lineEdit().returnPressed.connect(self._person_typed)
        self.only.toggled.connect(lambda _on: self.reload_grid())
        self.date_from.editingFinished.connect(self._dates_changed)
        self.date_to.editingFinished.connect(self._dates_changed)
        self.clear_btn.clicked.connect(self.clear_filters)
        self.grid.photo_activated.connect(self.open_photo)
        self.months_view.clicked.connect(lambda ix: self.jump_to_month(ix.row()))
        self.grid.verticalScrollBar().valueChanged.connect(lambda _v: self._mark_month())
        self.back_btn.clicked.connect(self.show_grid)
        self.prev_btn.clicked.connect(lambda: self.step(-1))
        self.next_btn.clicked.connect(lambda: self.step(1))
        self.draw_btn.toggled.connect(self.drawer.set_active)
        self.drawer.active_changed.connect(self._drawing_changed)
        self.drawer.box_drawn.connect(self._box_drawn)
        self.rescan_btn.clicked.connect(self.rescan)
        self.viewer.face_clicked.connect(lambda f: f.person_id is not None and self.open_person.emit(f.person_id))
        self._dates = ("", "")
        controller.message.connect(self._message)

        def act(text, keys, slot, widget):
            a = QAction(text, widget)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.triggered.connect(slot)
            widget.addAction(a)
            return a

        act("View full screen", ["F"], self.viewer.open_full_screen, photo_page)
        act("Show in file manager", [], self.viewer.folder_action.trigger, photo_page)
        act("Back to the photos", ["Esc", "Alt+Left"], self._escape, photo_page)
        act("Newer photo", ["Left", "PgUp"], lambda: self.step(-1), photo_page)
        act("Older photo", ["Right", "PgDown", "Space"], lambda: self.step(1), photo_page)
        act("Draw a missed face", ["D"], self.draw_btn.toggle, photo_page)

    # -- loading ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the folders, the people and the grid (after an import, an edit, an undo), and the photo
        open in the viewer."""
        self._gen += 1
        gen = self._gen
        self.controller.query(folder_summary, on_result=lambda rows: self._folders(gen, rows))
        self.controller.query(grid_people, on_result=lambda rows: self._people(gen, rows))
        self.reload_grid()
        if self.pages.currentWidget() is self.photo_page:
            self._load_photo()

    def _folders(self, gen: int, rows) -> None:
        if gen != self._gen:
            return
        current = self.folder.currentData()
        self.folder.blockSignals(True)
        self.folder.clear()
        self.folder.addItem(ALL_FOLDERS, None)
        for r in rows:
            if r.photos:
                self.folder.addItem(f"{display_path(r.folder)}  ({r.photos:,})", r.folder)
                self.folder.setItemData(self.folder.count() - 1, r.folder, Qt.ItemDataRole.ToolTipRole)
        i = self.folder.findData(current) if current is not None else 0
        self.folder.setCurrentIndex(max(0, i))
        self.folder.blockSignals(False)
        if current is not None and i < 0:
            self.reload_grid()  # the folder is gone: all folders

    def _people(self, gen: int, rows) -> None:
        if gen != self._gen:
            return
        self.people_rows = rows
        labels = [p.label for p in rows]
        if labels != self.pick_model.stringList():
            text = self.person_pick.currentText() if self.person_pick.hasFocus() else ""
            self.person_pick.blockSignals(True)
            self.pick_model.setStringList(labels)
            self.person_pick.setCurrentIndex(-1)
            self.person_pick.setEditText(text)
            self.person_pick.blockSignals(False)
        self._pick_ids = [p.id for p in rows]  # the person of each item, by position
        known = {p.id for p in rows}
        gone = [pid for pid in self.chosen if pid not in known]  # merged away or deleted
        if gone:
            self.chosen = [pid for pid in self.chosen if pid in known]
            self._rebuild_chips()
            self.reload_grid()
        else:
            self._rebuild_chips()  # names may have changed

    def filters(self) -> dict:
        return {"people": [str(p) for p in self.chosen], "only": self.only.isChecked() and bool(self.chosen),
                "date_from": self.date_from.text().strip() or None, "date_to": self.date_to.text().strip() or None,
                "folder": self.folder.currentData()}

    def reload_grid(self) -> None:
        self._grid_gen += 1
        gen = self._grid_gen
        self.only.setEnabled(bool(self.chosen))
        f = self.filters()

        def timeline(lib):
            return lib.photo_timeline(f["people"], only=f["only"], date_from=f["date_from"], date_to=f["date_to"],
                                      folder=f["folder"])

        self.controller.query(timeline, on_result=lambda t: self._timeline(gen, t),
                              on_error=lambda msg: self._timeline_error(gen, msg))

    def _timeline_error(self, gen: int, msg: str) -> None:
        if gen == self._grid_gen:
            self.controller.message.emit(msg, ERROR)

    def _timeline(self, gen: int, tl) -> None:
        if gen != self._grid_gen:
            return
        keep = None
        if self.current is not None and self.timeline is not None and self.current < len(self.timeline):
            keep = self.timeline.photos[self.current][0]
        sel = self.grid.current_photo()
        sel_id = self.timeline.photos[sel][0] if sel is not None and self.timeline is not None else None
        self.timeline = tl
        self.model.set_timeline(tl)
        n = len(tl)
        filtered = any((self.chosen, self.date_from.text().strip(), self.date_to.text().strip(),
                        self.folder.currentData()))
        if n:
            newest, oldest = tl.months[0], tl.months[-1]
            span = newest.label if newest is oldest else f"{oldest.label} – {newest.label}"
            self.count.setText(f"{plural(n, 'photo')}, {span}" + (" (filtered)" if filtered else ""))
        else:
            self.count.setText("no photos" + (" (filtered)" if filtered else ""))
        self.empty.setText("No photo matches these filters." if filtered else
                           "No photos yet: import a folder (Ctrl+I) or drop one on the window.")
        self.grid.setVisible(n > 0)
        self.empty.setVisible(n == 0)
        self.months_model.setStringList([m.label for m in tl.months])
        self.months_view.setVisible(len(tl.months) > 1)
        row = self.model.row_of_id(sel_id) if sel_id is not None else None
        if row is not None:
            self.grid.select_photo(row)
        elif n and self.grid.current_photo() is None:
            self.grid.setCurrentIndex(self.model.index_of(0))
        if keep is not None:
            self.current = self.model.row_of_id(keep)
        self._mark_month()

    def jump_to_month(self, i: int) -> None:
        """Show month ``i`` (newest first) at the top of the grid, its first photo selected."""
        if self.timeline is None or not 0 <= i < len(self.timeline.months):
            return
        self.grid.setCurrentIndex(self.model.index_of(self.timeline.months[i].start))
        self.grid.scrollTo(self.model.index(self.model.header_rows()[i], 0),
                           QAbstractItemView.ScrollHint.PositionAtTop)
        self.grid.setFocus()

    def _mark_month(self) -> None:
        row = self.grid.rowAt(2)
        if row < 0 or not self.model.months:
            return
        i = bisect_right(self.model.header_rows(), row) - 1
        if 0 <= i < self.months_model.rowCount():
            self.months_view.setCurrentIndex(self.months_model.index(i))

    # -- filters ------------------------------------------------------------------------------------
    def add_person(self, person_id: int) -> None:
        if person_id not in self.chosen:
            self.chosen.append(int(person_id))
            self._rebuild_chips()
            self.reload_grid()

    def remove_person(self, person_id: int) -> None:
        if person_id in self.chosen:
            self.chosen.remove(person_id)
            self._rebuild_chips()
            self.reload_grid()

    def _person_picked(self, i: int) -> None:
        if 0 <= i < len(self._pick_ids):
            self.add_person(self._pick_ids[i])
        self.person_pick.setCurrentIndex(-1)
        self.person_pick.setEditText("")

    def _person_typed(self) -> None:
        text = self.person_pick.currentText().strip().lower()
        if not text:
            return
        hit = next((p for p in self.people_rows if p.label.lower() == text), None) or next(
            (p for p in self.people_rows if text in p.label.lower()), None)
        if hit is None:
            self.controller.message.emit(f"Nobody called {self.person_pick.currentText().strip()!r}", ERROR)
            return
        self.add_person(hit.id)
        self.person_pick.setCurrentIndex(-1)
        self.person_pick.setEditText("")

    def _rebuild_chips(self) -> None:
        while self.chips.count():
            w = self.chips.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        labels = {p.id: p.label for p in self.people_rows}
        for pid in self.chosen:
            b = QToolButton()
            b.setText(f"{labels.get(pid, f'#{pid}')}  ✕")
            b.setToolTip("Remove this person from the filter")
            b.setObjectName("chip")
            b.clicked.connect(lambda _c=False, p=pid: self.remove_person(p))
            self.chips.addWidget(b)

    def _dates_changed(self) -> None:
        dates = (self.date_from.text().strip(), self.date_to.text().strip())
        if dates != self._dates:
            self._dates = dates
            self.reload_grid()

    def clear_filters(self) -> None:
        self.chosen = []
        self._rebuild_chips()
        for w in (self.only, self.date_from, self.date_to, self.folder):
            w.blockSignals(True)
        self.only.setChecked(False)
        self.date_from.clear()
        self.date_to.clear()
        self._dates = ("", "")
        self.folder.setCurrentIndex(0)
        for w in (self.only, self.date_from, self.date_to, self.folder):
            w.blockSignals(False)
        self.reload_grid()

    # -- the photo ----------------------------------------------------------------------------------
    def open_photo(self, i: int) -> None:
        if self.timeline is None or not 0 <= i < len(self.timeline):
            return
        self.current = i
        self.pages.setCurrentWidget(self.photo_page)
        self.viewer.setFocus()
        self._load_photo()

    def show_grid(self) -> None:
        self.draw_btn.setChecked(False)
        self.pages.setCurrentWidget(self.grid_page)
        if self.current is not None:
            self.grid.select_photo(self.current)
        self.grid.setFocus()

    def _escape(self) -> None:
        if self.drawer.active:
            self.draw_btn.setChecked(False)
        else:
            self.show_grid()

    def step(self, by: int) -> None:
        if self.current is None or self.timeline is None:
            return
        i = self.current + by
        if 0 <= i < len(self.timeline):
            self.draw_btn.setChecked(False)
            self.open_photo(i)

    def current_photo(self):
        if self.current is None or self.timeline is None or self.current >= len(self.timeline):
            return None
        return self.timeline.photos[self.current]

    def _load_photo(self) -> None:
        photo = self.current_photo()
        if photo is None:
            self.viewer.clear()
            return
        pid, path, when, source = photo
        self.photo_title.setText(Path(path).name)
        self.photo_title.setToolTip(path)
        self.photo_date.setText(date_text(when, source))
        self.prev_btn.setEnabled(self.current > 0)
        self.next_btn.setEnabled(self.current < len(self.timeline) - 1)
        self._photo_gen += 1
        gen = self._photo_gen
        self.controller.query(load_photo_with_ages, pid, None, path, on_result=lambda r: self._photo_loaded(gen, r))

    def _photo_loaded(self, gen: int, r) -> None:
        if gen != self._photo_gen:
            return
        img, scale, faces, path, error, ages = r
        self.viewer.set_photo(img, scale, faces, None, path, error, ages=ages)
        self.draw_btn.setEnabled(img is not None)
        self.rescan_btn.setEnabled(img is not None)

    def _drawing_changed(self, on: bool) -> None:
        if self.draw_btn.isChecked() != on:
            self.draw_btn.blockSignals(True)
            self.draw_btn.setChecked(on)
            self.draw_btn.blockSignals(False)
        if on:
            self.viewer.setFocus()
            self.controller.message.emit("Drag a box around the face (Esc to stop)", 0)

    def _box_drawn(self, box) -> None:
        """A box drawn on the photo: ask who it is, then make it a face (on a pool thread)."""
        photo = self.current_photo()
        self.draw_btn.setChecked(False)
        if photo is None:
            return
        self.viewer.pending_box = QRectF(*box)
        self.viewer.update()
        names = sorted({p.name for p in self.people_rows if p.name}, key=str.lower)
        dlg = NameFaceDialog(names, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.name_dialog = dlg
        pid = photo[0]

        def done(result: int) -> None:
            self.name_dialog = None
            # Back to the photo, so that its keys (and the window's Ctrl+Z) work at once.
            self.window().activateWindow()
            self.viewer.setFocus()
            if result == QDialog.DialogCode.Accepted:
                self.controller.add_face(pid, box, dlg.chosen(), on_done=lambda _a: self._face_added(pid))
            else:
                self.viewer.pending_box = None
                self.viewer.update()

        dlg.finished.connect(done)
        dlg.open()

    def _face_added(self, photo_id: int) -> None:
        photo = self.current_photo()
        if photo is not None and photo[0] == photo_id:
            self._load_photo()

    def _message(self, _text: str, level: int) -> None:
        """An edit failed (a box outside the photo, a file gone): the drawn box and the buttons come back."""
        if level == ERROR and self.viewer.pending_box is not None:
            self.viewer.pending_box = None
            self.viewer.update()
        if level == ERROR and self.viewer.image is not None:
            self.rescan_btn.setEnabled(True)

    def rescan(self) -> None:
        photo = self.current_photo()
        if photo is None:
            return
        pid = photo[0]
        self.rescan_btn.setEnabled(False)
        self.controller.message.emit(f"Looking again for faces in {Path(photo[1]).name}…", 0)
        self.controller.rescan(pid, on_done=lambda _new: self._face_added(pid))
