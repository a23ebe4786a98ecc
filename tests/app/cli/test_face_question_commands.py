"""`facenet-photos suggest` / `answer` with "is this face one of them?" questions (own processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, open_copy
from conftest import run_cli as fp


def _merged_library(imported, tmp_path) -> Path:
    """A copy of the imported sample grouped loosely (1.6, not saved): Sunak sits in the Macron group."""
    root = Path(imported.root)
    imported.recluster(1.6)
    imported.close()
    open_copy(root, tmp_path / "merged").close()
    return tmp_path / "merged"


def _group_of(lib: Path, stem: str) -> list[str]:
    people = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    p = next(p for p in people if any(stem in f["photo"] for f in p["face_list"]))
    return sorted(Path(f["photo"]).stem for f in p["face_list"])


def _sunak_question(qs: list[dict], lib: Path) -> dict:
    people = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    fid = next(f["id"] for p in people for f in p["face_list"] if "sunak" in f["photo"])
    return next(q for q in qs if q["kind"] == "face" and q["face"] == fid)


def test_face_questions_listed_answered_by_id_and_undone(imported, tmp_path):
    lib = _merged_library(imported, tmp_path)
    assert _group_of(lib, "sunak") == ["macron_2014", "macron_2025", "sunak"]
    listing = fp("suggest", lib=lib, check=0).stdout
    assert "is face" in listing and "one of Unnamed #" in listing
    qs = json.loads(fp("suggest", "--json", lib=lib, check=0).stdout)
    q = _sunak_question(qs, lib)
    assert q["id"] == f"f{q['face']}-{q['a']['person']}" and q["b"]["face_ids"] == [q["face"]]
    r = fp("answer", q["id"], "no", lib=lib, check=0)
    assert "taken out of its group" in r.stdout
    assert _group_of(lib, "sunak") == ["sunak"]
    fp("recluster", "--threshold", "1.6", lib=lib, check=0)  # the loose grouping again keeps it out
    assert _group_of(lib, "sunak") == ["sunak"]
    # (that regrouping changed nothing, so it left nothing to undo)
    assert "Take 1 face out" in fp("undo", lib=lib, check=0).stdout
    assert _group_of(lib, "sunak") == ["macron_2014", "macron_2025", "sunak"]
    r = fp("answer", "f99999-1", "yes", lib=lib, check=1)
    assert "out of date" in r.stderr and "Traceback" not in r.stderr


def test_suggest_ask_answers_a_face_question(imported, tmp_path):
    lib = _merged_library(imported, tmp_path)
    first = json.loads(fp("suggest", "--json", "--limit", "1", lib=lib, check=0).stdout)[0]
    assert first["kind"] == "face"  # the sample's only doubtful group is this one
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "app.cli", "--library", str(lib), "suggest", "--ask"],
                       input="y\nq\n", capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "One of them?" in r.stdout and "Confirmed in the group." in r.stdout and "1 answer(s) saved" in r.stdout
    after = {q["id"] for q in json.loads(fp("suggest", "--json", lib=lib, check=0).stdout)}
    assert first["id"] not in after
    assert "Confirm" in fp("undo", lib=lib, check=0).stdout
