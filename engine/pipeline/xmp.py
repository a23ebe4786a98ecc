"""Face regions in XMP: MWG (``mwg-rs:Regions``, written by digiKam, Lightroom, Picasa, Immich) and
Microsoft's ``MP:RegionInfo``, from a photo's own XMP packet or from its sidecar.

Regions are returned in the frame every box of the library uses: the photo as displayed, after
EXIF orientation, normalised to 0..1 with a top-left origin. MWG regions are written against the
*stored* pixels ("Region metadata is applied to the stored image", MWG guidelines 2.0, 5.9), so a
photo stored rotated (orientation 6) needs its regions rotated with it (Immich issue 16885).

The RDF is read with the standard library's ElementTree: XMP is a small, fixed subset of RDF/XML
(attributes or child elements, Bag/Seq lists), and no maintained package parses MWG regions without
pulling in a C++ toolkit. Packets that declare a DTD or entities are refused before parsing (XMP
never has them), which closes the entity-expansion attacks that defusedxml guards against.
"""

from __future__ import annotations

import mmap
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MWG_RS = "http://www.metadataworkinggroup.com/schemas/regions/"
ST_AREA = "http://ns.adobe.com/xmp/sType/Area#"
ST_DIM = "http://ns.adobe.com/xap/1.0/sType/Dimensions#"
MP = "http://ns.microsoft.com/photo/1.2/"
MPRI = "http://ns.microsoft.com/photo/1.2/t/RegionInfo#"
MPREG = "http://ns.microsoft.com/photo/1.2/t/Region#"
TIFF = "http://ns.adobe.com/tiff/1.0/"

# A packet is at most a few hundred KiB in practice; sidecars are refused above this.
MAX_SIDECAR_BYTES = 16 * 2**20
_PACKET = re.compile(rb"<x:xmpmeta[\s>].*?</x:xmpmeta>", re.S)


@dataclass(frozen=True)
class Region:
    """A face region, normalised (0..1) top-left x, y, w, h, in the frame given by ``frame``."""

    name: str | None
    x: float
    y: float
    w: float
    h: float
    source: str  # "mwg" or "mp"

    def pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        return (self.x * width, self.y * height, self.w * width, self.h * height)


@dataclass(frozen=True)
class RegionSet:
    regions: tuple[Region, ...]
    # Pixel size the writer applied the regions to (mwg-rs:AppliedToDimensions), if given.
    applied_to: tuple[int, int] | None = None
    # tiff:Orientation of a sidecar: the orientation the writer saw.
    orientation: int | None = None


def sidecar_paths(photo: Path) -> list[Path]:
    """Where sidecars of ``photo`` may be: ``photo.jpg.xmp`` (digiKam, darktable) first, then
    ``photo.xmp`` (Lightroom, Capture One), each also with an upper-case extension."""
    return [
        photo.with_name(photo.name + ".xmp"),
        photo.with_name(photo.name + ".XMP"),
        photo.with_suffix(".xmp"),
        photo.with_suffix(".XMP"),
    ]


def find_sidecar(photo: Path) -> Path | None:
    for p in sidecar_paths(photo):
        if p.is_file():
            return p
    return None


def embedded_packet(path: Path) -> bytes | None:
    """The XMP packet inside an image file (JPEG APP1, PNG iTXt, TIFF, HEIC, WebP all keep it as
    plain text), found by its envelope; None when there is none."""
    try:
        with open(path, "rb") as fh:
            if fh.seek(0, 2) == 0:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                start = mm.find(b"<x:xmpmeta")
                if start < 0:
                    return None
                end = mm.find(b"</x:xmpmeta>", start)
                if end < 0:
                    return None
                return bytes(mm[start : end + len(b"</x:xmpmeta>")])
    except (OSError, ValueError):
        return None


def _root(packet: bytes) -> ET.Element | None:
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        return None
    m = _PACKET.search(packet)
    data = m.group(0) if m else packet
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        return None


def _prop(el: ET.Element, ns: str, name: str) -> str | None:
    """An RDF property written either as an attribute or as a child element with text."""
    v = el.get(f"{{{ns}}}{name}")
    if v is not None:
        return v
    child = el.find(f"{{{ns}}}{name}")
    if child is not None and child.text and child.text.strip():
        return child.text.strip()
    return None


def _struct(el: ET.Element | None) -> ET.Element | None:
    """The element that holds a struct's fields: itself (rdf:parseType="Resource" or attributes)
    or its rdf:Description child."""
    if el is None:
        return None
    desc = el.find(f"{{{RDF}}}Description")
    return desc if desc is not None else el


def _items(el: ET.Element | None) -> list[ET.Element]:
    if el is None:
        return []
    out = []
    for lst in (f"{{{RDF}}}Bag", f"{{{RDF}}}Seq", f"{{{RDF}}}Alt"):
        for container in el.iter(lst):
            out.extend(container.findall(f"{{{RDF}}}li"))
    return out


def _float(v: str | None) -> float | None:
    try:
        f = float(v) if v is not None else None
    except ValueError:
        return None
    return f if f is not None and f == f else None


def _clip(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float] | None:
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(1.0, x + w), min(1.0, y + h)
    if x1 - x0 <= 1e-4 or y1 - y0 <= 1e-4:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _clean(name: str | None) -> str | None:
    name = " ".join(name.split()) if name else ""
    return name or None


