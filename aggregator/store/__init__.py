"""Durable storage of walk sessions and their windows, behind one interface (:class:`SessionStore`).

``aggregator.store.url`` picks the backend (:func:`open_store`):

- ``sqlite:///PATH`` (default ``sqlite:///~/.local/share/dualgait/sessions.db``): one SQLite file, embedded,
  one aggregator per file (``sqlite.py``);
- ``postgresql://user@host[:port]/db``: a PostgreSQL server shared by hosts, needs the ``postgres`` extra
  (``postgres.py``); windows received while the server is away are queued in memory and written when it is
  back (``pending.py``).

Both have the same tables (schema version 2), created and migrated from one list of steps (``migrations.py``):

    sessions(id PRIMARY KEY, stream, walk, status 'open'|'closed', started_wall_ns, ended_wall_ns, end_reason,
             t0_mono_ns, last_seen_mono_ns, windows, valid_windows, cumulative_p_asd, ci_low, ci_high, decision,
             model, untrained, synthetic, summary_json, walkway)
    windows(session_id, idx, stream, window, t_s, t_start_wall_ns, valid, reason_code, p_asd, record_json,
            PRIMARY KEY (session_id, idx))
"""

from __future__ import annotations

from pathlib import Path

from aggregator.config import SQLITE_URL_PREFIX, StoreConfig, store_backend
from aggregator.store.base import SessionStore, StoreError
from aggregator.store.migrations import READABLE_VERSIONS, SCHEMA_VERSION
from aggregator.store.sqlite import SqliteStore

__all__ = ["READABLE_VERSIONS", "SCHEMA_VERSION", "SessionStore", "SqliteStore", "StoreError", "open_store",
           "sqlite_path"]


def sqlite_path(url: str) -> Path:
    """``sqlite:///PATH`` -> PATH, ``~`` expanded (``sqlite:////abs/file.db`` is /abs/file.db)."""
    path = url[len(SQLITE_URL_PREFIX):]
    if not path:
        raise StoreError(f"{url}: no file after {SQLITE_URL_PREFIX}")
    return Path(path).expanduser()


def open_store(cfg: StoreConfig, *, read_only: bool = False) -> SessionStore:
    """The store of ``cfg.url`` (StoreError, one line: a null or bad URL, an unreachable server, a database that
    is not dualgait's or of a newer schema, the database in use by another aggregator)."""
    if cfg.url is None:
        raise StoreError("aggregator.store.url is null: no session database")
    try:
        backend = store_backend(cfg.url)
    except ValueError as exc:
        raise StoreError(f"aggregator.store.url: {exc}") from None
    if backend == "sqlite":
        return SqliteStore(sqlite_path(cfg.url), synchronous=cfg.synchronous, read_only=read_only)
    from aggregator.store.postgres import PostgresStore  # needs the postgres extra

    return PostgresStore(cfg.url, read_only=read_only, max_pending_windows=cfg.max_pending_windows,
                         connect_timeout_s=cfg.connect_timeout_s, write_wait_s=cfg.write_wait_s)
