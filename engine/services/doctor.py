"""Check a library and repair what can be repaired without guessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, update

from engine.checksums import sha256_file
from engine.errors import ModelError
from engine.grouping.people import GROUPABLE
from engine.models.registry import BUILTIN, SFACE, verified_path
from engine.store.database import LibraryStore
from engine.store.schema import DONE, MISSING, PENDING, Face, ModelRecord, Person, Photo, set_active_embedder
from engine.store.thumbs import thumbnail_path


@dataclass
class DoctorReport:
    integrity: str = ""
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.integrity == "ok" and not self.problems


def run_doctor(store: LibraryStore, repair: bool = True) -> DoctorReport:
    r = DoctorReport(integrity=store.integrity_check())
    if r.integrity != "ok":
        r.problems.append(f"database integrity check failed: {r.integrity} (a backup is in {store.root / 'backups'})")
    for spec in BUILTIN.values():
        try:
            verified_path(spec)
        except ModelError as exc:
            r.problems.append(str(exc))

    # A check that repairs nothing only reads, so it also runs on a library opened read-only.
    with (store.transaction() if repair else store.session()) as s:
        _check_registered_models(store, s, r, repair)
        # Photos whose files are gone (or came back).
        gone, back = [], []
        for pid, path, status in s.execute(select(Photo.id, Photo.path, Photo.status)):
            exists = Path(path).exists()
            if status == DONE and not exists:
                gone.append(pid)
            elif status == MISSING and exists:
                back.append(pid)
        if gone:
            r.problems.append(f"{len(gone)} photo file(s) are missing (moved or deleted outside the app)")
            if repair:
                s.execute(update(Photo).where(Photo.id.in_(gone)).values(status=MISSING))
                r.repaired.append(f"marked {len(gone)} photo(s) as missing; their faces and names are kept")
        if back and repair:
            s.execute(update(Photo).where(Photo.id.in_(back)).values(status=DONE))
            r.repaired.append(f"{len(back)} missing photo(s) are back")
        # Photos left half-done by an interrupted import of an older version.
        stuck = s.scalar(select(func.count(Photo.id)).where(Photo.status == PENDING)) or 0
        if stuck:
            r.problems.append(f"{stuck} photo(s) were never finished")
            if repair:
                s.execute(Photo.__table__.delete().where(Photo.status == PENDING))
                r.repaired.append(f"removed {stuck} unfinished photo record(s); the next import redoes them")
        # Faces pointing at people that no longer exist.
        people_ids = set(s.scalars(select(Person.id)))
        orphan = [f for f, p in s.execute(select(Face.id, Face.person_id).where(Face.person_id.is_not(None)))
                  if p not in people_ids]
        if orphan:
            r.problems.append(f"{len(orphan)} face(s) point at a person that does not exist")
            if repair:
                s.execute(update(Face).where(Face.id.in_(orphan)).values(person_id=None, assignment=None))
                r.repaired.append(f"detached {len(orphan)} face(s); run 'recluster' to group them")
        # Faces without a person at all.
        loose = s.scalar(select(func.count(Face.id)).where(Face.person_id.is_(None), GROUPABLE)) or 0
        if loose:
            r.problems.append(f"{loose} face(s) are in no group (run 'recluster')")
        # Unnamed people with no faces.
        counts = dict(s.execute(select(Face.person_id, func.count(Face.id)).group_by(Face.person_id)).all())
        empty = [p for p in s.scalars(select(Person)) if not counts.get(p.id) and not p.name]
        if empty:
            r.problems.append(f"{len(empty)} unnamed empty group(s)")
            if repair:
                for p in empty:
                    s.delete(p)
                r.repaired.append(f"removed {len(empty)} empty group(s)")
        # Thumbnail cache: files for faces that no longer exist.
        face_ids = set(s.scalars(select(Face.id)))
    stale = [p for p in store.thumbs_dir.glob("*/*.jpg") if p.stem.isdigit() and int(p.stem) not in face_ids]
    missing_thumbs = sum(1 for f in face_ids if not thumbnail_path(store.thumbs_dir, f).exists())
    if stale:
        r.problems.append(f"{len(stale)} stale thumbnail file(s)")
        if repair:
            for p in stale:
                p.unlink(missing_ok=True)
            r.repaired.append(f"deleted {len(stale)} stale thumbnail(s)")
    if missing_thumbs:
        r.repaired.append(f"{missing_thumbs} thumbnail(s) missing; they are rebuilt when shown")
    return r


def _model_problem(store: LibraryStore, m: ModelRecord) -> str | None:
    """What is wrong with a registered (not bundled) model's file, or None."""
    from engine.models.packs import PACKS, pack_file

    pack = PACKS.get(m.id)
    if pack is not None:  # its file is in the installed package, not in the library
        found = pack_file(pack)
        if found is None:
            return f"model {m.id}: not installed ({pack.install_hint})"
        path = found
        m_sha = pack.spec.sha256
    else:
        path = store.root / "models" / m.filename  # where Library.register_model put it
        m_sha = m.sha256
    if not path.is_file():
        return f"model {m.id}: file missing at {path}"
    try:
        digest = sha256_file(path)
    except OSError as exc:
        return f"model {m.id}: cannot read {path}: {exc.strerror}"
    if digest != m_sha:
        return f"model {m.id}: file changed (SHA-256 {digest[:12]}… != recorded {m_sha[:12]}…) at {path}"
    return None


def _check_registered_models(store: LibraryStore, s, r: DoctorReport, repair: bool) -> None:
    """Hash-check every registered model; an active embedder whose file is broken hands over to the
    bundled one. Rows, files, faces, people and names stay as they are."""
    registered = select(ModelRecord).where(ModelRecord.id.not_in(list(BUILTIN))).order_by(ModelRecord.created_at)
    for m in s.scalars(registered).all():
        problem = _model_problem(store, m)
        if problem is None:
            continue
        r.problems.append(problem)
        if not (repair and m.active and m.kind == "embedder"):
            continue
        # Library.activate_model's switch, without loading the network here.
        set_active_embedder(s, SFACE.model_id)
        s.flush()
        stale = s.scalar(select(func.count(Face.id)).where(Face.model_id == m.id)) or 0
        r.repaired.append(
            f"switched the active face model from {m.id} back to the bundled {SFACE.model_id}; "
            f"{stale} face(s) embedded by {m.id} keep their people and names and need re-embedding "
            "with the bundled model (run 'facenet-photos reembed')"
        )
