"""The migration head the store opens libraries against without alembic (engine/store/database.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.store.database import HEAD_REVISION, LibraryStore, head_revision


def test_the_head_constant_is_the_newest_migration():
    # A migration added without updating HEAD_REVISION would make every library look out of date (or,
    # worse, up to date when it is not): this fails first.
    assert HEAD_REVISION == head_revision()


def test_an_up_to_date_library_opens_without_alembic(tmp_path):
    LibraryStore(tmp_path / "lib").close()  # made and migrated (with alembic) once
    lib = str(tmp_path / "lib")
    code = (
        "import sys; from pathlib import Path; from engine.store.database import LibraryStore; "
        f"w = LibraryStore(Path({lib!r})); w.close(); "
        f"r = LibraryStore(Path({lib!r}), read_only=True); r.close(); "
        "print('alembic' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}  # this tree's engine
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env)
    assert out.stdout.strip() == "False", out.stderr
