"""Drag a box around a face the detector missed, on a PhotoViewer.

A separate piece on purpose: ``BoxDrawer`` watches the viewer's mouse events through an event filter
and shows the box with a QRubberBand, so the viewer itself is unchanged. While drawing is on, a left
drag draws a box and releasing emits ``box_drawn`` with (x, y, w, h) in pixels of the photo as
displayed — what ``Library.add_face`` takes. Escape or ``set_active(False)`` stops drawing. The page
that uses it runs ``add_face`` on a pool worker (never on the GUI thread) and reloads the photo.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QRectF, Qt, Signal
from PySide6.QtWidgets import QRubberBand

# A drag shorter than this (widget pixels) is a click, not a box.
MIN_DRAG_PX = 6


class BoxDrawer(QObject):
    box_drawn = Signal(tuple)  # (x, y, w, h) in photo pixels
    active_changed = Signal(bool)

    def __init__(self, viewer):
        super().__init__(viewer)
        self.viewer = viewer
        self.active = False
        self._origin: QPoint | None = None
        self._band = QRubberBand(QRubberBand.Shape.Rectangle, viewer)
        viewer.installEventFilter(self)

    def set_active(self, on: bool) -> None:
        on = bool(on) and self.viewer.image is not None
        if on == self.active:
            return
        self.active = on
        self._origin = None
        self._band.hide()
        self.viewer.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.active_changed.emit(on)

    def photo_box(self, rect: QRect) -> tuple[float, float, float, float] | None:
        """A widget rectangle -> (x, y, w, h) on the photo, clipped to it; None outside it."""
        inv, ok = self.viewer._transform().inverted()
        if not ok or self.viewer.image is None:
            return None
        r = inv.mapRect(QRectF(rect))
        s = self.viewer.scale
        photo = QRectF(0, 0, self.viewer.image.width() * s, self.viewer.image.height() * s)
        r = r.intersected(photo)
        if r.isEmpty():
            return None
        return (r.x(), r.y(), r.width(), r.height())

    def eventFilter(self, obj, e) -> bool:  # noqa: N802 - Qt's name
        if obj is not self.viewer or not self.active:
            return False
        t = e.type()
        if t == QEvent.Type.KeyPress and e.key() == Qt.Key.Key_Escape:
            self.set_active(False)
            return True
        if t == QEvent.Type.MouseButtonPress and e.button() == Qt.MouseButton.LeftButton:
            self._origin = e.position().toPoint()
            self._band.setGeometry(QRect(self._origin, self._origin))
            self._band.show()
            return True  # not a click on a face while drawing
        if t == QEvent.Type.MouseMove and self._origin is not None:
            self._band.setGeometry(QRect(self._origin, e.position().toPoint()).normalized())
            return True
        if t == QEvent.Type.MouseButtonRelease and self._origin is not None:
            rect = QRect(self._origin, e.position().toPoint()).normalized()
            self._origin = None
            self._band.hide()
            if rect.width() >= MIN_DRAG_PX and rect.height() >= MIN_DRAG_PX:
                box = self.photo_box(rect)
                if box is not None:
                    self.box_drawn.emit(box)
            return True
        return False
