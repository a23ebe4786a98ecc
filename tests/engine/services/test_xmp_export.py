"""export-xmp: MWG sidecars beside the photos, read back by exiftool and by a fresh import."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from engine.services.library import Library

from conftest import SAMPLE_PEOPLE

EXIFTOOL = shutil.which("exiftool")


def _digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _name_everyone(lib):
    """Name each group after the sample file its faces come from (the sample's ground truth)."""
    for p in lib.people():
        files = {f.path.rsplit("/", 1)[-1] for f in lib.faces_of(p.id)}
        names = {SAMPLE_PEOPLE.get(f, "sunak").title() for f in files}
        assert len(names) == 1, files
        lib.rename(p.id, names.pop())


def _names_by_face(lib) -> dict[tuple[str, int, int], str]:
    """(photo file, rounded face centre) -> name, for comparing two libraries of the same photos."""
    out = {}
    for p in lib.people(named=True):
        for f in lib.faces_of(p.id):
            x, y, w, h = f.box
            out[(f.path.rsplit("/", 1)[-1], round((x + w / 2) / 8), round((y + h / 2) / 8))] = p.name
    return out


@pytest.fixture
def photos(sample_dir):
    # A copy of Sunak stored on its side (orientation 6), so the export must turn its region back.
    img = Image.open(sample_dir / "sunak.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(sample_dir / "sunak_rotated.jpg", exif=exif, quality=95)
    return sample_dir


def test_export_then_fresh_import_keeps_every_name_on_the_same_face(tmp_path, photos):
    before = {p.name: (_digest(p), p.stat().st_mtime) for p in photos.glob("*.jpg")}
    with Library(tmp_path / "lib1") as lib:
        list(lib.import_paths([photos]))
        _name_everyone(lib)
        names = _names_by_face(lib)
        res = lib.export_xmp()
        assert (res.photos, res.written, res.regions, res.skipped) == (7, 7, 7, [])
        again = lib.export_xmp()
        assert (again.written, again.unchanged) == (0, 7)
    # Originals untouched, byte for byte.
    assert {p.name: (_digest(p), p.stat().st_mtime) for p in photos.glob("*.jpg")} == before
    assert sorted(p.name for p in photos.glob("*.xmp")) == sorted(f"{n}.xmp" for n in before)
    shutil.rmtree(tmp_path / "lib1")
    with Library(tmp_path / "lib2") as lib:
        list(lib.import_paths([photos]))
        assert _names_by_face(lib) == names
        assert len(names) == 7
        assert {f.assignment for p in lib.people() for f in lib.faces_of(p.id)} == {"user"}


def test_rotated_photo_region_is_written_for_the_stored_pixels(tmp_path, photos):
    with Library(tmp_path / "lib") as lib:
        list(lib.import_paths([photos]))
        _name_everyone(lib)
        lib.export_xmp()
        (upright,) = [f.box for f in lib.faces_of(lib.find_person("Sunak").id) if f.path.endswith("sunak.jpg")]
    text = (photos / "sunak_rotated.jpg.xmp").read_text()
    # Stored 900x747 (the upright photo is 747x900); the face centre (cx, cy) of the upright photo
    # is at (cy, 1 - cx) of the stored pixels.
    assert 'stDim:w="900" stDim:h="747"' in text
    cx, cy = (upright[0] + upright[2] / 2) / 747, (upright[1] + upright[3] / 2) / 900
    import re

    x = float(re.search(r'stArea:x="([\d.]+)"', text).group(1))
    y = float(re.search(r'stArea:y="([\d.]+)"', text).group(1))
    assert abs(x - cy) < 0.01 and abs(y - (1 - cx)) < 0.01


def test_sidecar_of_another_program_is_left_alone(tmp_path, photos):
    foreign = photos / "obama.xmp"
    foreign.write_text('<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0"></x:xmpmeta>')
    original = foreign.read_bytes()
    with Library(tmp_path / "lib") as lib:
        list(lib.import_paths([photos]))
        _name_everyone(lib)
        res = lib.export_xmp()
    assert foreign.read_bytes() == original
    assert not (photos / "obama.jpg.xmp").exists()
    assert [(p.rsplit("/", 1)[-1], "another program" in why) for p, why in res.skipped] == [("obama.jpg", True)]


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed (Debian: libimage-exiftool-perl)")
def test_exiftool_reads_the_sidecars_back(tmp_path, photos):
    with Library(tmp_path / "lib") as lib:
        list(lib.import_paths([photos]))
        _name_everyone(lib)
        lib.export_xmp()
        expected = {}
        for p in lib.people(named=True):
            for f in lib.faces_of(p.id):
                expected[f.path.rsplit("/", 1)[-1]] = (p.name, f.box)
    files = sorted(str(p) for p in photos.glob("*.xmp"))
    run = subprocess.run([EXIFTOOL, "-j", "-struct", "-XMP-mwg-rs:RegionInfo", *files],
                         capture_output=True, text=True, check=True)
    rows = json.loads(run.stdout)
    assert len(rows) == 7
    for row in rows:
        photo = row["SourceFile"].rsplit("/", 1)[-1].removesuffix(".xmp")
        (region,) = row["RegionInfo"]["RegionList"]
        name, (x, y, w, h) = expected[photo]
        assert region["Name"] == name and region["Type"] == "Face"
        if photo != "sunak_rotated.jpg":
            dims = row["RegionInfo"]["AppliedToDimensions"]
            a = region["Area"]
            assert np.allclose([a["X"] * dims["W"], a["Y"] * dims["H"]], [x + w / 2, y + h / 2], atol=1)

