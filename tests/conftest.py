"""Shared fixtures: the bundled sample portraits, fresh libraries, and the optional shared data."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "sample"
SHARED = ROOT.parent / "shared" / "data"
LFW = SHARED / "lfw"
ATT = SHARED / "att_faces"

# Ardern x2, Macron x2, Obama, Sunak
SAMPLE_PEOPLE = {
    "ardern_2018.jpg": "ardern", "ardern_2022.jpg": "ardern", "macron_2014.jpg": "macron",
    "macron_2025.jpg": "macron", "obama.jpg": "obama", "sunak.jpg": "sunak",
}


# torch makes its compiler's cache folder in the system temp folder as soon as an optimiser is built (no test
# compiles anything); the tests' goes into a folder of their own, CLI subprocesses included, removed at the end.
# (Test modules import this file again as a plain module: the second copy finds the first one's folder.)
_TORCH_CACHE = os.environ.get("FACENET_PHOTOS_TESTS_TORCH_CACHE") or tempfile.mkdtemp(
    prefix="facenet-photos-tests-torch-")
os.environ["FACENET_PHOTOS_TESTS_TORCH_CACHE"] = _TORCH_CACHE
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", _TORCH_CACHE)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TORCH_CACHE, ignore_errors=True)


LAG = SHARED / "lag-dev"
PHOTO_FORMATS = SHARED / "photo-formats"

# Tests that need a data set of ../shared/data carry its marker; without the data they are skipped
# with the reason (a fresh user machine has no ../shared). ``-m "not lfw"`` leaves them out.
DATA_MARKERS = {
    "lfw": (LFW / "pairs.txt", "the LFW data set"),
    "att": (ATT, "the AT&T faces"),
    "lag": (LAG / "labels.tsv", "the lag-dev data set"),
    "photo_formats": (PHOTO_FORMATS, "the photo-formats samples"),
}


@pytest.fixture(autouse=True, scope="session")
def _prepared_models_in_a_temporary_cache(tmp_path_factory):
    """The prepared networks (engine/models/prepared.py) go to a folder of this test run, not to the user's
    cache; the subprocesses the CLI tests start inherit it."""
    from engine.models.prepared import ENV

    old = os.environ.get(ENV)
    os.environ[ENV] = str(tmp_path_factory.mktemp("model-cache"))
    yield
    if old is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = old


def pytest_collection_modifyitems(config, items):
    for item in items:
        for name, (path, what) in DATA_MARKERS.items():
            if item.get_closest_marker(name) is not None and not path.exists():
                item.add_marker(pytest.mark.skip(reason=f"{what} is not at {path} (no shared data folder here)"))
        if "app/gui" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.gui)


@pytest.fixture
def sample_dir(tmp_path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for p in SAMPLE.glob("*.jpg"):
        shutil.copy2(p, d / p.name)
    return d


@pytest.fixture
def library(tmp_path):
    from engine.services.library import Library

    lib = Library(tmp_path / "library")
    yield lib
    lib.close()


def run_cli(*args, lib=None, check=None, env_extra=None):
    """``facenet-photos ARGS`` as a user runs it (a process of its own); the CompletedProcess.
    ``check``: the exit code it must end with."""
    cmd = [sys.executable, "-m", "app.cli", *(["--library", str(lib)] if lib else []), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env_extra or {})}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check is not None:
        assert r.returncode == check, (r.returncode, r.stdout, r.stderr)
    return r


def old_library(root: Path, revision: str, rows=None) -> Path:
    """A library folder at ``root`` as an older version left it: its database migrated only up to the
    schema ``revision``; ``rows(conn)``, where given, adds that era's data in the same transaction."""
    from alembic import command
    from sqlalchemy import create_engine

    from engine.store.database import DB_NAME, _alembic_config

    root.mkdir()
    eng = create_engine(f"sqlite:///{root / DB_NAME}")
    cfg = _alembic_config(eng)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if rows is not None:
            rows(conn)
    eng.dispose()
    return root


def family_cache(rng, *, young_spread: float, adult_spread: float = 0.05, kids: int = 60, dim: int = 64,
                 child_shift: float = 0.6) -> dict:
    """Embeddings shaped like the development sets (bench/family_sets.py's cache): each person a cluster of
    ``adult_spread``; the two "young" photos of each of lag-dev's ``kids`` people moved ``child_shift`` along
    one direction (how child-like a face looks) and ``young_spread`` apart; 50 LFW-like adults of 12 photos."""
    import numpy as np

    child_axis = np.zeros(dim)
    child_axis[0] = child_shift

    def people(names, per, young_pattern=None):
        centres = rng.normal(size=(len(names), dim))
        centres[:, 0] = 0.0
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        emb, ids, ages = [], [], []
        for name, c in zip(names, centres, strict=True):
            for k in range(per):
                young = young_pattern is not None and young_pattern[k] == "young"
                v = (c + child_axis + young_spread * rng.normal(size=dim) if young
                     else c + adult_spread * rng.normal(size=dim))
                emb.append(v / np.linalg.norm(v))
                ids.append(name)
                ages.append("young" if young else "adult")
        return np.array(emb, np.float32), np.array(ids), np.array(ages)

    lag_emb, lag_id, lag_age = people([f"kid{i}" for i in range(kids)], 4, ("young", "young", "adult", "adult"))
    lfw_emb, lfw_id, _ = people([f"adult{i}" for i in range(50)], 12)
    return {"lag_identity": lag_id, "lag_age": lag_age, "lag_emb": lag_emb,
            "lfw_identity": lfw_id, "lfw_emb": lfw_emb}


