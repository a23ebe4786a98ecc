"""The scan's words for folders it could not walk: one that went away while it ran, one it may not list."""

from __future__ import annotations

import errno
import os
import shutil

from engine.pipeline.scan import iter_photo_files

from conftest import SAMPLE


def _two_folders(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(SAMPLE / "obama.jpg", tmp_path / name / "obama.jpg")
    return tmp_path


def test_a_folder_removed_during_the_scan_is_said_to_have_vanished(tmp_path):
    root = _two_folders(tmp_path)
    problems = []
    found = []
    for p in iter_photo_files([root], problems):
        found.append(p)
        shutil.rmtree(root / "b")  # after a/ was listed, before b/ is walked
    assert found == [root / "a" / "obama.jpg"]
    assert [(p.path, p.reason) for p in problems] == [(root / "b", "folder vanished during the scan")]


def test_a_folder_that_cannot_be_listed_says_why(tmp_path, monkeypatch):
    root = _two_folders(tmp_path)
    real = os.scandir

    def scandir(path):
        # Tests run as root here and there, where permissions do not stop a listing: refuse it as the OS would.
        if os.fspath(path) == os.fspath(root / "b"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    problems = []
    assert list(iter_photo_files([root], problems)) == [root / "a" / "obama.jpg"]
    assert [(p.path, p.reason) for p in problems] == [(root / "b", "cannot read folder: Permission denied")]
