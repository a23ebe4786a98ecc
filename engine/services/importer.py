"""The import pipeline as a generator of progress reports.

scan -> hash (skip duplicates, re-link moved files) -> decode/detect/align/embed on worker threads
(on a GPU: embed in batches on the main thread) -> commit every ``commit_every`` photos -> recognise
-> cluster.

A photo and its faces are written in the same transaction, and a photo counts as imported only
once that transaction commits, so a killed import resumes where it stopped with no duplicates.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from engine.config import ImportConfig
from engine.errors import FacenetPhotosError, LibraryError
from engine.models.quantize import to_bytes
from engine.pipeline.decode import read_info
from engine.pipeline.embed import Embedder
from engine.pipeline.faces import FaceFinder, PhotoFaces
from engine.pipeline.scan import ScanProblem, content_hash, iter_photo_files
from engine.services.progress import ProgressRate, Stage
from engine.services.xmp_import import add_region_faces, name_faces
from engine.store.database import LibraryStore
from engine.store.schema import DONE, FAILED, MISSING, NOT_A_FACE, NOT_KNOWN, Face, ImportRun, Photo, utcnow
from engine.store.thumbs import write_thumbnail


@dataclass
class ImportProgress(ProgressRate):
    stage: Stage  # SCAN, ANALYSE, RECOGNISE, CLUSTER, then DONE or CANCELLED
    done: int = 0
    total: int = 0
    faces: int = 0
    failed: int = 0
    skipped: int = 0
    duplicates: int = 0
    relinked: int = 0
    elapsed: float = 0.0
    current: str = ""
    new_face_ids: list[int] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    import_id: int | None = None
    # One-line messages for the user that are not failures (e.g. "Use GPU" is on but CUDA is absent).
    notes: list[str] = field(default_factory=list)


@dataclass
class _Work:
    path: Path
    size: int
    mtime: float
    digest: str | None = None
    faces: PhotoFaces | None = None
    error: str | None = None
    info: object = None
    names: list[str | None] | None = None  # per face, from the photo's XMP regions


# Files up to this size are read into memory once per photo (hash and decode share the bytes).
_READ_ONCE_BYTES = 64 * 2**20


def _analyse(finder: FaceFinder, w: _Work, cfg: ImportConfig, embedder: Embedder | None = None) -> _Work:
    """Runs on a worker thread: hash, header, decode, detect, align, and with ``embedder`` embed."""
    try:
        if w.size > cfg.max_file_bytes:
            raise FacenetPhotosError(f"file is {w.size / 2**20:.0f} MiB, above the size limit")
        # The file is read once for the hash and the decode (a 12 MP JPEG is 3-5 MB); a very large one
        # (a TIFF scan, a RAW) is hashed in chunks and decoded from the file instead.
        data = w.path.read_bytes() if w.size <= _READ_ONCE_BYTES else None
        w.digest = content_hash(w.path, data)
        w.info = read_info(w.path, cfg.max_pixels)
        w.faces = finder.find(w.path, data) if data is not None else finder.find(w.path)
        w.names = add_region_faces(w.faces, w.info, finder.config, cfg.max_pixels)
        if embedder is not None and w.faces.faces:
            vectors = embedder.embed(np.stack([f.crop for f in w.faces.faces]), here=True)
            for f, v in zip(w.faces.faces, vectors, strict=True):
                f.embedding = v
    except FacenetPhotosError as exc:
        w.error = str(exc)
    except FileNotFoundError:
        w.error = "file vanished during the import"
    except PermissionError:
        w.error = "permission denied"
    except OSError as exc:
        w.error = f"cannot read: {exc.strerror or exc}"
    except MemoryError:
        w.error = "not enough memory to decode this image"
    except Exception:  # a photo must never stop the import
        # The details are for a bug report (the library's log), not for the person importing.
        logging.getLogger("facenet_photos.import").exception("unexpected error on %s", w.path)
        w.error = "this file could not be read (an unexpected problem; the details are in the library's log)"
    return w


def run_import(
    store: LibraryStore,
    roots: list[Path],
    config: ImportConfig | None = None,
    *,
    embedder: Embedder | None = None,
    finder: FaceFinder | None = None,
    cancel: threading.Event | None = None,
    workers: int | None = None,
) -> Iterator[ImportProgress]:
    cfg = config or ImportConfig()
    cancel = cancel or threading.Event()
    finder = finder or FaceFinder(cfg.detect, cfg.max_pixels)
    embedder = embedder or Embedder(cfg.embed)
    t0 = time.monotonic()
    roots = [Path(r).expanduser().absolute() for r in roots]
    prog = ImportProgress(Stage.SCAN)
    # The workers build their own detectors; this one (cheap) tells whether CUDA is there for them.
    detector_note = finder.detector.fallback_message if cfg.detect.use_gpu else None
    prog.notes.extend(dict.fromkeys(m for m in (embedder.fallback_message, detector_note) if m))

    with store.transaction() as s:
        run = ImportRun(roots=[str(r) for r in roots], status="running", stats={})
        s.add(run)
        s.flush()
        prog.import_id = run.id

    problems: list[ScanProblem] = []
    candidates: list[Path] = []
    for p in iter_photo_files(roots, problems):
        candidates.append(p)
        if len(candidates) % 500 == 0:
            prog.total = len(candidates)
            prog.elapsed = time.monotonic() - t0
            yield prog
        if cancel.is_set():
            break
    prog.failures.extend((str(pr.path), pr.reason) for pr in problems)

    # What is already imported: path -> (size, mtime, status)
    with store.session() as s:
        known = {
            row.path: (row.size, row.mtime, row.status)
            for row in s.execute(select(Photo.path, Photo.size, Photo.mtime, Photo.status))
        }
    todo: list[_Work] = []
    for p in candidates:
        try:
            st = p.stat()
        except OSError:
            prog.failures.append((str(p), "file vanished during the import"))
            prog.failed += 1
            continue
        k = known.get(str(p))
        if k and k[0] == st.st_size and abs(k[1] - st.st_mtime) < 1e-3 and k[2] in (DONE, FAILED):
            prog.skipped += 1
            continue
        todo.append(_Work(p, st.st_size, st.st_mtime))
    prog.stage, prog.total = Stage.ANALYSE, len(todo)
    prog.elapsed = time.monotonic() - t0
    yield prog

    # One decode/detect/embed worker per core (at most 4); the main thread only writes.
    n_workers = workers or max(1, min(4, os.cpu_count() or 2))
    # Photos queued ahead of the main thread: enough to keep the workers busy while it writes a whole
    # commit batch (with only a few queued, they sat idle through each batch: one core unused for
    # most of a 12 MP import). A finished photo holds only its crops and thumbnails, ~110 KB a face,
    # so this costs a few MB.
    ahead = cfg.commit_every + n_workers * 4
    # On the CPU each worker embeds its own photo's faces: the cores then run one thread each, where
    # batches embedded on the main thread (two network threads beside the two workers) crowded them
    # (the network's CPU a face 6 % higher) and left the last batch to embed after the workers had
    # stopped. A GPU wants the whole batch in one call, so it keeps the batched path.
    in_worker = None if embedder.on_gpu else embedder
    pending: deque[Future] = deque()
    batch: list[_Work] = []
    it = iter(todo)
    with ThreadPoolExecutor(n_workers, thread_name_prefix="facenet-import") as pool:
        try:
            def fill() -> None:
                while len(pending) < ahead and not cancel.is_set():
                    w = next(it, None)
                    if w is None:
                        return
                    pending.append(pool.submit(_analyse, finder, w, cfg, in_worker))

            fill()
            while pending:
                w = pending.popleft().result()
                fill()
                batch.append(w)
                prog.current = str(w.path)
                if len(batch) >= cfg.commit_every or not pending:
                    full, batch = batch, []
                    _commit_batch(store, full, embedder, prog)
                    prog.elapsed = time.monotonic() - t0
                    yield prog
                if cancel.is_set():
                    break
        finally:
            for f in pending:
                f.cancel()
            if batch:  # work already done is kept, also on cancel
                _commit_batch(store, batch, embedder, prog)
    # After the pool is gone, so no thread outlives the import.
    from engine.grouping.people import cluster_new_faces

    if cancel.is_set():
        # Faces already committed are grouped on cancel too: a face in no person would be in no
        # list, its box in the viewer would do nothing, and the counts would disagree.
        if cfg.cluster_after and prog.new_face_ids:
            prog.stage = Stage.CLUSTER
            prog.elapsed = time.monotonic() - t0
            yield prog
            cluster_new_faces(store, prog.new_face_ids)
        prog.stage = Stage.CANCELLED
    else:
        prog.stage = Stage.RECOGNISE
        prog.elapsed = time.monotonic() - t0
        yield prog
        if cfg.cluster_after:
            prog.stage = Stage.CLUSTER
            yield prog
            cluster_new_faces(store, prog.new_face_ids)
        prog.stage = Stage.DONE
    prog.elapsed = time.monotonic() - t0
    with store.transaction() as s:
        run = s.get(ImportRun, prog.import_id)
        run.finished_at = utcnow()
        run.status = "cancelled" if cancel.is_set() else "done"
        run.stats = {
            "photos": prog.done, "faces": prog.faces, "failed": prog.failed, "skipped": prog.skipped,
            "duplicates": prog.duplicates, "relinked": prog.relinked, "seconds": round(prog.elapsed, 2),
            "failures": prog.failures[:1000],
        }
    yield prog


def _commit_batch(store: LibraryStore, batch: list[_Work], embedder: Embedder, prog: ImportProgress) -> None:
    """Write one batch in one transaction. A write failure (disk full, I/O error) rolls the batch
    back and stops the import with a clear message; everything committed before stays."""
    done, faces, n_ids, n_fail = prog.done, prog.faces, len(prog.new_face_ids), len(prog.failures)
    try:
        _write_batch(store, batch, embedder, prog)
        # The work list holds every photo of the import: drop the pixels once they are stored
        # (crop and thumbnail are ~110 KB a face, 5.5 GB for 50,000 photos if kept).
        for w in batch:
            w.faces = None
    except (SQLAlchemyError, OSError) as exc:
        prog.done, prog.faces, prog.failed = done, faces, prog.failed - (len(prog.failures) - n_fail)
        del prog.new_face_ids[n_ids:], prog.failures[n_fail:]
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise LibraryError(
            f"cannot write to the library ({reason}); this batch was not saved. "
            "Free some disk space and import again: it resumes where it stopped."
        ) from None


def _write_batch(store: LibraryStore, batch: list[_Work], embedder: Embedder, prog: ImportProgress) -> None:
    # Faces a worker did not embed already (the GPU path) are embedded here, as one batch.
    todo = [f for w in batch if w.faces for f in w.faces.faces if f.embedding is None]
    if todo:
        for f, v in zip(todo, embedder.embed(np.stack([f.crop for f in todo])), strict=True):
            f.embedding = v
    thumbs: list[tuple[int, np.ndarray]] = []
    with store.transaction() as s:
        for w in batch:
            prog.done += 1
            photo = s.scalar(select(Photo).where(Photo.path == str(w.path)))
            if w.error:
                prog.failed += 1
                prog.failures.append((str(w.path), w.error))
                if photo is None:
                    photo = Photo(path=str(w.path))
                    s.add(photo)
                photo.status, photo.error = FAILED, w.error
                photo.size, photo.mtime, photo.content_hash = w.size, w.mtime, w.digest
                continue
            same = s.scalars(select(Photo).where(Photo.content_hash == w.digest, Photo.path != str(w.path))).all()
            original = next((p for p in same if p.duplicate_of is None and p.status != FAILED), None)
            if original is not None and not Path(original.path).exists():
                # The file was moved or renamed: keep its faces and every label, just re-link.
                if photo is not None:
                    s.delete(photo)
                    s.flush()
                original.path, original.size, original.mtime = str(w.path), w.size, w.mtime
                original.status, original.error = DONE, None
                prog.relinked += 1
                continue
            if photo is None:
                photo = Photo(path=str(w.path))
                s.add(photo)
            photo.size, photo.mtime, photo.content_hash = w.size, w.mtime, w.digest
            info = w.info
            photo.width, photo.height = info.width, info.height
            photo.taken_at = info.taken_at
            photo.status, photo.error = DONE, None
            if original is not None:
                photo.duplicate_of = original.id
                prog.duplicates += 1
                continue
            s.flush()
            # A re-imported (changed) file replaces its faces; a detection the user deleted as not a
            # face stays deleted, and a stranger ("not someone I know") stays one, when the new one is in
            # the same place.
            rejected = []
            for old in s.scalars(select(Face).where(Face.photo_id == photo.id)):
                if old.assignment in (NOT_A_FACE, NOT_KNOWN):
                    rejected.append(((old.x, old.y, old.w, old.h), old.assignment))
                s.delete(old)
            named: list[tuple[Face, str]] = []
            for f, name in zip(w.faces.faces, w.names or [None] * len(w.faces.faces), strict=True):
                mark = next((m for box, m in rejected if _overlap(f.box, box) >= 0.5), None)
                if mark is not None:
                    s.add(Face(photo_id=photo.id, x=f.box[0], y=f.box[1], w=f.box[2], h=f.box[3],
                               landmarks=np.round(f.landmarks, 2).tolist(), score=f.score,
                               embedding=to_bytes(f.embedding), model_id=embedder.model_id,
                               assignment=mark))
                    continue
                face = Face(
                    photo_id=photo.id,
                    x=f.box[0], y=f.box[1], w=f.box[2], h=f.box[3],
                    landmarks=np.round(f.landmarks, 2).tolist(),
                    score=f.score,
                    embedding=to_bytes(f.embedding),
                    model_id=embedder.model_id,
                )
                s.add(face)
                s.flush()
                thumbs.append((face.id, f.thumb))
                prog.new_face_ids.append(face.id)
                prog.faces += 1
                if name:
                    named.append((face, name))
            name_faces(s, named)
        # Thumbnails are written before the commit; an orphan file from a killed import is harmless.
        for fid, img in thumbs:
            write_thumbnail(store.thumbs_dir, fid, img)


def _overlap(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def mark_missing(store: LibraryStore) -> int:
    """Flag photos whose files are gone (kept with their faces and labels until the user decides)."""
    n = 0
    with store.transaction() as s:
        for p in s.scalars(select(Photo).where(Photo.status == DONE)):
            if not Path(p.path).exists():
                p.status = MISSING
                n += 1
    return n
