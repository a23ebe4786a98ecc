"""Safe, fast image decoding.

JPEGs are decoded at reduced scale (PIL ``draft``) for detection; faces are then cropped from a
second decode whose scale is just large enough for a sharp 112x112 crop, so a 12 MP photo is
never fully decoded unless a face in it is small. EXIF orientation is applied to both.
"""

from __future__ import annotations

import math
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from engine.errors import ImageError

from .raw_preview import RAW_EXTENSIONS, NoPreview, open_preview
from .reasons import plain_reason

try:  # HEIC/HEIF support is optional at run time
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_OK = True
except Exception:  # pragma: no cover - depends on the platform wheel
    HEIF_OK = False

try:  # libjpeg-turbo with its SIMD code (the wheel bundles it): 1.6x faster than OpenCV's decode of a 12 MP JPEG
    import simplejpeg

    SIMPLEJPEG_OK = True
except Exception:  # pragma: no cover - depends on the platform wheel; OpenCV's decoder is used then
    SIMPLEJPEG_OK = False

try:  # JPEG XL likewise (pillow-jxl-plugin); AVIF is built into Pillow 11.2 and later
    import pillow_jxl  # noqa: F401  (registers the plugin)

    JXL_OK = True
except Exception:  # pragma: no cover - depends on the platform wheel
    JXL_OK = False

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif", ".gif", ".avif", ".jxl"}
    | RAW_EXTENSIONS
)
# We check sizes ourselves, with a clear message, before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

_TRUNCATED = "file is truncated (an incomplete download or copy?)"
_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_DATETIME = 0x0132
_EXIF_IFD = 0x8769


@dataclass
class ImageInfo:
    width: int  # after EXIF orientation
    height: int
    format: str
    taken_at: datetime | None
    orientation: int


def _exif_date(img: Image.Image) -> datetime | None:
    try:
        exif = img.getexif()
        raw = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL) or exif.get(_EXIF_DATETIME)
        if not raw:
            return None
        return datetime.strptime(str(raw).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except Exception:
        return None


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1


def _open(path: Path, max_pixels: int) -> Image.Image:
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = open_preview(path) if path.suffix.lower() in RAW_EXTENSIONS else Image.open(path)
    except ImageError:
        raise
    except NoPreview as exc:
        raise ImageError(str(exc)) from None
    except UnidentifiedImageError:
        raise ImageError("not an image, or a format that cannot be read") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, ZeroDivisionError) as exc:
        if "truncated" in str(exc).lower():
            raise ImageError(_TRUNCATED) from None
        raise ImageError(plain_reason(f"{exc.__class__.__name__}: {exc}", path=path)) from None
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageError("image has no pixels")
    if max(w, h) > 1_000_000:  # no camera or scanner makes this: a damaged header
        img.close()
        raise ImageError(f"damaged file header (it gives an impossible size, {w}x{h} pixels)")
    if w * h > max_pixels:
        img.close()
        raise ImageError(
            f"image is {w}x{h} ({w * h / 1e6:.0f} MP), above the {max_pixels / 1e6:.0f} MP safety limit"
        )
    return img