def _mwg(root: ET.Element) -> tuple[list[Region], tuple[int, int] | None]:
    regions: list[Region] = []
    applied: tuple[int, int] | None = None
    for info in root.iter(f"{{{MWG_RS}}}Regions"):
        info = _struct(info)
        dims = _struct(info.find(f"{{{MWG_RS}}}AppliedToDimensions"))
        if dims is not None:
            w, h = _float(_prop(dims, ST_DIM, "w")), _float(_prop(dims, ST_DIM, "h"))
            if w and h and w > 0 and h > 0:
                applied = (round(w), round(h))
        for li in _items(info.find(f"{{{MWG_RS}}}RegionList")):
            r = _struct(li)
            kind = (_prop(r, MWG_RS, "Type") or "Face").strip()
            if kind.lower() != "face":
                continue  # pets, barcodes, focus areas
            area = _struct(r.find(f"{{{MWG_RS}}}Area"))
            if area is None:
                continue
            vals = [_float(_prop(area, ST_AREA, k)) for k in ("x", "y", "w", "h")]
            if any(v is None for v in vals):
                continue
            cx, cy, w, h = vals
            unit = (_prop(area, ST_AREA, "unit") or "normalized").lower()
            if unit != "normalized":
                if not applied:
                    continue  # pixel units need the dimensions they refer to
                cx, cy, w, h = cx / applied[0], cy / applied[1], w / applied[0], h / applied[1]
            # MWG areas are given by their centre.
            box = _clip(cx - w / 2, cy - h / 2, w, h)
            if box:
                regions.append(Region(_clean(_prop(r, MWG_RS, "Name")), *box, source="mwg"))
    return regions, applied


def _mp(root: ET.Element) -> list[Region]:
    regions: list[Region] = []
    for info in root.iter(f"{{{MP}}}RegionInfo"):
        info = _struct(info)
        for li in _items(info.find(f"{{{MPRI}}}Regions")):
            r = _struct(li)
            rect = _prop(r, MPREG, "Rectangle")
            if not rect:
                continue
            vals = [_float(v) for v in rect.replace(";", ",").split(",")]
            if len(vals) != 4 or any(v is None for v in vals):
                continue
            box = _clip(*vals)  # Microsoft rectangles are given by their top-left corner
            if box:
                regions.append(Region(_clean(_prop(r, MPREG, "PersonDisplayName")), *box, source="mp"))
    return regions


def parse_regions(packet: bytes) -> RegionSet:
    """Face regions of an XMP packet (or a whole sidecar file). A face both schemas describe (digiKam
    writes each face twice) is kept once, in its MWG form."""
    root = _root(packet)
    if root is None:
        return RegionSet(())
    mwg, applied = _mwg(root)
    regions = list(mwg)
    for r in _mp(root):
        if not any(_iou(r, m) > 0.5 or (r.name and r.name == m.name) for m in mwg):
            regions.append(r)
    orientation = None
    for desc in root.iter(f"{{{RDF}}}Description"):
        o = _prop(desc, TIFF, "Orientation")
        if o and o.strip().isdigit():
            orientation = int(o.strip())
            break
    return RegionSet(tuple(regions), applied, orientation)


def _iou(a: Region, b: Region) -> float:
    return box_iou((a.x, a.y, a.w, a.h), (b.x, b.y, b.w, b.h))


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def stored_to_displayed(box: tuple[float, float, float, float], orientation: int) -> tuple[float, float, float, float]:
    """A normalised box on the stored pixels -> the same box on the photo as displayed, for each
    EXIF orientation (the transform ``ImageOps.exif_transpose`` applies to the pixels)."""
    x, y, w, h = box
    if orientation == 2:  # mirrored left-right
        return (1 - x - w, y, w, h)
    if orientation == 3:  # rotated 180
        return (1 - x - w, 1 - y - h, w, h)
    if orientation == 4:  # mirrored top-bottom
        return (x, 1 - y - h, w, h)
    if orientation == 5:  # transposed
        return (y, x, h, w)
    if orientation == 6:  # stored 90 CCW: displayed after turning 90 CW
        return (1 - y - h, x, h, w)
    if orientation == 7:  # transversed
        return (1 - y - h, 1 - x - w, h, w)
    if orientation == 8:  # stored 90 CW: displayed after turning 90 CCW
        return (y, 1 - x - w, h, w)
    return box


def displayed_to_stored(box: tuple[float, float, float, float], orientation: int) -> tuple[float, float, float, float]:
    """The inverse of ``stored_to_displayed`` (orientations 6 and 8 are each other's inverse)."""
    inverse = {6: 8, 8: 6}.get(orientation, orientation)
    return stored_to_displayed(box, inverse)


def read_regions(photo: Path, orientation: int = 1, stored_size: tuple[int, int] | None = None) -> list[Region]:
    """Face regions of ``photo`` on the displayed photo (normalised). The sidecar wins over the
    embedded packet (editors write their newest state there); within one source MWG wins over MP.

    ``stored_size`` is the pixel size as stored (before orientation): a writer that gives
    AppliedToDimensions in the displayed size (width and height swapped) already applied the
    rotation, and its regions are taken as they are.
    """
    packet = None
    side = find_sidecar(photo)
    if side is not None:
        try:
            if side.stat().st_size <= MAX_SIDECAR_BYTES:
                packet = side.read_bytes()
        except OSError:
            packet = None
    found = parse_regions(packet) if packet else RegionSet(())
    if not found.regions:
        emb = embedded_packet(photo)
        found = parse_regions(emb) if emb else RegionSet(())
    if not found.regions:
        return []
    rotate = orientation
    if (
        orientation in (5, 6, 7, 8)
        and found.applied_to
        and stored_size
        and stored_size[0] != stored_size[1]
        and found.applied_to == (stored_size[1], stored_size[0])
    ):
        rotate = 1
    out = []
    for r in found.regions:
        x, y, w, h = stored_to_displayed((r.x, r.y, r.w, r.h), rotate)
        out.append(Region(r.name, x, y, w, h, r.source))
    return out
