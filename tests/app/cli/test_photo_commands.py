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
