"""One person: every face (virtualised grid), the photo of the current face, and the corrections."""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import (
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .controller import ERROR, plural
from .item_models import ID_ROLE, ROW_ROLE, FacesModel, PeopleModel
from .widgets import MANY, FacesView, PeopleDropList, PhotoViewer, ask_first, load_photo_with_ages


class PersonPage(QWidget):
    back = Signal()
    gone = Signal()  # the person no longer exists (merged away, undone)
    open_person = Signal(int)
    loaded = Signal(int)  # number of faces shown

    def __init__(self, controller, faces_thumbs, round_thumbs, small_thumbs, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.round_thumbs = round_thumbs
        self.person = None
        self.person_id: int | None = None
        self._generation = 0
        self._photo_generation = 0
        self._labels: dict[str, int] = {}
        self._people: list = []
        self._name_after_open: int | None = None  # a person just made by "New person": focus the name once shown

        # -- header --
        self.back_btn = QToolButton()
        self.back_btn.setText("← People")
        self.back_btn.setToolTip("Back to the people (Alt+Left)")
        self.back_btn.setAutoRaise(True)
        self.cover = QLabel()
        self.cover.setFixedSize(56, 56)
        self.cover.setScaledContents(True)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Add a name")
        self.name_edit.setToolTip("Type a name and press Enter (F2)")
        f = QFont(self.name_edit.font())
        f.setPointSizeF(f.pointSizeF() * 1.5)
        f.setBold(True)
        self.name_edit.setFont(f)
        self.name_edit.setMinimumWidth(200)  # the window must fit a laptop's half screen (800 px)
        self.name_edit.setMaximumWidth(520)
        self.name_edit.setFrame(False)
        self.stats = QLabel()
        self.stats.setObjectName("muted")
        self.hide_btn = QPushButton("Hide")
        self.not_known_btn = QPushButton("Not someone I know")
        self.not_known_btn.setToolTip("A stranger: every face of this group leaves the people lists and the "
                                      "questions for good (Ctrl+Z takes it back)")
        head = QHBoxLayout()
        head.addWidget(self.back_btn)
        head.addWidget(self.cover)
        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.name_edit)
        self.birth_edit = QLineEdit()
        self.birth_edit.setPlaceholderText("birthday: YYYY-MM-DD")
        self.birth_edit.setToolTip("The person's birth date: photos show their age, and no face from a photo "
                                   "taken before it is ever suggested for them. Empty it to remove it.")
        self.birth_edit.setMaximumWidth(170)
        self.birth_edit.setClearButtonEnabled(True)
        self.birth_date = None  # as loaded
        line = QHBoxLayout()
        line.setSpacing(10)
        line.addWidget(self.stats)
        born = QLabel("born")
        born.setObjectName("muted")
        born.setBuddy(self.birth_edit)
        line.addWidget(born)
        line.addWidget(self.birth_edit)
        names.addLayout(line)
        head.addLayout(names)
        head.addStretch(1)
        head.addWidget(self.not_known_btn)
        head.addWidget(self.hide_btn)

        # -- selection actions --
        self.sel_label = QLabel()
        self.sel_label.setObjectName("muted")
        self.sel_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # cut, not widen
        self.split_btn = QPushButton("New person")
        self.split_btn.setToolTip("Move the selected faces to a new person (Ctrl+Shift+N)")
        self.not_btn = QPushButton("Not this person")
        self.not_btn.setToolTip("Take the selected faces out; they will not be grouped here again (Delete)")
        self.confirm_btn = QPushButton("Confirm")
        self.confirm_btn.setToolTip("Yes, these faces are this person (Ctrl+Return)")
        self.cover_btn = QPushButton("Use as cover")
        self.move_edit = QLineEdit()
        self.move_edit.setPlaceholderText("Move selected to… (type a name)")
        self.move_edit.setToolTip("Type a person's name and press Enter; a new name creates that person (Ctrl+M)")
        self.move_edit.setClearButtonEnabled(True)
        self.move_edit.setMinimumWidth(150)
        self.completer_model = QStringListModel(self)
        self.completer = QCompleter(self.completer_model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.move_edit.setCompleter(self.completer)
        bar = QHBoxLayout()
        bar.addWidget(self.sel_label, 1)  # takes the free room (it may be cut, never widen the window)
        for w in (self.split_btn, self.not_btn, self.confirm_btn, self.cover_btn, self.move_edit):
            bar.addWidget(w)

        # -- body --
        self.faces_model = FacesModel(faces_thumbs, self)
        self.faces_view = FacesView(self)
        self.faces_view.setModel(self.faces_model)
        self.faces_view.setObjectName("facesGrid")
        self.viewer = PhotoViewer(self)
        self.drop_model = PeopleModel(small_thumbs, self)
        self.drop_list = PeopleDropList(self)
        self.drop_list.setModel(self.drop_model)
        self.drop_filter = QLineEdit()
        self.drop_filter.setPlaceholderText("Find a person")
        self.drop_filter.setClearButtonEnabled(True)
        drop_box = QWidget()
        dl = QVBoxLayout(drop_box)
        dl.setContentsMargins(0, 4, 0, 0)
        hint = QLabel("Drag faces onto a person to move them there:")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        dl.addWidget(hint)
        dl.addWidget(self.drop_filter)
        dl.addWidget(self.drop_list, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.viewer)
        right.addWidget(drop_box)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.faces_view)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 12, 6)
        lay.addLayout(head)
        lay.addLayout(bar)
        lay.addWidget(self.splitter, 1)

        def act(text, keys, slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut, widget=None):
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(context)
            a.triggered.connect(slot)
            (widget or self).addAction(a)
            return a

        self.split_action = act("New person from these faces", ["Ctrl+Shift+N"], self.split_selected)
        self.not_action = act("Not this person", ["Delete"], self.not_this_person, widget=self.faces_view)
        # Delete is "not this person"; a detection that is no face at all goes for good (undoable).
        self.delete_action = act("Not a face: delete", ["Shift+Delete"], self.delete_selected, widget=self.faces_view)
        self.delete_action.setToolTip("The selected boxes are not faces: remove them everywhere (Shift+Delete)")
        self.not_known_action = act("Not someone I know", [], self.not_known_selected, widget=self.faces_view)
        self.not_known_action.setToolTip("Strangers: out of the people lists and the questions for good (undoable)")
        self.not_known_person_action = act("Not someone I know", [], self.not_known_person)
        self.confirm_box = None  # the open "Take 40 faces out of Tom?" question, if any
        self.confirm_action = act("Confirm", ["Ctrl+Return", "Ctrl+Enter"], self.confirm_selected)
        self.cover_action = act("Use as cover", [], self.cover_selected)
        self.move_focus_action = act("Move to…", ["Ctrl+M"], self.focus_move)
        self.rename_action = act("Rename", ["F2"], self.focus_name)
        self.back_action = act("Back", ["Alt+Left", "Esc"], self.back.emit)
        self.full_action = act("View the photo full screen", ["F"], self.viewer.open_full_screen)
        self.select_all_action = act("Select all", [QKeySequence.StandardKey.SelectAll], self.faces_view.selectAll,
                                     widget=self.faces_view)

        self.back_btn.clicked.connect(self.back)
        self.name_edit.returnPressed.connect(self._commit_name)
        self.name_edit.editingFinished.connect(self._commit_name)
        self.birth_edit.editingFinished.connect(self._commit_birthday)
        self.hide_btn.clicked.connect(self._toggle_hidden)
        self.not_known_btn.clicked.connect(self.not_known_person)
        self.split_btn.clicked.connect(self.split_selected)
        self.not_btn.clicked.connect(self.not_this_person)
        self.confirm_btn.clicked.connect(self.confirm_selected)
        self.cover_btn.clicked.connect(self.cover_selected)
        self.move_edit.returnPressed.connect(self._move_typed)
        self.completer.activated.connect(lambda _t: QTimer.singleShot(0, self._move_typed))
        self.drop_filter.textChanged.connect(lambda _t: self._fill_drop_list())
        self.drop_model.move_requested.connect(self._move_dropped)
        self.drop_model.merge_requested.connect(controller.merge)
        self.drop_list.activated.connect(lambda ix: self.open_person.emit(ix.data(ID_ROLE)))
        self.faces_view.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        self.faces_view.selectionModel().currentChanged.connect(lambda *_: self._photo_timer.start())
        self.faces_view.customContextMenuRequested.connect(self._context_menu)
        self.faces_model.modelReset.connect(self._selection_changed)
        self.viewer.face_clicked.connect(self._face_clicked)
        round_thumbs.ready.connect(self._cover_ready)
        self._photo_timer = QTimer(self, singleShot=True, interval=60)
        self._photo_timer.timeout.connect(self._load_photo)
        self._selection_changed()

    # -- loading -----------------------------------------------------------------------------------
    def show_person(self, person_id: int) -> None:
        if person_id != self.person_id:
            self.person_id = person_id
            self.person = None
            self.faces_model.set_rows([])
            self.viewer.clear("")
            self.name_edit.clear()
            self.stats.clear()
            self.cover.clear()
            self.move_edit.clear()
            # The side list's filter was for the previous person's corrections; start this one unfiltered.
            self.drop_filter.blockSignals(True)
            self.drop_filter.clear()
            self.drop_filter.blockSignals(False)
        self.refresh()

    def refresh(self) -> None:
        if self.person_id is None:
            return
        self._generation += 1
        gen, pid = self._generation, self.person_id

        def load(lib):
            from engine.errors import EditError

            try:
                person = lib.person(pid)
            except EditError:
                return None
            faces, born = lib.faces_of(pid), lib.birth_date(pid)
            ages = lib.ages([f.id for f in faces]) if born else {}
            return person, faces, lib.people(include_hidden=True), born, ages

        self.controller.query(load, on_result=lambda r: self._show(gen, r))

    def _show(self, gen: int, result) -> None:
        if gen != self._generation:
            return
        if result is None:
            self.gone.emit()
            return
        person, faces, people, born, ages = result
        self.faces_model.ages = ages
        self.person = person
        self.birth_date = born
        if not self.birth_edit.hasFocus():
            self.birth_edit.setText(born.isoformat() if born else "")
        if not self.name_edit.hasFocus():
            self.name_edit.setText(person.name or "")
        self.name_edit.setPlaceholderText(f"{person.label} — add a name")
        hidden = " · hidden" if person.hidden else ""
        self.stats.setText(f"{plural(person.faces, 'face')} in {plural(person.photos, 'photo')}{hidden}")
        self.hide_btn.setText("Unhide" if person.hidden else "Hide")
        self._set_cover()
        selected = self.faces_view.selected_ids()
        current = self.faces_view.currentIndex().data(ID_ROLE)
        reset = [f.id for f in faces] != [f.id for f in self.faces_model.rows]
        self.faces_model.set_rows(faces)
        if reset:
            self.faces_view.select_ids(selected)
            row = self.faces_model.row_of(current) if current is not None else None
            if row is None and faces:
                row = 0
            if row is not None:
                self.faces_view.selectionModel().setCurrentIndex(
                    self.faces_model.index(row), self.faces_view.selectionModel().SelectionFlag.NoUpdate
                )
        self._photo_timer.start()
        self._people = [p for p in people if not p.hidden]
        self._labels = {}
        for p in people:
            if p.id != person.id:
                self._labels.setdefault(p.label.lower(), p.id)
                self._labels[f"{p.label} (#{p.id})".lower()] = p.id
        seen = Counter(p.label for p in people)
        self.completer_model.setStringList(
            [p.label if seen[p.label] == 1 else f"{p.label} (#{p.id})" for p in people if p.id != person.id and p.name]
        )
        self._fill_drop_list()
        self._selection_changed()
        if self._name_after_open == person.id:
            self._name_after_open = None
            self.focus_name()
        self.loaded.emit(len(faces))

    def _fill_drop_list(self) -> None:
        text = self.drop_filter.text().strip().lower()
        rows = [p for p in self._people if p.id != self.person_id and (not text or text in p.label.lower())]
        self.drop_model.set_rows(rows)

    def _set_cover(self) -> None:
        if self.person is None:
            return
        pm = self.round_thumbs.get(self.person.cover_face_id)
        if pm is not None:
            self.cover.setPixmap(pm)

    def _cover_ready(self, face_id: int) -> None:
        if self.person is not None and face_id == self.person.cover_face_id:
            self._set_cover()

    def _load_photo(self) -> None:
        face = self.faces_view.currentIndex().data(ROW_ROLE)
        if face is None:
            self.viewer.clear("")
            return
        if self.viewer.faces and any(f.id == face.id for f in self.viewer.faces) and self.viewer.image is not None:
            self.viewer.highlight = face.id
            self.viewer.update()
            # The names on the boxes may have changed; reload quietly below.
        self._photo_generation += 1
        gen = self._photo_generation
        self.controller.query(load_photo_with_ages, face.photo_id, face.id,
                              on_result=lambda r: self._photo_loaded(gen, face.id, r))

    def _photo_loaded(self, gen: int, face_id: int, r) -> None:
        if gen != self._photo_generation:
            return
        img, scale, faces, path, error, ages = r
        self.viewer.set_photo(img, scale, faces, face_id, path, error, ages=ages)

    def _face_clicked(self, face) -> None:
        if face.person_id is not None and face.person_id != self.person_id:
            self.open_person.emit(face.person_id)
        else:
            row = self.faces_model.row_of(face.id)
            if row is not None:
                self.faces_view.setCurrentIndex(self.faces_model.index(row))

    # -- actions -----------------------------------------------------------------------------------
    def _selection_changed(self) -> None:
        n = len(self.faces_view.selectionModel().selectedIndexes()) if self.faces_view.selectionModel() else 0
        self.sel_label.setText(f"{plural(n, 'face')} selected" if n else "Select faces to correct them")
        for w in (self.split_btn, self.not_btn, self.confirm_btn, self.move_edit, self.split_action,
                  self.not_action, self.delete_action, self.confirm_action, self.move_focus_action):
            w.setEnabled(n > 0)
        self.cover_btn.setEnabled(n == 1)
        self.cover_action.setEnabled(n == 1)

    def selected_faces(self) -> list[int]:
        return self.faces_view.selected_ids()

    def split_selected(self) -> None:
        """New person from the selected faces, then open that person with the name field ready for typing:
        the new person must not vanish into the grid unnamed."""
        ids = self.selected_faces()
        if ids:
            self.controller.split(ids, on_done=lambda new_id, n=len(ids): self._split_done(new_id, n))

    def _split_done(self, new_id, n: int) -> None:
        if new_id is None or not self.isVisible():
            return
        self._name_after_open = int(new_id)
        self.open_person.emit(int(new_id))
        self.controller.message.emit(f"New person from {plural(n, 'face')}: "
                                     "type a name and press Enter", 0)

    def not_this_person(self) -> None:
        ids = self.selected_faces()
        if not ids:
            return
        if len(ids) <= MANY:
            self.controller.not_this_person(ids)
            return
        label = self.person.label if self.person else "this person"
        self.confirm_box = ask_first(
            self, "Not this person", f"Take {len(ids):,} faces out of {label}?",
            f"Each becomes a person of its own and is never grouped with {label} again. "
            "Edit → Undo (Ctrl+Z) takes it back.", "Take them out",
            lambda: self.controller.not_this_person(ids))

    def not_known_selected(self) -> None:
        """The selected faces are strangers: out of this person, the people lists and the questions for good."""
        ids = self.selected_faces()
        if ids:
            self.controller.not_known(ids)

    def not_known_person(self) -> None:
        """The whole group is a stranger."""
        if self.person_id is not None:
            self.controller.not_known_people([self.person_id])

    def delete_selected(self) -> None:
        """Shift+Delete: the selected detections are not faces."""
        ids = self.selected_faces()
        if not ids:
            return
        if len(ids) <= MANY:
            self.controller.delete_faces(ids)
            return
        self.confirm_box = ask_first(
            self, "Not faces", f"Delete {len(ids):,} faces as not being faces?",
            "They leave every person and every count, and stay out when the photos are imported again. "
            "Edit → Undo (Ctrl+Z) brings them back.", "Delete",
            lambda: self.controller.delete_faces(ids))

    def confirm_selected(self) -> None:
        ids = self.selected_faces()
        if ids:
            self.controller.confirm(ids)

    def cover_selected(self) -> None:
        ids = self.selected_faces()
        if len(ids) == 1 and self.person_id is not None:
            self.controller.set_cover(self.person_id, ids[0])

    def focus_move(self) -> None:
        self.move_edit.setFocus()
        self.move_edit.selectAll()

    def focus_name(self) -> None:
        self.name_edit.setFocus()
        self.name_edit.selectAll()

    def _commit_name(self) -> None:
        if self.person is None:
            return
        name = " ".join(self.name_edit.text().split())
        if name != (self.person.name or ""):
            from dataclasses import replace

            self.person = replace(self.person, name=name or None)
            self.controller.rename(self.person.id, name)

    def _commit_birthday(self) -> None:
        from datetime import date

        if self.person is None:
            return
        text = self.birth_edit.text().strip()
        if text == (self.birth_date.isoformat() if self.birth_date else ""):
            return
        if text:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                self.controller.message.emit(f"{text!r} is not a date; write it as YYYY-MM-DD (1990-05-31)", ERROR)
                self.birth_edit.setText(self.birth_date.isoformat() if self.birth_date else "")
                return
            if day > date.today():
                self.controller.message.emit(f"{text} is in the future; a birthday is a day that has been", ERROR)
                self.birth_edit.setText(self.birth_date.isoformat() if self.birth_date else "")
                return
        self.birth_date = date.fromisoformat(text) if text else None  # no second edit on the next Enter
        self.controller.set_birthday(self.person.id, text or None)

    def _toggle_hidden(self) -> None:
        if self.person is not None:
            self.controller.set_hidden([self.person.id], not self.person.hidden)

    def _move_typed(self) -> None:
        text = " ".join(self.move_edit.text().split())
        ids = self.selected_faces()
        if not text or not ids:
            return
        pid = self._labels.get(text.lower())
        if pid is None and text.startswith("#") and text[1:].isdigit():
            pid = int(text[1:])
        self.move_edit.clear()
        if pid is None:
            self.controller.split(ids, text)  # a new name: a new person with that name
        else:
            self.controller.move_faces(ids, pid, text)

    def _move_dropped(self, face_ids: list, person_id: int) -> None:
        row = self.drop_model.row_of(person_id)
        label = self.drop_model.rows[row].label if row is not None else ""
        self.controller.move_faces(face_ids, person_id, label)

    def _context_menu(self, pos) -> None:
        ix = self.faces_view.indexAt(pos)
        if not ix.isValid():
            return
        if not self.faces_view.selectionModel().isSelected(ix):
            self.faces_view.setCurrentIndex(ix)
        n = len(self.selected_faces())
        m = QMenu(self)
        self.split_action.setText(f"New person from {plural(n, 'face')}")
        m.addAction(self.split_action)
        move = m.addMenu("Move to")
        for p in [p for p in self._people if p.id != self.person_id and p.name][:15]:
            move.addAction(p.label, lambda pid=p.id, label=p.label: self.controller.move_faces(
                self.selected_faces(), pid, label))
        move.addSeparator()
        move.addAction("Other person…", self.focus_move)
        label = self.person.label if self.person else "this person"
        self.not_action.setText(f"Not {label}")
        m.addAction(self.not_action)
        self.delete_action.setText("Not a face: delete" if n == 1 else f"Not faces: delete {n}")
        m.addAction(self.delete_action)
        self.not_known_action.setText("Not someone I know" if n == 1 else f"Not someone I know: {n} faces")
        m.addAction(self.not_known_action)
        m.addAction(self.confirm_action)
        m.addSeparator()
        m.addAction(self.cover_action)
        m.popup(self.faces_view.viewport().mapToGlobal(pos))
