"""Recursive discovery of photo files, safe against symlink loops and vanishing folders."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.checksums import sha256_file

from .decode import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ScanProblem:
    path: Path
    reason: str


def _folder_problem(d: Path, exc: OSError) -> ScanProblem:
    """Why a folder could not be listed, in words: one that went while the scan ran is not an error of the
    user's, so it is said so rather than shown as a read failure."""
    if isinstance(exc, FileNotFoundError):
        return ScanProblem(d, "folder vanished during the scan")
    return ScanProblem(d, f"cannot read folder: {exc.strerror or exc}")


def iter_photo_files(roots: Iterable[Path], problems: list[ScanProblem] | None = None) -> Iterator[Path]:
    """Yield image files below ``roots`` (files or folders), each real file once, sorted per folder.

    Hidden folders are skipped. Folders that vanish or cannot be read are reported in ``problems``
    and skipped; directory symlinks are followed once (loops are detected by device+inode).
    """
    problems = problems if problems is not None else []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()

    def visit_file(p: Path, st: os.stat_result) -> Iterator[Path]:
        key = (st.st_dev, st.st_ino)
        if key in seen_files:
            return
        seen_files.add(key)
        yield p

    def walk(d: Path) -> Iterator[Path]:
        try:
            st = d.stat()
        except OSError as exc:
            problems.append(_folder_problem(d, exc))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            if d.is_symlink():
                problems.append(ScanProblem(d, "symbolic link loop, skipped"))
            return
        seen_dirs.add(key)
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            problems.append(_folder_problem(d, exc))
            return
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            p = Path(e.path)
            try:
                if e.is_dir():  # follows symlinks
                    subdirs.append(p)
                elif e.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                    yield from visit_file(p, e.stat())
                elif e.is_symlink() and not p.exists():
                    if p.suffix.lower() in IMAGE_EXTENSIONS:
                        problems.append(ScanProblem(p, "broken symbolic link"))
            except OSError as exc:
                problems.append(ScanProblem(p, f"cannot read: {exc.strerror or exc}"))
        for sd in subdirs:
            yield from walk(sd)

    for root in roots:
        root = Path(root).expanduser()
        try:
            if root.is_dir():
                yield from walk(root)
            elif root.is_file():
                yield from visit_file(root, root.stat())
            else:
                problems.append(ScanProblem(root, "no such file or folder"))
        except OSError as exc:
            problems.append(ScanProblem(root, f"cannot read: {exc.strerror or exc}"))


def content_hash(path: Path, data: bytes | None = None) -> str:
    """SHA-256 of the file's bytes: identifies a photo across moves and renames. ``data``: the file's
    bytes when the caller has read them already (the importer reads a photo once for hash and decode)."""
    return hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
