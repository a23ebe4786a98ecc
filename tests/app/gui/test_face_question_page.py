"""The "Same person?" page asking "is this face one of them?": the group's strip beside the one face, Y confirms
it, N takes it out, Ctrl+Z puts it back and asks again. Real widgets (offscreen), real key presses, the real
engine on the bundled sample portraits grouped loosely (Sunak in the Macron group)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest

from conftest import close_window  # noqa: E402
from conftest import open_window as _open
from conftest import wait_idle as _idle

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

import app.gui.pyside_compat  # noqa: E402, F401  (before pytest-qt makes any Qt call: see that module)

WAIT = 30_000


def _stem(lib, face_id: int) -> str:
    return Path(lib.face(face_id).path).stem


@pytest.fixture
def merged(imported):
    imported.recluster(1.6)  # not saved: Sunak joins the two Macron photos; the library's threshold stays 1.20
    return imported


def test_face_question_keys_yes_no_and_ctrl_z(qtbot, merged):
    lib = merged
    w, before = _open(qtbot, lib)
    try:
        _idle(qtbot, w)
        w.show_section("same")
        page = w.same_page
        qtbot.waitUntil(lambda: page.card.isVisible() and page.current is not None, timeout=WAIT)
        first = page.current
        assert first.kind == "face"
        group = first.person_a
        assert page.question.text() == "Is this face one of them?"
        assert page.side_b.caption.text().startswith("This face")
        assert [lab.isVisibleTo(page) for lab in page.side_b.faces].count(True) == 1
        assert [lab.isVisibleTo(page) for lab in page.side_a.faces].count(True) == len(first.faces_a) == 2
        assert "one of them" in page.hint.text()
        qtbot.waitUntil(lambda: page.side_b.faces[0].pixmap() is not None
                        and not page.side_b.faces[0].pixmap().isNull(), timeout=WAIT)

        # Answer as the person who knows them: a Macron photo is one of them, Sunak is not.
        def reply(q):
            return Qt.Key.Key_N if _stem(lib, q.face_id) == "sunak" else Qt.Key.Key_Y

        seen = set()
        sunak_q = None
        while page.current is not None and page.current.id not in seen and sunak_q is None:
            q = page.current
            seen.add(q.id)
            key = reply(q)
            qtbot.keyClick(page, key)
            _idle(qtbot, w)
            if key == Qt.Key.Key_N:
                sunak_q = q
                qtbot.waitUntil(lambda q=q: lib.face(q.face_id).person_id != group, timeout=WAIT)
                assert lib.history(1)[0][1] == f"Take 1 face out of Unnamed #{group}"
            else:
                assert lib.face(q.face_id).assignment == "user"
                assert lib.history(1)[0][1].startswith("Confirm")
        assert sunak_q is not None
        assert sorted(_stem(lib, f.id) for f in lib.faces_of(group)) == ["macron_2014", "macron_2025"]

        # Ctrl+Z: Sunak is back in the group and the question is asked again, first.
        qtbot.keyClick(page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        _idle(qtbot, w)
        qtbot.waitUntil(lambda: page.current is not None and page.current.id == sunak_q.id, timeout=WAIT)
        assert lib.face(sunak_q.face_id).person_id == group
    finally:
        close_window(qtbot, w, before, WAIT)
