"""The command line as a user runs it: exit codes, listings, JSON, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, SAMPLE
from conftest import run_cli as fp


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
        r = fp("rename", "1", "x", lib=tmp_path / "lib", check=3)
        assert "library is in use" in r.stderr
        assert "Commands that only look" in r.stderr


HOLDER = """
import sys
from engine.services.library import Library
lib = Library(sys.argv[1])
print("open", flush=True)
for line in sys.stdin:  # each line: person id and a new name, as the app's rename would do
    pid, name = line.split(maxsplit=1)
    lib.rename(int(pid), name.strip())
    print("renamed", flush=True)
lib.close()
"""


def test_read_only_commands_run_while_another_process_has_the_library_open(imported):
    """Issue 15.11: with the app open, even 'status' said "library is in use". Readers now open the
    database read-only beside the writer (SQLite WAL); writers are still refused."""
    root = imported.root
    pid = imported.people()[0].id
    imported.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "open"
        st = json.loads(fp("status", "--json", lib=root, check=0).stdout)
        assert st["faces"] == 6 and st["photos"] == 6 and st["ungrouped"] == 0
        assert len(json.loads(fp("people", "--json", lib=root, check=0).stdout)) == 4
        fp("show", pid, lib=root, check=0)
        fp("history", lib=root, check=0)
        fp("failures", lib=root, check=0)
        fp("models", lib=root, check=0)
        assert "Database integrity: ok" in fp("doctor", "--check", lib=root, check=0).stdout
        # What the other process commits is what the next reader sees.
        holder.stdin.write(f"{pid} Seen From Outside\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "renamed"
        assert "Seen From Outside" in fp("people", lib=root, check=0).stdout
        assert "Rename" in fp("history", lib=root, check=0).stdout
        # Anything that writes is still refused, with exit code 3.
        for args in (("rename", pid, "Other"), ("undo",), ("recluster",), ("models", "--activate", "x"),
                     ("delete-face", "1"), ("doctor",)):
            r = fp(*args, lib=root, check=3)
            assert "library is in use" in r.stderr, args
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    assert fp("undo", lib=root, check=0).stdout.startswith("Undone: Rename")


def test_brackets_in_names_and_messages_print_as_written(imported):
    """rich read '[...]' in text as markup: "pip install 'facenet-photos[train]'" lost its '[train]'."""
    root = imported.root
    pid = imported.people()[0].id
    imported.close()
    name = "[bold]x[/bold] [red]"
    r = fp("rename", pid, name, lib=root, check=0)
    assert name in r.stdout
    assert name in fp("people", lib=root, check=0).stdout
    assert name in fp("show", name, lib=root, check=0).stdout
    assert f"to {name}" in fp("history", lib=root, check=0).stdout
    r = fp("show", "[nobody]", lib=root, check=1)
    assert "no person named '[nobody]'" in r.stderr


def test_delete_face_from_the_command_line(imported):
    root = imported.root
    face = imported.faces_of(imported.people()[0].id)[0].id
    imported.close()
    r = fp("delete-face", face, lib=root, check=0)
    assert "Deleted 1 false face" in r.stdout
    assert json.loads(fp("status", "--json", lib=root, check=0).stdout)["faces"] == 5
    assert "Undone: Delete 1 false face" in fp("undo", lib=root, check=0).stdout
    assert json.loads(fp("status", "--json", lib=root, check=0).stdout)["faces"] == 6
    assert "no face with id 99999" in fp("delete-face", "99999", lib=root, check=1).stderr


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


def test_a_library_folder_with_brackets_percent_and_accents(tmp_path, sample_dir):
    """Such a folder name was percent-encoded into the database URL (and broke the migration config), and
    its brackets were read as markup in messages."""
    lib = tmp_path / "Photothèque [2024] 100% #2"
    r = fp("import", sample_dir, lib=lib, check=0)
    assert "6 faces found" in r.stdout
    st = fp("status", lib=lib, check=0).stdout
    assert f"Library {lib}" in st and "6 faces" in st
    assert json.loads(fp("status", "--json", lib=lib, check=0).stdout)["library"] == str(lib)
