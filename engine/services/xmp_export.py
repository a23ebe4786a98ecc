"""Writing the library's names as XMP sidecars (MWG face regions), for digiKam, Lightroom, exiftool.

Opt-in (``facenet-photos export-xmp``) and never touching a photo: each photo with named faces gets
``photo.jpg.xmp`` beside it. A sidecar this program wrote before is rewritten; one written by
another program is left as it is (it may hold keywords, ratings, edits) and reported.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from sqlalchemy import select

from engine.errors import FacenetPhotosError
from engine.pipeline.decode import read_info
from engine.pipeline.xmp import displayed_to_stored, find_sidecar
from engine.store.database import LibraryStore
from engine.store.schema import DONE, Face, Person, Photo

# The toolkit name in the packet says who wrote a sidecar, so a later export may replace it.
TOOLKIT = "facenet-photos"


@dataclass
class ExportResult:
    photos: int = 0  # photos with named faces
    written: int = 0
    unchanged: int = 0
    regions: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (photo, reason)


def _fmt(v: float) -> str:
    return f"{min(1.0, max(0.0, v)):.6f}".rstrip("0").rstrip(".") or "0"


def sidecar_xml(regions: list[tuple[str, tuple[float, float, float, float]]], stored_size: tuple[int, int]) -> str:
    """An XMP packet with MWG face regions: (name, normalised top-left box on the stored pixels)."""
    items = []
    for name, (x, y, w, h) in regions:
        items.append(
            "     <rdf:li>\n"
            f"      <rdf:Description mwg-rs:Name={quoteattr(name)} mwg-rs:Type=\"Face\">\n"
            f"       <mwg-rs:Area stArea:x=\"{_fmt(x + w / 2)}\" stArea:y=\"{_fmt(y + h / 2)}\" "
            f"stArea:w=\"{_fmt(w)}\" stArea:h=\"{_fmt(h)}\" stArea:unit=\"normalized\"/>\n"
            "      </rdf:Description>\n"
            "     </rdf:li>\n"
        )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="{TOOLKIT}">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"\n'
        '    xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"\n'
        '    xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#">\n'
        '   <mwg-rs:Regions rdf:parseType="Resource">\n'
        f'    <mwg-rs:AppliedToDimensions stDim:w="{stored_size[0]}" stDim:h="{stored_size[1]}" '
        'stDim:unit="pixel"/>\n'
        "    <mwg-rs:RegionList>\n"
        "     <rdf:Bag>\n"
        + "".join(items)
        + "     </rdf:Bag>\n"
        "    </mwg-rs:RegionList>\n"
        "   </mwg-rs:Regions>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>\n'
    )


def _ours(path: Path) -> bool:
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return False
    return f'x:xmptk="{TOOLKIT}"'.encode() in head


def export_xmp(store: LibraryStore, folder: Path | None = None) -> ExportResult:
    """Write a sidecar for every photo (below ``folder``, if given) that has named faces."""
    res = ExportResult()
    by_photo: dict[int, list[tuple[str, tuple[float, float, float, float]]]] = defaultdict(list)
    photos: dict[int, Photo] = {}
    with store.session() as s:
        q = (
            select(Photo, Face.x, Face.y, Face.w, Face.h, Person.name)
            .join(Face, Face.photo_id == Photo.id)
            .join(Person, Person.id == Face.person_id)
            .where(Person.name.is_not(None), Photo.status == DONE)
            .order_by(Photo.path, Face.x)
        )
        for photo, x, y, w, h, name in s.execute(q):
            photos[photo.id] = photo
            by_photo[photo.id].append((name, (x, y, w, h)))
        s.expunge_all()
    root = str(Path(folder).expanduser().absolute()).rstrip("/") + "/" if folder else None
    for pid, faces in by_photo.items():
        photo = photos[pid]
        path = Path(photo.path)
        if root and not photo.path.startswith(root):
            continue
        res.photos += 1
        if not path.is_file():
            res.skipped.append((photo.path, "the photo file is missing"))
            continue
        try:
            info = read_info(path)
        except FacenetPhotosError as exc:
            res.skipped.append((photo.path, f"the photo cannot be read ({exc})"))
            continue
        dw, dh = info.width, info.height  # displayed size: the frame of the face boxes
        stored = (dh, dw) if info.orientation in (5, 6, 7, 8) else (dw, dh)
        regions = [
            (name, displayed_to_stored((x / dw, y / dh, w / dw, h / dh), info.orientation))
            for name, (x, y, w, h) in faces
        ]
        text = sidecar_xml(regions, stored)
        existing = find_sidecar(path)
        if existing is not None and not _ours(existing):
            res.skipped.append(
                (photo.path, f"{existing.name} was written by another program; it is left unchanged")
            )
            continue
        target = existing or path.with_name(path.name + ".xmp")
        data = text.encode("utf-8")
        try:
            if target.exists() and target.read_bytes() == data:
                res.unchanged += 1
                res.regions += len(regions)
                continue
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            res.skipped.append((photo.path, f"cannot write the sidecar: {exc.strerror or exc}"))
            continue
        res.written += 1
        res.regions += len(regions)
    return res
