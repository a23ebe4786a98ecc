"""Reusable widgets: the people and faces grids, a compact people list, the photo viewer and its zoomable
full-screen version."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPoint, QPointF, QRect, QRectF, QSize, QSizeF, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QDesktopServices,
    QDrag,
    QFont,
    QIcon,
    QImage,
    QKeySequence,
    QPainter,
    QPalette,
    QPen,
    QTransform,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import pyside_compat  # noqa: F401  (must run before any Qt call)
from .delegates import (
    FACE_CELL,
    PERSON_CELL,
    SUGGESTION_CELL,
    FaceDelegate,
    PersonDelegate,
    SuggestionDelegate,
    draw_thumbnail,
)
from .item_models import FACES_MIME, PEOPLE_MIME, ROW_ROLE


def page_shortcut(page: QWidget, text: str, key: str, slot) -> QAction:
    """A key that works anywhere inside ``page`` (and only there: the review and "same person?" pages
    both answer Y / N / S), added to the page and connected to ``slot``."""
    a = QAction(text, page)
    a.setShortcut(QKeySequence(key))
    a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    a.triggered.connect(slot)
    page.addAction(a)
    return a


class StatusProgress(QWidget):
    """A long job's progress in the window's status bar, visible from every page (the import, the model
    switch): a line of words, a thin bar, then a flat button for each label in ``buttons``. Hidden until
    the job starts."""

    def __init__(self, buttons: tuple[str, ...], parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(180)
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        self.buttons: list[QToolButton] = []
        for text in buttons:
            b = QToolButton()
            b.setText(text)
            b.setAutoRaise(True)
            self.buttons.append(b)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        for b in self.buttons:
            lay.addWidget(b)
        self.hide()

    def show_count(self, done: int, total: int) -> None:
        """The bar at ``done`` of ``total`` (a count past the total, as a re-count can give, shows full)."""
        self.bar.setRange(0, total)
        self.bar.setValue(min(done, total))


class YesNoSkip:
    """The answers of a page that asks one question at a time (review, "same person?"): Yes (Y), No (N)
    and Skip (S) buttons in a centred ``row`` for the page's card, and the page's Y / N / S keys; a key and
    its button call the same slot."""

    def __init__(self, page: QWidget, yes, no, skip):
        self.yes_btn = QPushButton("Yes (Y)")
        self.no_btn = QPushButton("No (N)")
        self.skip_btn = QPushButton("Skip (S)")
        self.yes_btn.setObjectName("yes")
        self.no_btn.setObjectName("no")
        self.row = QHBoxLayout()
        self.row.addStretch(1)
        for b in (self.yes_btn, self.no_btn, self.skip_btn):
            b.setMinimumWidth(110)
            self.row.addWidget(b)
        self.row.addStretch(1)
        self.yes_action = page_shortcut(page, "Yes", "Y", yes)
        self.no_action = page_shortcut(page, "No", "N", no)
        self.skip_action = page_shortcut(page, "Skip", "S", skip)
        self.yes_btn.clicked.connect(yes)
        self.no_btn.clicked.connect(no)
        self.skip_btn.clicked.connect(skip)


def icon(name: str) -> QIcon:
    return QIcon(str(resources.files("resources") / "icons" / f"{name}.svg"))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def display_path(path: str) -> str:
    """A path for people to read: the home folder shortened to ~."""
    home = str(Path.home())
    if home not in ("", "/") and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home):]
    return path


def open_url(url: QUrl) -> bool:
    """Open a URL with the desktop's handler (a folder: the file manager). Tests replace this hook."""
    return QDesktopServices.openUrl(url)


def show_in_file_manager(path: str) -> QUrl | None:
    """Open the folder holding ``path`` in the file manager; returns the URL opened."""
    if not path:
        return None
    url = QUrl.fromLocalFile(str(Path(path).parent))
    open_url(url)
    return url


def layout_labels(boxes: list[QRectF], sizes: list[QSizeF], bounds: QRectF, gap: float = 4) -> list[QRectF]:
    """Places for the name labels of face boxes so that no two overlap: under the box if free, else above it,
    else further down (then up) in steps of a label's height. Earlier boxes get the better places."""
    placed: list[QRectF] = []
    for box, size in zip(boxes, sizes, strict=True):
        w, h = size.width(), size.height()
        x = min(max(box.center().x() - w / 2, bounds.left()), max(bounds.left(), bounds.right() - w))
        below, above = box.bottom() + gap, box.top() - gap - h
        tries = [below, above]
        for k in range(1, 12):
            tries += [below + k * (h + 2), above - k * (h + 2)]
        choice = None
        for y in tries:
            r = QRectF(x, y, w, h)
            inside = bounds.top() <= y and y + h <= bounds.bottom()
            if inside and not any(r.intersects(o) for o in placed):
                choice = r
                break
        if choice is None:  # nowhere free: under the box, as before
            choice = QRectF(x, min(below, bounds.bottom() - h), w, h)
        placed.append(choice)
    return placed