def read_info(path: Path, max_pixels: int = 200_000_000) -> ImageInfo:
    img = _open(path, max_pixels)
    with img:
        o = _orientation(img)
        w, h = img.size
        if o in (5, 6, 7, 8):
            w, h = h, w
        return ImageInfo(w, h, img.format or "", _exif_date(img), o)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        hi = float(arr.max()) or 1.0
        return Image.fromarray((arr * (255.0 / hi)).clip(0, 255).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        bg = Image.new("RGB", img.size, (255, 255, 255))
        rgba = img.convert("RGBA")
        bg.paste(rgba, mask=rgba.split()[-1])
        return bg
    return img.convert("RGB")


def decode(path: Path, max_side: int | None = None, max_pixels: int = 200_000_000) -> tuple[np.ndarray, float]:
    """Decode ``path`` to RGB uint8 with EXIF orientation applied.

    With ``max_side``, the result's long side is at most ``max_side`` (JPEGs are decoded at
    reduced DCT scale first, which is several times faster than decoding then resizing).
    Returns (pixels, scale) where scale = original-pixels per returned pixel.
    """
    img = _open(path, max_pixels)
    try:
        with img, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full_w, full_h = img.size
            if getattr(img, "is_animated", False):
                img.seek(0)
            if max_side and max(full_w, full_h) > max_side and img.format == "JPEG":
                img.draft("RGB", (max(1, full_w * max_side // max(full_w, full_h)),
                                  max(1, full_h * max_side // max(full_w, full_h))))
            img = ImageOps.exif_transpose(img) if _orientation(img) != 1 else img
            img.load()
            img = _to_rgb(img)
            if max_side and max(img.size) > max_side:
                f = max_side / max(img.size)
                img = img.resize(
                    (max(1, round(img.width * f)), max(1, round(img.height * f))), Image.Resampling.BILINEAR
                )
            arr = np.asarray(img, dtype=np.uint8)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # pragma: no cover - we disable PIL's own check
        raise ImageError(str(exc)) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, ZeroDivisionError) as exc:
        msg = str(exc) or exc.__class__.__name__
        if "truncated" in msg.lower():
            raise ImageError(_TRUNCATED) from None
        raise ImageError(plain_reason(f"{exc.__class__.__name__}: {msg}", path=path)) from None
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None
    long_full = max(full_w, full_h)
    scale = long_full / max(arr.shape[:2])
    return arr, scale


def crop_scale_for(face_widths: list[float], crop_face_px: int) -> int:
    """Largest max_side reduction that still gives every face ``crop_face_px`` pixels of width."""
    smallest = min(face_widths)
    return max(1, 2 ** int(math.floor(math.log2(max(1.0, smallest / crop_face_px)))))


# EXIF orientation -> what turns the stored pixels upright (as PIL's ImageOps.exif_transpose does).
_UPRIGHT = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: cv2.transpose,
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.flip(cv2.transpose(a), -1),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}

_CV2_REDUCED = {
    1: "IMREAD_COLOR", 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8",
}


# Rows of the largest JPEG block (4:2:0 chroma subsampling), and the share of a photo's rows above
# which a partial full-size decode is not worth its bookkeeping.
_MCU_ROWS = 16
_PARTIAL_FRACTION = 0.85


def _baseline_sof_offset(data: bytes) -> int | None:
    """Offset of the 0xFF of a baseline or extended-sequential JPEG's SOF0/SOF1 marker; None for
    progressive, lossless or arithmetic-coded files (their scans need the whole picture) or a
    header that does not parse."""
    i, n = 2, len(data)
    if data[:2] != b"\xff\xd8":
        return None
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xC0, 0xC1):
            return i if i + 9 <= n else None
        if marker == 0xDA or (0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)):
            return None  # scan data before any frame header, or another kind of frame
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


class Pixels:
    """One photo's pixels at the scales a caller asks for, each made once: BGR uint8 with the EXIF
    orientation applied (BGR because OpenCV and the detector work in it; crops are turned to RGB).

    A JPEG is decoded straight at the reduced DCT scale asked for (1/2, 1/4, 1/8) by libjpeg-turbo:
    simplejpeg's build with its SIMD code (1.3x faster than OpenCV's at 1/2, 1.6-1.8x in full), else
    OpenCV's (itself 1.2-1.6x faster than PIL), each handing over a numpy array without a copy; the
    file is read once for all scales. The entropy decoding is the same at every
    scale, so 1/8 still costs about 40 % of a full decode: ask for each scale only when it is needed.
    Other formats (PNG, TIFF, HEIC, WebP...) are decoded in full once by PIL and reduced with area
    averaging. The header is checked by PIL first, so bad files get the same plain-words errors as
    :func:`decode`.
    """

    def __init__(self, path: Path, max_pixels: int = 200_000_000, data: bytes | None = None):
        self.path = path
        img = _open(path, max_pixels)
        with img:
            self.format = img.format or ""
            o = _orientation(img)
            w, h = img.size
            try:
                # Counting frames reads the whole file: a cut or damaged animation fails here.
                self.animated = bool(getattr(img, "is_animated", False))
            except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
                if "truncated" in str(exc).lower():
                    raise ImageError(_TRUNCATED) from None
                raise ImageError(plain_reason(f"{exc.__class__.__name__}: {exc}", path=path)) from None
            mode = img.mode
        self._orientation = o
        self.width, self.height = (h, w) if o in (5, 6, 7, 8) else (w, h)
        self._levels: dict[int, np.ndarray] = {}
        self._data: bytes | None = data  # the file's bytes, when the caller has read them already
        self._jpeg = self.format == "JPEG" and mode in ("RGB", "L", "CMYK")
        # libjpeg-turbo decodes colour and grey JPEGs straight to BGR; CMYK ones go through OpenCV.
        self._turbo = SIMPLEJPEG_OK and self._jpeg and mode in ("RGB", "L")
        self._stored = (w, h)
        self.max_pixels = max_pixels

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)

    def level(self, reduce: int) -> np.ndarray:
        """The photo at 1/``reduce`` of its size (``reduce`` in 1, 2, 4, 8; rounded up like libjpeg)."""
        got = self._levels.get(reduce)
        if got is not None:
            return got
        arr = self._jpeg_level(reduce) if self._jpeg else None
        if arr is None:
            full = self._levels.get(1)
            if full is None:
                full = self._heif_full() if self.format == "HEIF" else None
                if full is None:
                    rgb, _ = decode(self.path, None, self.max_pixels)
                    full = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                self._levels[1] = full
            if reduce == 1:
                return full
            size = (-(-self.width // reduce), -(-self.height // reduce))
            arr = cv2.resize(full, size, interpolation=cv2.INTER_AREA)
        self._levels[reduce] = arr
        return arr

    def full_around(self, rect: tuple[int, int, int, int]) -> np.ndarray:
        """The photo at full size, exact at least inside the upright ``rect`` (x0, y0, x1, y1; end
        exclusive), for cropping small faces. A baseline JPEG is decoded only down to the last stored
        row ``rect`` needs (its header is told the picture ends there: libjpeg-turbo then stops, and
        the cost follows the rows, 11 ms for the top quarter of a 12 MP photo against 40 ms in full);
        the rest of the array is black. Anything else, or a rect reaching near the last row, gets
        :meth:`level` (1)."""
        full = self._levels.get(1)
        if full is not None or not self._turbo:
            return self.level(1)
        sw, sh = self._stored
        x0, y0, x1, y1 = rect
        o = self._orientation
        # The last stored row (exclusive) that a pixel of rect comes from, for each orientation.
        rows = {1: y1, 2: y1, 3: sh - y0, 4: sh - y0, 5: x1, 8: x1, 6: sh - x0, 7: sh - x0}.get(o, sh)
        # Two 16-row blocks more: the last decoded rows differ from a full decode (chroma upsampling
        # looks at the next row), those above do not.
        rows = min(sh, -(-(max(rows, 1) + 2 * _MCU_ROWS) // _MCU_ROWS) * _MCU_ROWS)
        if self._data is None:
            self._data = self.path.read_bytes()
        offset = _baseline_sof_offset(self._data)
        if offset is None or rows > _PARTIAL_FRACTION * sh:
            return self.level(1)
        data = self._data[: offset + 5] + struct.pack(">H", rows) + self._data[offset + 7 :]
        try:
            # Not strict: libjpeg-turbo warns about the scan data it skips after the rows it was told
            # of. Damage would have shown already: the reduced level was decoded strictly first.
            part = simplejpeg.decode_jpeg(data, "BGR", strict=False)
        except (ValueError, RuntimeError, MemoryError):
            return self.level(1)
        if part.ndim != 3 or part.shape[:2] != (rows, sw):
            return self.level(1)
        turn = _UPRIGHT.get(o)
        part = turn(part) if turn is not None else part
        out = np.zeros((self.height, self.width, 3), np.uint8)
        # Where the turned top rows land in the upright picture (see _UPRIGHT).
        if o in (3, 4):
            out[sh - rows :] = part
        elif o in (5, 8):
            out[:, :rows] = part
        elif o in (6, 7):
            out[:, sh - rows :] = part
        else:
            out[:rows] = part
        return out

    def scale(self, image: np.ndarray) -> float:
        """Original pixels per pixel of ``image`` (one of this photo's levels)."""
        return self.long_side / max(image.shape[:2])

    def _heif_full(self) -> np.ndarray | None:
        """HEIC/HEIF straight from libheif in BGR: a quarter less CPU than through PIL, which copies
        the 12 MP picture twice more (into its own buffer, then out to numpy). The EXIF orientation
        is applied as PIL's path does; None (use PIL's path) for anything unusual."""
        if not HEIF_OK or self.animated:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                heif = pillow_heif.open_heif(self.path, convert_hdr_to_8bit=True, bgr_mode=True)
                arr = np.asarray(heif[0])
        except Exception:
            return None
        if arr.ndim != 3 or arr.shape[2] != 3:
            return None
        o = self._orientation
        turn = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_CLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE}
        if o in turn:
            arr = cv2.rotate(arr, turn[o])
        elif o != 1:
            return None  # mirrored orientations: rare, PIL's path handles them
        if arr.shape[:2] != (self.height, self.width):
            return None
        return np.ascontiguousarray(arr)

    def _jpeg_level(self, reduce: int) -> np.ndarray | None:
        if self._data is None:
            self._data = self.path.read_bytes()
        # A truncated file would come back from OpenCV grey-padded with a raw libjpeg warning: let
        # PIL's path report it in plain words instead.
        if not self._data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
            return None
        arr = self._turbo_level(reduce) if self._turbo else None
        if arr is not None:
            return arr
        flag = getattr(cv2, _CV2_REDUCED.get(reduce, ""), None)
        if flag is None:
            return None
        arr = cv2.imdecode(np.frombuffer(self._data, np.uint8), flag)  # applies the EXIF orientation
        want = (-(-self.height // reduce), -(-self.width // reduce))
        if arr is None or arr.ndim != 3 or abs(arr.shape[0] - want[0]) > 1 or abs(arr.shape[1] - want[1]) > 1:
            return None
        return arr

    def _turbo_level(self, reduce: int) -> np.ndarray | None:
        """The JPEG at 1/``reduce`` through simplejpeg's libjpeg-turbo (the same pixels as OpenCV's
        decoder, 28 against 37 ms at 1/2 and 44 against 72-82 ms in full for a 12 MP photo), turned
        upright here; None (OpenCV's path) when it refuses the file."""
        sw, sh = self._stored
        want_h, want_w = -(-sh // reduce), -(-sw // reduce)
        try:
            arr = simplejpeg.decode_jpeg(self._data, "BGR", min_height=want_h, min_width=want_w)
        except (ValueError, RuntimeError, MemoryError):
            return None
        if arr.ndim != 3 or arr.shape[:2] != (want_h, want_w):
            return None
        turn = _UPRIGHT.get(self._orientation)
        return np.ascontiguousarray(turn(arr) if turn is not None else arr)
