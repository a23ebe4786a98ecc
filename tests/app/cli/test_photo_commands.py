"""The photo-feature commands as a user runs them: export-xmp, photos, add-face, rescan, birthday."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, SAMPLE_PEOPLE


def fp(*args, lib=None, check=None):
    cmd = [sys.executable, "-m", "app.cli", *(["--library", str(lib)] if lib else []), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check is not None:
        assert r.returncode == check, (r.returncode, r.stdout, r.stderr)
    return r


def _import_and_name(lib, folder):
    fp("import", folder, lib=lib, check=0)
    for p in json.loads(fp("people", "--json", lib=lib, check=0).stdout):
        file = p["face_list"][0]["photo"].rsplit("/", 1)[-1]
        fp("rename", p["id"], SAMPLE_PEOPLE[file].title(), lib=lib, check=0)


def test_export_xmp_writes_sidecars_and_reports_json(tmp_path, sample_dir):
    lib = tmp_path / "lib"
    _import_and_name(lib, sample_dir)
    r = json.loads(fp("export-xmp", "--json", lib=lib, check=0).stdout)
    assert (r["photos"], r["written"], r["regions"], r["skipped"]) == (6, 6, 6, [])
    assert sorted(p.name for p in sample_dir.glob("*.xmp")) == sorted(f"{n}.xmp" for n in SAMPLE_PEOPLE)
    assert "0 sidecar(s) written, 6 already up to date" in fp("export-xmp", lib=lib, check=0).stdout


def test_photos_command_finds_by_person_and_date(tmp_path, sample_dir):
    lib = tmp_path / "lib"
    os.utime(sample_dir / "obama.jpg", (1262347200, 1262347200))  # 2010-01-01 (file date)
    _import_and_name(lib, sample_dir)
    hits = json.loads(fp("photos", "--with", "Obama", "--json", lib=lib, check=0).stdout)
    assert [h["path"].rsplit("/", 1)[-1] for h in hits] == ["obama.jpg"]
    assert hits[0]["date_source"] == "file" and hits[0]["date"].startswith("2010-01-01")
    assert hits[0]["people"][0]["name"] == "Obama"
    assert json.loads(fp("photos", "--with", "Obama", "--with", "Sunak", "--json", lib=lib, check=0).stdout) == []
    assert json.loads(fp("photos", "--with", "Obama", "--from", "2011", "--json", lib=lib, check=0).stdout) == []
    r = fp("photos", "--from", "yesterday", lib=lib, check=1)
    assert "not a date" in r.stderr and "Traceback" not in r.stderr
    assert "2 photo(s)" in fp("photos", "--with", "Macron", lib=lib, check=0).stdout


def test_add_face_rescan_and_birthday_commands(tmp_path, sample_dir):
    from PIL import Image

    lib = tmp_path / "lib"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:06:01 12:00:00"
    Image.open(sample_dir / "obama.jpg").save(sample_dir / "obama.jpg", exif=exif, quality=95)
    _import_and_name(lib, sample_dir)
    photo = sample_dir / "obama.jpg"
    a = json.loads(fp("add-face", photo, 10, 10, 90, 110, "--person", "Bo", "--json", lib=lib, check=0).stdout)
    assert (a["name"], a["assignment"], a["aligned_by"]) == ("Bo", "user", "box")
    assert "Undone: Add a face to obama.jpg as Bo" in fp("undo", lib=lib, check=0).stdout
    r = fp("add-face", photo, 5000, 10, 90, 110, lib=lib, check=1)
    assert "outside the photo" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(fp("rescan", photo, "--threshold", "0.5", "--json", lib=lib, check=0).stdout) == []
    b = json.loads(fp("birthday", "Obama", "1961-08-04", "--json", lib=lib, check=0).stdout)
    assert b["birth_date"] == "1961-08-04" and b["faces_removed"] == []
    shown = json.loads(fp("show", "Obama", "--json", lib=lib, check=0).stdout)
    assert shown["birth_date"] == "1961-08-04"
    (face,) = shown["face_list"]
    assert (face["age"], face["date_source"], face["photo_date"]) == (57, "exif", "2019-06-01T12:00:00")
    assert "57" in fp("show", "Obama", lib=lib, check=0).stdout
    assert "not a date" in fp("birthday", "Obama", "4 Aug 1961", lib=lib, check=1).stderr