class _Grid(QListView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(400)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setWordWrap(False)
        self.setMouseTracking(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def selected_rows(self) -> list:
        rows = [ix.data(ROW_ROLE) for ix in sorted(self.selectedIndexes(), key=lambda i: i.row())]
        return [r for r in rows if r is not None]

    def selected_ids(self) -> list[int]:
        return [r.id for r in self.selected_rows()]

    def select_ids(self, ids) -> None:
        model = self.model()
        sel = self.selectionModel()
        sel.clearSelection()
        for i in ids:
            row = model.row_of(i)
            if row is not None:
                sel.select(model.index(row), sel.SelectionFlag.Select)


class PeopleView(_Grid):
    """People as round faces with name and count. Drag people onto a person to merge them into it;
    drop faces on a person to move them there. F2 renames inline.

    Drops land on the viewport, which must accept them itself: ``setMovement(Static)`` (in ``_Grid``)
    turns the viewport's drops off, and ``setAcceptDrops`` on the view only reaches the scroll area,
    which ignores drag events. So no drag ever reached the grid (nothing lit up, nothing merged).

    The drag and drop of people and faces is then handled here rather than by QListView, whose icon
    mode takes a drag that starts in the view itself for moving icons around (it accepts it anywhere and
    draws no drop target). The person under the cursor is highlighted (``drop_row``) when the model can
    take the drop, and the drop goes to the model's ``dropMimeData`` (merge, or move faces)."""

    EDGE = 28  # px from the top or bottom edge where a drag scrolls the grid

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemDelegate(PersonDelegate(self))
        self.setGridSize(PERSON_CELL)
        self.setSpacing(0)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setDragDropOverwriteMode(True)  # anywhere on a person counts as "onto" it
        self.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.viewport().setAcceptDrops(True)  # after setMovement(Static), which turned it off
        self.drop_row: int | None = None  # the person a drag is over and may be dropped on

    def startDrag(self, supported_actions) -> None:
        indexes = [ix for ix in self.selectedIndexes() if self.model().flags(ix) & Qt.ItemFlag.ItemIsDragEnabled]
        if not indexes:
            return
        drag = QDrag(self)
        drag.setMimeData(self.model().mimeData(indexes))
        pm = indexes[0].data(Qt.ItemDataRole.DecorationRole)
        if pm is not None and not pm.isNull():
            side = 64
            drag.setPixmap(pm.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation))
            drag.setHotSpot(QPoint(side // 2, side // 2))
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)
        self._set_drop_row(None)

    @staticmethod
    def _ours(mime) -> bool:
        return mime is not None and (mime.hasFormat(PEOPLE_MIME) or mime.hasFormat(FACES_MIME))

    def _target(self, e):
        """The person under the cursor if the model takes this drop there, else None."""
        ix = self.indexAt(e.position().toPoint())
        if ix.isValid() and self.model().canDropMimeData(e.mimeData(), Qt.DropAction.CopyAction, -1, -1, ix):
            return ix
        return None

    def _set_drop_row(self, row: int | None) -> None:
        if row != self.drop_row:
            old, self.drop_row = self.drop_row, row
            for r in (old, row):
                if r is not None:
                    self.viewport().update(self.visualRect(self.model().index(r, 0)))

    def dragEnterEvent(self, e) -> None:
        if not self._ours(e.mimeData()):
            e.ignore()  # files and folders: the window imports them
            return
        # Taken even over empty space, so that the moves onto a person that follow come here.
        e.setDropAction(Qt.DropAction.CopyAction)
        e.accept()
        ix = self._target(e)
        self._set_drop_row(ix.row() if ix is not None else None)

    def dragMoveEvent(self, e) -> None:
        if not self._ours(e.mimeData()):
            e.ignore()
            return
        y = e.position().y()
        bar = self.verticalScrollBar()
        if y < self.EDGE:
            bar.setValue(bar.value() - bar.singleStep())
        elif y > self.viewport().height() - self.EDGE:
            bar.setValue(bar.value() + bar.singleStep())
        ix = self._target(e)
        self._set_drop_row(ix.row() if ix is not None else None)
        if ix is None:
            e.ignore()
        else:
            e.setDropAction(Qt.DropAction.CopyAction)
            e.accept()

    def dragLeaveEvent(self, e) -> None:
        self._set_drop_row(None)
        e.accept()

    def dropEvent(self, e) -> None:
        if not self._ours(e.mimeData()):
            e.ignore()
            return
        ix = self._target(e)
        self._set_drop_row(None)
        if ix is not None and self.model().dropMimeData(e.mimeData(), Qt.DropAction.CopyAction, -1, -1, ix):
            e.setDropAction(Qt.DropAction.CopyAction)
            e.accept()
        else:
            e.ignore()


class FacesView(_Grid):
    """Every face of a person; only the faces on screen ever load a thumbnail."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemDelegate(FaceDelegate(self))
        self.setGridSize(FACE_CELL)
        self.setDragEnabled(True)
        self.setAcceptDrops(False)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)


class SuggestionsView(_Grid):
    """The review grid: suggested faces, each with the person it was suggested for; select several to answer."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemDelegate(SuggestionDelegate(self))
        self.setGridSize(SUGGESTION_CELL)
        self.setDragEnabled(False)
        self.setAcceptDrops(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)


class CompactPersonDelegate(QStyledItemDelegate):
    SIZE = 36

    def sizeHint(self, option, index) -> QSize:
        return QSize(180, self.SIZE + 8)

    def paint(self, painter: QPainter, option, index: QModelIndex) -> None:
        p = index.data(ROW_ROLE)
        if p is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = option.rect
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(r, option.palette.color(QPalette.ColorRole.Highlight).lighter(170))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(r, option.palette.color(QPalette.ColorRole.AlternateBase))
        thumb = QRect(r.x() + 6, r.y() + 4, self.SIZE, self.SIZE)
        draw_thumbnail(painter, thumb, index, option.palette, round_=True)
        text = QRect(thumb.right() + 8, r.y(), r.right() - thumb.right() - 12, r.height())
        f = QFont(option.font)
        f.setBold(bool(p.name))
        painter.setFont(f)
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        label = painter.fontMetrics().elidedText(p.label, Qt.TextElideMode.ElideRight, text.width() - 40)
        painter.drawText(text, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)
        painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        painter.setFont(option.font)
        painter.drawText(text, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, str(p.faces))
        painter.restore()


class PeopleDropList(QListView):
    """A narrow list of people to drop faces on (moves them)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemDelegate(CompactPersonDelegate(self))
        self.setUniformItemSizes(True)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.setDragEnabled(False)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setDragDropOverwriteMode(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)


class PhotoViewer(QWidget):
    """A whole photo with every face box and name. Clicking a face emits ``face_clicked``; a double click (or
    F where a page offers it) opens the photo full screen; the right-click menu shows it in the file manager.

    ``zoomable``: the wheel and +/- zoom (about the mouse), dragging pans, 0 fits again; the face boxes and
    names follow the zoom (they are drawn through the same transform)."""

    face_clicked = Signal(object)  # engine FaceInfo
    MAX_ZOOM = 16.0

    def __init__(self, parent=None, *, zoomable: bool = False):
        super().__init__(parent)
        self.setMinimumSize(200, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.image: QImage | None = None
        self.scale = 1.0  # original photo pixels per image pixel
        self.faces: list = []
        self.highlight: int | None = None
        self.ages: dict[int, int] = {}  # face id -> the person's age on the photo's date (birthday known)
        self.pending_box: QRectF | None = None  # a box just drawn, in photo pixels, until it is a face
        self.text = "No photo"
        self.path = ""
        self._hover: int | None = None
        self.zoomable = zoomable
        self.zoom = 1.0  # 1 = the photo fits the widget
        self.pan = QPointF(0, 0)  # widget pixels the photo is moved by
        self._drag_from: QPointF | None = None
        self.label_rects: list[QRectF] = []  # where the names were drawn last (widget pixels)
        self.full_screen: FullScreenViewer | None = None
        self.full_action = QAction("View full screen", self)
        self.full_action.setToolTip("Zoom with the wheel or + and -, drag to move, Esc to close (F)")
        self.full_action.triggered.connect(self.open_full_screen)
        self.folder_action = QAction("Show in file manager", self)
        self.folder_action.triggered.connect(lambda: show_in_file_manager(self.path))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        if zoomable:
            self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def clear(self, text: str = "No photo") -> None:
        self.image, self.faces, self.text, self.path = None, [], text, ""
        self.ages, self.pending_box = {}, None
        self.update()

    def set_photo(self, image: QImage | None, scale: float, faces: list, highlight: int | None = None,
                  path: str = "", error: str = "", ages: dict[int, int] | None = None) -> None:
        self.image, self.scale, self.faces, self.highlight, self.path = image, scale, list(faces), highlight, path
        self.ages, self.pending_box = dict(ages or {}), None
        self.text = error or ("" if image is not None else "No photo")
        self.setToolTip(path)
        self.zoom, self.pan = 1.0, QPointF(0, 0)
        self.update()

    def _transform(self) -> QTransform:
        """Original-photo pixels -> widget pixels (the photo fits the widget, centred, then zoom and pan)."""
        if self.image is None or self.image.isNull():
            return QTransform()
        iw, ih = self.image.width(), self.image.height()
        fit = min(self.width() / iw, self.height() / ih) * self.zoom
        ox = (self.width() - iw * fit) / 2 + self.pan.x()
        oy = (self.height() - ih * fit) / 2 + self.pan.y()
        return QTransform().translate(ox, oy).scale(fit / self.scale, fit / self.scale)

    def face_rect(self, face) -> QRectF:
        return self._transform().mapRect(QRectF(*face.box))

    def face_at(self, pos: QPointF):
        for f in self.faces:
            if self.face_rect(f).contains(pos):
                return f
        return None

    # -- zoom and pan (full screen) ------------------------------------------------------------------
    def zoom_by(self, factor: float, about: QPointF | None = None) -> None:
        """Zoom keeping the photo point under ``about`` (default: the centre) where it is."""
        if self.image is None:
            return
        about = QPointF(self.width() / 2, self.height() / 2) if about is None else about
        new = min(self.MAX_ZOOM, max(1.0, self.zoom * factor))
        f = new / self.zoom
        centre = QPointF(self.width() / 2, self.height() / 2)
        # Photo point p maps to centre + pan + (p - photo centre) * zoom; keep ``about`` fixed.
        self.pan = (self.pan + centre - about) * f + about - centre
        self.zoom = new
        if new == 1.0:
            self.pan = QPointF(0, 0)
        self.update()

    def reset_zoom(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0, 0)
        self.update()

    def wheelEvent(self, e) -> None:
        if not self.zoomable:
            return super().wheelEvent(e)
        steps = e.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25 ** steps, e.position())
        e.accept()

    def keyPressEvent(self, e) -> None:
        if self.zoomable and e.key() in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif self.zoomable and e.key() == Qt.Key.Key_Minus:
            self.zoom_by(1 / 1.25)
        elif self.zoomable and e.key() == Qt.Key.Key_0:
            self.reset_zoom()
        else:
            super().keyPressEvent(e)

    # -- mouse ---------------------------------------------------------------------------------------
    def mouseMoveEvent(self, e) -> None:
        if self._drag_from is not None:
            self.pan += e.position() - self._drag_from
            self._drag_from = e.position()
            self.update()
            return
        f = self.face_at(e.position())
        hover = f.id if f else None
        if hover != self._hover:
            self._hover = hover
            self.setCursor(Qt.CursorShape.PointingHandCursor if f else Qt.CursorShape.ArrowCursor)
            self.update()

    def mousePressEvent(self, e) -> None:
        if e.button() != Qt.MouseButton.LeftButton:
            return
        if self.zoomable:
            self._drag_from = e.position()  # full screen: the left button moves the photo
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        f = self.face_at(e.position())
        if f is not None:
            self.face_clicked.emit(f)

    def mouseReleaseEvent(self, e) -> None:
        if self._drag_from is not None:
            self._drag_from = None
            self.setCursor(Qt.CursorShape.ArrowCursor)

    def mouseDoubleClickEvent(self, e) -> None:
        if e.button() == Qt.MouseButton.LeftButton and not self.zoomable:
            self.open_full_screen()
        elif e.button() == Qt.MouseButton.LeftButton:
            self.reset_zoom()

    def _context_menu(self, pos) -> None:
        m = QMenu(self)
        self.full_action.setEnabled(self.image is not None and not self.zoomable)
        self.folder_action.setEnabled(bool(self.path))
        if not self.zoomable:
            m.addAction(self.full_action)
        m.addAction(self.folder_action)
        m.popup(self.mapToGlobal(pos))

    def open_full_screen(self) -> FullScreenViewer | None:
        """The photo on its own, full screen and zoomable (Esc closes it)."""
        if self.image is None or self.zoomable:
            return None
        dlg = FullScreenViewer(self.window())
        dlg.viewer.set_photo(self.image, self.scale, self.faces, self.highlight, self.path, ages=self.ages)
        dlg.finished.connect(lambda _r: setattr(self, "full_screen", None))
        self.full_screen = dlg
        dlg.showFullScreen()
        dlg.raise_()
        dlg.activateWindow()  # its keys (Esc, +, -) must not reach the page's shortcuts underneath
        dlg.viewer.setFocus()
        return dlg

    # -- painting ------------------------------------------------------------------------------------
    def paintEvent(self, _e) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(self.rect(), QColor("#202124"))
        if self.image is None or self.image.isNull():
            p.setPen(QColor("#bdc1c6"))
            p.drawText(self.rect().adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.text)
            return
        t = self._transform()
        p.save()
        p.setTransform(QTransform().scale(self.scale, self.scale) * t)
        p.drawImage(0, 0, self.image)
        p.restore()
        f = QFont(self.font())
        f.setBold(True)
        p.setFont(f)
        fm = p.fontMetrics()
        # Boxes first, then the names on top of them; the chosen face last, so nothing hides it.
        faces = sorted(self.faces, key=lambda x: x.id == self.highlight)

        def colour_of(face) -> QColor:
            if face.id == self.highlight:
                return QColor("#ffb300")
            return QColor("#8ab4f8") if face.id == self._hover else QColor("white")

        for face in faces:
            p.setPen(QPen(colour_of(face), 3 if face.id == self.highlight else 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(t.mapRect(QRectF(*face.box)), 4, 4)
        # Names: laid out so that none covers another on a crowded photo (the chosen face picks first).
        named = [(face, self._label(face)) for face in reversed(faces)]
        named = [(face, label) for face, label in named if label]
        rects = layout_labels([t.mapRect(QRectF(*face.box)) for face, _l in named],
                              [QSizeF(fm.horizontalAdvance(label) + 10, fm.height() + 4) for _f, label in named],
                              QRectF(self.rect()))
        self.label_rects = rects
        if self.pending_box is not None:
            p.setPen(QPen(QColor("#ffb300"), 2, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(t.mapRect(self.pending_box))
        for (face, label), box in reversed(list(zip(named, rects, strict=True))):
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 170))
            p.drawRoundedRect(box, 4, 4)
            p.setPen(colour_of(face))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, label)

    def _label(self, face) -> str:
        """The name under a face box, with the age on the photo's date when the person's birthday is known."""
        name = face.person_name or (f"Unnamed #{face.person_id}" if face.person_id else "")
        age = self.ages.get(face.id)
        return f"{name} ({age})" if name and age is not None and age >= 0 else name


class FullScreenViewer(QDialog):
    """One photo over the whole screen: wheel or +/- to zoom, drag to move, 0 or a double click to fit,
    Esc (or F) to close."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Photo")
        self.viewer = PhotoViewer(self, zoomable=True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.viewer)
        close = QAction("Close", self)
        close.setShortcuts([QKeySequence("F")])
        close.triggered.connect(self.reject)
        self.addAction(close)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)


