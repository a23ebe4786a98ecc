"""Helpers the desktop app needs on top of :mod:`engine.services.library`. Qt-free; long operations are generators.

* :func:`import_incrementally`: an import that groups people after each batch of photos, so a long import
  shows people as they land instead of only at the end.
* :func:`load_cluster_input` / :func:`count_people`: preview how many people a grouping threshold yields.
* :func:`folder_summary`: photos per folder, for the Photos page.
* :func:`people_for_grid`: the people grid's content: search on the shown label, "at least N faces", sort.
* :func:`sidebar_counts`: how many people, unnamed people, hidden people and suggestions to review.
* :func:`gpu_available`: whether onnxruntime can use CUDA here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from engine.config import ClusterConfig, ImportConfig
from engine.grouping.children import child_weights
from engine.grouping.cluster import cluster_faces
from engine.grouping.normalise import centre_library
from engine.grouping.people import load_faces
from engine.pipeline.scan import ScanProblem, iter_photo_files
from engine.store.schema import BY_SUGGESTION, BY_USER, DONE, FAILED, NOT_A_FACE, Face, Person, Photo

from .importer import ImportProgress, run_import
from .progress import Stage


@dataclass
class IncrementalProgress(ImportProgress):
    """Progress of the whole import. ``batches`` counts batches already grouped into people: when it
    grows, the people list has changed."""

    batches: int = 0
    candidates: int = 0


def _batch_sizes(n: int, first: int, growth: float, largest: int) -> Iterator[int]:
    size = max(1, first)
    while n > 0:
        take = min(size, n)
        yield take
        n -= take
        size = min(largest, max(size + 1, int(size * growth)))


def import_incrementally(
    library,
    paths: Sequence[Path | str],
    config: ImportConfig | None = None,
    cancel: threading.Event | None = None,
    *,
    first_batch: int = 48,
    growth: float = 2.0,
    max_batch: int = 2000,
) -> Iterator[IncrementalProgress]:
    """Import ``paths`` (files or folders) in batches of growing size, grouping people after each batch.

    Grouping after a batch re-groups every unnamed face, so the end result is the same as one import
    followed by one grouping. An import that fits in the first batch is a single ordinary import of
    ``paths``. Every item is a fresh object (safe to hand to another thread); the last one has stage
    "done" or "cancelled"."""
    cfg = library.import_config(config)  # with the library's "Use GPU"
    cancel = cancel or threading.Event()
    t0 = time.monotonic()
    problems: list[ScanProblem] = []
    files: list[Path] = []
    for p in iter_photo_files([Path(x).expanduser().absolute() for x in paths], problems):
        files.append(p)
        if len(files) % 250 == 0:
            elapsed = time.monotonic() - t0
            yield IncrementalProgress(Stage.SCAN, total=len(files), candidates=len(files), elapsed=elapsed)
        if cancel.is_set():
            break
    scan_failures = [(str(pr.path), pr.reason) for pr in problems]
    scan_set = set(scan_failures)
    finished = IncrementalProgress(Stage.ANALYSE, candidates=len(files))  # totals of the batches already done

    def report(stage: Stage, cur: ImportProgress | None, with_ids: bool = False) -> IncrementalProgress:
        out = IncrementalProgress(stage, candidates=len(files), batches=finished.batches)
        for name in ("done", "faces", "failed", "skipped", "duplicates", "relinked"):
            setattr(out, name, getattr(finished, name) + (getattr(cur, name) if cur else 0))
        out.failed += len(scan_failures)
        current = [f for f in (cur.failures if cur else []) if f not in scan_set]
        out.failures = scan_failures + finished.failures + current
        if with_ids:
            out.new_face_ids = finished.new_face_ids + (list(cur.new_face_ids) if cur else [])
        out.notes = list(dict.fromkeys(finished.notes + (list(cur.notes) if cur else [])))
        if cur is not None:
            out.current, out.import_id = cur.current, cur.import_id
        else:
            out.import_id = finished.import_id
        out.total = max(0, len(files) - out.skipped)
        out.elapsed = time.monotonic() - t0
        return out

    yield report(Stage.ANALYSE, None)
    if cancel.is_set():
        yield report(Stage.CANCELLED, None, with_ids=True)
        return

    if len(files) <= first_batch:
        batches = [list(paths)] if files else []
    else:
        batches, start = [], 0
        for size in _batch_sizes(len(files), first_batch, growth, max_batch):
            batches.append(files[start : start + size])
            start += size

    final = Stage.DONE
    for batch in batches:
        last: ImportProgress | None = None
        for p in run_import(library.store, batch, cfg, embedder=library.embedder(), cancel=cancel):
            last = p
            stage = p.stage if p.stage in (Stage.RECOGNISE, Stage.CLUSTER) else Stage.ANALYSE
            yield report(stage, p)
        if last is None:
            continue
        for name in ("done", "faces", "failed", "skipped", "duplicates", "relinked"):
            setattr(finished, name, getattr(finished, name) + getattr(last, name))
        # Our own scan already reported folders that could not be read.
        finished.failures += [f for f in last.failures if f not in scan_set]
        finished.failed = len(finished.failures)
        finished.new_face_ids += last.new_face_ids
        finished.notes = list(dict.fromkeys(finished.notes + last.notes))
        finished.import_id = last.import_id
        if last.stage == Stage.CANCELLED:
            final = Stage.CANCELLED
            break
        if last.new_face_ids or last.relinked:
            finished.batches += 1
    yield report(final, None, with_ids=True)


# ---------------------------------------------------------------------------------------------------------------
# Threshold preview


@dataclass
class ClusterInput:
    """What :func:`count_people` needs: every embedded face, its photo and the person the user fixed."""

    emb: np.ndarray
    photo_ids: np.ndarray
    fixed: np.ndarray
    k: int = field(default=ClusterConfig().k)
    method: str = field(default=ClusterConfig().method)
    child: np.ndarray | None = None  # child likelihoods and their penalty, as the grouping uses them
    child_penalty: float = 0.0

    def __len__(self) -> int:
        return len(self.emb)


def load_cluster_input(library) -> ClusterInput:
    """The library's embeddings, as a full re-grouping (``Library.recluster``) would see them."""
    cfg = library.cluster_config()
    with library.store.session() as s:
        t = load_faces(s)
        child, penalty = child_weights(s, t.emb, cfg)
    fixed = np.array(
        [pid if a == BY_USER and pid >= 0 else -1 for pid, a in zip(t.person_ids, t.assignment, strict=True)],
        np.int64,
    )
    # Centred as the grouping centres it (ClusterConfig.centre), so the preview counts the same groups.
    return ClusterInput(centre_library(t.emb, cfg.centre), t.photo_ids, fixed, cfg.k, cfg.method, child, penalty)


