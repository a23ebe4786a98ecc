"""The small service API that the CLI and the GUI call. Qt-free; long operations are generators."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from . import edits
from .config import ClusterConfig, EmbedConfig, ImportConfig, VerifyConfig
from .embed import Embedder
from .errors import EditError, FacenetPhotosError, ModelError
from .importer import ImportProgress, run_import
from .models import BUILTIN, SFACE, ModelSpec, sha256_file
from .people import recluster
from .quantize import from_bytes, storage_error
from .store.library import LibraryStore, default_library_path
from .store.schema import (
    BY_SUGGESTION,
    DONE,
    FAILED,
    MISSING,
    Face,
    ImportRun,
    ModelRecord,
    Person,
    Photo,
    Setting,
)
from .thumbs import thumbnail_path

BUILTIN_EMBEDDER = SFACE.model_id
# Largest change of a squared distance that 128-byte storage may cause on a registered model's faces
# (SFace: up to 0.009 on the sample faces, against a verification threshold of about 1.3).
STORAGE_TOLERANCE = 0.02
# Threads of the embedding network in a library (0: one per core).
EMBED_THREADS = int(os.environ.get("FACENET_PHOTOS_EMBED_THREADS", "0") or 0)


@lru_cache(maxsize=1)
def _probe_faces() -> np.ndarray:
    """Aligned faces of the bundled sample portraits and their mirror images: real faces to check a
    new model on without touching the user's photos."""
    from importlib import resources

    from .pipeline import FaceFinder

    finder = FaceFinder()
    sample = Path(str(resources.files("resources") / "sample"))
    crops = [f.crop for p in sorted(sample.glob("*.jpg")) for f in finder.find(p).faces]
    return np.stack(crops + [c[:, ::-1] for c in crops])


def set_active_embedder(session, model_id: str) -> None:
    """Mark ``model_id`` as the one active embedder in the models table (no file check here)."""
    for row in session.scalars(select(ModelRecord).where(ModelRecord.kind == "embedder")):
        row.active = row.id == model_id


def _network_threads() -> int:
    # The network is most of an import's work (decode and detect are ~15 %), so it gets every
    # core; its threads do not spin, so the decode workers still get their turn.
    return EMBED_THREADS or (os.cpu_count() or 2)


@dataclass(frozen=True)
class PersonSummary:
    id: int
    name: str | None
    hidden: bool
    faces: int
    photos: int
    cover_face_id: int | None

    @property
    def label(self) -> str:
        return self.name or f"Unnamed #{self.id}"


@dataclass(frozen=True)
class FaceInfo:
    id: int
    photo_id: int
    path: str
    box: tuple[float, float, float, float]
    score: float
    person_id: int | None
    person_name: str | None
    assignment: str | None
    confidence: float | None


@dataclass(frozen=True)
class PhotoInfo:
    id: int
    path: str
    width: int | None
    height: int | None
    taken_at: datetime | None
    status: str
    error: str | None
    faces: int


@dataclass(frozen=True)
class VerifyResult:
    distance: float
    same: bool
    threshold: float
    faces: tuple[int, int]


