"""RAW files (DNG, NEF, ...) import through the JPEG preview the camera embeds; tested on small
TIFF-based RAW containers written here: a preview, a thumbnail, dummy sensor data in a SubIFD."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from engine.errors import ImageError
from engine.pipeline.decode import decode, read_info
from engine.pipeline.raw_preview import preview_jpeg

from conftest import SAMPLE


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def write_raw(path, preview: bytes | None, thumb: bytes | None, orientation: int = 1, big_endian: bool = False):
    """IFD0: the preview as a one-strip JPEG (compression 7, as DNG stores it), orientation,
    SubIFDs -> a dummy 8x8 16-bit sensor image; IFD1: the small thumbnail (JPEGInterchangeFormat)."""
    bo = ">" if big_endian else "<"
    sensor = bytes(8 * 8 * 2)
    blobs = [sensor, preview or b"", thumb or b""]
    head = 8
    data_at = []
    at = head
    for b in blobs:
        data_at.append(at)
        at += len(b) + (len(b) & 1)
    ifd0_at = at
    w, h = (Image.open(io.BytesIO(preview)).size if preview else (8, 8))

    def entries(items):
        out = struct.pack(bo + "H", len(items))
        for tag, typ, val in sorted(items):
            if typ == 3:
                out += struct.pack(bo + "HHIHH", tag, typ, 1, val, 0)
            else:
                out += struct.pack(bo + "HHII", tag, typ, 1, val)
        return out

    ifd0_items = [(0xFE, 4, 1), (0x100, 4, w), (0x101, 4, h), (0x103, 3, 7 if preview else 1), (0x106, 3, 6),
                  (0x112, 3, orientation), (0x111, 4, data_at[1]), (0x117, 4, len(blobs[1]))]
    sub_items = [(0xFE, 4, 0), (0x100, 4, 8), (0x101, 4, 8), (0x103, 3, 1), (0x106, 3, 32803),
                 (0x111, 4, data_at[0]), (0x117, 4, len(sensor))]
    ifd0_len = 2 + 12 * (len(ifd0_items) + 1) + 4
    sub_at = ifd0_at + ifd0_len
    sub_len = 2 + 12 * len(sub_items) + 4
    ifd1_at = sub_at + sub_len
    ifd0 = entries(ifd0_items + [(0x14A, 4, sub_at)]) + struct.pack(bo + "I", ifd1_at if thumb else 0)
    sub = entries(sub_items) + struct.pack(bo + "I", 0)
    ifd1 = entries([(0x201, 4, data_at[2]), (0x202, 4, len(blobs[2]))]) + struct.pack(bo + "I", 0) if thumb else b""
    body = b"".join(b + (b"\0" if len(b) & 1 else b"") for b in blobs)
    header = (b"MM" if big_endian else b"II") + struct.pack(bo + "HI", 42, ifd0_at)
    path.write_bytes(header + body + ifd0 + sub + ifd1)


@pytest.fixture
def upright():
    return Image.open(SAMPLE / "obama.jpg").convert("RGB")


@pytest.mark.parametrize(("name", "big_endian"), [("photo.dng", False), ("photo.nef", True)])
def test_the_largest_preview_is_used_and_turned_by_the_raw_orientation(tmp_path, upright, name, big_endian):
    # Stored turned 90 degrees counter-clockwise, orientation 6: shown upright.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    thumb = _jpeg(upright.resize((160, 120)))
    write_raw(tmp_path / name, _jpeg(stored), thumb, orientation=6, big_endian=big_endian)
    jpeg, orientation = preview_jpeg(tmp_path / name)
    assert orientation == 6 and Image.open(io.BytesIO(jpeg)).size == stored.size
    info = read_info(tmp_path / name)
    assert (info.width, info.height, info.orientation) == (682, 785, 6)
    rgb, scale = decode(tmp_path / name)
    assert rgb.shape == (785, 682, 3) and scale == 1.0
    assert np.abs(rgb.astype(int) - np.asarray(upright, int)).mean() < 6


def test_raw_photo_imports_with_its_face(library, tmp_path, upright):
    folder = tmp_path / "raw"
    folder.mkdir()
    write_raw(folder / "obama.dng", _jpeg(upright.transpose(Image.Transpose.ROTATE_90)), None, orientation=6)
    write_raw(folder / "no_preview.arw", None, None)
    last = list(library.import_paths([folder]))[-1]
    assert last.faces == 1
    assert [(p.rsplit("/", 1)[-1], r) for p, r in last.failures] == [
        ("no_preview.arw", "this RAW file has no embedded preview to read")]
    (face,) = library.faces_in_photo(next(p.id for p in library.photos() if p.path.endswith(".dng")))
    x, y, w, h = face.box  # where the upright sample's face is: about (222, 157, 238, 344)
    assert abs(x + w / 2 - 341) < 25 and abs(y + h / 2 - 329) < 30


def test_a_file_that_is_not_a_raw_container_says_so(tmp_path):
    (tmp_path / "fake.cr2").write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(ImageError, match="not a TIFF-based RAW file"):
        read_info(tmp_path / "fake.cr2")
