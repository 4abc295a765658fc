"""The embedded backend: sessions and windows in one SQLite file (WAL journal), ``sqlite:///PATH``.

Each window is written in one transaction together with its session's updated summary, and committed before
the next message is read: a ``kill -9`` loses at most the window in flight, and a restarted aggregator finds the
open session and carries on with it (:meth:`SessionStore.load_session`). With ``synchronous=FULL`` (the
default) a committed window also survives a power cut. A version-1 database is migrated in place when an
aggregator opens it (``migrations.py``); readers accept either version.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aggregator.sessions import WalkSession
from aggregator.store.base import (
    SESSION_COLUMNS,
    WINDOW_COLUMNS,
    SessionStore,
    StoreError,
    not_ours,
    session_row,
    upsert_sql,
    window_row,
)
from aggregator.store.migrations import READABLE_VERSIONS, SCHEMA_VERSION, migrate

_UPSERT_SESSION = upsert_sql("sessions", SESSION_COLUMNS, ("id",), "?")
_UPSERT_WINDOW = upsert_sql("windows", WINDOW_COLUMNS, ("session_id", "idx"), "?")


class SqliteStore(SessionStore):
    """Sessions and windows in one SQLite file. Use from one thread (the aggregator's loop).

    One writer per database: a writable store holds an exclusive lock on ``<db>.lock`` (released by the OS
    when the process dies, even by ``kill -9``), so two aggregators can never hand out the same session id
    or carry on with the same open session. Readers (``read_only``, the CLI) need no lock.
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.where = str(self.path)
        self.read_only = read_only
        self._lock_fd: int | None = None
        try:
            if read_only:
                if not self.path.is_file():
                    raise StoreError(f"session database not found: {self.path}")
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._lock()
                self.db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions below
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
            version = self._read_version()
            known = version in READABLE_VERSIONS or (version == 0 and not read_only)
            if known and not read_only and version < SCHEMA_VERSION:
                version = migrate(self, version)
        except (sqlite3.Error, OSError) as exc:
            self._unlock()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open session database {self.path}: {exc}") from None
        if not known:
            self.close()
            raise not_ours(self.where, version)
        self.version = version

    def _read_version(self) -> int | str | None:
        """0 for an empty database; the stored value when it is not a number (None: no such row)."""
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
            tables = self.db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            return 0 if tables == 0 else None
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            return None
        return int(row[0]) if str(row[0]).isdigit() else str(row[0])

    def _lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"session database {self.path} is in use by another aggregator") from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        self.db.close()
        self._unlock()

    # ------------------------------------------------------------------ migrations.Target

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.db.execute(sql, params)

    @contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ writes

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"session database {self.where} was opened read-only")

    def save_session(self, session: WalkSession, summary: dict[str, Any]) -> None:
        self._writable()
        with self.transaction():
            self.db.execute(_UPSERT_SESSION, session_row(session, summary))

    def add_window(self, session: WalkSession, summary: dict[str, Any], record: dict[str, Any]) -> None:
        self._writable()
        with self.transaction():
            self.db.execute(_UPSERT_SESSION, session_row(session, summary))
            self.db.execute(_UPSERT_WINDOW, window_row(session, record))

    # ------------------------------------------------------------------ reads

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()