def count_people(data: ClusterInput, threshold: float) -> int:
    """How many people grouping ``data`` at ``threshold`` (squared L2) gives."""
    if len(data) == 0:
        return 0
    labels = cluster_faces(data.emb, float(threshold), photo_ids=data.photo_ids, fixed=data.fixed, k=data.k,
                           method=data.method, child=data.child, child_penalty=data.child_penalty)
    return int(len(np.unique(labels)))


# ---------------------------------------------------------------------------------------------------------------
# Photos per folder


@dataclass(frozen=True)
class FolderSummary:
    folder: str
    photos: int
    faces: int
    failed: int


def folder_summary(library) -> list[FolderSummary]:
    """Every folder holding imported photos, with its photo, face and failure counts, sorted by path."""
    faces_per_photo = (
        select(Face.photo_id, func.count(Face.id).label("n"))
        .where((Face.assignment != NOT_A_FACE) | Face.assignment.is_(None))
        .group_by(Face.photo_id)
        .subquery()
    )
    with library.store.session() as s:
        rows = s.execute(
            select(
                Photo.path,
                Photo.status,
                func.coalesce(faces_per_photo.c.n, 0),
            ).join(faces_per_photo, faces_per_photo.c.photo_id == Photo.id, isouter=True)
        ).all()
    acc: dict[str, list[int]] = {}
    for path, status, n in rows:
        folder = str(Path(path).parent)
        a = acc.setdefault(folder, [0, 0, 0])
        if status == DONE:
            a[0] += 1
        a[1] += int(n)
        if status == FAILED:
            a[2] += 1
    return [FolderSummary(k, *v) for k, v in sorted(acc.items())]


