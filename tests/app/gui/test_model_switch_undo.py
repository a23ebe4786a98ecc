"""Undo of a face model switch in the window: the Edit menu names it, Ctrl+Z makes the previous model active
again and brings every face back to it as the usual background job; nothing the user said is lost."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import app.gui.pyside_compat  # noqa: E402, F401  (before pytest-qt makes any Qt call: see that module)

from conftest import close_window  # noqa: E402

WAIT = 60_000
SFACE_ID = "sface-2021dec-int8bq"
SHOTS = Path(os.environ["FACENET_PHOTOS_TEST_SHOTS"]) if os.environ.get("FACENET_PHOTOS_TEST_SHOTS") else None


def _state(lib):
    from sqlalchemy import select

    from engine.store.schema import Constraint, Face, Person

    with lib.store.session() as s:
        people = {p.id: (p.name, p.hidden, p.cover_face_id) for p in s.scalars(select(Person))}
        faces = {f.id: (f.person_id, f.assignment, f.model_id) for f in s.scalars(select(Face))}
        constraints = sorted((c.face_id, c.person_id, c.kind) for c in s.scalars(select(Constraint)))
    return people, faces, constraints


def test_ctrl_z_switches_the_model_back_and_reembeds_in_the_background(qtbot, imported, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QDialogButtonBox

    from app.gui.main_window import MainWindow
    from engine.models.registry import SFACE, prepared_model_bytes
    from training.pack_head import graph_with_linear_head

    # Another model: SFace with its space turned (not compatible with SFace), registered in the library.
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(128, 128)))
    path = tmp_path / "turned.onnx"
    turned = graph_with_linear_head(prepared_model_bytes(SFACE), q.astype(np.float32), np.zeros(128, np.float32))
    path.write_bytes(turned)
    imported.register_model(path, "sface-turned")
    two = [p for p in imported.people() if p.faces == 2]
    imported.rename(two[0].id, "Jacinda Ardern")
    imported.confirm([imported.faces_of(two[0].id)[0].id])
    before = _state(imported)

    threads = {t.ident for t in threading.enumerate()}
    w = MainWindow(imported, owns_library=False)
    w.resize(1100, 760)
    w.show()
    w.activateWindow()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: len(w.people_page.model.rows) == 4, timeout=WAIT)
    finished = []
    msgs = []
    w.controller.message.connect(lambda m, _lvl: msgs.append(m))
    w.controller.model_switch_finished.connect(finished.append)

    dlg = w.open_settings()
    qtbot.waitUntil(lambda: dlg.model_combo.isEnabled(), timeout=WAIT)
    items = [dlg.model_combo.itemText(i) for i in range(dlg.model_combo.count())]
    dlg.model_combo.setCurrentIndex(next(i for i, t in enumerate(items) if t.startswith("sface-turned")))
    assert dlg.changes() == {"model": "sface-turned"}
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(finished) == 1 and not w.controller.switching_model, timeout=WAIT)
    assert imported.active_model_id() == "sface-turned" and imported.needs_reembed() == 0
    # (The menu cuts a long label to its width.)
    qtbot.waitUntil(lambda: w.undo_action.text().startswith("Undo Face model: sface-turned instead of"),
                    timeout=WAIT)

    # Ctrl+Z: the previous model is active again and the faces are looked at again with it, as a job.
    # The settings dialog was the active window: give the key to the main window again, as a click would.
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=WAIT)
    w.raise_()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=WAIT)
    w.people_page.view.setFocus()
    qtbot.keyClick(w.people_page.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(finished) == 2 and not w.controller.switching_model, timeout=WAIT)
    assert f"Undone: Face model: sface-turned instead of {SFACE_ID}; looking at the faces again with {SFACE_ID}" in msgs
    assert finished[1].stage == "done" and finished[1].done == 6 and finished[1].model_id == SFACE_ID
    assert imported.active_model_id() == SFACE_ID and imported.needs_reembed() == 0
    assert _state(imported) == before
    qtbot.waitUntil(lambda: w.redo_action.text().startswith("Redo Face model: sface-turned instead of"),
                    timeout=WAIT)
    assert f"Face model changed to {SFACE_ID}: 6 faces looked at again" in w.status_label.text()
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        w.grab().save(str(SHOTS / "model_switch_undone.png"))
    close_window(qtbot, w, threads, WAIT)
