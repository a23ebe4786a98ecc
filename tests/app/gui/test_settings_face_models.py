"""The settings dialog names every face model with its licence, the pack's non-commercial notice included."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading

import pytest

pytest.importorskip("pytestqt")


import app.gui.pyside_compat  # noqa: E402, F401  (before pytest-qt makes any Qt call: see that module)

from conftest import close_window  # noqa: E402

WAIT = 30_000


def test_settings_show_the_models_and_the_pack_licence(qtbot, imported, tmp_path):
    from app.gui.main_window import MainWindow

    before = {t.ident for t in threading.enumerate()}
    w = MainWindow(imported, owns_library=False)
    w.resize(1100, 760)
    w.show()
    qtbot.waitExposed(w)
    dlg = w.open_settings()
    qtbot.waitUntil(lambda: "sface-2021dec-int8bq" in dlg.models_note.text(), timeout=WAIT)
    text = dlg.models_note.text()
    first = text.splitlines()[0]
    assert first.startswith("sface-2021dec-int8bq (128-D) — active: Apache-2.0")
    assert "arcface-mbf (512-D): InsightFace weights: non-commercial research use only" in text
    assert "NON-COMMERCIAL research use only" in text and "facenet-photos models --activate" in text
    qtbot.waitUntil(lambda: dlg.preview.text().startswith("≈"), timeout=WAIT)
    shot = tmp_path / "settings_models.png"
    dlg.grab().save(str(shot))
    # Every line of the list is visible: the dialog grew to hold it.
    assert dlg.models_note.height() >= dlg.models_note.heightForWidth(dlg.models_note.width())
    dlg.reject()
    close_window(qtbot, w, before, WAIT)
