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

from engine.checksums import sha256_file
from engine.config import ClusterConfig, EmbedConfig, ImportConfig, VerifyConfig
from engine.errors import EditError, FacenetPhotosError, ModelError
from engine.grouping.people import GROUPABLE, cluster_new_faces
from engine.grouping.thresholds import ModelThresholds, model_thresholds, set_model_thresholds, stored_cluster_config
from engine.models.packs import DERIVED, PACKS, pack_path
from engine.models.quantize import from_bytes, storage_error
from engine.models.registry import BUILTIN, SFACE, SFACE_THRESHOLDS, ModelSpec, Thresholds
from engine.pipeline.embed import Embedder
from engine.store.database import LibraryStore, default_library_path
from engine.store.schema import (
    BY_SUGGESTION,
    DONE,
    FAILED,
    MISSING,
    NOT_A_FACE,
    Face,
    ImportRun,
    ModelRecord,
    Person,
    Photo,
    Setting,
    set_active_embedder,
)
from engine.store.thumbs import THUMBS_FORMAT, drop_thumbnails, mark_thumbs_format, thumbnail_path, thumbs_format

from . import edits
from .importer import ImportProgress, run_import

BUILTIN_EMBEDDER = SFACE.model_id
# Largest change of a squared distance that 128-byte storage may cause on a registered model's faces
# (SFace: up to 0.009 on the sample faces, against a verification threshold of about 1.3).
STORAGE_TOLERANCE = 0.02
# Threads of the embedding network in a library (0: one per core).
EMBED_THREADS = int(os.environ.get("FACENET_PHOTOS_EMBED_THREADS", "0") or 0)
# resources/models/README.md
BUILTIN_LICENCES = {"yunet-2023mar-int8bq": "Apache-2.0 (OpenCV Zoo), MIT (libfacedetection)",
                    SFACE.model_id: "Apache-2.0 (OpenCV Zoo)"}
# Embedding sizes a library can store (one byte per dimension, engine.models.quantize).
SUPPORTED_DIMS = (128, 512)


def default_thresholds(model_id: str, compatible_with: str | None = None) -> Thresholds:
    """Thresholds of a model's space: SFace's, a pack's own, or, for a model trained into another
    model's space (harmonic lineage), that model's; SFace's otherwise (a fine-tune of SFace)."""
    pack = PACKS.get(model_id)
    if pack is not None and pack.thresholds is not None:
        return pack.thresholds
    if compatible_with and compatible_with != model_id:
        return default_thresholds(compatible_with)
    return SFACE_THRESHOLDS


def _thresholds_dict(t: Thresholds, model_id: str, compatible_with: str | None = None) -> dict:
    """Thresholds of a model this library has no record of, and the shipped child classifier it would use."""
    from engine.grouping.children import load_directions

    shipped = load_directions()
    child = next((shipped[m] for m in (model_id, compatible_with) if m in shipped), None)
    fitted_for = next((m for m in (model_id, compatible_with) if m == SFACE.model_id), None)
    return {"verify": t.verify, "cluster": t.cluster, "recognise": t.recognise, "source": t.source,
            "children": _children_dict(child), "questions": {"source": fitted_for, "stored": False}}


def _children_dict(child) -> dict | None:
    """The listing's ``children``: whose classifier a model groups with and its penalty (None: none)."""
    return None if child is None else {"source": child.model_id, "penalty": child.penalty}


def _record_pack(session, model_id: str) -> None:
    """Give an installed pack that this library never activated its (inactive) record, so that what is
    calibrated for it is kept for when it is chosen."""
    pack = PACKS.get(model_id)
    if pack is not None and session.get(ModelRecord, model_id) is None:
        session.add(_pack_record(pack))
        session.flush()


def _recorded_thresholds(session, model_id: str) -> dict:
    """A recorded model's thresholds as the library uses them (calibrated, borrowed or a pack's own), and
    the child classifier its grouping uses (``children``: whose, and its penalty; None: no penalty)."""
    from engine.grouping.children import model_child_direction
    from engine.services.same_person import model_question_weights

    t = model_thresholds(session, model_id)
    child = model_child_direction(session, model_id)
    weights, fitted_for = model_question_weights(session, model_id)
    return {"verify": t.verify, "cluster": t.cluster, "recognise": t.recognise,
            "source": t.source or ("not calibrated" if not t.calibrated else ""), "calibrated": t.calibrated,
            "children": _children_dict(child),
            # Whose fit the "same person?" queue is ranked with (None: the shipped one, fitted for no model on
            # this one's chain); "stored": calibrated for that model rather than shipped.
            "questions": {"source": fitted_for, "stored": weights is not None}}


