"""The networks as onnxruntime runs them, kept on disk between runs of the app.

The bundled files are not what runs: the detector and the embedder are rewritten when loaded (weights
dequantised into constants, a dynamic batch, PRelu as Relu arithmetic; ``registry.fold_constants``,
``onnx_rewrite``). That costs about 1.3 s at every start of an import or any other command that loads
them, most of it importing the ``onnx`` package (0.75 s) and folding SFace's weights (0.5 s), and it gives
the same bytes every time. So the result is written once to the user's cache folder and read back on the
next start (about 60 ms for SFace's 39 MB, checksum included).

Nothing is trusted blindly: the source file is still checked against its SHA-256 before its prepared form
is looked up (``registry.verified_path``), the name of a prepared file holds the source's checksum and
``RECIPE_VERSION``, and its own SHA-256 is stored beside it and checked on every read; a file that fails is
made again. When the folder cannot be written (read-only home, full disk) the prepared bytes are simply
made every time, as before. ``FACENET_PHOTOS_CACHE`` names another folder (the tests use it); ``off``
turns the cache off.

The folder stays bounded: every model the user trains or installs is another source file with its own
prepared copy (SFace's is 39 MB), and one left behind by a changed or deleted model would otherwise stay
for good. A read marks its entry as used (its modification time), and after each write the entries used
longest ago go until the folder holds at most ``LIMIT_BYTES`` (the one just made always stays).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

# Bump when a rewrite changes what it writes, so that no older prepared file is read again.
RECIPE_VERSION = 1
ENV = "FACENET_PHOTOS_CACHE"
# Room for the bundled networks and several trained or installed ones; beyond it the least recently used go.
LIMIT_BYTES = 400 * 2**20


def cache_dir() -> Path | None:
    """Where prepared models are kept, or None when the cache is off (or no home folder is known)."""
    env = os.environ.get(ENV)
    if env:
        return None if env.strip().lower() == "off" else Path(env) / "models"
    try:
        return _platform_cache()
    except (RuntimeError, KeyError, OSError):  # no HOME (a service account, a bare container)
        return None


def _platform_cache() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "facenet-photos" / "Cache" / "models"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "facenet-photos" / "models"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facenet-photos" / "models"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
        want = path.with_suffix(".sha256").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return data if _digest(data) == want else None


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepared_bytes(recipe: str, source_sha256: str, make: Callable[[], bytes]) -> bytes:
    """``make()``'s bytes, read from the cache when a checked copy made by the same ``recipe`` from the same
    source (``source_sha256``, already verified by the caller) is there, else made and stored."""
    folder = cache_dir()
    if folder is None:
        return make()
    path = folder / f"{recipe}-{source_sha256[:32]}-v{RECIPE_VERSION}.onnx"
    data = _read(path)
    if data is not None:
        try:
            os.utime(path)  # used now: the last to go when the folder is over its limit
        except OSError:
            pass
        return data
    data = make()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # The model first, its checksum last: a run killed in between leaves a file without a valid
        # checksum, which the next run makes again.
        _write_atomically(path, data)
        _write_atomically(path.with_suffix(".sha256"), _digest(data).encode("ascii"))
        # What an older version of the app prepared from the same file is never read again.
        for old in folder.glob(f"{recipe}-{source_sha256[:32]}-v*"):
            if old.stem != path.stem:
                old.unlink(missing_ok=True)
        _keep_within_limit(folder, path)
    except OSError:
        pass  # an unwritable cache only costs the time it would have saved
    return data


def _keep_within_limit(folder: Path, keep: Path) -> None:
    """Delete the entries used longest ago (and their checksums) until the folder's models fit in
    ``LIMIT_BYTES``; ``keep`` (just written) always stays. Another process may be deleting too."""
    entries = []
    for model in folder.glob("*.onnx"):
        try:
            st = model.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, model))
    total = sum(size for _, size, _ in entries)
    for _, size, model in sorted(entries, key=lambda e: e[0]):  # used longest ago first
        if total <= LIMIT_BYTES:
            break
        if model == keep:
            continue
        model.with_suffix(".sha256").unlink(missing_ok=True)
        model.unlink(missing_ok=True)
        total -= size