def label_the_sample(lib) -> None:
    """The edits a user makes on the imported sample, one of each kind that must survive a model switch:
    a name, a confirmation and a cover on one two-face person, and a "not this person" on the other."""
    two = [p for p in lib.people() if p.faces == 2]
    lib.rename(two[0].id, "Jacinda Ardern")
    first = lib.faces_of(two[0].id)
    lib.confirm([first[0].id])
    lib.set_cover(two[0].id, first[1].id)
    lib.not_this_person([lib.faces_of(two[1].id)[0].id])


def library_labels(lib):
    """Everything a user set in a library: people (name, hidden, cover), each face's person and how it got
    there, and the constraints; equal before and after an operation that must lose nothing."""
    from sqlalchemy import select

    from engine.store.schema import Constraint, Face, Person

    with lib.store.session() as s:
        people = {p.id: (p.name, p.hidden, p.cover_face_id) for p in s.scalars(select(Person))}
        faces = {f.id: (f.person_id, f.assignment) for f in s.scalars(select(Face))}
        constraints = sorted((c.face_id, c.person_id, c.kind) for c in s.scalars(select(Constraint)))
    return people, faces, constraints


def open_window(qtbot, library, settings=None):
    """A shown main window on ``library`` (GUI tests), and the threads alive before it, for close_window."""
    from app.gui.main_window import MainWindow

    before = {t.ident for t in threading.enumerate()}
    w = MainWindow(library, owns_library=False, settings=settings)
    w.resize(1100, 760)
    w.show()
    w.activateWindow()
    qtbot.waitExposed(w)
    return w, before


def wait_idle(qtbot, w, timeout: int = 30_000) -> None:
    """Wait until the window's edits, import and background jobs are done, then deliver their signals."""
    from PySide6.QtWidgets import QApplication

    qtbot.waitUntil(lambda: not w.controller.editing and not w.controller.importing and not w.jobs.active,
                    timeout=timeout)
    QApplication.processEvents()


def close_window(qtbot, w, threads_before, timeout: int = 30_000) -> None:
    """Close a main window and check it left no pool job or thread running (GUI tests)."""
    from PySide6.QtCore import QThreadPool
    from PySide6.QtWidgets import QApplication

    w.close()
    qtbot.waitUntil(lambda: w.is_closed, timeout=timeout)
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    assert gc.isenabled(), "the closed window left automatic garbage collection off"
    extra = [t for t in threading.enumerate()
             if t.ident not in threads_before and t.is_alive() and not isinstance(t, threading._DummyThread)]
    assert not extra, [t.name for t in extra]
    w.deleteLater()
    QApplication.processEvents()


def open_copy(library_dir: Path, dest: Path):
    """A Library opened on a copy of a template library folder (its lock file left behind)."""
    from engine.services.library import Library

    shutil.copytree(library_dir, dest, ignore=shutil.ignore_patterns(".lock"))
    return Library(dest)


def side_by_side(names: list[str], out: Path, taken: str | None) -> None:
    """A group photo: the named sample portraits, 400 x 480 each, left to right in one JPEG at ``out``,
    with the EXIF date taken ``taken`` ("YYYY:MM:DD HH:MM:SS") or none (the file's time is then its date)."""
    from PIL import Image

    imgs = [Image.open(SAMPLE / n).convert("RGB").resize((400, 480)) for n in names]
    canvas = Image.new("RGB", (400 * len(imgs), 480), "white")
    for i, im in enumerate(imgs):
        canvas.paste(im, (400 * i, 0))
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    canvas.save(out, exif=exif, quality=92)


@pytest.fixture(scope="session")
def _imported_template(tmp_path_factory):
    """One import of the sample, copied for each test that needs it (saves ~2 s per test)."""
    from engine.services.library import Library

    base = tmp_path_factory.mktemp("imported")
    photos = base / "photos"
    shutil.copytree(SAMPLE, photos, ignore=shutil.ignore_patterns("*.md"))
    with Library(base / "library") as lib:
        for _ in lib.import_paths([photos]):
            pass
    return base


@pytest.fixture
def imported(tmp_path, _imported_template):
    """A library holding the six sample portraits, with its photos folder at the same relative place."""

    # Photo paths are absolute, so keep using the template's photos folder (read-only use).
    lib = open_copy(_imported_template / "library", tmp_path / "library")
    yield lib
    lib.close()


@pytest.fixture(autouse=True)
def _no_stray_threads():
    before = {t.ident for t in threading.enumerate()}
    yield
    extra = [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon]
    assert not extra, f"threads left running: {[t.name for t in extra]}"