class Library:
    """One open library. Thread-safe: readers run concurrently, writers are serialised."""

    def __init__(self, path: Path | str | None = None, *, create: bool = True):
        self.store = LibraryStore(Path(path) if path else default_library_path(), create=create)
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        try:
            self._register_builtin_models()
        except Exception:
            self.store.close()
            raise

    def _register_builtin_models(self) -> None:
        """Record the bundled models; the embedder is active unless a trained one was activated."""
        with self.store.transaction() as s:
            any_active = s.scalar(
                select(ModelRecord.id).where(ModelRecord.active.is_(True), ModelRecord.kind == "embedder")
            )
            for spec in BUILTIN.values():
                if s.get(ModelRecord, spec.model_id) is None:
                    s.add(ModelRecord(
                        id=spec.model_id, kind=spec.kind, filename=spec.filename, sha256=spec.sha256,
                        dim=spec.embedding_dim, active=spec.kind == "detector" or not any_active,
                    ))

    def models(self) -> list[dict]:
        with self.store.session() as s:
            return [
                {"id": m.id, "kind": m.kind, "file": m.filename, "sha256": m.sha256, "dim": m.dim, "active": m.active,
                 "compatible_with": m.compatible_with}
                for m in s.scalars(select(ModelRecord).order_by(ModelRecord.created_at))
            ]

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.store.root

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def use_gpu(self) -> bool:
        """The settings' "Use GPU" (stored by the GUI's settings dialog); off unless set."""
        return bool(self.get_setting("use_gpu", False))

    def _embed_config(self) -> EmbedConfig:
        return EmbedConfig(threads=_network_threads(), use_gpu=self.use_gpu())

    def embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._embedder is not None and self._embedder.config.use_gpu != self.use_gpu():
                self._embedder = None  # the setting changed since it was built
            if self._embedder is None:
                spec, path = self._active_embedder_spec()
                if path is None:
                    self._embedder = Embedder(self._embed_config())
                else:  # a registered model, hash-checked by verified_path
                    self._embedder = Embedder(self._embed_config(), spec=spec, path=path)
            return self._embedder

    # -- embedding models -----------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def _active_embedder_spec(self) -> tuple[ModelSpec | None, Path | None]:
        """(spec, path) of the active registered embedder; (None, None) for the bundled one."""
        with self.store.session() as s:
            m = s.scalars(
                select(ModelRecord)
                .where(ModelRecord.active.is_(True), ModelRecord.kind == "embedder")
                .order_by(ModelRecord.created_at.desc())
            ).first()
            if m is None or m.id in BUILTIN:
                return None, None
            spec = ModelSpec(m.id, m.filename, "embedder", m.sha256, m.dim or 128, 112)
        return spec, self.models_dir / spec.filename

    def active_model_id(self) -> str:
        spec, _ = self._active_embedder_spec()
        return spec.model_id if spec is not None else BUILTIN_EMBEDDER

    def register_model(self, path: Path | str, model_id: str, compatible_with: str | None = None) -> str:
        """Copy an ONNX embedder into the library's models folder and record its SHA-256 (not active yet).

        The file must load as a 128-D embedder; otherwise ModelError and nothing is recorded."""
        import shutil

        if not model_id or any(c in model_id for c in "/\\:") or model_id.startswith("."):
            raise ModelError(f"invalid model id {model_id!r}")
        if model_id in BUILTIN:
            raise ModelError(f"{model_id} is a bundled model")
        src = Path(path)
        if not src.is_file():
            raise ModelError(f"model file not found: {src}")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        filename = f"{model_id}.onnx"
        dest = self.models_dir / filename
        tmp = dest.with_name(filename + ".tmp")
        shutil.copyfile(src, tmp)
        digest = sha256_file(tmp)
        with self.store.session() as s:
            row = s.get(ModelRecord, model_id)
            if row is not None and row.active and row.sha256 != digest:
                tmp.unlink(missing_ok=True)
                raise ModelError(f"{model_id} is active; register the new file under another id")
        try:
            probe = Embedder(EmbedConfig(threads=1), spec=ModelSpec(model_id, tmp.name, "embedder", digest, 128, 112),
                             path=tmp)
            out = probe.embed(np.zeros((1, 112, 112, 3), np.uint8))
            if out.shape != (1, 128):
                raise ModelError(f"{src.name} gives {out.shape[1]}-D embeddings, not 128-D")
            # The library stores embeddings in 128 bytes: check the new model's real faces fit.
            biggest, change = storage_error(probe.embed(_probe_faces()))
            if change > STORAGE_TOLERANCE:
                raise ModelError(
                    f"{src.name} does not fit 128-byte storage: components up to {biggest:.2f} (limit 0.5) "
                    f"move squared distances by up to {change:.3f}"
                )
        except Exception:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(dest)
        with self.store.transaction() as s:
            row = s.get(ModelRecord, model_id)
            if row is None:
                s.add(ModelRecord(id=model_id, kind="embedder", filename=filename, sha256=digest, dim=128,
                                  active=False, compatible_with=compatible_with))
            else:
                row.filename, row.sha256, row.compatible_with = filename, digest, compatible_with
        return model_id

    def activate_model(self, model_id: str) -> None:
        """Make a registered (or the bundled) embedder the active one; its file is hash-checked first
        (ModelError if it is missing, corrupt or altered). Faces embedded by the previous model keep
        their embeddings, people and names until ``engine.model_upgrade.re_embed`` runs."""
        with self.store.session() as s:
            m = s.get(ModelRecord, model_id)
            if m is None or m.kind != "embedder":
                raise ModelError(f"no embedding model {model_id!r} in this library")
            spec = BUILTIN.get(m.id) or ModelSpec(m.id, m.filename, "embedder", m.sha256, m.dim or 128, 112)
        path = None if m.id in BUILTIN else self.models_dir / spec.filename
        if path is not None:  # always re-hash here: the loader caches files it checked before
            if not path.is_file():
                raise ModelError(f"model file not found: {path}")
            if sha256_file(path) != spec.sha256:
                raise ModelError(f"model file {path.name} has the wrong checksum; refusing to load it")
        candidate = Embedder(self._embed_config(), spec=spec, path=path)
        with self._embedder_lock, self.store.transaction() as s:
            set_active_embedder(s, model_id)
            self._embedder = candidate

    # -- settings ----------------------------------------------------------------------------
    def get_setting(self, key: str, default=None):
        with self.store.session() as s:
            row = s.get(Setting, key)
            return default if row is None else row.value

    def set_setting(self, key: str, value) -> None:
        with self.store.transaction() as s:
            row = s.get(Setting, key)
            if row is None:
                s.add(Setting(key=key, value=value))
            else:
                row.value = value

    def cluster_config(self) -> ClusterConfig:
        base = ClusterConfig()
        t = self.get_setting("cluster_threshold")
        return ClusterConfig(threshold=float(t), k=base.k, recognise_threshold=base.recognise_threshold) if t else base

    # -- import -------------------------------------------------------------------------------
    def import_paths(
        self, paths: list[Path | str], config: ImportConfig | None = None, cancel: threading.Event | None = None
    ) -> Iterator[ImportProgress]:
        """Generator of progress; the last item has stage "done" or "cancelled". With "Use GPU" set,
        the detector and the embedder run on CUDA where it is available (``progress.notes`` says
        when it is not and the CPU is used)."""
        yield from run_import(
            self.store, [Path(p) for p in paths], self.import_config(config), embedder=self.embedder(), cancel=cancel
        )

    def import_config(self, config: ImportConfig | None = None) -> ImportConfig:
        """``config`` (or the defaults) with this library's "Use GPU" setting applied."""
        cfg = config or ImportConfig()
        if self.use_gpu() and not cfg.detect.use_gpu:
            cfg = replace(cfg, detect=replace(cfg.detect, use_gpu=True), embed=replace(cfg.embed, use_gpu=True))
        return cfg

    def recluster(self, threshold: float | None = None) -> dict:
        cfg = self.cluster_config()
        if threshold is not None:
            cfg = ClusterConfig(threshold=threshold, k=cfg.k, recognise_threshold=cfg.recognise_threshold)
        return recluster(self.store, cfg)

    def last_import(self) -> dict | None:
        with self.store.session() as s:
            run = s.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(1)).first()
            if run is None:
                return None
            return {"id": run.id, "status": run.status, "roots": run.roots, **(run.stats or {})}

    # -- queries ------------------------------------------------------------------------------
    def people(
        self,
        *,
        include_hidden: bool = False,
        only_hidden: bool = False,
        named: bool | None = None,
        search: str | None = None,
        min_faces: int = 1,
    ) -> list[PersonSummary]:
        """People sorted by number of faces, largest first."""
        with self.store.session() as s:
            q = (
                select(
                    Person.id,
                    Person.name,
                    Person.hidden,
                    func.count(Face.id),
                    func.count(func.distinct(Face.photo_id)),
                    Person.cover_face_id,
                )
                .join(Face, Face.person_id == Person.id, isouter=True)
                .group_by(Person.id)
            )
            if only_hidden:
                q = q.where(Person.hidden.is_(True))
            elif not include_hidden:
                q = q.where(Person.hidden.is_(False))
            if named is True:
                q = q.where(Person.name.is_not(None))
            elif named is False:
                q = q.where(Person.name.is_(None))
            if search:
                q = q.where(Person.name.ilike(f"%{search}%"))
            q = q.having(func.count(Face.id) >= min_faces) if min_faces > 0 else q
            rows = s.execute(q.order_by(func.count(Face.id).desc(), Person.id)).all()
            return [PersonSummary(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def person(self, person_id: int) -> PersonSummary:
        with self.store.session() as s:
            p = s.get(Person, person_id)
            if p is None:
                raise EditError(f"no person with id {person_id}")
            n, ph = s.execute(
                select(func.count(Face.id), func.count(func.distinct(Face.photo_id))).where(Face.person_id == p.id)
            ).one()
            return PersonSummary(p.id, p.name, p.hidden, n, ph, p.cover_face_id)

    def find_person(self, ref: str) -> PersonSummary:
        """A person by id or by (case-insensitive) name."""
        if str(ref).isdigit():
            return self.person(int(ref))
        with self.store.session() as s:
            hits = s.scalars(select(Person.id).where(func.lower(Person.name) == str(ref).lower())).all()
        if not hits:
            raise EditError(f"no person named {ref!r}")
        if len(hits) > 1:
            raise EditError(f"several people are named {ref!r}; use an id: {', '.join(map(str, hits))}")
        return self.person(hits[0])

    def _face_query(self):
        return (
            select(
                Face.id, Face.photo_id, Photo.path, Face.x, Face.y, Face.w, Face.h, Face.score,
                Face.person_id, Person.name, Face.assignment, Face.confidence,
            )
            .join(Photo, Photo.id == Face.photo_id)
            .join(Person, Person.id == Face.person_id, isouter=True)
        )

    @staticmethod
    def _face_info(r) -> FaceInfo:
        return FaceInfo(r[0], r[1], r[2], (r[3], r[4], r[5], r[6]), r[7], r[8], r[9], r[10], r[11])

    def faces_of(self, person_id: int, offset: int = 0, limit: int | None = None) -> list[FaceInfo]:
        with self.store.session() as s:
            q = self._face_query().where(Face.person_id == person_id).order_by(Photo.taken_at, Face.id)
            q = q.offset(offset).limit(limit) if limit else q.offset(offset)
            return [self._face_info(r) for r in s.execute(q)]

    def faces_in_photo(self, photo_id: int) -> list[FaceInfo]:
        with self.store.session() as s:
            return [self._face_info(r) for r in s.execute(self._face_query().where(Face.photo_id == photo_id))]

    def face(self, face_id: int) -> FaceInfo:
        with self.store.session() as s:
            r = s.execute(self._face_query().where(Face.id == face_id)).first()
            if r is None:
                raise EditError(f"no face with id {face_id}")
            return self._face_info(r)

    def photos(self, status: str | None = None, folder: str | None = None) -> list[PhotoInfo]:
        with self.store.session() as s:
            q = (
                select(Photo, func.count(Face.id))
                .join(Face, Face.photo_id == Photo.id, isouter=True)
                .group_by(Photo.id)
                .order_by(Photo.path)
            )
            if status:
                q = q.where(Photo.status == status)
            if folder:
                q = q.where(Photo.path.like(str(folder).rstrip("/") + "/%"))
            return [
                PhotoInfo(p.id, p.path, p.width, p.height, p.taken_at, p.status, p.error, n)
                for p, n in s.execute(q)
            ]

    def failures(self) -> list[tuple[str, str]]:
        with self.store.session() as s:
            return [(p, e or "") for p, e in s.execute(select(Photo.path, Photo.error).where(Photo.status == FAILED))]

    def stats(self) -> dict:
        with self.store.session() as s:
            def count(q):
                return s.scalar(q) or 0

            return {
                "photos": count(select(func.count(Photo.id)).where(Photo.status == DONE)),
                "failed": count(select(func.count(Photo.id)).where(Photo.status == FAILED)),
                "missing": count(select(func.count(Photo.id)).where(Photo.status == MISSING)),
                "faces": count(select(func.count(Face.id))),
                "people": count(select(func.count(Person.id))),
                "named": count(select(func.count(Person.id)).where(Person.name.is_not(None))),
            }

    def thumbnail(self, face_id: int) -> Path | None:
        """Path of the face's thumbnail, regenerated from the photo when the cache lost it."""
        p = thumbnail_path(self.store.thumbs_dir, face_id)
        if p.exists():
            return p
        try:
            from .imageio import decode
            from .pipeline import face_thumbnail
            from .thumbs import write_thumbnail

            f = self.face(face_id)
            img, scale = decode(Path(f.path), 2048)
            box = tuple(v / scale for v in f.box)
            return write_thumbnail(self.store.thumbs_dir, face_id, face_thumbnail(img, box))
        except (FacenetPhotosError, OSError):
            return None

    def embeddings(self, face_ids: list[int]) -> np.ndarray:
        with self.store.session() as s:
            rows = dict(s.execute(select(Face.id, Face.embedding).where(Face.id.in_(face_ids))).all())
        return np.stack([from_bytes(rows[f]) for f in face_ids]) if face_ids else np.zeros((0, 128), np.float32)

    def review_queue(self, limit: int = 50) -> list[FaceInfo]:
        """Suggested faces, least certain first: "Is this <name>?"."""
        with self.store.session() as s:
            q = (
                self._face_query()
                .where(Face.assignment == BY_SUGGESTION, Person.name.is_not(None))
                .order_by(Face.confidence.desc())
                .limit(limit)
            )
            return [self._face_info(r) for r in s.execute(q)]

    # -- edits (journaled) --------------------------------------------------------------------
    def merge(self, target_id: int, source_ids: list[int]) -> int:
        return edits.merge(self.store, target_id, source_ids)

    def split(self, face_ids: list[int], name: str | None = None) -> int:
        return edits.split(self.store, face_ids, name)

    def move_faces(self, face_ids: list[int], person_id: int) -> None:
        edits.move_faces(self.store, face_ids, person_id)

    def rename(self, person_id: int, name: str | None) -> None:
        edits.rename(self.store, person_id, name)

    def set_hidden(self, person_ids: list[int], hidden: bool) -> None:
        edits.set_hidden(self.store, person_ids, hidden)

    def set_cover(self, person_id: int, face_id: int) -> None:
        edits.set_cover(self.store, person_id, face_id)

    def not_this_person(self, face_ids: list[int]) -> list[int]:
        return edits.not_this_person(self.store, face_ids)

    def confirm(self, face_ids: list[int]) -> None:
        edits.confirm(self.store, face_ids)

    def undo(self) -> str | None:
        return edits.undo(self.store)

    def redo(self) -> str | None:
        return edits.redo(self.store)

    def history(self, limit: int = 50) -> list[tuple[int, str, bool]]:
        return edits.history(self.store, limit)

    def doctor(self, repair: bool = True):
        from .doctor import run_doctor

        before = self.active_model_id()
        report = run_doctor(self.store, repair)
        if self.active_model_id() != before:  # the doctor switched away from a broken model
            with self._embedder_lock:
                self._embedder = None
        return report

    # -- verification -------------------------------------------------------------------------
    def verify_faces(self, face_a: int, face_b: int, threshold: float | None = None) -> VerifyResult:
        """Are two faces of the library the same person? Squared L2 of their stored embeddings."""
        t = VerifyConfig().threshold if threshold is None else threshold
        for f in (face_a, face_b):
            self.face(f)  # clear error for an unknown id
        ea, eb = self.embeddings([face_a, face_b])
        d = float(((ea - eb) ** 2).sum())
        return VerifyResult(d, d < t, t, (1, 1))

    def verify_images(self, a: Path, b: Path, threshold: float | None = None) -> VerifyResult:
        return verify_images(a, b, threshold, embedder=self.embedder())


def embed_largest_face(path: Path, embedder: Embedder | None = None) -> tuple[np.ndarray, int]:
    """Embedding of the most prominent face in an image, and how many faces it has."""
    from .pipeline import FaceFinder

    found = FaceFinder().find(Path(path))
    if not found.faces:
        raise FacenetPhotosError(f"no face found in {path}")
    best = max(found.faces, key=lambda f: f.box[2] * f.box[3] * f.score)
    emb = (embedder or Embedder()).embed(best.crop[None])[0]
    return emb, len(found.faces)


def verify_images(a: Path, b: Path, threshold: float | None = None, embedder: Embedder | None = None) -> VerifyResult:
    """Are the most prominent faces of two images the same person? Squared L2 vs threshold."""
    t = VerifyConfig().threshold if threshold is None else threshold
    emb = embedder or Embedder()
    ea, na = embed_largest_face(a, emb)
    eb, nb = embed_largest_face(b, emb)
    d = float(((ea - eb) ** 2).sum())
    return VerifyResult(d, d < t, t, (na, nb))