@lru_cache(maxsize=1)
def _probe_faces() -> np.ndarray:
    """Aligned faces of the bundled sample portraits and their mirror images: real faces to check a
    new model on without touching the user's photos."""
    from importlib import resources

    from engine.pipeline.faces import FaceFinder

    finder = FaceFinder()
    sample = Path(str(resources.files("resources") / "sample"))
    crops = [f.crop for p in sorted(sample.glob("*.jpg")) for f in finder.find(p).faces]
    return np.stack(crops + [c[:, ::-1] for c in crops])


# Faces that count: every detection except those the user deleted as not a face.
_IS_FACE = (Face.assignment != NOT_A_FACE) | Face.assignment.is_(None)


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

    def __init__(self, path: Path | str | None = None, *, create: bool = True, read_only: bool = False):
        """``read_only``: for commands that only look (status, people, show…): opens beside a process
        that has the library open for writing (SQLite WAL lets readers run beside one writer), and
        never writes."""
        self.read_only = read_only
        self.store = LibraryStore(Path(path) if path else default_library_path(), create=create,
                                  read_only=read_only)
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        # "Same person?" questions skipped in this session: not offered again until the library is opened
        # again (nothing is stored, so a skipped question is not lost).
        self._skipped: set[str] = set()
        self._queue = None  # the last ranked queue, reused while the library is unchanged
        self._queue_lock = threading.Lock()
        # People touched by the answers since the last regrouping near them (QuestionConfig.regroup_every).
        self._answered_people: set[int] = set()
        self._answers_since_regroup = 0
        if read_only:
            return
        try:
            self._register_builtin_models()
        except Exception:
            self.store.close()
            raise
        self._upgrade_thumbnails()

    def _register_builtin_models(self) -> None:
        """Record the bundled models; the embedder is active unless a trained one was activated."""
        with self.store.transaction() as s:
            any_active = s.scalar(
                select(ModelRecord.id).where(ModelRecord.active.is_(True), ModelRecord.kind == "embedder")
            )
            for spec in BUILTIN.values():
                row = s.get(ModelRecord, spec.model_id)
                if row is None:
                    row = ModelRecord(
                        id=spec.model_id, kind=spec.kind, filename=spec.filename, sha256=spec.sha256,
                        dim=spec.embedding_dim, active=spec.kind == "detector" or not any_active,
                    )
                    s.add(row)
                if spec.kind == "embedder" and row.cluster_threshold is None:
                    # The bundled SFace's measured thresholds (engine/config.py); other models calibrate.
                    t = ModelThresholds.bundled(spec.model_id)
                    row.verify_threshold, row.cluster_threshold, row.recognise_threshold = (
                        t.verify, t.cluster, t.recognise)

    def _upgrade_thumbnails(self) -> None:
        """Once per library: drop the thumbnails cut the old way that padded faces near a photo's edge with
        stretched edge pixels; :meth:`thumbnail` cuts them again from the photo when they are next shown.
        Thumbnails of faces away from the edges were the same either way and are kept."""
        thumbs = self.store.thumbs_dir
        if thumbs_format(thumbs) >= THUMBS_FORMAT:
            return
        from engine.pipeline.faces import square_reached_outside

        try:
            with self.store.session() as s:
                rows = s.execute(
                    select(Face.id, Face.x, Face.y, Face.w, Face.h, Photo.width, Photo.height)
                    .join(Photo, Photo.id == Face.photo_id)
                ).all()
            stale = [r[0] for r in rows if r[5] and r[6] and square_reached_outside(r[1:5], r[5], r[6])]
            drop_thumbnails(thumbs, stale)
            mark_thumbs_format(thumbs)
        except OSError:
            pass  # a read-only library folder: the old thumbnails stay, nothing else is affected

    def models(self) -> list[dict]:
        """Every model this library has recorded, then the packs it could use (installed or not), with
        their licence and thresholds. ``status``: "bundled", "registered", "pack installed" or
        "not installed: <what to install>"."""
        from engine.models.packs import pack_file

        out = []
        with self.store.session() as s:
            rows = list(s.scalars(select(ModelRecord).order_by(ModelRecord.created_at)))
            for m in rows:
                pack = PACKS.get(m.id)
                out.append({
                    "id": m.id, "kind": m.kind, "file": m.filename, "sha256": m.sha256, "dim": m.dim,
                    "active": m.active, "compatible_with": m.compatible_with,
                    "licence": pack.licence if pack else BUILTIN_LICENCES.get(m.id) or (
                        DERIVED[m.id].licence if m.id in DERIVED
                        else "as the model it was trained from, and the photos it learnt from"),
                    "notice": pack.notice if pack else None,
                    "status": ("bundled" if m.id in BUILTIN else
                               ("pack installed" if pack_file(pack) else f"not installed: {pack.install_hint}")
                               if pack else "registered"),
                    "thresholds": (_recorded_thresholds(s, m.id) if m.kind == "embedder" else None),
                })
        recorded = {m["id"] for m in out}
        for pack in PACKS.values():
            if pack.spec.model_id in recorded:
                continue
            out.append({
                "id": pack.spec.model_id, "kind": pack.spec.kind, "file": pack.spec.filename,
                "sha256": pack.spec.sha256, "dim": pack.spec.embedding_dim, "active": False,
                "compatible_with": None, "licence": pack.licence, "notice": pack.notice,
                "status": "pack installed" if pack_file(pack) else f"not installed: {pack.install_hint}",
                "thresholds": _thresholds_dict(default_thresholds(pack.spec.model_id), pack.spec.model_id),
            })
        for d in DERIVED.values():
            if d.model_id in recorded:
                continue
            out.append({
                "id": d.model_id, "kind": "embedder", "file": None, "sha256": None, "dim": d.dim, "active": False,
                "compatible_with": d.compatible_with, "licence": d.licence, "notice": None,
                "status": f"not built: {d.how}",
                "thresholds": _thresholds_dict(default_thresholds(d.model_id, d.compatible_with), d.model_id,
                                               d.compatible_with),
            })
        return out

    # -- thresholds of the embedding model ------------------------------------------------------
    def model_thresholds(self, model_id: str | None = None) -> ModelThresholds:
        """The thresholds of an embedding model (default: the active one); ``engine.grouping.thresholds``."""
        with self.store.session() as s:
            return model_thresholds(s, model_id)

    def set_model_thresholds(self, model_id: str, verify: float, cluster: float, recognise: float) -> None:
        """Store a model's calibrated thresholds with its record. An installed pack that this library has
        never activated has no record yet (``facenet-photos calibrate --model arcface-mbf`` on a fresh
        library): it gets one, inactive, so the calibration is kept for when it is chosen."""
        with self.store.transaction() as s:
            _record_pack(s, model_id)
            set_model_thresholds(s, model_id, verify, cluster, recognise)

    def set_model_child_direction(self, model_id: str, direction, **about) -> None:
        """Store a model's child-face classifier (a ``ChildDirection``; None removes it) with its record,
        creating an installed pack's record as :meth:`set_model_thresholds` does. ``about``: how it was
        fitted, kept beside it (faces, AUC)."""
        from engine.grouping.children import set_model_child_direction

        with self.store.transaction() as s:
            _record_pack(s, model_id)
            set_model_child_direction(s, model_id, direction, **about)

    def set_model_question_weights(self, model_id: str, weights: dict | None) -> None:
        """Store the "same person?" queue's weights fitted for a model (``evals.questions.QuestionFit.as_dict``;
        None removes them: back to the shipped or borrowed ones) with its record, creating an installed pack's
        record as :meth:`set_model_thresholds` does."""
        from engine.grouping.same_person import MODEL_WEIGHTS
        from engine.grouping.thresholds import embedder_record

        with self.store.transaction() as s:
            _record_pack(s, model_id)
            m = embedder_record(s, model_id)
            if weights is not None and not set(weights) & set(MODEL_WEIGHTS):
                raise ValueError("no question weights to store (expected some of " + ", ".join(MODEL_WEIGHTS) + ")")
            m.question_weights = dict(weights) if weights is not None else None

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
    def model_embedder(self, model_id: str, config: EmbedConfig | None = None) -> Embedder:
        """An embedder for any model this library knows (bundled, pack, registered), not activating it."""
        from engine.pipeline.embed import known_embedder

        if model_id in BUILTIN or model_id in PACKS:
            return known_embedder(model_id, config)
        with self.store.session() as s:
            m = s.get(ModelRecord, model_id)
            if m is None or m.kind != "embedder":
                raise ModelError(f"no embedding model {model_id!r} in this library (see 'facenet-photos models')")
            spec = ModelSpec(m.id, m.filename, "embedder", m.sha256, m.dim or 128, 112)
        return Embedder(config, spec=spec, path=self.models_dir / spec.filename)

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
            pack = PACKS.get(m.id)
            if pack is not None:  # its file lives in the installed package, checked by pack_path
                return pack.spec, pack_path(pack)
            spec = ModelSpec(m.id, m.filename, "embedder", m.sha256, m.dim or 128, 112)
        return spec, self.models_dir / spec.filename

    def active_model_id(self) -> str:
        with self.store.session() as s:
            m = s.scalars(
                select(ModelRecord.id)
                .where(ModelRecord.active.is_(True), ModelRecord.kind == "embedder")
                .order_by(ModelRecord.created_at.desc())
            ).first()
        return m or BUILTIN_EMBEDDER

    def register_model(self, path: Path | str, model_id: str, compatible_with: str | None = None) -> str:
        """Copy an ONNX embedder into the library's models folder and record its SHA-256 (not active yet).

        The file must load as a 128-D or 512-D embedder whose faces fit one-byte-per-dimension storage;
        otherwise ModelError and nothing is recorded."""
        import shutil

        if not model_id or any(c in model_id for c in "/\\:") or model_id.startswith("."):
            raise ModelError(f"invalid model id {model_id!r}")
        if model_id in BUILTIN or model_id in PACKS:
            raise ModelError(f"{model_id} is a bundled or pack model; register the file under another id")
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
            dim = int(out.shape[1])
            if out.shape[0] != 1 or dim not in SUPPORTED_DIMS:
                raise ModelError(f"{src.name} gives {dim}-D embeddings, not 128-D or 512-D")
            # The library stores one byte per dimension: check the new model's real faces fit.
            biggest, change = storage_error(probe.embed(_probe_faces()))
            if change > STORAGE_TOLERANCE:
                raise ModelError(
                    f"{src.name} does not fit {dim}-byte storage: components up to {biggest:.2f} "
                    f"(limit {0.5 * (128 / dim) ** 0.5:.2f}) move squared distances by up to {change:.3f}"
                )
        except Exception:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(dest)
        with self.store.transaction() as s:
            row = s.get(ModelRecord, model_id)
            if row is None:
                s.add(ModelRecord(id=model_id, kind="embedder", filename=filename, sha256=digest, dim=dim,
                                  active=False, compatible_with=compatible_with))
            else:
                row.filename, row.sha256, row.compatible_with, row.dim = filename, digest, compatible_with, dim
        return model_id

    def activate_model(self, model_id: str) -> None:
        """Make a registered (or the bundled) embedder the active one; its file is hash-checked first
        (ModelError if it is missing, corrupt or altered). Faces embedded by the previous model keep
        their embeddings, people and names until ``engine.services.reembed.re_embed`` runs.

        The switch is one journaled step ("Face model: X instead of Y"), together with dropping a saved
        grouping threshold that belonged to the previous model's space (see ``_journal_model_switch``),
        so undo makes the previous model active again with its threshold; the faces then need a re-embed
        to go back (``needs_reembed``)."""
        pack = PACKS.get(model_id)
        if pack is not None:
            self._activate_pack(model_id)
            return
        with self.store.session() as s:
            m = s.get(ModelRecord, model_id)
            if m is None and model_id in DERIVED:
                raise ModelError(f"{model_id} is not built in this library yet: {DERIVED[model_id].how}")
            if m is None or m.kind != "embedder":
                raise ModelError(f"no embedding model {model_id!r} in this library (see 'facenet-photos models')")
            spec = BUILTIN.get(m.id) or ModelSpec(m.id, m.filename, "embedder", m.sha256, m.dim or 128, 112)
        path = None if m.id in BUILTIN else self.models_dir / spec.filename
        if path is not None:  # always re-hash here: the loader caches files it checked before
            self._check_embedder_file(m.id)
        candidate = Embedder(self._embed_config(), spec=spec, path=path)
        with self._embedder_lock, self.store.transaction() as s:
            _journal_model_switch(s, model_id)
            self._embedder = candidate

    def _activate_pack(self, model_id: str) -> None:
        """Record a pack model (its file stays in the installed package) and make it active. Its space
        is its own: faces keep their people and names, and ``re_embed`` brings each one over."""
        pack = PACKS[model_id]
        self._check_embedder_file(model_id)  # re-hash: the loader caches files it checked before
        path = pack_path(pack)
        candidate = Embedder(EmbedConfig(threads=_network_threads()), spec=pack.spec, path=path)
        with self._embedder_lock, self.store.transaction() as s:
            if s.get(ModelRecord, model_id) is None:
                s.add(_pack_record(pack))
                s.flush()
            _journal_model_switch(s, model_id)
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
        """Grouping settings: the active model's thresholds, unless the user saved a grouping threshold."""
        with self.store.session() as s:
            return stored_cluster_config(s)

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

    def recluster(self, threshold: float | None = None, save: bool = False) -> dict:
        """Group every face again (an undoable step). ``save``: the threshold becomes the library's
        setting in the same step, so undo brings back the old groups and the old threshold together."""
        cfg = self.cluster_config()
        if threshold is not None:
            cfg = replace(cfg, threshold=float(threshold))
        return edits.regroup(self.store, cfg, save_threshold=save and threshold is not None)

    def ungrouped_faces(self) -> int:
        """Faces in no person that grouping would place (left by an import that was killed)."""
        with self.store.session() as s:
            return s.scalar(select(func.count(Face.id)).where(Face.person_id.is_(None), GROUPABLE)) or 0

    def group_leftovers(self) -> int:
        """Group the faces an interrupted import left in no person; returns how many there were."""
        n = self.ungrouped_faces()
        if n:
            cluster_new_faces(self.store, [])
        return n

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
        """The photo's faces, without those the user deleted as not a face."""
        with self.store.session() as s:
            q = self._face_query().where(Face.photo_id == photo_id, _IS_FACE)
            return [self._face_info(r) for r in s.execute(q)]

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
                .join(Face, (Face.photo_id == Photo.id) & _IS_FACE, isouter=True)
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
                "faces": count(select(func.count(Face.id)).where(_IS_FACE)),
                "ungrouped": count(select(func.count(Face.id)).where(Face.person_id.is_(None), GROUPABLE)),
                "people": count(select(func.count(Person.id))),
                "named": count(select(func.count(Person.id)).where(Person.name.is_not(None))),
            }

    def thumbnail(self, face_id: int) -> Path | None:
        """Path of the face's thumbnail, regenerated from the photo when the cache lost it."""
        p = thumbnail_path(self.store.thumbs_dir, face_id)
        if p.exists():
            return p
        try:
            from engine.pipeline.decode import decode
            from engine.pipeline.faces import face_thumbnail
            from engine.store.thumbs import write_thumbnail

            f = self.face(face_id)
            img, scale = decode(Path(f.path), 2048)
            box = tuple(v / scale for v in f.box)
            return write_thumbnail(self.store.thumbs_dir, face_id, face_thumbnail(img, box))
        except (FacenetPhotosError, OSError):
            return None

    def photo_thumbnail(self, photo_id: int, path: str | None = None) -> Path | None:
        """Path of a small JPEG of the whole photo (the photo grid's), made from the photo on first use and
        again when the file changed since; None when the photo cannot be read. A photo whose file is
        away (a drive not plugged in) keeps showing its cached thumbnail. ``path``: the photo's, when the
        caller knows it (the grid does), which saves a database query per thumbnail."""
        from engine.store.thumbs import PHOTO_THUMB_PX, photo_thumbnail_path, write_photo_thumbnail

        p = photo_thumbnail_path(self.store.thumbs_dir, photo_id)
        if path is None:
            with self.store.session() as s:
                path = s.scalar(select(Photo.path).where(Photo.id == photo_id))
            if path is None:
                return None
        try:
            made = p.stat().st_mtime
        except OSError:
            made = None
        if made is not None:
            try:
                if made >= os.stat(path).st_mtime:
                    return p
            except OSError:
                return p  # the photo is away: its thumbnail still shows it
        try:
            from engine.pipeline.decode import decode

            # Twice the thumbnail's size: JPEG's reduced decode stays fast and the scaling down stays sharp.
            img, _scale = decode(Path(path), 2 * PHOTO_THUMB_PX)
            return write_photo_thumbnail(self.store.thumbs_dir, photo_id, img)
        except (FacenetPhotosError, OSError):
            return None

    def photo_timeline(self, people: list[str | int] | None = None, *, only: bool = False,
                       date_from: str | None = None, date_to: str | None = None, folder: str | None = None):
        """The photo grid: :meth:`find_photos`' filters (plus a folder), newest first, in months."""
        from engine.services.search import parse_day, photo_timeline

        ids = [self.find_person(str(p)).id for p in people or []]
        return photo_timeline(
            self.store, ids, only=only,
            date_from=parse_day(date_from) if date_from else None,
            date_to=parse_day(date_to, end=True) if date_to else None,
            folder=folder,
        )

    def embeddings(self, face_ids: list[int]) -> np.ndarray:
        with self.store.session() as s:
            rows = dict(s.execute(select(Face.id, Face.embedding).where(Face.id.in_(face_ids))).all())
        if not face_ids:
            return np.zeros((0, 128), np.float32)
        embs = [from_bytes(rows[f]) for f in face_ids]
        if len({len(e) for e in embs}) > 1:
            raise EditError("these faces were embedded by models of different sizes; run 'facenet-photos reembed'")
        return np.stack(embs)

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

    # -- photo features: XMP, search, drawn faces, birthdays ----------------------------------
    def export_xmp(self, folder: Path | str | None = None):
        """Write MWG sidecars (``photo.jpg.xmp``) for photos with named faces; photos are untouched."""
        from engine.services.xmp_export import export_xmp

        return export_xmp(self.store, Path(folder) if folder else None)

    def find_photos(
        self,
        people: list[str] | None = None,
        *,
        only: bool = False,
        date_from: str | None = None,
        date_to: str | None = None,
    ):
        """Photos with all of ``people`` (ids or names) in them; see ``engine.services.search``."""
        from engine.services.search import find_photos, parse_day

        ids = [self.find_person(p).id for p in people or []]
        return find_photos(
            self.store, ids, only=only,
            date_from=parse_day(date_from) if date_from else None,
            date_to=parse_day(date_to, end=True) if date_to else None,
        )

    def add_face(self, photo: str | int | Path, box: tuple[float, float, float, float], person: str | None = None):
        """A face the detector missed, in a box (pixels of the photo as displayed); journaled."""
        from engine.services.drawn_faces import add_face

        return add_face(self.store, self.embedder(), photo, box, person, cluster=self.cluster_config())

    def rescan(self, photo: str | int | Path, threshold: float | None = None):
        """Detect the photo's faces again at a lower threshold and add the new ones; journaled."""
        from engine.services.drawn_faces import RESCAN_THRESHOLD, rescan

        t = RESCAN_THRESHOLD if threshold is None else threshold
        return rescan(self.store, self.embedder(), photo, t, cluster=self.cluster_config())

    def set_birthday(self, person_id: int, birth: str | None) -> list[int]:
        """A person's birth date ('YYYY-MM-DD', or None to clear it); journaled. Faces suggested for
        them from photos taken before it are grouped again without them; returns those faces."""
        from datetime import date


        if birth:
            try:
                day = date.fromisoformat(str(birth).strip())
            except ValueError:
                raise EditError(f"{birth!r} is not a date; write it as YYYY-MM-DD") from None
        else:
            day = None
        return edits.set_birthday(self.store, person_id, day, self.cluster_config())

    def face_dates(self, face_ids: list[int]) -> dict[int, tuple[datetime, str]]:
        """face id -> (the date its photo was taken, "exif" or "file")."""
        from engine.store.dates import photo_date

        with self.store.session() as s:
            rows = s.execute(
                select(Face.id, Photo.taken_at, Photo.mtime).join(Photo, Photo.id == Face.photo_id)
                .where(Face.id.in_(face_ids))
            ).all()
        return {fid: photo_date(t, m) for fid, t, m in rows}

    def ages(self, face_ids: list[int]) -> dict[int, int]:
        """face id -> the age of its person on the photo's date, for the faces whose person has a birth date."""
        from engine.store.dates import age_on, photo_date

        ids = list(face_ids)
        rows = []
        with self.store.session() as s:
            for i in range(0, len(ids), 900):  # SQLite's limit on the values of one IN (...)
                rows += s.execute(
                    select(Face.id, Photo.taken_at, Photo.mtime, Person.birth_date)
                    .join(Photo, Photo.id == Face.photo_id).join(Person, Person.id == Face.person_id)
                    .where(Face.id.in_(ids[i : i + 900]), Person.birth_date.is_not(None))
                ).all()
        return {fid: age_on(birth, photo_date(t, m)[0].date()) for fid, t, m, birth in rows}

    def birth_date(self, person_id: int):
        with self.store.session() as s:
            p = s.get(Person, person_id)
            if p is None:
                raise EditError(f"no person with id {person_id}")
            return p.birth_date

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

    def delete_faces(self, face_ids: list[int]) -> None:
        """Not faces at all (a false detection): out of every person and every count, undoable."""
        edits.delete_faces(self.store, face_ids)

    def not_known(self, face_ids: list[int]) -> None:
        """"Not someone I know": out of every people list and question for good; undoable."""
        edits.not_known(self.store, face_ids)

    def not_known_people(self, person_ids: list[int]) -> int:
        """Whole groups are "not someone I know" (all their faces, as one undoable step; a name the user
        gave stays). Returns how many faces that was."""
        people = [self.person(int(p)).id for p in person_ids]
        with self.store.session() as s:
            ids = list(s.scalars(select(Face.id).where(Face.person_id.in_(people), GROUPABLE)))
        if not ids:
            raise EditError("the selected people have no faces")
        edits.not_known(self.store, ids)
        return len(ids)

    # -- "same person?" questions -----------------------------------------------------------------
    def same_person_questions(self, limit: int | None = 20, config=None):
        """The ranked "same person?" queue, best question first (``engine.services.same_person``),
        without the questions skipped in this session. ``config``: an ``engine.grouping.same_person``
        QuestionConfig (the defaults otherwise)."""
        from engine.grouping.same_person import QuestionConfig
        from engine.services.same_person import build_queue, queue_signature

        cfg = config or QuestionConfig()
        # The page and the sidebar's count both ask after every change: rank once per state of the library.
        with self._queue_lock:
            queue = self._queue
            if queue is None or queue.cfg != cfg or queue.signature != queue_signature(self.store):
                queue = self._queue = build_queue(self.store, cfg)
        return queue.questions(limit, frozenset(self._skipped))

    def answer(self, question, reply: str, config=None) -> int | None:
        """Answer a question (a SamePersonQuestion or its id "12-34"): "yes" merges the two groups, "no"
        keeps them apart in every later grouping (both undoable), "skip" leaves it for another session.
        A face question (id "f567-34"): "yes" confirms the face in its group, "no" moves it out for good.
        Then (every ``config.regroup_every`` answers, a QuestionConfig) the free faces near the answered
        groups are grouped again, in the same undo step as the answer (``edits.regroup_near``).
        Returns the person holding the faces after a yes."""
        from engine.grouping.same_person import QuestionConfig
        from engine.services.same_person import (
            ANSWERS,
            FACE,
            SKIP,
            answer,
            answer_face,
            face_question_id,
            is_face_question,
            parse_question_id,
            question_id,
        )

        # A face question ("is this face one of them?", id f<face>-<person>): yes confirms the face in its
        # group, no takes it out and keeps it apart from the faces shown.
        shown = None
        if hasattr(question, "person_a"):
            face_kind = question.kind == FACE
            a, b = (question.face_id, question.person_a) if face_kind else (question.person_a, question.person_b)
            shown = question.faces_a if face_kind else None
        else:
            face_kind = is_face_question(question)
            a, b = parse_question_id(question)
        reply = str(reply).strip().lower()
        reply = {"y": "yes", "n": "no", "s": "skip"}.get(reply, reply)
        if reply not in ANSWERS:
            raise EditError(f"answer {reply!r}: expected yes, no or skip")
        if reply == SKIP:
            self._skipped.add(face_question_id(a, b) if face_kind else question_id(a, b))
            return None
        since = edits.newest_entry(self.store)
        if face_kind:
            kept = answer_face(self.store, a, b, reply, shown)
            touched = {b} if kept is not None else {b, *self._person_of(a)}
        else:
            kept = answer(self.store, a, b, reply)
            touched = {kept} if kept is not None else {a, b}
        self._regroup_after_answer(touched, config or QuestionConfig(), since)
        return kept

    def _person_of(self, face_id: int) -> set[int]:
        with self.store.session() as s:
            pid = s.scalar(select(Face.person_id).where(Face.id == face_id))
        return set() if pid is None else {int(pid)}

    def _regroup_after_answer(self, people: set[int], cfg, since: int) -> None:
        """Every ``cfg.regroup_every`` answers, regroup the free faces near the people the answers touched,
        folded into the last answer's undo step; the queue is then ranked from the new groups (its signature
        changes with the faces)."""
        self._answered_people |= people
        self._answers_since_regroup += 1
        if cfg.regroup_every <= 0 or self._answers_since_regroup < cfg.regroup_every:
            return
        touched = sorted(self._answered_people)
        self._answered_people.clear()
        self._answers_since_regroup = 0
        edits.regroup_near(self.store, touched, self.cluster_config(), since=since, neighbours=cfg.regroup_neighbours)

    def undo(self) -> str | None:
        return self._replay(edits.undo)

    def redo(self) -> str | None:
        return self._replay(edits.redo)

    def _replay(self, step) -> str | None:
        """Undo or redo; when the step switched the face model, the model it goes back to is checked first
        (a missing or altered file: ModelError and nothing is replayed), and the embedder is loaded again."""
        target = edits.pending_model_switch(self.store, undoing=step is edits.undo)
        if target is not None and target != self.active_model_id():
            self._check_embedder_file(target)
        before = self.active_model_id()
        description = step(self.store)
        if self.active_model_id() != before:
            with self._embedder_lock:
                self._embedder = None
        return description

    def _check_embedder_file(self, model_id: str) -> None:
        """ModelError in one line when ``model_id`` could not be loaded now (pack not installed or altered,
        a registered file missing or altered); the bundled models are always there."""
        if model_id in BUILTIN:
            return
        pack = PACKS.get(model_id)
        if pack is not None:
            if sha256_file(pack_path(pack)) != pack.spec.sha256:
                raise ModelError(f"{model_id}: the installed file has the wrong checksum; "
                                 f"reinstall: {pack.install_hint}")
            return
        with self.store.session() as s:
            m = s.get(ModelRecord, model_id)
            if m is None:
                raise ModelError(f"no embedding model {model_id!r} in this library any more")
            path, digest = self.models_dir / m.filename, m.sha256
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        if sha256_file(path) != digest:
            raise ModelError(f"model file {path.name} has the wrong checksum; refusing to load it")

    def needs_reembed(self) -> int:
        """How many faces are not embedded by the active model (after a model switch or its undo): the
        count a re-embed would bring over."""
        from .reembed import stale_face_count

        return stale_face_count(self)

    def history(self, limit: int = 50) -> list[tuple[int, str, bool]]:
        return edits.history(self.store, limit)

    def doctor(self, repair: bool = True):
        from engine.services.doctor import run_doctor

        before = self.active_model_id()
        report = run_doctor(self.store, repair)
        if self.active_model_id() != before:  # the doctor switched away from a broken model
            with self._embedder_lock:
                self._embedder = None
        return report

    # -- verification -------------------------------------------------------------------------
    def verify_faces(self, face_a: int, face_b: int, threshold: float | None = None) -> VerifyResult:
        """Are two faces of the library the same person? Squared L2 of their stored embeddings."""
        t = self.model_thresholds().verify if threshold is None else threshold
        for f in (face_a, face_b):
            self.face(f)  # clear error for an unknown id
        ea, eb = self.embeddings([face_a, face_b])
        d = float(((ea - eb) ** 2).sum())
        return VerifyResult(d, d < t, t, (1, 1))

    def verify_images(self, a: Path, b: Path, threshold: float | None = None) -> VerifyResult:
        t = self.model_thresholds().verify if threshold is None else threshold
        return verify_images(a, b, t, embedder=self.embedder())


