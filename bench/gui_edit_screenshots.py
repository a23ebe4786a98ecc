"""Screenshots of the edits that ask or show something (issue 15), for docs/gui.md.

    python bench/gui_edit_screenshots.py [--lfw ../shared/data/lfw/images] [--out docs/screenshots]

A small library from LFW (14 people, 3 photos each; the bundled sample portraits when LFW is not there),
a few people named, then, offscreen: a person dragged onto another (the drop target lit up), the question
before merging every person at once, and the Edit menu's Undo/Redo labels after it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from benchlib import LFW, REPO  # noqa: E402
from gui_screenshots import spin, spin_until  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QMenu  # noqa: E402

import app.gui.pyside_compat  # noqa: E402, F401


def save(pixmap, path: Path) -> None:
    """Palette-reduced PNG, as bench/gui_screenshots.py saves them (small in the repository)."""
    from PIL import Image

    tmp = path.with_suffix(".raw.png")
    pixmap.save(str(tmp))
    img = Image.open(tmp).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    tmp.unlink()


def photos(lfw: Path, dest: Path) -> list[str]:
    """Up to 14 LFW people with 3 photos each, named after the folder; else the sample portraits."""
    dest.mkdir(parents=True)
    names = []
    if lfw.is_dir():
        people = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 3)[::97][:14]
        for person in people:
            for img in sorted(person.glob("*.jpg"))[:3]:
                shutil.copy2(img, dest / img.name)
            names.append(person.name.replace("_", " "))
    else:
        for img in sorted((REPO / "resources" / "sample").glob("*.jpg")):
            shutil.copy2(img, dest / img.name)
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=LFW / "images")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = ap.parse_args()
    qa = QApplication.instance() or QApplication(sys.argv[:1])
    from app.gui.main_window import MainWindow
    from engine.services.library import Library

    tmp = Path(tempfile.mkdtemp(prefix="fp-shots-"))
    try:
        names = photos(args.lfw, tmp / "photos")
        lib = Library(tmp / "library")
        list(lib.import_paths([tmp / "photos"]))
        for p in lib.people():
            stem = Path(lib.faces_of(p.id)[0].path).stem.rsplit("_", 1)[0].replace("_", " ")
            if stem in names[:6] and p.faces >= 2:
                lib.rename(p.id, stem)
        w = MainWindow(lib, owns_library=False)
        w.resize(1100, 720)
        w.show()
        page = w.people_page
        spin_until(lambda: len(page.model.rows) > 4 and not w.jobs.active, 60)
        spin(1.5)  # thumbnails

        # 1. A drag over a person: real drag events on the viewport, made from the grid's own mime data.
        view, vp = page.view, page.view.viewport()
        src, dst = page.model.index(3), page.model.index(1)
        mime = page.model.mimeData([src])
        copy, left, none = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        a, b = view.visualRect(src).center(), view.visualRect(dst).center()
        QApplication.sendEvent(vp, QDragEnterEvent(QPointF(a), copy, mime, left, none))
        QApplication.sendEvent(vp, QDragMoveEvent(QPointF(b + QPoint(10, 10)), copy, mime, left, none))
        spin(0.3)
        shot = w.grab()
        thumb = src.data(Qt.ItemDataRole.DecorationRole)
        if thumb is not None:  # where the cursor carries the dragged face
            p = QPainter(shot)
            p.setOpacity(0.75)
            at = vp.mapTo(w, b + QPoint(18, 18))
            p.drawPixmap(at.x(), at.y(), 64, 64, thumb)
            p.end()
        save(shot, args.out / "people_drag.png")
        view._set_drop_row(None)

        # 2. Select everyone, Ctrl+M: the question, over the window.
        view.setFocus()
        view.selectAll()
        page.merge_selected()
        box = page.confirm_box
        spin_until(lambda: box.isVisible(), 10)
        spin(0.3)
        shot = w.grab()
        dlg = box.grab()
        p = QPainter(shot)
        p.setOpacity(0.25)
        p.fillRect(shot.rect(), Qt.GlobalColor.black)
        p.setOpacity(1.0)
        p.drawPixmap((shot.width() - dlg.width()) // 2, (shot.height() - dlg.height()) // 3, dlg)
        p.end()
        save(shot, args.out / "merge_confirm.png")
        box.button(box.StandardButton.Yes).click()
        spin_until(lambda: len(page.model.rows) == 1 and not w.jobs.active and not w.controller.editing, 60)
        w.controller.undo()
        spin_until(lambda: w.redo_action.text() != "Redo" and not w.controller.editing and not w.jobs.active, 30)
        spin(0.5)

        # 3. The Edit menu with the labels.
        edit = next(m for m in w.menuBar().findChildren(QMenu) if m.title() == "&Edit")
        pos = w.menuBar().actionGeometry(edit.menuAction()).bottomLeft()
        edit.popup(w.menuBar().mapToGlobal(pos))
        spin(0.4)
        shot = w.grab()
        menu = edit.grab()
        p = QPainter(shot)
        at = w.menuBar().mapTo(w, pos)
        p.drawPixmap(at.x(), at.y(), menu)
        p.end()
        save(shot, args.out / "edit_menu.png")
        edit.hide()
        print("undo label:", w.undo_action.text(), "| redo label:", w.redo_action.text())
        w.close()
        spin_until(lambda: w.is_closed, 60)
        lib.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    del qa


if __name__ == "__main__":
    main()
