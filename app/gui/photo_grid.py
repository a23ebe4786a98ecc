"""The photo grid: thumbnails of whole photos by date taken, newest first, under a header per month.

Virtualised for 100,000 photos: a QTableView paints only the cells on screen, there is no widget per
photo, and a thumbnail is asked for (and made off the GUI thread, see ``thumbs.load_photo_image``)
only when its cell is painted. The model never makes a row object either: a grid row is worked out
from the month it falls in (a bisect over the months), so opening the grid costs one pass over the
photos on a pool thread (``Library.photo_timeline``) and a few hundred header spans on the GUI thread.

A month is a header row spanning the width ("March 2024 · 128 photos") and then its photos, as many a
row as fit; a new month starts on a new row, as in the photo apps people know.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QStyledItemDelegate, QTableView

from engine.services.search import MONTHS

from . import pyside_compat  # noqa: F401  (must run before any Qt call)
from .item_models import ROW_ROLE

HEADER_ROLE = Qt.ItemDataRole.UserRole + 20  # the month's label on a header row, else None
PHOTO_INDEX_ROLE = Qt.ItemDataRole.UserRole + 21  # index of the photo in the timeline, else None
CELL_PX = 176  # the width a cell aims at; the columns share the view's width
HEADER_PX = 40
THUMB_PX = 200  # the thumbnails' side as loaded (cells are drawn from it, scaled a little)
GAP = 2  # px between thumbnails


def date_text(when, source: str) -> str:
    day = f"{when.day} {MONTHS[when.month - 1]} {when.year}"
    return day if source == "exif" else f"{day} (file date: the photo has no date taken)"


class PhotoGridModel(QAbstractTableModel):
    """A :class:`engine.services.search.Timeline` laid out ``columns`` photos a row, months on rows of
    their own."""

    def __init__(self, thumbs=None, parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self.photos: list = []
        self.months: list = []
        self.columns = 4
        self._row_starts: list[int] = []  # the header row of each month
        self._rows = 0
        self.timeline = None
        if thumbs is not None:
            thumbs.ready.connect(self._thumb_ready)

    # -- layout -------------------------------------------------------------------------------------
    def set_timeline(self, timeline) -> None:
        self.beginResetModel()
        self.timeline = timeline
        self.photos, self.months = timeline.photos, timeline.months
        self._layout()
        self.endResetModel()

    def set_columns(self, n: int) -> None:
        n = max(1, int(n))
        if n == self.columns:
            return
        self.beginResetModel()
        self.columns = n
        self._layout()
        self.endResetModel()

    def _layout(self) -> None:
        starts, row = [], 0
        for m in self.months:
            starts.append(row)
            row += 1 + -(-m.count // self.columns)
        self._row_starts, self._rows = starts, row

    def header_rows(self) -> list[int]:
        """The grid row of each month's header, newest month first (do not change it)."""
        return self._row_starts

    def _locate(self, row: int, col: int) -> tuple[int, int | None]:
        """(month index, photo index or None) of a cell; None on the header row and after the month's end."""
        mi = bisect_right(self._row_starts, row) - 1
        if mi < 0:
            return -1, None
        off = row - self._row_starts[mi]
        if off == 0:
            return mi, None
        m = self.months[mi]
        k = (off - 1) * self.columns + col
        return mi, (m.start + k if k < m.count else None)

    def photo_at(self, index: QModelIndex) -> int | None:
        if not index.isValid():
            return None
        return self._locate(index.row(), index.column())[1]

    def index_of(self, photo: int) -> QModelIndex:
        """The cell of the photo at ``photo`` in the timeline."""
        if not 0 <= photo < len(self.photos):
            return QModelIndex()
        mi = bisect_right([m.start for m in self.months], photo) - 1
        k = photo - self.months[mi].start
        return self.index(self._row_starts[mi] + 1 + k // self.columns, k % self.columns)

    def row_of_id(self, photo_id: int) -> int | None:
        """The photo's place in the timeline shown (None if it is not in it)."""
        return self.timeline.position(photo_id) if self.timeline is not None else None

    def path_of(self, photo_id: int) -> str | None:
        """Safe from a pool thread: one timeline is read, whichever the grid shows at that moment."""
        tl = self.timeline
        i = tl.position(photo_id) if tl is not None else None
        return tl.photos[i][1] if i is not None else None

    def _thumb_ready(self, photo_id: int) -> None:
        i = self.row_of_id(photo_id)
        if i is not None:
            ix = self.index_of(i)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])

    # -- Qt model -----------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else self.columns

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        if self.photo_at(index) is None:
            return Qt.ItemFlag.NoItemFlags  # headers and the empty end of a month's last row
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        mi, i = self._locate(index.row(), index.column())
        if i is None:
            if role == HEADER_ROLE and mi >= 0 and index.row() == self._row_starts[mi]:
                return self.months[mi]
            return None
        photo = self.photos[i]
        if role == ROW_ROLE:
            return photo
        if role == PHOTO_INDEX_ROLE:
            return i
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.get(photo[0]) if self.thumbs is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{Path(photo[1]).name}\n{date_text(photo[2], photo[3])}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return Path(photo[1]).name
        return None


