"""RAW photos (DNG, CR2, NEF, ARW, ORF, RW2, PEF) through the JPEG preview their camera embeds.
(Fuji RAF and Canon CR3 are not TIFF containers and are not read.)

These formats are TIFF containers: besides the sensor data they hold a full-size or near full-size
JPEG rendered by the camera, which is what face detection needs (demosaicing the sensor data would
be slower and look different from what the camera showed). The preview is found by walking the
TIFF directories (IFD0, its chain, SubIFDs, the EXIF directory) for JPEG data: JPEGInterchangeFormat
(tags 0x201/0x202) or a one-strip directory compressed as JPEG (compression 6 or 7); the largest one
is used. The orientation comes from IFD0.

Written by hand: rawpy (libraw) would decode the sensor data, a native dependency this program does
not otherwise need, and its ``extract_thumb`` reads these same tags.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".pef"})

_MAX_IFDS = 64
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}


class NoPreview(ValueError):
    """The file has no embedded JPEG preview that can be read."""


def _values(data: bytes, bo: str, typ: int, count: int, value_at: int) -> list[int]:
    size = _TYPE_SIZE.get(typ, 1) * count
    at = value_at if size <= 4 else struct.unpack_from(bo + "I", data, value_at)[0]
    if at + size > len(data) or count > 4096:
        return []
    fmt = {3: "H", 4: "I", 13: "I", 1: "B", 7: "B", 8: "h", 9: "i"}.get(typ)
    if fmt is None:
        return []
    return list(struct.unpack_from(bo + fmt * count, data, at))


def _walk(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """(offset, length) of every JPEG candidate, and the IFD0 orientation."""
    if data[:2] == b"II":
        bo = "<"
    elif data[:2] == b"MM":
        bo = ">"
    else:
        raise NoPreview("not a TIFF-based RAW file")
    magic = struct.unpack_from(bo + "H", data, 2)[0]
    if magic not in (42, 0x4F52, 0x5352, 0x55):  # TIFF, ORF, RW2
        raise NoPreview("not a TIFF-based RAW file")
    todo = [struct.unpack_from(bo + "I", data, 4)[0]]
    seen: set[int] = set()
    found: list[tuple[int, int]] = []
    orientation = 1
    first = True
    while todo and len(seen) < _MAX_IFDS:
        off = todo.pop(0)
        if off in seen or off <= 0 or off + 2 > len(data):
            continue
        seen.add(off)
        n = struct.unpack_from(bo + "H", data, off)[0]
        if off + 2 + 12 * n + 4 > len(data):
            continue
        tags: dict[int, list[int]] = {}
        for k in range(n):
            e = off + 2 + 12 * k
            tag, typ, count = struct.unpack_from(bo + "HHI", data, e)
            if tag in (0x103, 0x111, 0x117, 0x201, 0x202, 0x112, 0x14A, 0x8769):
                tags[tag] = _values(data, bo, typ, count, e + 8)
        if first and tags.get(0x112):
            orientation = tags[0x112][0]
        first = False
        if tags.get(0x201) and tags.get(0x202):
            found.append((tags[0x201][0], tags[0x202][0]))
        comp = (tags.get(0x103) or [0])[0]
        if comp in (6, 7) and len(tags.get(0x111, [])) == 1 and len(tags.get(0x117, [])) == 1:
            found.append((tags[0x111][0], tags[0x117][0]))
        todo.extend(tags.get(0x14A, []))
        todo.extend(tags.get(0x8769, []))
        nxt = struct.unpack_from(bo + "I", data, off + 2 + 12 * n)[0]
        if nxt:
            todo.append(nxt)
    return found, orientation


def preview_jpeg(path: Path) -> tuple[bytes, int]:
    """The largest embedded JPEG that starts like a JPEG, and the RAW's orientation."""
    data = Path(path).read_bytes()
    found, orientation = _walk(data)
    good = [
        (length, off) for off, length in found
        if length > 100 and off + length <= len(data) and data[off : off + 2] == b"\xff\xd8"
    ]
    if not good:
        raise NoPreview("this RAW file has no embedded preview to read")
    length, off = max(good)
    return data[off : off + length], orientation


def open_preview(path: Path):
    """The preview as a PIL image carrying the RAW's orientation in its EXIF (so the usual
    orientation handling applies)."""
    from PIL import Image

    jpeg, orientation = preview_jpeg(path)
    img = Image.open(io.BytesIO(jpeg))
    if orientation != 1 and img.getexif().get(0x0112, 1) == 1:
        exif = img.getexif()
        exif[0x0112] = orientation
        img.info["exif"] = exif.tobytes()
    return img