def embed_largest_face(path: Path, embedder: Embedder | None = None) -> tuple[np.ndarray, int]:
    """Embedding of the most prominent face in an image, and how many faces it has."""
    from engine.pipeline.faces import FaceFinder

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


def _pack_record(pack) -> ModelRecord:
    """The library's (inactive) record of an installed pack model; its file stays in the package."""
    return ModelRecord(id=pack.spec.model_id, kind="embedder", filename=pack.spec.filename, sha256=pack.spec.sha256,
                       dim=pack.spec.embedding_dim, active=False)


def _journal_model_switch(s, model_id: str) -> None:
    """Make ``model_id`` the active embedder inside the caller's transaction, as one journal entry.

    A grouping threshold the user saved is a squared distance in the previous model's space; in another
    space it means something else (SFace's 1.15 is far too strict for arcface-mbf, whose calibrated value
    is 1.45), so it is dropped in the same step and the new model's own threshold takes over. A model
    trained into the previous one's space (``compatible_with``) keeps it."""
    from engine.grouping.people import THRESHOLD_SETTING
    from engine.store.journal import record

    rows = list(s.scalars(select(ModelRecord).where(ModelRecord.kind == "embedder")))
    before = {r.id: bool(r.active) for r in rows}
    previous = next((r.id for r in rows if r.active), BUILTIN_EMBEDDER)
    set_active_embedder(s, model_id)
    changes: dict = {"models": [[r.id, {"active": before[r.id]}, {"active": bool(r.active)}]
                                for r in rows if bool(r.active) != before[r.id]]}
    lineage = {r.id: r.compatible_with for r in rows}
    if previous != model_id and lineage.get(model_id) != previous and lineage.get(previous) != model_id:
        row = s.get(Setting, THRESHOLD_SETTING)
        if row is not None and row.value is not None:
            changes["settings"] = [[THRESHOLD_SETTING, {"value": row.value}, {"value": None}]]
            row.value = None
    changes = {t: v for t, v in changes.items() if v}
    record(s, "model", edits.cut(f"Face model: {model_id} instead of {previous}", edits.DESCRIPTION_CHARS), changes)