class PhotoGridDelegate(QStyledItemDelegate):
    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        month = index.data(HEADER_ROLE)
        pal = option.palette
        painter.save()
        if month is not None:
            r = option.rect.adjusted(6, 0, -10, -6)
            f = QFont(option.font)
            f.setPointSizeF(f.pointSizeF() * 1.25)
            f.setBold(True)
            painter.setFont(f)
            # Header cells are not selectable (disabled): draw them in the active colours, not greyed out.
            painter.setPen(pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text))
            bottom = Qt.AlignmentFlag.AlignBottom
            painter.drawText(r, bottom | Qt.AlignmentFlag.AlignLeft, month.label)
            w = painter.fontMetrics().horizontalAdvance(month.label)
            painter.setFont(option.font)
            painter.setPen(pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.PlaceholderText))
            n = month.count
            painter.drawText(r.adjusted(w + 12, 0, 0, -2), bottom | Qt.AlignmentFlag.AlignLeft,
                             f"{n:,} photo{'s' if n != 1 else ''}")
            painter.restore()
            return
        if index.data(PHOTO_INDEX_ROLE) is None:
            painter.restore()
            return
        r = option.rect.adjusted(GAP, GAP, -GAP, -GAP)
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        if pm is None or pm.isNull():
            painter.fillRect(r, pal.color(QPalette.ColorRole.AlternateBase).darker(108))
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            # The square thumbnail fills the cell (the columns share the width, so a cell is rarely square).
            side = max(r.width(), r.height())
            src_w = pm.width() * r.width() / side
            src_h = pm.height() * r.height() / side
            src = QRectF((pm.width() - src_w) / 2, (pm.height() - src_h) / 2, src_w, src_h)
            painter.drawPixmap(QRectF(r), pm, src)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            c = QColor(pal.color(QPalette.ColorRole.Highlight))
            painter.setPen(QPen(c, 4))
            painter.drawRect(r.adjusted(2, 2, -2, -2))
            c.setAlpha(50)
            painter.fillRect(r, c)
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(r, QColor(255, 255, 255, 40))
        painter.restore()


