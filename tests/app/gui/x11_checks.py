"""Checks that need a real X server (run by test_gui.py under Xvfb, in a process of their own).

``ctrl-q LIBRARY``: the main window closes on a Ctrl+Q key event. Only with a desktop key scheme does Qt
bind the standard Quit key to Ctrl+Q; listed a second time by hand it became an "ambiguous shortcut".

``drag``: a person dragged onto another in the people grid with the X server's own pointer (XTest, as
xdotool does) is merged into it: the drag runs Qt's X11 drag and drop, with the view as its source.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

import app.gui.pyside_compat  # noqa: F401  (before any Qt call)


def ctrl_q(library: str) -> int:
    from app.gui.main_window import MainWindow
    from engine.services.library import Library

    w = MainWindow(Library(library), owns_library=True)
    w.show()
    QTest.qWaitForWindowExposed(w)
    w.activateWindow()
    QTest.qWait(300)
    QTest.keyClick(w.people_page.view, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    for _ in range(200):
        if w.is_closed:
            return 0
        QTest.qWait(50)
    print("Ctrl+Q did not close the window")
    w.close()
    QTest.qWait(500)
    return 1


def drag() -> int:
    from app.gui.item_models import PeopleModel
    from app.gui.widgets import PeopleView
    from engine.services.library import PersonSummary

    x11, xtst = ctypes.CDLL("libX11.so.6"), ctypes.CDLL("libXtst.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    dpy = ctypes.c_void_p(x11.XOpenDisplay(None))

    def pointer_to(p: QPoint) -> None:
        xtst.XTestFakeMotionEvent(dpy, -1, p.x(), p.y(), 0)
        x11.XFlush(dpy)

    def button(down: bool) -> None:
        xtst.XTestFakeButtonEvent(dpy, 1, int(down), 0)
        x11.XFlush(dpy)

    model = PeopleModel(None)
    model.set_rows([PersonSummary(i, f"Person {i}", False, 3, 3, None) for i in range(1, 5)])
    view = PeopleView()
    view.setModel(model)
    view.resize(800, 400)
    view.move(40, 40)
    view.show()
    QTest.qWaitForWindowExposed(view)
    QTest.qWait(300)
    merges, lit = [], []
    model.merge_requested.connect(lambda target, sources: merges.append((target, sources)))
    vp = view.viewport()
    a = vp.mapToGlobal(view.visualRect(model.index(0)).center())
    b = vp.mapToGlobal(view.visualRect(model.index(1)).center())

    def during_the_drag() -> None:  # Qt's drag runs its own event loop: move and drop from inside it
        for d in range(0, 60, 6):
            pointer_to(a + QPoint(30 + 2 * d, d))
            QTest.qWait(20)
        pointer_to(b)
        QTest.qWait(100)
        pointer_to(b + QPoint(3, 3))
        QTest.qWait(100)
        lit.append(view.drop_row)
        button(False)

    pointer_to(a)
    QTest.qWait(100)
    button(True)
    QTest.qWait(100)
    QTimer.singleShot(300, during_the_drag)
    for d in (4, 10, 20):
        pointer_to(a + QPoint(d, 0))
        QTest.qWait(60)
    QTest.qWait(1500)
    if merges != [(2, [1])] or lit != [1]:
        print(f"merges {merges}, highlighted rows {lit}")
        return 1
    return 0


if __name__ == "__main__":
    qa = QApplication(sys.argv[:1])
    sys.exit(ctrl_q(sys.argv[2]) if sys.argv[1] == "ctrl-q" else drag())
