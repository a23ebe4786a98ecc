"""Reusable widgets: the people and faces grids, a compact people list, and the photo viewer."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QFont, QIcon, QImage, QPainter, QPalette, QPen, QTransform
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QMessageBox,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QWidget,
)

from . import pyside_compat  # noqa: F401  (must run before any Qt call)
from .delegates import FACE_CELL, PERSON_CELL, FaceDelegate, PersonDelegate, draw_thumbnail
from .models import FACES_MIME, PEOPLE_MIME, ROW_ROLE


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
    """A whole photo with every face box and name. Clicking a face emits ``face_clicked``."""

    face_clicked = Signal(object)  # engine FaceInfo

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(200, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.image: QImage | None = None
        self.scale = 1.0  # original photo pixels per image pixel
        self.faces: list = []
        self.highlight: int | None = None
        self.text = "No photo"
        self.path = ""
        self._hover: int | None = None

    def clear(self, text: str = "No photo") -> None:
        self.image, self.faces, self.text, self.path = None, [], text, ""
        self.update()

    def set_photo(self, image: QImage | None, scale: float, faces: list, highlight: int | None = None,
                  path: str = "", error: str = "") -> None:
        self.image, self.scale, self.faces, self.highlight, self.path = image, scale, list(faces), highlight, path
        self.text = error or ("" if image is not None else "No photo")
        self.setToolTip(path)
        self.update()

    def _transform(self) -> QTransform:
        """Original-photo pixels -> widget pixels (the photo fits the widget, centred)."""
        if self.image is None or self.image.isNull():
            return QTransform()
        iw, ih = self.image.width(), self.image.height()
        fit = min(self.width() / iw, self.height() / ih)
        ox, oy = (self.width() - iw * fit) / 2, (self.height() - ih * fit) / 2
        return QTransform().translate(ox, oy).scale(fit / self.scale, fit / self.scale)

    def face_rect(self, face) -> QRectF:
        return self._transform().mapRect(QRectF(*face.box))

    def face_at(self, pos: QPointF):
        for f in self.faces:
            if self.face_rect(f).contains(pos):
                return f
        return None

    def mouseMoveEvent(self, e) -> None:
        f = self.face_at(e.position())
        hover = f.id if f else None
        if hover != self._hover:
            self._hover = hover
            self.setCursor(Qt.CursorShape.PointingHandCursor if f else Qt.CursorShape.ArrowCursor)
            self.update()

    def mousePressEvent(self, e) -> None:
        f = self.face_at(e.position())
        if f is not None and e.button() == Qt.MouseButton.LeftButton:
            self.face_clicked.emit(f)

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
        for face in faces:
            r = t.mapRect(QRectF(*face.box))
            colour = colour_of(face)
            label = face.person_name or (f"Unnamed #{face.person_id}" if face.person_id else "")
            if label:
                w = fm.horizontalAdvance(label) + 10
                box = QRectF(r.center().x() - w / 2, r.bottom() + 4, w, fm.height() + 4)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(0, 0, 0, 170))
                p.drawRoundedRect(box, 4, 4)
                p.setPen(colour)
                p.drawText(box, Qt.AlignmentFlag.AlignCenter, label)


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
