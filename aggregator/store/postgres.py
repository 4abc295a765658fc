"""The networked backend: sessions and windows in PostgreSQL, ``postgresql://user@host[:port]/db``.

psycopg 3 with its connection pool (the ``postgres`` extra: ``pip install dualgait[postgres]``). The tables are
those of the SQLite store (``migrations.py``), in the connection's current schema (the first of its
``search_path``; ``?options=-csearch_path%3Dname`` in the URL picks another).

One writer per store, as with SQLite's lock file: the writer holds a PostgreSQL session-level advisory lock,
keyed by the schema (:func:`lock_key`), on the one connection of its pool, and takes it again on every new
connection the pool opens. The server releases it when that connection ends, also when the aggregator is
killed (``kill -9``: the socket closes) or the server restarts; a second aggregator on the same store stops at
start with ``... is in use by another aggregator``, and if another one took the lock while this one was cut off,
this one keeps its windows queued and says so instead of writing beside it. Readers (the CLI) take no lock.

Writes go through :class:`~aggregator.store.pending.PendingWrites`: committed before the next message while the
server answers, queued in memory (bounded, counted) while it is away, written in order when it is back.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
from aggregator.store.migrations import READABLE_VERSIONS, migrate
from aggregator.store.pending import PendingWrites

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'dualgait[postgres]'"
_UPSERT_SESSION = upsert_sql("sessions", SESSION_COLUMNS, ("id",), "%s")
_UPSERT_WINDOW = upsert_sql("windows", WINDOW_COLUMNS, ("session_id", "idx"), "%s")
# the writer's wait for the pool's connection: short, so that the loop waiting on a commit learns soon that the
# server is away (the pool goes on connecting in the background; the writer tries again after a pause)
GETCONN_WAIT_S = 0.25
CLOSE_WAIT_S = 2.0  # at shutdown, per try, for queued writes (the supervisor's stop grace is 5 s)


def display_url(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unparsable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}{':***' if ':' in user else ''}@{host}"
    query = "&".join("password=***" if q.lower().startswith("password=") else q for q in parts.query.split("&") if q)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def lock_key(schema: str) -> int:
    """The advisory lock of the store in ``schema`` (a signed 64-bit number, the same in every process)."""
    digest = hashlib.blake2b(f"dualgait-session-store:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise StoreError(f"a postgresql:// session store needs psycopg, which is not installed: {INSTALL_HINT}") \
            from None
    return psycopg, psycopg_pool


class _Target:
    """One connection as a :class:`migrations.Target`."""

    dialect = "postgres"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.conn.execute(sql, params)

    def transaction(self):
        return self.conn.transaction()


class PostgresStore(SessionStore):
    """Sessions and windows in a PostgreSQL database. Writes from one thread (the aggregator's loop)."""

    dialect = "postgres"

    def __init__(self, url: str, *, read_only: bool = False, max_pending_windows: int = 10_000,
                 connect_timeout_s: float = 2.0, write_wait_s: float = 1.0) -> None:
        self.url = url
        self.where = display_url(url)
        self.read_only = read_only
        self.connect_timeout_s = connect_timeout_s
        self._psycopg, pool_module = _driver()
        try:
            self._psycopg.conninfo.conninfo_to_dict(url)
        except self._psycopg.Error as exc:
            raise StoreError(f"bad PostgreSQL URL {self.where}: {_one_line(exc)}") from None
        self._kwargs = {"autocommit": True, "connect_timeout": max(2, math.ceil(connect_timeout_s)),
                        "application_name": "dualgait-session-store"}
        if urlsplit(url).hostname not in (None, "") and not urlsplit(url).hostname.startswith("/"):
            # a write to a server that went silent (network gone) fails after this, in the writer thread
            self._kwargs["tcp_user_timeout"] = 10_000
        self._conn: Any = None    # read-only: one plain connection
        self._pool: Any = None    # writer: a pool of one connection holding the lock
        self._writes: PendingWrites | None = None
        self._lock_error: str | None = None
        conn = self._connect()
        try:
            self._schema = self._current_schema(conn)
            self._key = lock_key(self._schema)
            version = self._read_version(conn)
            known = version in READABLE_VERSIONS or (version == 0 and not read_only)
            if not known:
                raise not_ours(self.where, version)
            if not read_only:
                self._take_lock(conn, wait_s=connect_timeout_s)
                version = self._read_version(conn)  # as it is now that no other writer can change it
                version = migrate(_Target(conn), version, on_step=lambda step: log.info(
                    "session database %s: schema migrated to version %d (%s)", self.where, step.version, step.what))
        except self._psycopg.Error as exc:
            conn.close()
            raise StoreError(f"session database {self.where}: {_one_line(exc)}") from None
        except StoreError:
            conn.close()
            raise
        self.version = version
        if read_only:
            self._conn = conn
            return
        conn.close()  # releases the lock; the pool's connection takes it again at once
        self._pool = pool_module.ConnectionPool(
            url, kwargs=self._kwargs, min_size=1, max_size=1, open=False, configure=self._configure,
            check=pool_module.ConnectionPool.check_connection, name="dualgait-store",
            reconnect_timeout=max(10.0, 4 * connect_timeout_s), timeout=connect_timeout_s, num_workers=1)
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s + 1)
        except self._psycopg.Error:
            self._pool.close(timeout=1)
            raise StoreError(self._lock_error or f"session database {self.where}: no connection within "
                             f"{connect_timeout_s + 1:g} s") from None
        psycopg = self._psycopg
        self._writes = PendingWrites(
            lambda: self._pool.connection(timeout=min(GETCONN_WAIT_S, connect_timeout_s)), where=self.where,
            max_pending_windows=max_pending_windows, write_wait_s=write_wait_s, transient=(psycopg.Error,),
            refused=(psycopg.DataError, psycopg.IntegrityError), why_away=lambda: self._lock_error)

    # ------------------------------------------------------------------ connections

    def _connect(self) -> Any:
        try:
            conn = self._psycopg.connect(self.url, **self._kwargs)
        except self._psycopg.Error as exc:
            raise StoreError(f"cannot connect to session database {self.where}: {_one_line(exc)}") from None
        self._json_as_text(conn)
        return conn

    def _json_as_text(self, conn: Any) -> None:
        from psycopg.types.string import TextLoader

        conn.adapters.register_loader("json", TextLoader)  # as written (key order kept), parsed by base.py

    def _current_schema(self, conn: Any) -> str:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        if schema is None:
            raise StoreError(f"session database {self.where}: no schema of the search_path exists")
        return str(schema)

    def _read_version(self, conn: Any) -> int | str | None:
        """0 for a schema without dualgait's tables; the stored value when it is not a number (None: no row)."""
        def exists(table: str) -> bool:  # in the current schema (not further down the search_path)
            return conn.execute("SELECT to_regclass(quote_ident(current_schema()) || '.' || %s)",
                                (table,)).fetchone()[0] is not None

        if not exists("meta"):
            return None if exists("sessions") else 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            return None
        return int(row[0]) if str(row[0]).isdigit() else str(row[0])

    def _try_lock(self, conn: Any) -> bool:
        return bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()[0])

    def _take_lock(self, conn: Any, wait_s: float) -> None:
        """The writer's lock; waits up to ``wait_s`` (a killed writer's connection may take a moment to end)."""
        deadline = time.monotonic() + wait_s
        while not self._try_lock(conn):
            if time.monotonic() >= deadline:
                raise StoreError(f"session database {self.where} (schema {self._schema}) is in use by another "
                                 "aggregator")
            time.sleep(0.1)

    def _configure(self, conn: Any) -> None:
        """Every connection of the writer's pool: JSON as text, and the writer's lock (else the connection fails)."""
        self._json_as_text(conn)
        if not self._try_lock(conn):
            if self._lock_error is None and self._writes is not None:
                log.warning("session database %s (schema %s) is in use by another aggregator since this one was cut "
                            "off: not writing beside it; windows stay queued until its lock is free", self.where,
                            self._schema)
            self._lock_error = (f"session database {self.where} (schema {self._schema}) is in use by another "
                                "aggregator")
            conn.close()
            raise self._psycopg.OperationalError(self._lock_error)
        if self._lock_error is not None:
            log.warning("session database %s: the writer's lock is free again", self.where)
        self._lock_error = None

    # ------------------------------------------------------------------ writes

    def _put(self, statements: list[tuple[str, tuple]], *, window: bool) -> None:
        if self._writes is None:
            raise StoreError(f"session database {self.where} was opened read-only")
        try:
            self._writes.put(statements, window=window)
        except RuntimeError as exc:
            raise StoreError(f"session database {self.where}: {exc}") from None

    def save_session(self, session: WalkSession, summary: dict[str, Any]) -> None:
        self._put([(_UPSERT_SESSION, session_row(session, summary))], window=False)

    def add_window(self, session: WalkSession, summary: dict[str, Any], record: dict[str, Any]) -> None:
        self._put([(_UPSERT_SESSION, session_row(session, summary)), (_UPSERT_WINDOW, window_row(session, record))],
                  window=True)

    @property
    def pending_windows(self) -> int:
        return self._writes.pending_windows if self._writes is not None else 0

    @property
    def dropped_windows(self) -> int:
        return self._writes.dropped_windows if self._writes is not None else 0

    @property
    def up(self) -> bool:
        """False while the database is away (writes are queued)."""
        return self._writes.up if self._writes is not None else True

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self._writes.flush(timeout_s) if self._writes is not None else True

    def close(self) -> None:
        if self._writes is not None:
            self._writes.close(CLOSE_WAIT_S)
            self._writes = None
        if self._pool is not None:
            self._pool.close(timeout=1.0)
            self._pool = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ reads

    @contextmanager
    def _reader(self) -> Iterator[Any]:
        if self._conn is not None:
            yield self._conn
        elif self._pool is not None:
            with self._pool.connection(timeout=self.connect_timeout_s) as conn:
                yield conn
        else:
            raise StoreError(f"session database {self.where} is closed")

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            with self._reader() as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        except self._psycopg.Error as exc:
            raise StoreError(f"session database {self.where}: {_one_line(exc)}") from None
