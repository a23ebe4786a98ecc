"""A quiet terminal: importing several hundred malformed images prints no library noise, and every
failure reason is plain words; the decoders' own messages are in the library's log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from engine.pipeline.reasons import plain_reason

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "engine" / "pipeline"))
from malformed_images import write_corpus  # noqa: E402

# Every reason an import gives for a file it cannot read.
PLAIN = [
    r"not an image, or a format that cannot be read",
    r"file is truncated \(an incomplete download or copy\?\)",
    r"damaged image data \(the file is corrupt or was not saved completely\)",
    r"damaged colour palette",
    r"damaged file header \(it gives an impossible size, \d+x\d+ pixels\)",
    r"unsupported BMP variant( \((\d+ bits per pixel|compression type \d+|an unknown kind of header)\))?",
    r"unsupported variant of this format \(its compression cannot be read\)",
    r"image is \d+x\d+ \(\d+ MP\), above the \d+ MP safety limit",
    r"empty file \(0 bytes\)",
]
PLAIN_RE = re.compile("^(" + "|".join(PLAIN) + ")$")
# What libraries print when nobody stops them.
NOISE = re.compile(r"TIFF|JPEGLib|ZIPDecode|LZWDecode|libpng|Warning|warn|Traceback|decoder error|Error -|"
                   r"Corrupt|Premature|tempfile|Using code")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("malformed")
    files = write_corpus(folder / "photos")
    assert len(files) >= 300
    return folder / "photos", files


def _import(lib, folder, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "app.cli", "--library", str(lib), "import", str(folder), *extra],
                          capture_output=True, text=True, env=env, timeout=900)


def test_malformed_corpus_imports_quietly_with_plain_reasons(corpus, tmp_path):
    folder, files = corpus
    r = _import(tmp_path / "lib", folder, "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not one line of library noise
    summary = json.loads(r.stdout)
    assert summary["photos_processed"] == len(files)
    reasons = [f["reason"] for f in summary["failures"]]
    assert len(reasons) > 200
    cryptic = sorted({x for x in reasons if not PLAIN_RE.match(x)})
    assert cryptic == []
    # The noise went to the library's log, with the decoders' own words for each failure.
    log = (tmp_path / "lib" / "logs" / "facenet-photos.log").read_text()
    assert "TIFFFillStrip" in log or "ZIPDecode" in log
    assert "decoder error" in log and "Unsupported BMP" in log


def test_terminal_output_without_json_is_only_the_programs_own(corpus, tmp_path):
    folder, files = corpus
    r = _import(tmp_path / "lib", folder)
    assert r.returncode == 0
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    # The failure list: "  <path>: <reason>" for each file, a path of the corpus, a plain reason.
    listed = [ln for ln in lines if ln.startswith(f"  {folder}/")]
    assert len(listed) > 200
    for ln in listed:
        assert PLAIN_RE.match(ln.rsplit(": ", 1)[1]), ln
    # Everything else is the program's own: the progress bar, the summary, the list's heading.
    rest = [ln for ln in lines if not ln.startswith(f"  {folder}/")]
    assert [ln for ln in rest if NOISE.search(ln)] == []
    assert len(rest) <= 6, rest


@pytest.mark.parametrize(("raw", "plain"), [
    ("OSError: decoder error -2", "damaged image data (the file is corrupt or was not saved completely)"),
    ("OSError: Unsupported BMP compression (9)", "unsupported BMP variant (compression type 9)"),
    ("ValueError: invalid palette size", "damaged colour palette"),
    ("SyntaxError: not a TIFF file", "not an image, or a format that cannot be read"),
    ("something nobody has seen", "damaged image data (the file is corrupt or was not saved completely)"),
])
def test_plain_reason(raw, plain):
    assert plain_reason(raw) == plain
