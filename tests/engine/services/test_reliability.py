"""Reliability: more hostile input, a full disk, the doctor, two processes, and no network use."""

from __future__ import annotations

import os
import socket
import sqlite3

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from engine.errors import LibraryError
from engine.services.library import Library
from engine.store.schema import Face, Person, Photo

from conftest import SAMPLE, old_library


def test_more_hostile_files(library, tmp_path):
    d = tmp_path / "odd"
    d.mkdir()
    face = Image.open(SAMPLE / "obama.jpg").convert("RGB")
    frames = [face, face.rotate(10), face.rotate(-10)]
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(d / "animated.webp", save_all=True, append_images=frames[1:], duration=100)
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: an enormous EXIF block
    face.save(d / "big_exif.jpg", exif=exif.tobytes())
    name = os.fsdecode(b"caf\xe9-latin1-\xff.jpg")  # not valid UTF-8
    face.save(os.path.join(os.fsencode(d), os.fsencode(name)))
    last = list(library.import_paths([d]))[-1]
    assert last.stage == "done" and last.failures == [], last.failures
    with library.store.session() as s:
        per = dict(s.execute(select(Photo.path, func.count(Face.id)).join(Face, isouter=True).group_by(Photo.id)).all())
    assert len(per) == 4 and all(n == 1 for n in per.values()), per
    # the odd name survives the round trip through the database
    assert any(p.endswith(name) for p in per)
    assert library.people()[0].faces == 4  # the same face, four containers


def test_full_disk_stops_cleanly_and_loses_nothing(tmp_path, sample_dir, monkeypatch):
    import errno

    import engine.services.importer as importer

    lib_path = tmp_path / "lib"
    with Library(lib_path) as lib:
        list(lib.import_paths([sample_dir / "obama.jpg"]))
        lib.rename(lib.people()[0].id, "Obama")
    # The disk fills up while the next import writes its second batch.
    real_write = importer.write_thumbnail
    calls = {"n": 0}

    def write_until_full(*args):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(*args)

    monkeypatch.setattr(importer, "write_thumbnail", write_until_full)
    from engine.config import ImportConfig

    with Library(lib_path) as lib:
        with pytest.raises(LibraryError, match="No space left on device.*resumes"):
            list(lib.import_paths([sample_dir], ImportConfig(commit_every=2)))
    monkeypatch.setattr(importer, "write_thumbnail", real_write)
    with Library(lib_path) as lib:
        assert lib.store.integrity_check() == "ok"
        assert lib.find_person("Obama").faces == 1
        with lib.store.session() as s:
            n_photos = s.scalar(select(func.count(Photo.id)))
            n_faces = s.scalar(select(func.count(Face.id)))
        assert n_photos == n_faces and 1 < n_photos < 6  # batches before the failure are kept, whole
        # with space again, the import resumes and completes
        last = list(lib.import_paths([sample_dir]))[-1]
        assert last.stage == "done" and last.skipped == n_photos
        assert lib.stats()["photos"] == 6 and lib.stats()["faces"] == 6
        assert lib.find_person("Obama").faces == 1


def test_doctor_finds_and_repairs(imported, tmp_path):
    lib = imported
    rep = lib.doctor(repair=False)
    assert rep.integrity == "ok" and rep.ok, rep.problems
    # Damage: a photo file disappears, a face points at a deleted person, a stale thumbnail.
    victim = lib.faces_of(lib.people()[-1].id)[0]
    moved = tmp_path / "elsewhere.jpg"
    os.rename(victim.path, moved)
    try:
        raw = sqlite3.connect(lib.store.db_path)
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("UPDATE faces SET person_id = 9999 WHERE id = ?", (lib.faces_of(lib.people()[0].id)[0].id,))
        raw.commit()
        raw.close()
        (lib.store.thumbs_dir / "ff").mkdir(exist_ok=True)
        (lib.store.thumbs_dir / "ff" / "123456.jpg").write_bytes(b"x")
        rep = lib.doctor(repair=True)
        text = " ".join(rep.problems)
        assert "missing" in text and "does not exist" in text and "stale thumbnail" in text
        assert lib.doctor(repair=False).problems == ["1 face(s) are in no group (run 'recluster')"]
        lib.recluster()
        assert lib.doctor(repair=False).problems == []
        with lib.store.session() as s:
            assert s.scalar(select(Photo.status).where(Photo.path == victim.path)) == "missing"
    finally:
        os.rename(moved, victim.path)
    rep = lib.doctor(repair=True)
    assert any("back" in x for x in rep.repaired)


def test_second_process_gets_clear_error(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    with Library(tmp_path / "lib"):
        code = "from engine.services.library import Library\nLibrary(__import__('sys').argv[1])"
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "lib")], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
        assert r.returncode != 0 and "library is in use" in r.stderr


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if len(args) > 1 else args)
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket.socket, "sendto", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_import_and_grouping_use_no_network(no_network, tmp_path, sample_dir):
    with Library(tmp_path / "lib") as lib:
        last = list(lib.import_paths([sample_dir]))[-1]
        assert last.stage == "done" and last.faces == 6
        lib.recluster()
        lib.rename(lib.people()[0].id, "A")
        from engine.services.library import verify_images

        assert verify_images(SAMPLE / "ardern_2018.jpg", SAMPLE / "ardern_2022.jpg").same
    assert no_network == []


def test_people_of_a_merged_library_have_consistent_covers(imported):
    lib = imported
    a, b = [p.id for p in lib.people()[:2]]
    lib.merge(a, [b])
    with lib.store.session() as s:
        for p in s.scalars(select(Person)):
            if p.cover_face_id is not None:
                assert s.get(Face, p.cover_face_id).person_id == p.id
    assert np.isfinite(lib.embeddings([f.id for f in lib.faces_of(a)])).all()


def test_migration_backs_up_the_database_first(tmp_path):
    """A library made by an older version is upgraded, after a consistent backup, with its data."""
    from sqlalchemy import text

    from engine.store.database import head_revision

    root = old_library(tmp_path / "old-library", "0001", rows=lambda conn: conn.execute(
        text("INSERT INTO people (id, name, hidden, created_at) VALUES (7, 'Grandma', 0, '2020-01-01')")))
    assert head_revision() != "0001"
    with Library(root) as lib:
        assert lib.find_person("Grandma").id == 7
        with lib.store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    backups = list((root / "backups").glob("*.sqlite"))
    assert len(backups) == 1
    raw = sqlite3.connect(backups[0])
    try:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
        assert raw.execute("SELECT name FROM people WHERE id = 7").fetchone()[0] == "Grandma"
    finally:
        raw.close()
    # opening it again migrates nothing and takes no new backup
    with Library(root):
        pass
    assert len(list((root / "backups").glob("*.sqlite"))) == 1
