"""The command line as a user runs it: exit codes, listings, JSON, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, SAMPLE


def fp(*args, lib=None, check=None):
    cmd = [sys.executable, "-m", "app.cli", *(["--library", str(lib)] if lib else []), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check is not None:
        assert r.returncode == check, (r.returncode, r.stdout, r.stderr)
    return r


def test_cli_end_to_end(tmp_path, sample_dir):
    lib = tmp_path / "lib"
    r = fp("import", sample_dir, lib=lib, check=0)
    assert "6 photos processed" in r.stdout and "6 faces found" in r.stdout
    people = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    assert sorted(p["faces"] for p in people) == [1, 1, 2, 2]
    assert all(f["photo"].startswith(str(sample_dir)) for p in people for f in p["face_list"])
    big = [p for p in people if p["faces"] == 2]
    ardern = next(p for p in big if "ardern" in p["face_list"][0]["photo"])
    fp("rename", ardern["id"], "Jacinda Ardern", lib=lib, check=0)
    shown = json.loads(fp("show", "Jacinda Ardern", "--json", lib=lib, check=0).stdout)
    assert shown["name"] == "Jacinda Ardern" and shown["faces"] == 2
    table = fp("people", lib=lib, check=0).stdout
    assert "Jacinda Ardern" in table and "4 people" in table
    # merge two people, undo it
    singles = [p["id"] for p in people if p["faces"] == 1]
    fp("merge", singles[0], singles[1], lib=lib, check=0)
    assert len(json.loads(fp("people", "--json", lib=lib).stdout)) == 3
    assert "Undone: Merge" in fp("undo", lib=lib, check=0).stdout
    assert len(json.loads(fp("people", "--json", lib=lib).stdout)) == 4
    # split a face out, then regroup: the split is the user's and stays
    face = ardern["face_list"][0]["id"]
    fp("split", face, "--name", "Someone Else", lib=lib, check=0)
    fp("recluster", lib=lib, check=0)
    assert json.loads(fp("show", "Someone Else", "--json", lib=lib, check=0).stdout)["faces"] == 1
    st = json.loads(fp("status", "--json", lib=lib, check=0).stdout)
    assert st["photos"] == 6 and st["faces"] == 6


def test_cli_errors_are_one_line_with_exit_codes(tmp_path, sample_dir):
    lib = tmp_path / "lib"
    r = fp("show", "Nobody", lib=lib, check=1)
    assert "error: no person named 'Nobody'" in r.stderr and "Traceback" not in r.stderr
    r = fp("import", tmp_path / "missing", lib=lib, check=0)
    assert "no such file or folder" in r.stderr
    r = fp("verify", SAMPLE / "macron_2014.jpg", sample_dir / "nothing.jpg", check=1)
    assert "error:" in r.stderr and "Traceback" not in r.stderr
    r = fp("bogus-command", check=2)


def test_cli_verify():
    same = fp("verify", SAMPLE / "ardern_2018.jpg", SAMPLE / "ardern_2022.jpg", "--json", check=0)
    assert json.loads(same.stdout)["same"] is True
    diff = fp("verify", SAMPLE / "obama.jpg", SAMPLE / "sunak.jpg", check=2)
    assert "different people" in diff.stdout


def test_library_in_use(tmp_path):
    from engine.services.library import Library

    with Library(tmp_path / "lib"):
        r = fp("people", lib=tmp_path / "lib", check=3)
        assert "library is in use" in r.stderr


def test_cli_doctor_reports_broken_models(tmp_path):
    import shutil

    from engine.models.registry import SFACE, verified_path
    from engine.services.library import Library

    lib = tmp_path / "lib"
    copy = tmp_path / "personal.onnx"
    shutil.copyfile(verified_path(SFACE), copy)
    with Library(lib) as library:
        library.register_model(copy, "personal-1")
        library.activate_model("personal-1")
    model = lib / "models" / "personal-1.onnx"
    model.unlink()
    r = fp("doctor", "--check", lib=lib, check=0)
    assert f"problem: model personal-1: file missing at {model}" in r.stdout
    assert "repaired:" not in r.stdout
    r = fp("doctor", lib=lib, check=0)
    assert "problem: model personal-1: file missing" in r.stdout
    assert "repaired: switched the active face model from personal-1 back to the bundled" in r.stdout
    report = json.loads(fp("doctor", "--json", lib=lib, check=0).stdout)
    assert not report["ok"] and f"model personal-1: file missing at {model}" in report["problems"]


def test_cli_activate_model_and_reembed(tmp_path, sample_dir):
    """A user switches the embedder from the command line and re-embeds: every face moves to the new
    model, people and names stay, and a second run has nothing left to do."""
    import shutil

    from engine.models.registry import SFACE, verified_path
    from engine.services.library import Library

    lib = tmp_path / "lib"
    fp("import", sample_dir, lib=lib, check=0)
    people = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    named = max(people, key=lambda p: p["faces"])
    fp("rename", named["id"], "Someone", lib=lib, check=0)
    copy = tmp_path / "upgrade.onnx"
    shutil.copyfile(verified_path(SFACE), copy)
    with Library(lib) as library:
        library.register_model(copy, "upgrade-1", compatible_with=SFACE.model_id)
    assert "no embedding model 'nope'" in fp("models", "--activate", "nope", lib=lib, check=1).stderr
    r = fp("models", "--activate", "upgrade-1", "--json", lib=lib, check=0)
    assert [m["id"] for m in json.loads(r.stdout) if m["active"] and m["kind"] == "embedder"] == ["upgrade-1"]
    r = fp("reembed", lib=lib, check=0)
    assert "6/6 faces re-embedded with upgrade-1" in r.stdout
    assert "every face already uses the active model" in fp("reembed", lib=lib, check=0).stdout
    after = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    assert sorted(p["faces"] for p in after) == sorted(p["faces"] for p in people)
    assert any(p["name"] == "Someone" and p["faces"] == named["faces"] for p in after)
