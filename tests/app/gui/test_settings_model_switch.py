"""Switching the face model in the settings dialog: chosen with the keyboard, run as a background job with
progress and Stop, resumed from the dialog, and nothing the user said is lost."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
from dataclasses import replace

import pytest

pytest.importorskip("pytestqt")


import app.gui.pyside_compat  # noqa: E402, F401  (before pytest-qt makes any Qt call: see that module)
from engine.models import packs  # noqa: E402
from engine.models.packs import ARCFACE_MBF, installed_version  # noqa: E402

from conftest import close_window, label_the_sample  # noqa: E402
from conftest import library_labels as _state  # noqa: E402

WAIT = 60_000
needs_pack = pytest.mark.skipif(installed_version(ARCFACE_MBF) is None,
                                reason='the arcface extra is not installed (pip install -e ".[arcface]")')


def _face_models(lib) -> set[str]:
    from sqlalchemy import select

    from engine.store.schema import Face

    with lib.store.session() as s:
        return set(s.scalars(select(Face.model_id)))


def _open(qtbot, w):
    dlg = w.open_settings()
    qtbot.waitUntil(lambda: dlg.model_combo.isEnabled(), timeout=WAIT)
    return dlg


def _ok(qtbot, dlg):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialogButtonBox

    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


@needs_pack
def test_choosing_arcface_switches_in_the_background_and_keeps_everything(qtbot, imported, tmp_path):
    from PySide6.QtCore import Qt

    from app.gui.main_window import MainWindow

    label_the_sample(imported)
    imported.recluster(1.10, save=True)  # the user's own grouping threshold, in SFace's space
    before = _state(imported)
    threads = {t.ident for t in threading.enumerate()}
    w = MainWindow(imported, owns_library=False)
    w.resize(1100, 760)
    w.show()
    qtbot.waitExposed(w)
    dlg = _open(qtbot, w)
    items = [dlg.model_combo.itemText(i) for i in range(dlg.model_combo.count())]
    assert items[0].startswith("sface-2021dec-int8bq (128-D) — Apache-2.0") and items[0].endswith("active")
    assert any(t.startswith("arcface-mbf (512-D) — InsightFace weights: non-commercial") for t in items)
    h128 = next(i for i, t in enumerate(items) if t.startswith("arcface-mbf-h128"))
    assert not dlg.model_combo.model().item(h128).isEnabled()  # not built in this library
    assert "NON-COMMERCIAL" not in dlg.model_notice.text()
    assert dlg.changes() == {}

    dlg.model_combo.setFocus()
    qtbot.keyClick(dlg.model_combo, Qt.Key.Key_Down)
    assert dlg.chosen_model() == "arcface-mbf"
    assert "NON-COMMERCIAL research use only" in dlg.model_notice.text()
    assert "kept" in dlg.model_notice.text() and not dlg.spin.isEnabled()
    qtbot.keyClick(dlg.model_combo, Qt.Key.Key_Down)  # the next one is disabled: the choice stays
    assert dlg.chosen_model() == "arcface-mbf"
    assert dlg.changes() == {"model": "arcface-mbf"}

    # OK starts the switch; Stop in the status bar stops it before the first photo (loading the model
    # takes longer than this click), the model is active and no face has moved yet.
    stopped = []
    w.controller.model_switch_started.connect(lambda _m: qtbot.mouseClick(w.model_status.stop_btn,
                                                                          Qt.MouseButton.LeftButton))
    w.controller.model_switch_finished.connect(stopped.append)
    _ok(qtbot, dlg)
    assert w.controller.switching_model and w.model_status.isVisible()
    qtbot.waitUntil(lambda: bool(stopped) and not w.controller.switching_model, timeout=WAIT)
    assert stopped[0].stage == "cancelled" and stopped[0].done == 0
    assert imported.active_model_id() == "arcface-mbf" and _face_models(imported) == {"sface-2021dec-int8bq"}
    assert "Open Settings and press OK to finish" in w.status_label.text()
    assert not w.model_status.isVisible()
    w.controller.model_switch_started.disconnect()

    # The dialog says faces still wait; OK finishes with progress shown.
    dlg = _open(qtbot, w)
    assert dlg.chosen_model() == "arcface-mbf" and "6 faces still wait" in dlg.model_notice.text()
    progress = []
    w.controller.model_switch_progress.connect(progress.append)
    _ok(qtbot, dlg)
    qtbot.waitUntil(lambda: len(stopped) == 2 and not w.controller.switching_model, timeout=WAIT)
    last = stopped[1]
    assert last.stage == "done" and last.done == last.total == 6 and last.failed == 0
    assert any(p.total == 6 for p in progress)
    assert _face_models(imported) == {"arcface-mbf"}
    assert _state(imported) == before
    # The saved threshold was SFace's; arcface-mbf groups with its own calibrated one.
    assert imported.cluster_config().threshold == ARCFACE_MBF.thresholds.cluster
    assert "Face model changed to arcface-mbf: 6 faces looked at again" in w.status_label.text()
    close_window(qtbot, w, threads, WAIT)


def test_a_pack_that_is_not_installed_is_listed_disabled_with_the_install_hint(qtbot, imported, monkeypatch):
    from PySide6.QtCore import Qt

    from app.gui.main_window import MainWindow

    monkeypatch.setitem(packs.PACKS, "arcface-mbf", replace(ARCFACE_MBF, distribution="facenet-photos-no-such-wheel"))
    threads = {t.ident for t in threading.enumerate()}
    w = MainWindow(imported, owns_library=False)
    w.show()
    qtbot.waitExposed(w)
    dlg = _open(qtbot, w)
    items = [dlg.model_combo.itemText(i) for i in range(dlg.model_combo.count())]
    i = next(i for i, t in enumerate(items) if t.startswith("arcface-mbf (512-D)"))
    assert items[i].endswith("not available") and not dlg.model_combo.model().item(i).isEnabled()
    assert 'pip install "facenet-photos[arcface]"' in dlg.model_combo.itemData(i, Qt.ItemDataRole.ToolTipRole)
    dlg.model_combo.setFocus()
    qtbot.keyClick(dlg.model_combo, Qt.Key.Key_Down)  # every other model is disabled: SFace stays chosen
    assert dlg.chosen_model() == "sface-2021dec-int8bq" and dlg.changes() == {}
    dlg.model_combo.setCurrentIndex(i)  # what a screen reader or a script could still pick shows why not
    assert 'Not available here: pip install "facenet-photos[arcface]"' in dlg.model_notice.text()
    dlg.reject()
    close_window(qtbot, w, threads, WAIT)
