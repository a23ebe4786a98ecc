"""SIGKILL an import at random points: the next run finishes with the same library as an import that
was never interrupted - same photos, faces, people and every user edit - and a clean database."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from engine.config import ImportConfig
from engine.services.library import Library
from engine.store.schema import Face, Photo

from conftest import ROOT, SAMPLE

TRIALS = 20
CFG = ImportConfig(commit_every=2)
IMPORT = """
import sys
from engine.config import ImportConfig
from engine.services.library import Library
lib = Library(sys.argv[1])
for p in lib.import_paths([sys.argv[2]], ImportConfig(commit_every=2)):
    print(p.stage, p.done, flush=True)
lib.close()
"""


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("many")
    sources = sorted(SAMPLE.glob("*.jpg"))
    for i in range(12):
        img = Image.open(sources[i % 6]).convert("RGB")
        img.rotate((i // 6) * 4 - 2, fillcolor=(128, 128, 128)).save(d / f"p{i:02d}.jpg", quality=85)
    return d


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A library with the sample imported and every person named by the user."""
    base = tmp_path_factory.mktemp("prepared")
    shutil.copytree(SAMPLE, base / "sample")
    with Library(base / "lib") as lib:
        list(lib.import_paths([base / "sample"]))
        for p in lib.people():
            lib.rename(p.id, Path(lib.faces_of(p.id)[0].path).stem.split("_")[0].title())
        lib.split([lib.faces_of(lib.find_person("Macron").id)[0].id], name="Young Macron")
    return base / "lib"


def summary(lib: Library) -> tuple:
    with lib.store.session() as s:
        n_photos = s.scalar(select(func.count(Photo.id)))
        n_paths = s.scalar(select(func.count(func.distinct(Photo.path))))
        per_photo = sorted(
            (os.path.basename(p), n)
            for p, n in s.execute(select(Photo.path, func.count(Face.id)).join(Face, isouter=True).group_by(Photo.id))
        )
    people = sorted(
        (p.name or "", tuple(sorted(os.path.basename(f.path) for f in lib.faces_of(p.id)))) for p in lib.people()
    )
    assert lib.store.integrity_check() == "ok"
    return n_photos, n_paths, per_photo, people


def killed_import(lib_path: Path, folder: Path, after_reports: int, delay: float) -> None:
    """Start an import and SIGKILL it once it has reported progress ``after_reports`` times, plus
    ``delay`` seconds: kill points spread over scanning, batches, grouping and the end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", IMPORT, str(lib_path), str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        for _ in range(after_reports):
            if not proc.stdout.readline():
                break
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)


def test_kill_at_random_points_then_resume(tmp_path, photos, prepared):
    shutil.copytree(prepared, tmp_path / "reference", ignore=shutil.ignore_patterns(".lock"))
    with Library(tmp_path / "reference") as lib:
        list(lib.import_paths([photos], CFG))
        expected = summary(lib)
    assert expected[0] == expected[1] == 6 + 12
    named = [p for p in expected[3] if p[0]]
    assert [n for n, _ in named] == ["Ardern", "Macron", "Obama", "Sunak", "Young Macron"]

    rng = random.Random(20261125)
    interrupted = []
    for trial in range(TRIALS):
        lib_path = tmp_path / f"killed{trial}"
        shutil.copytree(prepared, lib_path, ignore=shutil.ignore_patterns(".lock"))
        killed_import(lib_path, photos, rng.randint(1, 9), rng.uniform(0.0, 0.3))
        with Library(lib_path) as lib:
            interrupted.append(lib.stats()["photos"])
            last = list(lib.import_paths([photos], CFG))[-1]
            assert last.stage == "done"
            assert summary(lib) == expected, f"trial {trial} killed after {interrupted[-1]} photos"
        shutil.rmtree(lib_path)
    # the kills landed at different points, including in the middle of the import
    assert any(6 < n < 18 for n in interrupted), interrupted
    assert len(set(interrupted)) >= 3, interrupted
