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