# ---------------------------------------------------------------------------------------------------------------
# The people grid

SORTS = ("size", "name", "recent")  # biggest first; by name (unnamed last); most recent photo first


@dataclass(frozen=True)
class PeopleGrid:
    people: list  # engine PersonSummary, in the order asked for
    fewer: int  # people left out by ``min_faces`` (who would otherwise be shown)


def matches(label: str, person_id: int, text: str) -> bool:
    """Whether a search ``text`` finds a person shown as ``label``: any part of the label ("#8" and "unnamed 8"
    find "Unnamed #8"), case-insensitive."""
    t = " ".join(text.lower().split())
    if not t:
        return True
    low = label.lower()
    return t in low or t.lstrip("#") == str(person_id) or t.replace("#", "").split() == low.replace("#", "").split()


def people_for_grid(library, *, search: str = "", min_faces: int = 1, sort: str = "size", **filters) -> PeopleGrid:
    """The people grid: ``Library.people(**filters)`` searched by what the grid shows (the label, so "#8" finds
    "Unnamed #8"; an exact "#8" comes first), with at least ``min_faces`` faces, sorted by ``sort``."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    people = [p for p in library.people(**filters) if matches(p.label, p.id, search)]
    shown = [p for p in people if p.faces >= max(1, min_faces)]
    fewer = len(people) - len(shown)
    if sort == "name":
        # Named people A to Z, then the unnamed by number.
        shown.sort(key=lambda p: (p.name is None, (p.name or "").casefold(), p.id))
    elif sort == "recent":
        recent = _latest_photo(library, [p.id for p in shown])
        shown.sort(key=lambda p: (-recent.get(p.id, 0.0), -p.faces, p.id))
    t = search.strip().lstrip("#")
    if t.isdigit():  # the person with that very number first, before #80, #81…
        shown.sort(key=lambda p: p.id != int(t))
    return PeopleGrid(shown, fewer)


def _latest_photo(library, person_ids: Sequence[int]) -> dict[int, float]:
    """Per person, the time of their most recent photo (when taken, else the file's time), as a timestamp."""
    with library.store.session() as s:
        rows = s.execute(
            select(Face.person_id, func.max(Photo.taken_at), func.max(Photo.mtime))
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.person_id.is_not(None))
            .group_by(Face.person_id)
        ).all()
    wanted = set(person_ids)
    return {pid: (taken.timestamp() if taken is not None else float(mtime or 0.0))
            for pid, taken, mtime in rows if pid in wanted}


def sidebar_counts(library) -> dict[str, int]:
    """{"people", "unnamed", "hidden", "review"}: people with at least one face (visible ones, visible
    unnamed ones, hidden ones) and named people's suggested faces waiting for a yes or no."""
    with_faces = select(Face.person_id).where(Face.person_id.is_not(None)).distinct().subquery()
    with library.store.session() as s:
        rows = s.execute(
            select(Person.hidden, Person.name.is_(None), func.count(Person.id))
            .join(with_faces, with_faces.c.person_id == Person.id)
            .group_by(Person.hidden, Person.name.is_(None))
        ).all()
        review = s.scalar(
            select(func.count(Face.id))
            .join(Person, Person.id == Face.person_id)
            .where(Face.assignment == BY_SUGGESTION, Person.name.is_not(None))
        )
    out = {"people": 0, "unnamed": 0, "hidden": 0, "review": int(review or 0)}
    for hidden, unnamed, n in rows:
        if hidden:
            out["hidden"] += n
        else:
            out["people"] += n
            if unnamed:
                out["unnamed"] += n
    return out


# ---------------------------------------------------------------------------------------------------------------
# Accelerators


def gpu_available() -> bool:
    """Whether onnxruntime offers CUDA on this machine."""
    try:
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    except Exception:
        return False
