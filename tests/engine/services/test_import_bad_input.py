"""A corpus of broken and hostile files, generated here: the import finishes, every failure has a
reason, and what was already in the library is untouched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from engine.store.schema import Face, Photo

from conftest import SAMPLE


def make_corpus(d):
    d.mkdir()
    good = (SAMPLE / "obama.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.jpg").write_text("this is a text file, not a photo\n")
    Image.new("1", (20_000, 20_000)).save(d / "bomb.png")  # 400 MP, a few KB on disk
    Image.fromarray(np.linspace(0, 255, 300 * 200 * 3).reshape(200, 300, 3).astype(np.uint8)).save(d / "noface.png")
    # 30 faces: a 6 x 5 grid of the sample portraits' faces.
    tiles = [Image.open(p).convert("RGB").resize((160, 200)) for p in sorted(SAMPLE.glob("*.jpg"))]
    grid = Image.new("RGB", (6 * 160, 5 * 200), "white")
    for i in range(30):
        grid.paste(tiles[i % 6], ((i % 6) * 160, (i // 6) * 200))
    grid.save(d / "crowd.jpg", quality=92)
    loop = d / "loop"
    loop.mkdir()
    os.symlink(d, loop / "back-to-top")  # a symlink loop
    os.symlink(d / "does-not-exist.jpg", d / "dangling.jpg")
    (d / "folder.jpg").mkdir()  # a folder named like a photo
    Image.open(SAMPLE / "sunak.jpg").convert("CMYK").save(d / "cmyk.jpg")
    arr16 = (np.asarray(Image.open(SAMPLE / "macron_2014.jpg").convert("L"), np.uint16) * 257)
    Image.fromarray(arr16).save(d / "grey16.png")
    Image.open(SAMPLE / "ardern_2018.jpg").save(d / "really_a_jpeg.png", format="JPEG")  # wrong extension
    return d


def test_bad_input_corpus(library, tmp_path, sample_dir):
    for _ in library.import_paths([sample_dir]):
        pass
    obama = next(p for p in library.people() if library.faces_of(p.id)[0].path.endswith("obama.jpg"))
    library.rename(obama.id, "Obama")
    with library.store.session() as s:
        before = s.scalar(select(func.count(Face.id)))

    corpus = make_corpus(tmp_path / "bad")
    progress = list(library.import_paths([corpus, tmp_path / "vanished-folder"]))
    last = progress[-1]
    assert last.stage == "done"
    reasons = {os.path.basename(p): r for p, r in last.failures}
    assert "truncated" in reasons["truncated.jpg"]
    assert "0 bytes" in reasons["empty.jpg"]
    assert "not an image" in reasons["notes.jpg"]
    assert "safety limit" in reasons["bomb.png"]
    assert "no such file or folder" in reasons["vanished-folder"]
    assert "broken symbolic link" in reasons["dangling.jpg"]
    assert "loop" in reasons["back-to-top"]
    assert not any("unexpected" in r for r in reasons.values()), reasons

    with library.store.session() as s:
        status = dict(s.execute(select(Photo.path, Photo.status)).all())
        faces_per = dict(
            s.execute(select(Photo.path, func.count(Face.id)).join(Face, isouter=True).group_by(Photo.id)).all()
        )
        after = s.scalar(select(func.count(Face.id)))
    name = {os.path.basename(k): k for k in status}
    assert status[name["noface.png"]] == "done" and faces_per[name["noface.png"]] == 0
    assert 28 <= faces_per[name["crowd.jpg"]] <= 30
    for ok in ("cmyk.jpg", "grey16.png", "really_a_jpeg.png"):
        assert status[name[ok]] == "done" and faces_per[name[ok]] == 1, ok
    for bad in ("truncated.jpg", "empty.jpg", "notes.jpg", "bomb.png"):
        assert status[name[bad]] == "error"
    # nothing already in the library was lost, and the failures are listed for the user
    assert after >= before + 28 + 3
    assert library.find_person("Obama").faces >= 1
    assert {os.path.basename(p) for p, _ in library.failures()} >= {"truncated.jpg", "empty.jpg", "notes.jpg"}
    assert library.store.integrity_check() == "ok"


def _unreadable_file_scenario(work: Path) -> dict:
    """Import a folder holding one photo that cannot be read; the failure reasons it reports."""
    from engine.services.library import Library

    d = work / "locked"
    d.mkdir()
    shutil.copy(SAMPLE / "obama.jpg", d / "locked.jpg")
    os.chmod(d / "locked.jpg", 0)
    with Library(work / "library") as lib:
        last = list(lib.import_paths([d]))[-1]
    return {"stage": last.stage, "failures": [[str(p), r] for p, r in last.failures]}


def _read_only_library_scenario(work: Path) -> dict:
    """Open a library in a read-only folder; the error it raises, if any."""
    from engine.errors import LibraryError
    from engine.services.library import Library

    ro = work / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        Library(ro).close()
    except LibraryError as exc:
        return {"error": "LibraryError", "message": str(exc)}
    finally:
        os.chmod(ro, 0o755)
    return {"error": None, "message": ""}


# Root reads any file whatever its permission bits. To see what a user sees, the scenario runs in a
# child process that gives up the two capabilities that let root ignore them (CAP_DAC_OVERRIDE and
# CAP_DAC_READ_SEARCH) but stays root: unlike switching to another user it can still read the
# checkout, the interpreter and the models wherever they live (a private temporary folder, say).
_CHILD = """
import ctypes, json, sys
from pathlib import Path
import test_import_bad_input as t
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
libc = ctypes.CDLL(None, use_errno=True)
header, data = Header(0x20080522, 0), (Data * 2)()
ok = libc.capget(ctypes.byref(header), data) == 0
if ok:
    data[0].effective &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    data[0].permitted &= ~((1 << 1) | (1 << 2))
    ok = libc.capset(ctypes.byref(header), data) == 0
if not ok:
    print(json.dumps({"skip": f"cannot give up root's file-permission override (errno {ctypes.get_errno()})"}))
    sys.exit(0)
print(json.dumps(getattr(t, sys.argv[1])(Path(sys.argv[2]))))
"""


def run_scenario(scenario, tmp_path: Path) -> dict:
    """The scenario's result, run so that file permission bits apply: in this process for an
    ordinary user, in a child process without root's permission override when run as root."""
    if os.geteuid() != 0:
        return scenario(tmp_path)
    here = Path(__file__).resolve().parent
    paths = [here, Path(__file__).resolve().parents[2], Path(__file__).resolve().parents[3]]  # this, tests/, repo
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    r = subprocess.run([sys.executable, "-c", _CHILD, scenario.__name__, str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    return result


def test_unreadable_file(tmp_path):
    result = run_scenario(_unreadable_file_scenario, tmp_path)
    assert result["stage"] == "done"
    assert result["failures"] and "permission" in result["failures"][0][1]


def test_read_only_library_folder(tmp_path):
    result = run_scenario(_read_only_library_scenario, tmp_path)
    assert result["error"] == "LibraryError"
    assert "read-only" in result["message"]