class PhotoGridView(QTableView):
    """The grid of :class:`PhotoGridModel`. ``photo_activated(index in the timeline)`` on a double click or
    Enter; the columns follow the width (``CELL_PX`` each, about)."""

    photo_activated = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemDelegate(PhotoGridDelegate(self))
        self.setShowGrid(False)
        self.horizontalHeader().hide()
        self.verticalHeader().hide()
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)  # no width jump as it comes and goes
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(40)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setMouseTracking(True)
        self.setWordWrap(False)
        self.setCornerButtonEnabled(False)
        self.setTabKeyNavigation(False)
        self.setFrameShape(QTableView.Shape.NoFrame)
        self.activated.connect(self._activated)

    def setModel(self, model) -> None:  # noqa: N802 - Qt's name
        super().setModel(model)
        model.modelReset.connect(self._apply_layout)
        self._apply_layout()

    def current_photo(self) -> int | None:
        return self.model().photo_at(self.currentIndex()) if self.model() is not None else None

    def select_photo(self, photo: int) -> None:
        ix = self.model().index_of(photo)
        if ix.isValid():
            self.setCurrentIndex(ix)
            self.scrollTo(ix, QAbstractItemView.ScrollHint.EnsureVisible)

    def _activated(self, index: QModelIndex) -> None:
        i = self.model().photo_at(index)
        if i is not None:
            self.photo_activated.emit(i)

    # -- layout -------------------------------------------------------------------------------------
    def _columns_for(self, width: int) -> int:
        return max(1, width // CELL_PX)

    def _apply_layout(self) -> None:
        """Row heights (square cells, short headers) and the header spans, after the model's layout changed."""
        model = self.model()
        if model is None:
            return
        self.clearSpans()
        width = self.viewport().width()
        vh = self.verticalHeader()
        vh.setDefaultSectionSize(max(40, width // model.columns))
        for r in model.header_rows():
            vh.resizeSection(r, HEADER_PX)
            if model.columns > 1:
                self.setSpan(r, 0, 1, model.columns)

    def resizeEvent(self, e) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(e)
        model = self.model()
        if model is None:
            return
        cols = self._columns_for(self.viewport().width())
        if cols != model.columns:
            keep = self.current_photo()
            top = model.photo_at(self.indexAt(QPoint(4, HEADER_PX + 4)))  # what the user was looking at
            model.set_columns(cols)  # resets: _apply_layout runs
            if keep is not None:
                self.setCurrentIndex(model.index_of(keep))
            if top is not None:
                self.scrollTo(model.index_of(top), QAbstractItemView.ScrollHint.PositionAtTop)
        else:
            self.verticalHeader().setDefaultSectionSize(max(40, self.viewport().width() // model.columns))
            for r in model.header_rows():
                self.verticalHeader().resizeSection(r, HEADER_PX)

    # -- keys: move between photos, over the headers and the empty cells --------------------------------
    def moveCursor(self, action, modifiers) -> QModelIndex:  # noqa: N802 - Qt's name
        model = self.model()
        cur = self.current_photo()
        A = QAbstractItemView.CursorAction
        if model is None or not model.photos:
            return super().moveCursor(action, modifiers)
        if cur is None:
            return model.index_of(0)
        if action in (A.MoveLeft, A.MovePrevious):
            return model.index_of(max(0, cur - 1))
        if action in (A.MoveRight, A.MoveNext):
            return model.index_of(min(len(model.photos) - 1, cur + 1))
        if action == A.MoveHome:
            return model.index_of(0)
        if action == A.MoveEnd:
            return model.index_of(len(model.photos) - 1)
        if action in (A.MoveUp, A.MoveDown, A.MovePageUp, A.MovePageDown):
            # Straight up or down in the same column; a month's short last row or its header is skipped.
            step = -1 if action in (A.MoveUp, A.MovePageUp) else 1
            rows = 1
            if action in (A.MovePageUp, A.MovePageDown):
                rows = max(1, self.viewport().height() // max(1, self.verticalHeader().defaultSectionSize()))
            ix = model.index_of(cur)
            row, col = ix.row(), ix.column()
            moved, last = 0, ix
            while moved < rows:
                row += step
                if row < 0 or row >= model.rowCount():
                    break
                i = model._locate(row, col)[1]
                if i is None and model._locate(row, 0)[1] is not None:
                    # a month's last row, shorter than this column: its last photo
                    c = col
                    while c > 0 and model._locate(row, c)[1] is None:
                        c -= 1
                    i = model._locate(row, c)[1]
                if i is not None:
                    last = model.index_of(i)
                    moved += 1
            return last
        return super().moveCursor(action, modifiers)
