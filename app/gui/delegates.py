"""Painting of people (round cover, name, face count) and faces (square thumbnail with a status badge)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import QLineEdit, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from . import pyside_compat  # noqa: F401  (must run before any Qt call)
from .item_models import ROW_ROLE

PERSON_THUMB = 112
PERSON_CELL = QSize(144, 178)
FACE_THUMB = 96
FACE_CELL = QSize(108, 108)


def _selection_colours(option: QStyleOptionViewItem) -> tuple[QColor, QColor]:
    hl = option.palette.color(QPalette.ColorRole.Highlight)
    fill = QColor(hl)
    fill.setAlpha(60)
    return hl, fill


def draw_thumbnail(painter: QPainter, rect: QRect, index: QModelIndex, palette: QPalette, *, round_: bool,
                   radius: float = 6) -> None:
    """The item's thumbnail, or a placeholder shape while it is still loading."""
    pm = index.data(Qt.ItemDataRole.DecorationRole)
    if pm is not None and not pm.isNull():
        painter.drawPixmap(rect, pm)
        return
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(palette.color(QPalette.ColorRole.Midlight))
    if round_:
        painter.drawEllipse(rect)
    else:
        painter.drawRoundedRect(rect, radius, radius)


class PersonDelegate(QStyledItemDelegate):
    def sizeHint(self, option, index) -> QSize:
        return PERSON_CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        person = index.data(ROW_ROLE)
        if person is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hover = bool(option.state & QStyle.StateFlag.State_MouseOver)
        hl, fill = _selection_colours(option)
        if selected or hover:
            painter.setPen(QPen(hl, 1.5) if selected else Qt.PenStyle.NoPen)
            painter.setBrush(fill if selected else option.palette.color(QPalette.ColorRole.AlternateBase))
            painter.drawRoundedRect(QRectF(r).adjusted(3, 3, -3, -3), 10, 10)
        thumb = QRect(r.x() + (r.width() - PERSON_THUMB) // 2, r.y() + 10, PERSON_THUMB, PERSON_THUMB)
        draw_thumbnail(painter, thumb, index, option.palette, round_=True)
        if getattr(option.widget, "drop_row", None) == index.row():
            # A drag is over this person: dropping merges into it (or moves the faces to it).
            painter.setPen(QPen(hl, 5))
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(r).adjusted(3, 3, -3, -3), 10, 10)
            painter.drawEllipse(QRectF(thumb).adjusted(-3, -3, 3, 3))
        if person.hidden:
            painter.setPen(QPen(option.palette.color(QPalette.ColorRole.Mid), 2, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(thumb)
        text_w = r.width() - 12
        name_rect = QRect(r.x() + 6, thumb.bottom() + 8, text_w, 20)
        font = QFont(option.font)
        font.setBold(bool(person.name))
        painter.setFont(font)
        colour = option.palette.color(QPalette.ColorRole.Text)
        if not person.name:
            colour = option.palette.color(QPalette.ColorRole.PlaceholderText)
        painter.setPen(colour)
        name = painter.fontMetrics().elidedText(person.label, Qt.TextElideMode.ElideRight, text_w)
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, name)
        small = QFont(option.font)
        small.setPointSizeF(max(6.0, option.font.pointSizeF() * 0.88))
        painter.setFont(small)
        painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        count = f"{person.faces} face" + ("" if person.faces == 1 else "s")
        painter.drawText(QRect(name_rect.x(), name_rect.bottom() + 1, text_w, 18), Qt.AlignmentFlag.AlignHCenter, count)
        painter.restore()

    # -- inline rename ------------------------------------------------------------------------------
    def createEditor(self, parent, option, index):
        ed = QLineEdit(parent)
        ed.setPlaceholderText("Name")
        ed.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        ed.setFrame(True)
        return ed

    def updateEditorGeometry(self, editor, option, index) -> None:
        r = option.rect
        editor.setGeometry(QRect(r.x() + 4, r.y() + 10 + PERSON_THUMB + 6, r.width() - 8, 24))

    def setEditorData(self, editor, index) -> None:
        # Qt calls this again whenever the item changes (its thumbnail arriving, say): keep what is typed.
        if editor.isModified():
            return
        editor.setText(index.data(Qt.ItemDataRole.EditRole) or "")
        editor.selectAll()

    def setModelData(self, editor, model, index) -> None:
        model.setData(index, editor.text(), Qt.ItemDataRole.EditRole)


class FaceDelegate(QStyledItemDelegate):
    """Suggested faces (not yet confirmed) carry a "?" badge; faces the user placed carry a tick."""

    def sizeHint(self, option, index) -> QSize:
        return FACE_CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        face = index.data(ROW_ROLE)
        if face is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = option.rect
        thumb = QRect(r.x() + (r.width() - FACE_THUMB) // 2, r.y() + (r.height() - FACE_THUMB) // 2,
                      FACE_THUMB, FACE_THUMB)
        draw_thumbnail(painter, thumb, index, option.palette, round_=False)
        if option.state & QStyle.StateFlag.State_Selected:
            hl, fill = _selection_colours(option)
            painter.setBrush(fill)
            painter.setPen(QPen(hl, 3))
            painter.drawRoundedRect(QRectF(thumb).adjusted(-1.5, -1.5, 1.5, 1.5), 7, 7)
        badge = {"suggestion": ("?", QColor("#e0a100")), "user": ("✓", QColor("#2e8b57"))}.get(face.assignment or "")
        if badge:
            text, colour = badge
            b = QRect(thumb.right() - 21, thumb.bottom() - 21, 18, 18)
            painter.setPen(QPen(QColor("white"), 1.5))
            painter.setBrush(colour)
            painter.drawEllipse(b)
            f = QFont(option.font)
            f.setBold(True)
            painter.setFont(f)
            painter.drawText(b, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


SUGGESTION_CELL = QSize(120, 132)


class SuggestionDelegate(FaceDelegate):
    """A suggested face in the review grid: the face, and under it the person it was suggested for."""

    def sizeHint(self, option, index) -> QSize:
        return SUGGESTION_CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        face = index.data(ROW_ROLE)
        if face is None:
            return
        top = QStyleOptionViewItem(option)
        top.rect = QRect(option.rect.x(), option.rect.y(), option.rect.width(), FACE_CELL.height())
        super().paint(painter, top, index)
        painter.save()
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        text = QRect(option.rect.x() + 4, top.rect.bottom() + 1, option.rect.width() - 8, 20)
        label = f"{face.person_name or f'#{face.person_id}'}?"
        painter.drawText(text, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, text.width()))
        painter.restore()
