"""The people grid: everyone (or only the unnamed, or the hidden), searchable by what it shows, with an
"at least N faces" filter and a sort (biggest first, by name, most recent photo)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.services.overview import people_for_grid

from .controller import plural
from .item_models import ID_ROLE, PeopleModel
from .widgets import MANY, PeopleView, ask_first

MODES = {
    "all": ("People", {}),
    "unnamed": ("Unnamed", {"named": False}),
    "hidden": ("Hidden", {"only_hidden": True}),
}

SORT_CHOICES = [("size", "Most faces"), ("name", "Name"), ("recent", "Recent photos")]


def merge_target(people) -> int:
    """Who keeps the faces when several people are merged: the biggest named one, else the biggest."""
    named = [p for p in people if p.name]
    return max(named or people, key=lambda p: (p.faces, -p.id)).id


class PeoplePage(QWidget):
    open_person = Signal(int)
    import_requested = Signal()
    loaded = Signal(int)  # number of people shown

    def __init__(self, controller, thumbnails, parent=None, *, settings=None):
        super().__init__(parent)
        self.controller = controller
        self.settings = settings  # QSettings: the filter and sort are kept between runs, like the window size
        self.mode = "all"
        self._generation = 0
        # The edit made here last, and what to select once it is done: the person it produced, or, for people
        # who left the grid (hidden), the place they were. Armed by the controller's edit_done, so a reload
        # that lands before the edit does not use it up.
        self._pending: tuple[str, int | None, int | None] | None = None
        self._focus_after: int | None = None
        self._focus_row: int | None = None
        self.model = PeopleModel(thumbnails, self)
        self.view = PeopleView(self)
        self.view.setModel(self.model)
        self.view.setObjectName("peopleGrid")

        self.title = QLabel("People")
        self.title.setObjectName("pageTitle")
        self.count = QLabel("")
        self.count.setObjectName("muted")
        self.count.setMinimumWidth(0)
        self.count.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # may be cut, not widen
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search (name or #number)")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(280)
        self.min_faces = QSpinBox()
        self.min_faces.setRange(1, 9999)
        self.min_faces.setPrefix("at least ")
        self.min_faces.setSuffix(" face")
        self.min_faces.valueChanged.connect(lambda v: self.min_faces.setSuffix(" face" if v == 1 else " faces"))
        self.min_faces.setToolTip("Show only people with at least this many faces (2 hides people seen once)")
        self.sort = QComboBox()
        for key, text in SORT_CHOICES:
            self.sort.addItem(text, key)
        self.sort.setToolTip("Order of the people")
        if settings is not None:
            self.min_faces.setValue(max(1, int(settings.value("people/min_faces", 1) or 1)))
            i = self.sort.findData(settings.value("people/sort", "size"))
            self.sort.setCurrentIndex(max(0, i))
        self.merge_btn = QPushButton("Merge")
        self.merge_btn.setToolTip("Merge the selected people into one (Ctrl+M)")
        self.hide_btn = QPushButton("Hide")
        self.rename_btn = QPushButton("Rename")
        self.rename_btn.setToolTip("Rename the selected person (F2)")
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.count, 1)  # takes the free room (it may be cut, never widen the window)
        for w in (self.rename_btn, self.merge_btn, self.hide_btn):
            top.addWidget(w)
        # The filters on a row of their own: one row for all of it would not fit a half-screen window.
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.min_faces)
        filters.addWidget(QLabel("sorted by"))
        filters.addWidget(self.sort)
        filters.addStretch(1)

        self.empty = QWidget()
        el = QVBoxLayout(self.empty)
        el.addStretch(1)
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setObjectName("emptyHint")
        self.empty_button = QPushButton("Import a folder…")
        self.empty_button.clicked.connect(self.import_requested)
        el.addWidget(self.empty_label)
        el.addWidget(self.empty_button, 0, Qt.AlignmentFlag.AlignHCenter)
        el.addStretch(2)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 6)
        lay.addLayout(top)
        lay.addLayout(filters)
        lay.addWidget(self.stack, 1)

        # Actions: shortcuts work while the grid (or anything on this page) has focus.
        def act(text, keys, slot):
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.triggered.connect(slot)
            self.addAction(a)
            return a

        self.open_action = act("Open", [], self.open_current)
        self.rename_action = act("Rename…", ["F2"], self.rename_current)
        self.merge_action = act("Merge selected", ["Ctrl+M"], self.merge_selected)
        self.hide_action = act("Hide", ["Ctrl+H"], self.toggle_hidden)
        self.not_known_action = act("Not someone I know", [], self.not_known_selected)
        self.not_known_action.setToolTip("Strangers: out of the people lists and the questions for good (undoable)")
        self.select_all_action = act("Select all", [QKeySequence.StandardKey.SelectAll], self.view.selectAll)

        self.search_timer = QTimer(self, singleShot=True, interval=200)
        self.search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self.search_timer.start())
        self.min_faces.valueChanged.connect(self._filter_changed)
        self.sort.currentIndexChanged.connect(self._filter_changed)
        # Double click or Enter opens a person.
        self.view.activated.connect(lambda ix: self.open_person.emit(ix.data(ID_ROLE)))
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        self.model.modelReset.connect(self._update_actions)
        self.model.merge_requested.connect(self.merge)
        self.confirm_box = None  # the open "Merge 3,015 people into Tom?" question, if any
        controller.edit_done.connect(self._edit_done)
        self.model.move_requested.connect(lambda faces, pid: controller.move_faces(faces, pid, self._label(pid)))
        self.model.rename_requested.connect(self.rename)
        self.merge_btn.clicked.connect(self.merge_selected)
        self.hide_btn.clicked.connect(self.toggle_hidden)
        self.rename_btn.clicked.connect(self.rename_current)
        self._update_actions()

    def _label(self, pid: int) -> str:
        row = self.model.row_of(pid)
        return self.model.rows[row].label if row is not None else f"person {pid}"

    # -- data --------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            self.model.set_rows([])
        self.title.setText(MODES[mode][0])
        self.refresh()

    def _filter_changed(self) -> None:
        if self.settings is not None:
            self.settings.setValue("people/min_faces", self.min_faces.value())
            self.settings.setValue("people/sort", self.sort.currentData())
        self.refresh()

    def refresh(self) -> None:
        self._generation += 1
        gen = self._generation
        kwargs = dict(MODES[self.mode][1])
        kwargs.update(search=self.search.text().strip(), min_faces=self.min_faces.value(),
                      sort=self.sort.currentData())

        def people(lib):
            return people_for_grid(lib, **kwargs)

        self.controller.query(people, on_result=lambda grid: self._show(gen, grid))

    def _show(self, gen: int, grid) -> None:
        if gen != self._generation:
            return  # an older answer; a newer query is on its way
        rows = grid.people
        selected = self.view.selected_ids()
        current = self.view.currentIndex().data(ID_ROLE)
        scroll = self.view.verticalScrollBar().value()
        reset = [r.id for r in rows] != [r.id for r in self.model.rows]
        self.model.set_rows(rows)
        if reset:
            self.view.select_ids(selected)
            if current is not None and self.model.row_of(current) is not None:
                self.view.selectionModel().setCurrentIndex(
                    self.model.index(self.model.row_of(current)), self.view.selectionModel().SelectionFlag.NoUpdate
                )
            QTimer.singleShot(0, lambda: self.view.verticalScrollBar().setValue(scroll))
        self._show_result()
        faces = sum(r.faces for r in rows)
        fewer = f" · {grid.fewer} with fewer faces not shown" if grid.fewer else ""
        self.count.setText(f"{plural(len(rows), 'person', 'people')} · {plural(faces, 'face')}{fewer}"
                           if rows else "")
        if rows:
            self.stack.setCurrentWidget(self.view)
        else:
            self.stack.setCurrentWidget(self.empty)
            if self.search.text().strip():
                self.empty_label.setText(f"Nobody is named like “{self.search.text().strip()}”.")
                self.empty_button.hide()
            elif grid.fewer:
                self.empty_label.setText(f"Nobody has {self.min_faces.value()} faces or more; lower "
                                         "“at least … faces” to see the others.")
                self.empty_button.hide()
            elif self.mode == "hidden":
                self.empty_label.setText("Nobody is hidden. Hide people you do not want to see with Ctrl+H.")
                self.empty_button.hide()
            elif self.mode == "unnamed":
                self.empty_label.setText("Everyone has a name.")
                self.empty_button.hide()
            else:
                self.empty_label.setText(
                    "No people yet.\nDrop folders or photos anywhere on this window to import them."
                )
                self.empty_button.show()
        self._update_actions()
        self.loaded.emit(len(rows))

    def _expect(self, action: str, person_id: int | None = None, row: int | None = None) -> None:
        self._pending = (action, person_id, row)

    def _edit_done(self, action: str) -> None:
        if self._pending is not None and self._pending[0] == action:
            _a, self._focus_after, self._focus_row = self._pending
            self._pending = None

    def _show_result(self) -> None:
        """After an edit made here: select the person it produced and scroll to them (a merged person may
        have moved far in the grid); for people who left the grid, select whoever took their place."""
        pid, row = self._focus_after, self._focus_row
        self._focus_after = self._focus_row = None
        if pid is not None and self.model.row_of(pid) is not None:
            row = self.model.row_of(pid)
        elif row is not None and self.model.rows:
            row = min(row, len(self.model.rows) - 1)
        else:
            return
        ix = self.model.index(row)
        self.view.selectionModel().setCurrentIndex(ix, self.view.selectionModel().SelectionFlag.ClearAndSelect)
        self.view.scrollTo(ix, QAbstractItemView.ScrollHint.EnsureVisible)
        # The scroll position restored after a reset (above) must not undo this.
        QTimer.singleShot(0, lambda: self.view.scrollTo(ix, QAbstractItemView.ScrollHint.EnsureVisible))

    # -- actions -----------------------------------------------------------------------------------
    def _update_actions(self) -> None:
        sel = self.view.selected_rows()
        n = len(sel)
        self.merge_action.setEnabled(n >= 2)
        self.merge_btn.setEnabled(n >= 2)
        self.merge_btn.setText(f"Merge {n}" if n >= 2 else "Merge")
        self.rename_action.setEnabled(n == 1)
        self.rename_btn.setEnabled(n == 1)
        self.hide_action.setEnabled(n >= 1)
        self.hide_btn.setEnabled(n >= 1)
        hidden = self.mode == "hidden"
        self.hide_action.setText("Unhide" if hidden else "Hide")
        self.hide_btn.setText("Unhide" if hidden else "Hide")
        self.hide_btn.setToolTip(("Show the selected people again" if hidden else "Hide the selected people")
                                 + " (Ctrl+H)")

    def open_current(self) -> None:
        ix = self.view.currentIndex()
        if ix.isValid():
            self.open_person.emit(ix.data(ID_ROLE))

    def rename_current(self) -> None:
        ix = self.view.currentIndex()
        sel = self.view.selectedIndexes()
        if len(sel) == 1:
            ix = sel[0]
        if ix.isValid():
            self.view.setCurrentIndex(ix)
            self.view.edit(ix)

    def merge_selected(self) -> None:
        people = self.view.selected_rows()
        if len(people) < 2:
            return
        target = merge_target(people)
        self.merge(target, [p.id for p in people if p.id != target])

    def merge(self, target: int, sources: list[int]) -> None:
        """Merge (from the button, Ctrl+M or a drag); more than a few people at once asks first."""
        sources = [int(s) for s in dict.fromkeys(sources) if int(s) != int(target)]
        if not sources:
            return

        def go() -> None:
            self._expect("merge", int(target))
            self.controller.merge(target, sources)

        if len(sources) + 1 <= MANY:
            go()
            return
        rows = {r.id: r for r in self.model.rows}
        faces = sum(rows[i].faces for i in [target, *sources] if i in rows)
        label = self._label(target)
        self.confirm_box = ask_first(
            self, "Merge people",
            f"Merge {len(sources):,} people into {label}?",
            f"The {len(sources) + 1:,} people become one, {label}, with all {faces:,} faces. "
            "Edit → Undo (Ctrl+Z) takes it back.",
            "Merge", go)

    def rename(self, person_id: int, name: str) -> None:
        self._expect("rename", int(person_id))  # sorted by name, they move
        self.controller.rename(person_id, name)

    def toggle_hidden(self) -> None:
        ids = self.view.selected_ids()
        if not ids:
            return
        hide = self.mode != "hidden"
        rows = [r for r in (self.model.row_of(i) for i in ids) if r is not None]

        def go() -> None:
            self._expect("hide" if hide else "unhide", None, min(rows) if rows else None)
            self.controller.set_hidden(ids, hide)

        if len(ids) <= MANY:
            go()
            return
        verb = "Hide" if hide else "Unhide"
        where = "They move to Hidden." if hide else "They come back to People."
        self.confirm_box = ask_first(
            self, f"{verb} people", f"{verb} {len(ids):,} people?",
            f"{where} Edit → Undo (Ctrl+Z) takes it back.", verb, go)

    def _context_menu(self, pos) -> None:
        ix = self.view.indexAt(pos)
        if not ix.isValid():
            return
        if not self.view.selectionModel().isSelected(ix):
            self.view.setCurrentIndex(ix)
        m = QMenu(self)
        m.addAction(self.open_action)
        m.addAction(self.rename_action)
        m.addSeparator()
        n = len(self.view.selected_ids())
        self.merge_action.setText(f"Merge {n} people" if n >= 2 else "Merge selected")
        m.addAction(self.merge_action)
        m.addAction(self.hide_action)
        m.addAction(self.not_known_action)
        m.popup(self.view.viewport().mapToGlobal(pos))

    def not_known_selected(self) -> None:
        """The selected groups are strangers (a face in the background): gone from the people lists and the
        "same person?" questions for good; Ctrl+Z brings them back."""
        ids = self.view.selected_ids()
        if not ids:
            return
        rows = [r for r in (self.model.row_of(i) for i in ids) if r is not None]

        def go() -> None:
            self._expect("not_known", None, min(rows) if rows else None)
            self.controller.not_known_people(ids)

        if len(ids) <= MANY:
            go()
            return
        self.confirm_box = ask_first(
            self, "Not someone I know", f"Mark {len(ids):,} people as not someone you know?",
            "Their faces leave the people lists and the questions. Edit → Undo (Ctrl+Z) takes it back.",
            "Mark them", go)
