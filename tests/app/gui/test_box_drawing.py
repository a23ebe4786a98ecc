"""Drawing a box on the photo viewer with real mouse events gives the box in photo pixels, which
add_face turns into a face."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

import app.gui.pyside_compat  # noqa: E402, F401  (before pytest-qt makes any Qt call: see that module)

from conftest import SAMPLE  # noqa: E402


def _viewer(qtbot, path):
    from app.gui.box_drawing import BoxDrawer
    from app.gui.widgets import PhotoViewer

    img, scale, faces, path, error = _load(path)
    assert not error
    v = PhotoViewer()
    qtbot.addWidget(v)
    v.resize(600, 500)
    v.set_photo(img, scale, faces, path=str(path))
    v.show()
    qtbot.waitExposed(v)
    return v, BoxDrawer(v)


def _load(path):
    from PySide6.QtGui import QImage

    from engine.pipeline.decode import decode

    rgb, scale = decode(path, 1600)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy(), scale, [], str(path), ""


def _drag(v, a: QPoint, b: QPoint):
    QTest.mousePress(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(v, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    QTest.mouseMove(v, b)
    QTest.mouseRelease(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def test_dragging_a_box_gives_photo_pixels_and_makes_a_face(qtbot, imported, tmp_path):
    from pathlib import Path

    # The library's copy of the sample's obama.jpg: 682x785, shown fitted into 600x500.
    path = Path(next(p.path for p in imported.photos() if p.path.endswith("obama.jpg")))
    v, drawer = _viewer(qtbot, path)
    got = []
    drawer.box_drawn.connect(got.append)
    # Off: a drag draws nothing.
    _drag(v, QPoint(250, 100), QPoint(350, 250))
    assert got == []
    drawer.set_active(True)
    fit = min(600 / 682, 500 / 785)
    ox = (600 - 682 * fit) / 2
    a = QPoint(round(ox + 222 * fit), round(157 * fit))
    b = QPoint(round(ox + 460 * fit), round(501 * fit))
    QTest.mousePress(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(v, b)
    assert drawer._band.isVisible()
    v.grab().save(str(tmp_path / "drawing.png"))
    QTest.mouseRelease(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    (box,) = got
    # One widget pixel is 1.6 photo pixels here: corners within two of them.
    assert all(abs(g - e) < 3.5 for g, e in zip(box, (222, 157, 238, 344), strict=True)), box
    assert not drawer._band.isVisible()
    # A click (no drag) is not a box; Escape stops drawing.
    _drag(v, QPoint(100, 100), QPoint(102, 101))
    assert len(got) == 1
    QTest.keyClick(v, Qt.Key.Key_Escape)
    assert not drawer.active
    added = imported.add_face(path, box, "Drawn Obama")
    assert added.aligned_by == "landmarks"


def test_a_box_dragged_past_the_photo_is_clipped_to_it(qtbot):
    v, drawer = _viewer(qtbot, SAMPLE / "obama.jpg")
    got = []
    drawer.box_drawn.connect(got.append)
    drawer.set_active(True)
    # (QTest reads QPoint(0, 0) as "the centre", so the corners here start at 1.)
    _drag(v, QPoint(1, 1), QPoint(150, 60))  # starts in the dark margin left of the photo
    (box,) = got
    assert box[0] == 0 and 0 < box[1] < 3 and box[2] > 0
    _drag(v, QPoint(2, 300), QPoint(20, 330))  # only the margin
    assert len(got) == 1
