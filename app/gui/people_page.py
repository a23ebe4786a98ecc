"""The people grid: everyone (or only the unnamed, or the hidden), biggest first, searchable by name."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .controller import plural
from .models import ID_ROLE, PeopleModel
from .widgets import MANY, PeopleView, ask_first

MODES = {
    "all": ("People", {}),
    "unnamed": ("Unnamed", {"named": False}),
    "hidden": ("Hidden", {"only_hidden": True}),
}


def merge_target(people) -> int:
    """Who keeps the faces when several people are merged: the biggest named one, else the biggest."""
    named = [p for p in people if p.name]
    return max(named or people, key=lambda p: (p.faces, -p.id)).id


class PeoplePage(QWidget):
    open_person = Signal(int)
    import_requested = Signal()
    loaded = Signal(int)  # number of people shown

    def __init__(self, controller, thumbnails, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.mode = "all"
        self._generation = 0
        self.model = PeopleModel(thumbnails, self)
        self.view = PeopleView(self)
        self.view.setModel(self.model)
        self.view.setObjectName("peopleGrid")

        self.title = QLabel("People")
        self.title.setObjectName("pageTitle")
        self.count = QLabel("")
        self.count.setObjectName("muted")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by name")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(280)
        self.merge_btn = QPushButton("Merge")
        self.merge_btn.setToolTip("Merge the selected people into one (Ctrl+M)")
        self.hide_btn = QPushButton("Hide")
        self.rename_btn = QPushButton("Rename")
        self.rename_btn.setToolTip("Rename the selected person (F2)")
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.count)
        top.addStretch(1)
        for w in (self.rename_btn, self.merge_btn, self.hide_btn, self.search):
            top.addWidget(w)

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
        self.select_all_action = act("Select all", [QKeySequence.StandardKey.SelectAll], self.view.selectAll)

        self.search_timer = QTimer(self, singleShot=True, interval=200)
        self.search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self.search_timer.start())
        # Double click or Enter opens a person.
        self.view.activated.connect(lambda ix: self.open_person.emit(ix.data(ID_ROLE)))
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        self.model.modelReset.connect(self._update_actions)
        self.model.merge_requested.connect(self.merge)
        self.confirm_box = None  # the open "Merge 3,015 people into Tom?" question, if any
        self.model.move_requested.connect(lambda faces, pid: controller.move_faces(faces, pid, self._label(pid)))
        self.model.rename_requested.connect(controller.rename)
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

    def refresh(self) -> None:
        self._generation += 1
        gen = self._generation
        kwargs = dict(MODES[self.mode][1])
        text = self.search.text().strip()
        if text:
            kwargs["search"] = text

        def people(lib):
            return lib.people(**kwargs)

        self.controller.query(people, on_result=lambda rows: self._show(gen, rows))

    def _show(self, gen: int, rows) -> None:
        if gen != self._generation:
            return  # an older answer; a newer query is on its way
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
        faces = sum(r.faces for r in rows)
        self.count.setText(f"{plural(len(rows), 'person', 'people')} · {plural(faces, 'face')}" if rows else "")
        if rows:
            self.stack.setCurrentWidget(self.view)
        else:
            self.stack.setCurrentWidget(self.empty)
            if self.search.text().strip():
                self.empty_label.setText(f"Nobody is named like “{self.search.text().strip()}”.")
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
        if len(sources) + 1 <= MANY:
            self.controller.merge(target, sources)
            return
        rows = {r.id: r for r in self.model.rows}
        faces = sum(rows[i].faces for i in [target, *sources] if i in rows)
        label = self._label(target)
        self.confirm_box = ask_first(
            self, "Merge people",
            f"Merge {len(sources):,} people into {label}?",
            f"The {len(sources) + 1:,} people become one, {label}, with all {faces:,} faces. "
            "Edit → Undo (Ctrl+Z) takes it back.",
            "Merge", lambda: self.controller.merge(target, sources))

    def toggle_hidden(self) -> None:
        ids = self.view.selected_ids()
        if not ids:
            return
        hide = self.mode != "hidden"
        if len(ids) <= MANY:
            self.controller.set_hidden(ids, hide)
            return
        verb = "Hide" if hide else "Unhide"
        where = "They move to Hidden." if hide else "They come back to People."
        self.confirm_box = ask_first(
            self, f"{verb} people", f"{verb} {len(ids):,} people?",
            f"{where} Edit → Undo (Ctrl+Z) takes it back.", verb,
            lambda: self.controller.set_hidden(ids, hide))

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
        m.popup(self.view.viewport().mapToGlobal(pos))
