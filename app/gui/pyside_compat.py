"""Work around a reference-counting bug of some PySide6 builds on Python 3.10 and 3.11.

PySide6 6.12 (an abi3 wheel) returns ``None`` from every C++ ``void`` method without taking a new reference.
That is harmless on Python 3.12+, where ``None`` is immortal, but on 3.10/3.11 each such call (``painter.setPen``,
``label.setText``…) takes one reference away from ``None`` until the interpreter aborts with "none_dealloc:
deallocating None" - after a few seconds of painting a grid. When the leak is detected, ``None``'s reference
count is raised far out of reach, which is what Python 3.12 does for every interpreter. ``True`` and ``False``
get the same treatment: with the same builds an app that ran a while aborted at exit in "bool_dealloc".

Imported for its side effect by every module of the app that uses Qt.
"""

from __future__ import annotations

import sys

PATCHED = False


def _void_calls_leak_none() -> bool:
    from PySide6.QtCore import QObject

    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        obj.setObjectName("probe")
    return sys.getrefcount(None) < before - 32


def apply() -> bool:
    global PATCHED
    if PATCHED or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return PATCHED
    if _void_calls_leak_none():
        import ctypes

        # ob_refcnt is the first field of every PyObject (Py_ssize_t); 2**40 references is ~10^12 calls.
        for singleton in (None, True, False):
            ctypes.c_ssize_t.from_address(id(singleton)).value += 1 << 40
        PATCHED = True
    return PATCHED


apply()
