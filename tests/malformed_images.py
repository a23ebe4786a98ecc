"""A generated corpus of malformed images (odd BMP headers, broken TIFF strips, truncated PNG chunks,
bad GIF frames, huge palettes, damaged JPEGs), for the quiet-terminal and plain-words tests."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _picture(rng: random.Random, w: int = 48, h: int = 40) -> Image.Image:
    arr = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _bmp(rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    good = _encode(_picture(rng), "BMP")
    for i, (off, fmt, value) in enumerate(
        [(28, "<H", v) for v in (0, 3, 7, 33, 64, 65535)]  # bits per pixel
        + [(30, "<I", v) for v in (4, 5, 9, 12, 0xFFFFFFFF)]  # compression
        + [(18, "<i", v) for v in (0, -1, -100000, 2**31 - 1)]  # width
        + [(22, "<i", v) for v in (0, -2**31, 2**31 - 1)]  # height
        + [(14, "<I", v) for v in (0, 12, 20, 41, 100, 1 << 30)]  # header size
        + [(46, "<I", v) for v in (1 << 20, 0xFFFFFFFF, 257)]  # colours used: a huge palette
        + [(10, "<I", v) for v in (0, 10**9)]  # pixel data offset
    ):
        b = bytearray(good)
        struct.pack_into(fmt, b, off, value)
        out.append((f"bmp_header_{i:02d}.bmp", bytes(b)))
    for n in (2, 14, 30, 54, 100, len(good) // 2):
        out.append((f"bmp_cut_{n}.bmp", good[:n]))
    pal = _encode(_picture(rng).convert("P"), "BMP")
    for i, v in enumerate((0, 1 << 16, 0x7FFFFFFF)):
        b = bytearray(pal)
        struct.pack_into("<I", b, 46, v)
        out.append((f"bmp_palette_{i}.bmp", bytes(b)))
    return out


def _tiff(rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    for comp in ("raw", "tiff_lzw", "tiff_adobe_deflate", "packbits", "jpeg"):
        img = _picture(rng, 64, 64)
        good = _encode(img, "TIFF", compression=comp)
        for i in range(8):
            b = bytearray(good)
            # Scribble over the strip data (after the 8-byte header, before the IFD at the end).
            start = 8 + rng.randrange(max(1, len(b) // 3))
            for j in range(start, min(len(b), start + 40 + 20 * i)):
                b[j] = rng.randrange(256)
            out.append((f"tiff_{comp}_scribbled_{i}.tif", bytes(b)))
        for frac in (0.2, 0.5, 0.8, 0.95):
            out.append((f"tiff_{comp}_cut_{int(frac * 100)}.tif", good[: int(len(good) * frac)]))
        # Strip offsets pointing past the end of the file.
        b = bytearray(good)
        ifd = struct.unpack_from("<I", b, 4)[0]
        if ifd + 2 <= len(b):
            n = struct.unpack_from("<H", b, ifd)[0]
            for k in range(n):
                e = ifd + 2 + 12 * k
                if e + 12 > len(b):
                    break
                tag, _typ, _cnt = struct.unpack_from("<HHI", b, e)
                if tag == 273:  # StripOffsets
                    struct.pack_into("<I", b, e + 8, len(b) + 10_000)
                if tag == 279:  # StripByteCounts
                    struct.pack_into("<I", b, e + 8, 10**8)
        out.append((f"tiff_{comp}_strips_past_end.tif", bytes(b)))
    return out


def _chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    c = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c & 0xFFFFFFFF)


def _png(rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    good = _encode(_picture(rng, 64, 64), "PNG")
    for i, frac in enumerate((0.1, 0.3, 0.5, 0.7, 0.9, 0.98)):
        out.append((f"png_cut_{i}.png", good[: int(len(good) * frac)]))
    for i in range(12):
        b = bytearray(good)
        pos = 33 + rng.randrange(len(b) - 45)
        for j in range(pos, pos + 8):
            b[j] ^= 0xFF
        out.append((f"png_flipped_{i:02d}.png", bytes(b)))
    sig = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(64 * 3)) for _ in range(64))
    idat = zlib.compress(raw)
    out.append(("png_bad_crc.png", sig + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat, crc=1) + _chunk(b"IEND", b"")))
    out.append(("png_no_iend.png", sig + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)))
    out.append(("png_idat_cut.png", sig + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat[: len(idat) // 2])
                + _chunk(b"IEND", b"")))
    out.append(("png_huge_chunk.png", sig + _chunk(b"IHDR", ihdr) + struct.pack(">I", 0x7FFFFFF0) + b"IDAT" + idat))
    out.append(("png_zero_size.png", sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0))
                + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")))
    out.append(("png_bad_depth.png", sig + _chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 7, 2, 0, 0, 0))
                + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")))
    # Palettes: longer than 256 entries, not a multiple of three, missing for a palette image.
    pihdr = struct.pack(">IIBBBBB", 16, 16, 8, 3, 0, 0, 0)
    pidat = zlib.compress(b"".join(b"\x00" + bytes(range(16)) for _ in range(16)))
    for i, plte in enumerate((bytes(3 * 4000), bytes(3 * 256 + 2), b"", bytes(3 * 2**16))):
        chunks = _chunk(b"IHDR", pihdr) + (_chunk(b"PLTE", plte) if plte else b"")
        out.append((f"png_palette_{i}.png", sig + chunks + _chunk(b"IDAT", pidat) + _chunk(b"IEND", b"")))
    return out


def _gif(rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    frames = [_picture(rng, 40, 40).convert("P") for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    good = buf.getvalue()
    for i, frac in enumerate((0.05, 0.2, 0.4, 0.6, 0.8, 0.95)):
        out.append((f"gif_cut_{i}.gif", good[: int(len(good) * frac)]))
    for i in range(10):
        b = bytearray(good)
        pos = 13 + rng.randrange(len(b) - 14)
        for j in range(pos, min(len(b), pos + 6)):
            b[j] = rng.randrange(256)
        out.append((f"gif_bad_frame_{i:02d}.gif", bytes(b)))
    # A frame descriptor far outside the logical screen, and a zero-sized screen.
    b = bytearray(good)
    k = b.find(b"\x2c")
    if k > 0:
        struct.pack_into("<HHHH", b, k + 1, 60000, 60000, 60000, 60000)
    out.append(("gif_frame_outside.gif", bytes(b)))
    b = bytearray(good)
    struct.pack_into("<HH", b, 6, 0, 0)
    out.append(("gif_zero_screen.gif", bytes(b)))
    return out


def _jpeg(rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    good = _encode(_picture(rng, 96, 80), "JPEG", quality=90)
    for i, frac in enumerate((0.05, 0.1, 0.3, 0.6, 0.9)):
        out.append((f"jpeg_cut_{i}.jpg", good[: int(len(good) * frac)]))
    for i in range(10):
        b = bytearray(good)
        pos = 2 + rng.randrange(len(b) - 4)
        for j in range(pos, min(len(b), pos + 12)):
            b[j] = rng.randrange(256)
        out.append((f"jpeg_scribbled_{i:02d}.jpg", bytes(b)))
    sof = good.find(b"\xff\xc0")
    for i, (w, h) in enumerate(((0, 80), (96, 0), (65535, 65535))):
        b = bytearray(good)
        struct.pack_into(">HH", b, sof + 5, h, w)
        out.append((f"jpeg_size_{i}.jpg", bytes(b)))
    return out


def _other(rng: random.Random) -> list[tuple[str, bytes]]:
    out = [("empty.jpg", b""), ("text.png", b"this is not an image\n" * 20)]
    for ext in ("jpg", "png", "gif", "bmp", "tif", "webp", "heic"):
        for i in range(3):
            out.append((f"noise_{ext}_{i}.{ext}", bytes(rng.randrange(256) for _ in range(64 + 200 * i))))
    webp = _encode(_picture(rng), "WEBP")
    out.append(("webp_cut.webp", webp[: len(webp) // 2]))
    return out


def write_corpus(folder: Path, seed: int = 13, copies: int = 2) -> list[Path]:
    """Write the corpus (``copies`` variants of each kind, from different random pictures) and
    return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files = []
    for c in range(copies):
        for make in (_bmp, _tiff, _png, _gif, _jpeg, _other):
            for name, data in make(rng):
                p = folder / f"{c}_{name}"
                p.write_bytes(data)
                files.append(p)
    return files