def load_photo(library, photo_id: int | None = None, face_id: int | None = None, path: str = "",
               max_side: int = 1600):
    """Pool thread: (QImage or None, scale, faces in the photo, path, error text) for the viewer."""
    from engine.errors import FacenetPhotosError
    from engine.pipeline.decode import decode

    if photo_id is None:
        photo_id = library.face(face_id).photo_id
    faces = library.faces_in_photo(photo_id)
    path = path or (faces[0].path if faces else "")
    try:
        rgb, scale = decode(Path(path), max_side)
    except (FacenetPhotosError, OSError) as exc:
        return None, 1.0, faces, path, f"Cannot show {path}:\n{exc}"
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()
    return img, scale, faces, path, ""


def load_photo_with_ages(library, photo_id: int | None = None, face_id: int | None = None, path: str = ""):
    """Pool thread: ``load_photo``'s tuple and, last, the ages on the photo's date of the faces whose person
    has a birthday ({face id: years})."""
    r = load_photo(library, photo_id, face_id, path)
    return (*r, library.ages([f.id for f in r[2]]))


MANY = 5  # a merge, hide or "not this person" of more people (or faces) than this asks first


def ask_first(parent: QWidget, title: str, text: str, details: str, yes: str, on_yes) -> QMessageBox:
    """Ask before an edit that touches many people at once ("Merge 3,015 people into Tom?"); No is the
    default, so Enter or Esc does nothing. Window-modal and non-blocking; ``on_yes`` runs on Yes."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    box.setInformativeText(details)
    box.button(QMessageBox.StandardButton.Yes).setText(yes)
    box.button(QMessageBox.StandardButton.No).setText("Cancel")
    box.setDefaultButton(QMessageBox.StandardButton.No)
    box.setEscapeButton(QMessageBox.StandardButton.No)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def finished(_result) -> None:
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
            on_yes()

    box.finished.connect(finished)
    box.open()
    return box
