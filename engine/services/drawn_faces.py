"""Faces the detector missed: a box the user draws, or the photo scanned again more eagerly.

Each is one journaled edit: undo removes the new faces (and a person made for them), redo brings
them back. A new face is embedded like any other; named, it is confirmed with that person; unnamed,
it is suggested for the named person recognition finds for it, else it starts a person of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from engine.config import ClusterConfig, DetectConfig
from engine.errors import EditError, FacenetPhotosError
from engine.grouping.people import load_faces, recognise, unborn
from engine.models.quantize import to_bytes
from engine.pipeline.boxes import faces_from_boxes
from engine.pipeline.embed import Embedder
from engine.pipeline.faces import FaceFinder, FoundFace
from engine.pipeline.xmp import box_iou
from engine.store.database import LibraryStore
from engine.store.journal import ChangeSet
from engine.store.schema import (
    BY_CLUSTER,
    BY_SUGGESTION,
    BY_USER,
    DONE,
    IS,
    Constraint,
    Face,
    Person,
    Photo,
)
from engine.store.thumbs import write_thumbnail

# Smallest box a face may be drawn with, in photo pixels (the embedder sees 112x112 anyway).
MIN_BOX_PX = 8
# A face found by a rescan is new when it overlaps no face of the photo by more than this.
NEW_FACE_IOU = 0.3
RESCAN_THRESHOLD = 0.35


@dataclass(frozen=True)
class AddedFace:
    face_id: int
    person_id: int
    person_name: str | None
    assignment: str
    aligned_by: str  # "landmarks" (found inside the box) or "box"
    box: tuple[float, float, float, float]


def resolve_photo(store: LibraryStore, ref: str | int | Path) -> Photo:
    """A photo of the library by id or by path."""
    with store.session() as s:
        photo = None
        if isinstance(ref, int) or str(ref).isdigit():
            photo = s.get(Photo, int(ref))
        if photo is None:
            p = Path(str(ref)).expanduser()
            photo = s.scalar(select(Photo).where(Photo.path == str(p.absolute())))
        if photo is None:
            raise EditError(f"{ref} is not a photo of this library (import it first)")
        if photo.status != DONE:
            raise EditError(f"{Path(photo.path).name} was not imported ({photo.error or photo.status})")
        s.expunge(photo)
        return photo


def _clip_box(photo: Photo, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise EditError("the box needs a width and a height above zero")
    pw, ph = photo.width or 0, photo.height or 0
    x0, y0, x1, y1 = max(0.0, x), max(0.0, y), min(float(pw), x + w), min(float(ph), y + h)
    if x1 - x0 < MIN_BOX_PX or y1 - y0 < MIN_BOX_PX:
        raise EditError(
            f"the box ({x:.0f}, {y:.0f}, {w:.0f}, {h:.0f}) is outside the photo ({pw}x{ph} pixels) "
            f"or smaller than {MIN_BOX_PX} pixels"
        )
    return (x0, y0, x1 - x0, y1 - y0)


def _add(
    store: LibraryStore,
    embedder: Embedder,
    photo: Photo,
    found: list[FoundFace],
    name: str | None,
    description: str,
    cluster: ClusterConfig,
) -> list[AddedFace]:
    from engine.services.edits import _clean_name

    embs = embedder.embed(np.stack([f.crop for f in found]))
    name = _clean_name(name)
    out: list[AddedFace] = []
    thumbs = []
    with store.transaction() as s:
        cs = ChangeSet(s)
        person = None
        if name:
            same = select(Person).where(func.lower(Person.name) == name.lower()).order_by(Person.id)
            person = s.scalars(same).first()
            if person is None:
                person = Person(name=name)
                s.add(person)
                cs.created(person)
        named = [p.id for p in s.scalars(select(Person).where(Person.name.is_not(None)))]
        known = load_faces(s, Face.person_id.in_(named) & Face.assignment.in_([BY_USER, BY_CLUSTER])) if named else None
        too_early = [unborn(s, [photo.id]).get(photo.id, set())]
        for f, emb in zip(found, embs, strict=True):
            face = Face(
                photo_id=photo.id, x=f.box[0], y=f.box[1], w=f.box[2], h=f.box[3],
                landmarks=np.round(f.landmarks, 2).tolist(), score=f.score,
                embedding=to_bytes(emb), model_id=embedder.model_id,
            )
            s.add(face)
            cs.created_face(face)
            if person is not None:
                face.person_id, face.assignment = person.id, BY_USER
                c = Constraint(face_id=face.id, person_id=person.id, kind=IS)
                s.add(c)
                cs.created(c)
                target = person
            else:
                pid, dist = (recognise(known, emb[None], cluster.recognise_threshold, forbidden=too_early)
                             if known is not None
                             else (np.array([-1]), np.array([np.inf])))
                if pid[0] >= 0:
                    target = s.get(Person, int(pid[0]))
                    face.person_id, face.assignment, face.confidence = target.id, BY_SUGGESTION, float(dist[0])
                else:
                    target = Person()
                    s.add(target)
                    cs.created(target)
                    face.person_id, face.assignment = target.id, BY_CLUSTER
            if target.cover_face_id is None:
                cs.touch(target)
                target.cover_face_id = face.id
            s.flush()
            thumbs.append((face.id, f.thumb))
            out.append(AddedFace(face.id, target.id, target.name, face.assignment,
                                 "landmarks" if f.score > 0 else "box", f.box))
        cs.commit("add_face", description)
        for fid, img in thumbs:
            write_thumbnail(store.thumbs_dir, fid, img)
    return out


def add_face(
    store: LibraryStore,
    embedder: Embedder,
    photo_ref: str | int | Path,
    box: tuple[float, float, float, float],
    name: str | None = None,
    *,
    detect: DetectConfig | None = None,
    cluster: ClusterConfig | None = None,
) -> AddedFace:
    """A face in ``box`` (x, y, w, h in pixels of the photo as displayed)."""
    photo = resolve_photo(store, photo_ref)
    box = _clip_box(photo, box)
    try:
        (found,) = faces_from_boxes(Path(photo.path), [box], detect)
    except FileNotFoundError:
        raise EditError(f"{photo.path} is missing; reconnect the drive or folder first") from None
    except FacenetPhotosError as exc:
        raise EditError(f"{Path(photo.path).name} cannot be read ({exc})") from None
    who = f" as {' '.join(name.split())}" if name and name.strip() else ""
    (added,) = _add(store, embedder, photo, [found], name, f"Add a face to {Path(photo.path).name}{who}",
                    cluster or ClusterConfig())
    return added


def rescan(
    store: LibraryStore,
    embedder: Embedder,
    photo_ref: str | int | Path,
    threshold: float = RESCAN_THRESHOLD,
    *,
    detect: DetectConfig | None = None,
    cluster: ClusterConfig | None = None,
) -> list[AddedFace]:
    """Detect again at a lower score threshold; faces that overlap none of the photo's faces are
    added (unnamed: recognised, or a person of their own). Returns the new faces."""
    if not 0.05 <= threshold <= 0.99:
        raise EditError("the detection threshold must be between 0.05 and 0.99")
    photo = resolve_photo(store, photo_ref)
    cfg = replace(detect or DetectConfig(), score_threshold=float(threshold))
    try:
        found = FaceFinder(cfg).find(Path(photo.path)).faces
    except FileNotFoundError:
        raise EditError(f"{photo.path} is missing; reconnect the drive or folder first") from None
    except FacenetPhotosError as exc:
        raise EditError(f"{Path(photo.path).name} cannot be read ({exc})") from None
    with store.session() as s:
        have = [(f.x, f.y, f.w, f.h) for f in s.scalars(select(Face).where(Face.photo_id == photo.id))]
    new = [f for f in found if all(box_iou(f.box, b) <= NEW_FACE_IOU for b in have)]
    if not new:
        return []
    return _add(store, embedder, photo, new, None,
                f"Rescan {Path(photo.path).name}: {len(new)} new face(s)", cluster or ClusterConfig())
