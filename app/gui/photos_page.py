"""Photos by folder: each folder's photos with their face counts, and the photo with every face named."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.services.overview import folder_summary

from .controller import plural
from .item_models import ROW_ROLE, Column, RowsTableModel
from .widgets import PhotoViewer, display_path, load_photo

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
STATUS = {"done": "", "error": "could not be read", "missing": "file is missing", "pending": "not read yet"}


def _table(model) -> QTableView:
    t = QTableView()
    t.setModel(model)
    t.verticalHeader().hide()
    t.verticalHeader().setDefaultSectionSize(22)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setAlternatingRowColors(True)
    t.setWordWrap(False)
    t.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    for c in range(1, model.columnCount()):
        t.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
    return t


class PhotosPage(QWidget):
    open_person = Signal(int)

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self._gen = self._photos_gen = self._photo_gen = 0
        title = QLabel("Photos")
        title.setObjectName("pageTitle")
        self.count = QLabel()
        self.count.setObjectName("muted")
        self.folders_model = RowsTableModel([
            Column("Folder", lambda r: display_path(r.folder), tooltip=lambda r: r.folder),
            Column("Photos", lambda r: r.photos, RIGHT),
            Column("Faces", lambda r: r.faces, RIGHT),
            Column("Failed", lambda r: r.failed or "", RIGHT),
        ], self)
        self.photos_model = RowsTableModel([
            Column("File", lambda r: Path(r.path).name, tooltip=lambda r: r.path),
            Column("Faces", lambda r: r.faces, RIGHT),
            Column("Status", lambda r: r.error or STATUS.get(r.status, r.status)),
        ], self)
        self.folders = _table(self.folders_model)
        self.folders.setTextElideMode(Qt.TextElideMode.ElideLeft)  # the end of a path says most
        self.photos = _table(self.photos_model)
        self.viewer = PhotoViewer(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.folders)
        left.addWidget(self.photos)
        left.setStretchFactor(0, 1)
        left.setStretchFactor(1, 3)
        split.addWidget(left)
        split.addWidget(self.viewer)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 8)
        top = QVBoxLayout()
        top.addWidget(title)
        top.addWidget(self.count)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        self.folders.selectionModel().currentRowChanged.connect(lambda *_: self._load_photos())
        self.photos.selectionModel().currentRowChanged.connect(lambda *_: self._load_photo())
        self.viewer.face_clicked.connect(lambda f: f.person_id is not None and self.open_person.emit(f.person_id))
        for text, keys, slot in (("View full screen", ["F"], self.viewer.open_full_screen),
                                 ("Show in file manager", [], self.viewer.folder_action.trigger)):
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.triggered.connect(slot)
            self.addAction(a)

    def refresh(self) -> None:
        self._gen += 1
        gen = self._gen
        self.controller.query(folder_summary, on_result=lambda rows: self._folders(gen, rows))

    def _folders(self, gen: int, rows) -> None:
        if gen != self._gen:
            return
        current = self.folders.currentIndex().data(ROW_ROLE)
        self.folders_model.set_rows(rows)
        photos = sum(r.photos for r in rows)
        self.count.setText(f"{plural(photos, 'photo')} in {plural(len(rows), 'folder')}")
        row = next((i for i, r in enumerate(rows) if current and r.folder == current.folder), 0 if rows else None)
        if row is not None:
            self.folders.selectRow(row)
        self._load_photos()

    def _load_photos(self) -> None:
        folder = self.folders.currentIndex().data(ROW_ROLE)
        self._photos_gen += 1
        gen = self._photos_gen
        if folder is None:
            self.photos_model.set_rows([])
            return

        def photos(lib):
            return [p for p in lib.photos(folder=folder.folder) if str(Path(p.path).parent) == folder.folder]

        self.controller.query(photos, on_result=lambda rows: self._photos(gen, rows))

    def _photos(self, gen: int, rows) -> None:
        if gen != self._photos_gen:
            return
        current = self.photos.currentIndex().data(ROW_ROLE)
        self.photos_model.set_rows(rows)
        row = next((i for i, r in enumerate(rows) if current and r.id == current.id), 0 if rows else None)
        if row is not None:
            self.photos.selectRow(row)
        else:
            self.viewer.clear()

    def _load_photo(self) -> None:
        photo = self.photos.currentIndex().data(ROW_ROLE)
        if photo is None:
            return
        self._photo_gen += 1
        gen = self._photo_gen
        self.controller.query(load_photo, photo.id, None, photo.path,
                              on_result=lambda r: gen == self._photo_gen and self.viewer.set_photo(
                                  r[0], r[1], r[2], None, r[3], r[4]))
