"""SIGKILL an import at random points: the next run finishes with the same library as an import that
was never interrupted, with no duplicate photos or faces and every user edit intact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from engine.library import Library
from engine.store.schema import Face, Photo

from conftest import ROOT, SAMPLE

IMPORT = """
import sys
from engine.config import ImportConfig
from engine.library import Library
lib = Library(sys.argv[1])
for p in lib.import_paths([sys.argv[2]], ImportConfig(commit_every=3)):
    print(p.stage, p.done, flush=True)
lib.close()
"""


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("many")
    sources = sorted(SAMPLE.glob("*.jpg"))
    for i in range(24):
        img = Image.open(sources[i % 6]).convert("RGB")
        img.rotate((i // 6) * 2 - 3, fillcolor=(128, 128, 128)).save(d / f"p{i:02d}.jpg", quality=85)
    return d


def summary(lib_path: Path) -> tuple:
    with Library(lib_path) as lib:
        with lib.store.session() as s:
            n_photos = s.scalar(select(func.count(Photo.id)))
            n_paths = s.scalar(select(func.count(func.distinct(Photo.path))))
            per_photo = sorted(
                (os.path.basename(p), n)
                for p, n in s.execute(
                    select(Photo.path, func.count(Face.id)).join(Face, isouter=True).group_by(Photo.id)
                )
            )
        named = sorted((p.name, p.faces) for p in lib.people(named=True))
        assert lib.store.integrity_check() == "ok"
    return n_photos, n_paths, per_photo, named


def prepare(lib_path: Path, sample_dir: Path) -> None:
    with Library(lib_path) as lib:
        for _ in lib.import_paths([sample_dir]):
            pass
        for p in lib.people():
            stem = Path(lib.faces_of(p.id)[0].path).stem.split("_")[0]
            lib.rename(p.id, stem.title())


def run_import(lib_path: Path, folder: Path, kill_after: float | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", IMPORT, str(lib_path), str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    if kill_after is None:
        out, errs = proc.communicate(timeout=300)
        assert proc.returncode == 0, errs
        return 0
    # Wait for the import to really start, then kill it some time later without warning.
    assert proc.stdout.readline().startswith(("scan", "analyse"))
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return proc.returncode


def test_kill_and_resume(tmp_path, photos, sample_dir):
    ref = tmp_path / "reference"
    prepare(ref, sample_dir)
    run_import(ref, photos, None)
    expected = summary(ref)
    assert expected[0] == 6 + 24 and expected[0] == expected[1]

    rng = random.Random(7)
    interrupted = []
    for trial in range(3):
        lib_path = tmp_path / f"killed{trial}"
        prepare(lib_path, sample_dir)
        rc = run_import(lib_path, photos, kill_after=rng.uniform(0.2, 2.5))
        assert rc in (-signal.SIGKILL, 0)
        interrupted.append(summary(lib_path)[0])
        run_import(lib_path, photos, None)
        got = summary(lib_path)
        assert got[:3] == expected[:3]
        # user names are all still there, each with at least the faces it had
        assert [n for n, _ in got[3]] == [n for n, _ in expected[3]]
    # the kills really landed in the middle of the import
    assert any(6 <= n < 30 for n in interrupted), interrupted
