"""`facenet-photos suggest` / `answer` / `not-known` as a user and a script run them (own processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, open_copy
from conftest import run_cli as fp


def _split_library(imported, tmp_path) -> Path:
    """A copy of the imported sample grouped strictly, so the two Macron photos are two groups."""
    root = Path(imported.root)
    imported.recluster(0.5)
    imported.close()
    lib = open_copy(root, tmp_path / "split")
    lib.close()
    return tmp_path / "split"


def _macron_pair(lib: Path) -> tuple[int, int]:
    people = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    ids = [p["id"] for p in people if any("macron" in f["photo"] for f in p["face_list"])]
    assert len(ids) == 2
    return ids[0], ids[1]


def test_suggest_json_then_answer_no_and_yes_from_a_script(imported, tmp_path):
    lib = _split_library(imported, tmp_path)
    qs = json.loads(fp("suggest", "--json", lib=lib, check=0).stdout)
    assert qs and all(set(q) >= {"id", "distance", "probability", "faces_affected", "a", "b"} for q in qs)
    assert [q["score"] for q in qs] == sorted((q["score"] for q in qs), reverse=True)
    pair = set(_macron_pair(lib))
    q = next(q for q in qs if {q["a"]["person"], q["b"]["person"]} == pair)
    assert q["a"]["face_ids"] and q["b"]["face_ids"]
    assert len(json.loads(fp("suggest", "--json", "--limit", "1", lib=lib, check=0).stdout)) == 1
    # No: it is not asked again, and a regrouping keeps the two apart.
    r = fp("answer", q["id"], "no", lib=lib, check=0)
    assert "Kept apart" in r.stdout
    assert q["id"] not in {x["id"] for x in json.loads(fp("suggest", "--json", lib=lib, check=0).stdout)}
    fp("recluster", lib=lib, check=0)
    assert set(_macron_pair(lib)) == pair
    # Undo the no; yes merges.
    assert "Not the same person" in fp("undo", lib=lib, check=0).stdout
    r = fp("answer", q["id"], "yes", lib=lib, check=0)
    assert "Merged into" in r.stdout and "2 faces" in r.stdout
    people = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    assert sum(any("macron" in f["photo"] for f in p["face_list"]) for p in people) == 1
    # Plain errors.
    r = fp("answer", "not-an-id", "yes", lib=lib, check=1)
    assert "not a question id" in r.stderr and "Traceback" not in r.stderr
    r = fp("answer", q["id"], "perhaps", lib=lib, check=1)
    assert "write yes or no" in r.stderr


def test_suggest_lists_in_words_and_asks_one_by_one(imported, tmp_path):
    lib = _split_library(imported, tmp_path)
    listing = fp("suggest", lib=lib, check=0).stdout
    assert "likely the same person" in listing and "facenet-photos answer" in listing
    first = json.loads(fp("suggest", "--json", lib=lib, check=0).stdout)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    # s (skip the first), n (no to the second), q (stop).
    r = subprocess.run([sys.executable, "-m", "app.cli", "--library", str(lib), "suggest", "--ask"],
                       input="s\nn\nq\n", capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Same person?" in r.stdout and "Skipped." in r.stdout and "Kept apart for good." in r.stdout
    assert "1 answer(s) saved" in r.stdout
    after = {q["id"] for q in json.loads(fp("suggest", "--json", lib=lib, check=0).stdout)}
    assert first[0]["id"] in after  # skipped: asked again next time
    assert first[1]["id"] not in after  # answered no


def test_not_known_person_and_face_then_undo(imported, tmp_path):
    lib = _split_library(imported, tmp_path)
    people = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    sunak = next(p for p in people if "sunak" in p["face_list"][0]["photo"])
    obama = next(p for p in people if "obama" in p["face_list"][0]["photo"])
    r = fp("not-known", sunak["id"], lib=lib, check=0)
    assert "not someone you know" in r.stdout
    fp("not-known", "--face", obama["face_list"][0]["id"], lib=lib, check=0)
    left = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    assert {p["id"] for p in left}.isdisjoint({sunak["id"], obama["id"]})
    strangers = {sunak["face_list"][0]["id"], obama["face_list"][0]["id"]}
    fp("recluster", "--threshold", "2.0", lib=lib, check=0)  # a grouping that would merge everyone
    regrouped = json.loads(fp("people", "--json", lib=lib, check=0).stdout)
    assert not strangers & {f["id"] for p in regrouped for f in p["face_list"]}
    qs = json.loads(fp("suggest", "--json", lib=lib, check=0).stdout)
    assert not strangers & {f for q in qs for f in q["a"]["face_ids"] + q["b"]["face_ids"]}
    assert "Regroup" in fp("undo", lib=lib, check=0).stdout
    assert "not someone I know" in fp("undo", lib=lib, check=0).stdout
    r = fp("not-known", lib=lib, check=1)
    assert "give a person, or --face ID" in r.stderr
