"""Names from XMP face regions on import.

A named region that overlaps a detected face names that face's person (confirmed, as if the user
had named it); a region with no detected face under it becomes a face of its own, aligned from the
box and embedded with the others. The importer calls ``add_region_faces`` on its worker threads and
``name_faces`` inside the transaction that writes the photo.
"""

from __future__ import annotations

from sqlalchemy import func, select

from engine.config import DetectConfig
from engine.pipeline.boxes import faces_from_boxes
from engine.pipeline.decode import ImageInfo
from engine.pipeline.faces import PhotoFaces
from engine.pipeline.xmp import Region, box_iou, read_regions
from engine.store.schema import BY_USER, IS, Constraint, Face, Person

# A region and a detected face are the same face when their boxes overlap this much (writers draw
# looser or tighter boxes than the detector), or when each one's centre lies inside the other.
MATCH_IOU = 0.2


def _centre_in(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    cx, cy = a[0] + a[2] / 2, a[1] + a[3] / 2
    return b[0] <= cx <= b[0] + b[2] and b[1] <= cy <= b[1] + b[3]


def match_regions(
    boxes: list[tuple[float, float, float, float]], regions: list[tuple[float, float, float, float]]
) -> dict[int, int]:
    """region index -> box index, greedily by overlap, each box used once."""
    pairs = []
    for ri, r in enumerate(regions):
        for bi, b in enumerate(boxes):
            iou = box_iou(r, b)
            if iou >= MATCH_IOU or (_centre_in(r, b) and _centre_in(b, r)):
                pairs.append((iou, ri, bi))
    out: dict[int, int] = {}
    used: set[int] = set()
    for _iou, ri, bi in sorted(pairs, reverse=True):
        if ri not in out and bi not in used:
            out[ri] = bi
            used.add(bi)
    return out


def add_region_faces(
    found: PhotoFaces, info: ImageInfo, config: DetectConfig | None = None, max_pixels: int = 200_000_000
) -> list[str | None]:
    """Read the photo's XMP regions; append a face for every region no detected face matches.
    Returns the name for each face of ``found.faces`` (None where XMP names none)."""
    stored = (info.height, info.width) if info.orientation in (5, 6, 7, 8) else (info.width, info.height)
    regions: list[Region] = read_regions(found.path, info.orientation, stored)
    names: list[str | None] = [None] * len(found.faces)
    if not regions:
        return names
    w, h = found.width or info.width, found.height or info.height
    boxes = [r.pixels(w, h) for r in regions]
    matched = match_regions([f.box for f in found.faces], boxes)
    for ri, bi in matched.items():
        if regions[ri].name and names[bi] is None:
            names[bi] = regions[ri].name
    lone = [ri for ri in range(len(regions)) if ri not in matched]
    if lone:
        extra = faces_from_boxes(found.path, [boxes[ri] for ri in lone], config, max_pixels)
        found.faces.extend(extra)
        names.extend(regions[ri].name for ri in lone)
    return names


def person_named(s, name: str) -> Person:
    """The person with this name (case-insensitive; the oldest when several), created if none."""
    p = s.scalars(select(Person).where(func.lower(Person.name) == name.lower()).order_by(Person.id)).first()
    if p is None:
        p = Person(name=name)
        s.add(p)
        s.flush()
    return p


def name_faces(s, faces: list[tuple[Face, str]]) -> int:
    """Put each face with the person of that name, confirmed (the user's own statement, made in
    another program), with the "is" constraint a confirmation records."""
    n = 0
    for face, name in faces:
        p = person_named(s, name)
        face.person_id, face.assignment, face.confidence = p.id, BY_USER, None
        if p.cover_face_id is None:
            p.cover_face_id = face.id
        s.add(Constraint(face_id=face.id, person_id=p.id, kind=IS))
        n += 1
    return n
