"""Qt item models over the engine's rows. Each has one ``set_rows`` that replaces its content."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from . import pyside_compat  # noqa: F401  (must run before any Qt call)

PEOPLE_MIME = "application/x-facenet-photos-people"
FACES_MIME = "application/x-facenet-photos-faces"

ROW_ROLE = Qt.ItemDataRole.UserRole + 1  # the row object itself
ID_ROLE = Qt.ItemDataRole.UserRole + 2
COUNT_ROLE = Qt.ItemDataRole.UserRole + 3


def encode_ids(mime: str, ids: Sequence[int]) -> QMimeData:
    data = QMimeData()
    data.setData(mime, QByteArray(json.dumps([int(i) for i in ids]).encode()))
    return data


def decode_ids(data: QMimeData, mime: str) -> list[int]:
    if data is None or not data.hasFormat(mime):
        return []
    try:
        return [int(i) for i in json.loads(bytes(data.data(mime)).decode())]
    except (ValueError, TypeError):
        return []


class _RowsModel(QAbstractListModel):
    """A list model over immutable row objects with an ``id``."""

    def __init__(self, thumbnails=None, parent=None):
        super().__init__(parent)
        self.rows: list = []
        self._row_of: dict[int, int] = {}
        self.thumbnails = thumbnails
        if thumbnails is not None:
            thumbnails.ready.connect(self._thumbnail_ready)

    # -- content ---------------------------------------------------------------------------------
    def set_rows(self, rows: Sequence) -> None:
        rows = list(rows)
        if [r.id for r in rows] == [r.id for r in self.rows]:
            # Same people in the same order: update in place so selection and scrolling stay put.
            self.rows = rows
            if rows:
                self.dataChanged.emit(self.index(0), self.index(len(rows) - 1))
            return
        self.beginResetModel()
        self.rows = rows
        self._row_of = {r.id: i for i, r in enumerate(rows)}
        self.endResetModel()

    def row_of(self, row_id: int) -> int | None:
        return self._row_of.get(row_id)

    def row_at(self, index: QModelIndex):
        return self.rows[index.row()] if index.isValid() and 0 <= index.row() < len(self.rows) else None

    def ids(self, indexes) -> list[int]:
        out = []
        for ix in indexes:
            r = self.row_at(ix)
            if r is not None and r.id not in out:
                out.append(r.id)
        return out

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    # -- thumbnails ------------------------------------------------------------------------------
    def thumbnail_face(self, row) -> int | None:
        return None

    def _thumbnail_ready(self, face_id: int) -> None:
        for row in self._rows_with_face(face_id):
            ix = self.index(row)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])

    def _rows_with_face(self, face_id: int) -> list[int]:
        return []


class PeopleModel(_RowsModel):
    """People (engine PersonSummary), biggest first. Drops: people onto a person merge them into it; faces onto
    a person move them to it. Editing the name asks for a rename."""

    merge_requested = Signal(int, list)  # target id, source ids
    move_requested = Signal(list, int)  # face ids, target person id
    rename_requested = Signal(int, str)

    def __init__(self, thumbnails=None, parent=None, *, accept_drops: bool = True):
        super().__init__(thumbnails, parent)
        self._by_cover: dict[int, int] = {}
        self.accept_drops = accept_drops

    def set_rows(self, rows) -> None:
        super().set_rows(rows)
        self._by_cover = {r.cover_face_id: i for i, r in enumerate(self.rows) if r.cover_face_id is not None}

    def thumbnail_face(self, row) -> int | None:
        return row.cover_face_id

    def _rows_with_face(self, face_id: int) -> list[int]:
        i = self._by_cover.get(face_id)
        return [] if i is None else [i]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        p = self.row_at(index)
        if p is None:
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return p.label
        if role == Qt.ItemDataRole.EditRole:
            return p.name or ""
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(p.cover_face_id) if self.thumbnails is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            hidden = " (hidden)" if p.hidden else ""
            return f"{p.label}{hidden}: {p.faces} face(s) in {p.photos} photo(s)"
        if role == ROW_ROLE:
            return p
        if role == ID_ROLE:
            return p.id
        if role == COUNT_ROLE:
            return p.faces
        return None

    def setData(self, index: QModelIndex, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        p = self.row_at(index)
        if p is None or role != Qt.ItemDataRole.EditRole:
            return False
        name = " ".join(str(value).split())
        if name == (p.name or ""):
            return False
        from dataclasses import replace

        self.rows[index.row()] = replace(p, name=name or None)
        self.dataChanged.emit(index, index)
        self.rename_requested.emit(p.id, name)
        return True

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
        if index.isValid():
            f |= Qt.ItemFlag.ItemIsEditable
            if self.accept_drops:
                f |= Qt.ItemFlag.ItemIsDropEnabled
        return f

    # -- drag and drop ----------------------------------------------------------------------------
    def mimeTypes(self) -> list[str]:
        return [PEOPLE_MIME, FACES_MIME]

    def mimeData(self, indexes) -> QMimeData:
        return encode_ids(PEOPLE_MIME, self.ids(indexes))

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction | Qt.DropAction.MoveAction

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def _drop_target(self, row: int, parent: QModelIndex):
        # Dropped onto an item: Qt gives that item as parent and row -1.
        if parent.isValid() and row == -1:
            return self.row_at(parent)
        return None

    def canDropMimeData(self, data, action, row, column, parent) -> bool:
        if not self.accept_drops:
            return False
        target = self._drop_target(row, parent)
        if target is None:
            return False
        people = decode_ids(data, PEOPLE_MIME)
        if people:
            return any(p != target.id for p in people)
        return bool(decode_ids(data, FACES_MIME))

    def dropMimeData(self, data, action, row, column, parent) -> bool:
        if not self.canDropMimeData(data, action, row, column, parent):
            return False
        target = self._drop_target(row, parent)
        people = [p for p in decode_ids(data, PEOPLE_MIME) if p != target.id]
        if people:
            self.merge_requested.emit(target.id, people)
            return True
        faces = decode_ids(data, FACES_MIME)
        if faces:
            self.move_requested.emit(faces, target.id)
            return True
        return False


class FacesModel(_RowsModel):
    """Faces (engine FaceInfo) of one person; thumbnails load only for the faces that get painted."""

    ages: dict[int, int] = {}  # face id -> the person's age on the photo's date (when their birthday is known)

    def set_rows(self, rows) -> None:
        super().set_rows(rows)
        self._row_of = {r.id: i for i, r in enumerate(self.rows)}

    def thumbnail_face(self, row) -> int | None:
        return row.id

    def _rows_with_face(self, face_id: int) -> list[int]:
        i = self._row_of.get(face_id)
        return [] if i is None else [i]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        f = self.row_at(index)
        if f is None:
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(f.id) if self.thumbnails is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            how = {"user": "confirmed by you", "suggestion": "suggested", "cluster": "grouped automatically"}
            age = self.ages.get(f.id)
            when = "" if age is None else ("\nfrom before their birthday" if age < 0 else f"\nage {age} in this photo")
            return f"{f.path}\nface {f.id}, {how.get(f.assignment or '', 'not grouped')}{when}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"face {f.id}"
        if role == ROW_ROLE:
            return f
        if role == ID_ROLE:
            return f.id
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def mimeTypes(self) -> list[str]:
        return [FACES_MIME]

    def mimeData(self, indexes) -> QMimeData:
        return encode_ids(FACES_MIME, self.ids(indexes))

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[Any], Any]
    align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    tooltip: Callable[[Any], Any] | None = None


class RowsTableModel(QAbstractTableModel):
    """A read-only table of rows described by columns."""

    def __init__(self, columns: Sequence[Column], parent=None):
        super().__init__(parent)
        self.columns = list(columns)
        self.rows: list = []

    def set_rows(self, rows: Sequence) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def row_at(self, index: QModelIndex | QPersistentModelIndex):
        return self.rows[index.row()] if index.isValid() and 0 <= index.row() < len(self.rows) else None

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].title
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.row_at(index)
        if r is None:
            return None
        col = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            v = col.value(r)
            return "" if v is None else str(v)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(col.align.value)
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(col.tooltip(r) if col.tooltip else col.value(r))
        if role == ROW_ROLE:
            return r
        return None
