"""Opening a library folder: lock, WAL, migrations (with a backup first), sessions."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from engine.errors import LibraryError, LibraryInUseError

DB_NAME = "library.sqlite"
LOCK_NAME = ".lock"
THUMBS = "thumbs"
BACKUPS = "backups"


def default_library_path() -> Path:
    env = os.environ.get("FACENET_PHOTOS_LIBRARY")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("facenet-photos", appauthor=False)) / "library"


class _FileLock:
    """An exclusive advisory lock held for as long as the library is open."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def acquire(self) -> None:
        fh = open(self.path, "a+")
        try:
            if os.name == "nt":  # pragma: no cover - exercised on Windows only
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise LibraryInUseError(
                f"library is in use by another facenet-photos process: {self.path.parent}"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", str(engine.url))
    return cfg


# The newest migration's revision. Opening a library compares its stored revision with this, so that a
# library already up to date is opened without importing alembic and reading every migration script
# (0.35-0.4 s of every command's start). tests/engine/store/test_schema_head.py fails when a migration is
# added without updating it.
HEAD_REVISION = "0007_question_weights"


def head_revision() -> str:
    """The head of the migration scripts themselves (reads them with alembic)."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(create_engine("sqlite://"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _stored_revision(conn) -> str | None:
    """The revision a library's database was migrated to (alembic's own table), None when it has none."""
    has = conn.execute(text("select count(*) from sqlite_master where type='table' and name='alembic_version'"))
    if not has.scalar():
        return None
    return conn.execute(text("select version_num from alembic_version")).scalar()


class LibraryStore:
    """Owns the database engine and the lock. ``write_lock`` serialises writers in this process.

    A writer holds an exclusive lock on ``.lock`` for as long as it is open: one writing process per
    library. A reader (``read_only=True``) takes no lock and opens SQLite read-only: WAL lets it read
    the last committed state while another process writes, so ``status`` or ``people`` work while the
    app is open. A reader never migrates; a library that needs it must be opened for writing once."""

    def __init__(self, root: Path, *, create: bool = True, read_only: bool = False):
        self.root = Path(root).expanduser().resolve()
        self.read_only = read_only
        self.db_path = self.root / DB_NAME
        self.thumbs_dir = self.root / THUMBS
        self.write_lock = threading.RLock()
        self._lock = _FileLock(self.root / LOCK_NAME)
        if read_only:
            self._open_reader()
            return
        if not self.root.exists():
            if not create:
                raise LibraryError(f"no library at {self.root}")
            try:
                self.root.mkdir(parents=True)
            except OSError as exc:
                raise LibraryError(f"cannot create library folder {self.root}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK):
            raise LibraryError(f"library folder is read-only: {self.root}")
        self.thumbs_dir.mkdir(exist_ok=True)
        self._lock.acquire()
        try:
            # Connections are made from the path itself, not from a URL: a folder named "Photothèque [2024]"
            # or "100% holidays #2" would be percent-encoded, or cut at '?' / '#', on the way through one.
            self.engine = create_engine(
                "sqlite://", poolclass=QueuePool,
                creator=lambda: sqlite3.connect(str(self.db_path), check_same_thread=False, timeout=30),
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self.migrate()
            self.Session = sessionmaker(self.engine, expire_on_commit=False)
        except Exception:
            self._lock.release()
            raise

    def _open_reader(self) -> None:
        if not self.db_path.is_file():
            raise LibraryError(f"no library at {self.root}")
        uri = f"{self.db_path.as_uri()}?mode=ro"  # file:///... with odd characters escaped, on every OS
        self.engine = create_engine(
            "sqlite://", poolclass=QueuePool,
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30),
        )
        event.listen(self.engine, "connect", _reader_pragmas)
        try:
            with self.engine.connect() as conn:
                current = _stored_revision(conn)
        except Exception as exc:
            self.engine.dispose()
            raise LibraryError(f"cannot read the library at {self.root}: {exc}") from None
        if current != HEAD_REVISION:
            self.engine.dispose()
            raise LibraryError(
                f"the library at {self.root} was made by another version of facenet-photos; open it once "
                "with a command that changes it (for example 'facenet-photos doctor') to upgrade it"
            )
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        with self.engine.connect() as conn:
            current = _stored_revision(conn)
            has_tables = bool(conn.execute(text("select count(*) from sqlite_master where type='table'")).scalar())
        if current == HEAD_REVISION:
            return
        from alembic import command

        if current is not None or has_tables:
            self.backup(f"before-{HEAD_REVISION}")
        cfg = _alembic_config(self.engine)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def backup(self, label: str) -> Path:
        """A consistent copy of the database (SQLite online backup) in backups/."""
        d = self.root / BACKUPS
        d.mkdir(exist_ok=True)
        dest = d / f"library-{datetime.now():%Y%m%d-%H%M%S}-{label}.sqlite"
        src = sqlite3.connect(self.db_path)
        try:
            out = sqlite3.connect(dest)
            with out:
                src.backup(out)
            out.close()
        finally:
            src.close()
        return dest

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session."""
        with self.Session() as s:
            yield s

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write session committed at the end, serialised with other writers of this process."""
        if self.read_only:
            raise LibraryError("this library was opened read-only; changes need it opened for writing")
        with self.write_lock, self.Session() as s, s.begin():
            yield s

    def integrity_check(self) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(text("PRAGMA integrity_check")).scalar())

    def close(self) -> None:
        try:
            self.engine.dispose()
        finally:
            self._lock.release()


def _reader_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
