"""Durable storage of walk sessions and their windows in SQLite (WAL journal).

Each window is written in one transaction together with its session's updated summary, and committed
before the next message is read: a ``kill -9`` loses at most the window in flight, and a restarted
aggregator finds the open session and carries on with it (:meth:`SessionStore.load_session`).
With ``synchronous=FULL`` (the default) a committed window also survives a power cut.

Tables (schema version 2)::

    sessions(id INTEGER PRIMARY KEY, stream, walk, status 'open'|'closed', started_wall_ns, ended_wall_ns,
             end_reason, t0_mono_ns, last_seen_mono_ns, windows, valid_windows, cumulative_p_asd, ci_low,
             ci_high, decision, model, untrained, synthetic, summary_json, walkway)
    windows(session_id, idx, stream, window, t_s, t_start_wall_ns, valid, reason_code, p_asd,
            record_json, PRIMARY KEY (session_id, idx))

Version 2 added ``sessions.walkway`` (the camera pair; each walkway has at most one open session). A version 1
database is migrated in place when an aggregator opens it (``ALTER TABLE ... ADD COLUMN walkway TEXT NOT NULL
DEFAULT 'main'``: its sessions belong to the default walkway); readers accept either version.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from aggregator.sessions import WalkSession
from core.messages import DEFAULT_WALKWAY

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before walkways (migrated by a writer, read as walkway 'main')

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    walk INTEGER,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    started_wall_ns INTEGER NOT NULL,
    ended_wall_ns INTEGER,
    end_reason TEXT,
    t0_mono_ns INTEGER NOT NULL,
    last_seen_mono_ns INTEGER NOT NULL,
    windows INTEGER NOT NULL,
    valid_windows INTEGER NOT NULL,
    cumulative_p_asd REAL,
    ci_low REAL,
    ci_high REAL,
    decision TEXT NOT NULL,
    model TEXT NOT NULL,
    untrained INTEGER NOT NULL,
    synthetic INTEGER NOT NULL,
    summary_json TEXT NOT NULL,
    walkway TEXT NOT NULL DEFAULT 'main'
);
CREATE TABLE IF NOT EXISTS windows (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    idx INTEGER NOT NULL,
    stream TEXT NOT NULL,
    window INTEGER NOT NULL,
    t_s REAL NOT NULL,
    t_start_wall_ns INTEGER NOT NULL,
    valid INTEGER NOT NULL,
    reason_code TEXT,
    p_asd REAL,
    record_json TEXT NOT NULL,
    PRIMARY KEY (session_id, idx)
);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions(status);
"""
_SESSION_COLUMNS = ("id", "stream", "walk", "status", "started_wall_ns", "ended_wall_ns", "end_reason", "t0_mono_ns",
                    "last_seen_mono_ns", "windows", "valid_windows", "cumulative_p_asd", "ci_low", "ci_high",
                    "decision", "model", "untrained", "synthetic", "summary_json", "walkway")
_UPSERT_SESSION = (f"INSERT OR REPLACE INTO sessions ({', '.join(_SESSION_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(_SESSION_COLUMNS))})")


class StoreError(OSError):
    """The session database cannot be opened or read (one-line message for the user)."""


class SessionStore:
    """Sessions and windows in one SQLite file. Use from one thread (the aggregator's loop).

    One writer per database: a writable store holds an exclusive lock on ``<db>.lock`` (released by the OS
    when the process dies, even by ``kill -9``), so two aggregators can never hand out the same session id
    or carry on with the same open session. Readers (``read_only``, the CLI) need no lock.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
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
                self.db.executescript(_SCHEMA)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.db.row_factory = sqlite3.Row
            version = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            known = version is not None and str(version[0]).isdigit() and int(version[0]) in READABLE_VERSIONS
            if known and not read_only and int(version[0]) < SCHEMA_VERSION:
                self._migrate()
        except (sqlite3.Error, OSError) as exc:
            self._unlock()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open session database {self.path}: {exc}") from None
        if not known:
            self.close()
            raise StoreError(f"{self.path} is not a dualgait session database (schema {SCHEMA_VERSION})")
        self._has_walkway = "walkway" in {r[1] for r in self.db.execute("PRAGMA table_info(sessions)")}

    def _migrate(self) -> None:
        """Schema 1 -> 2 in place, in one transaction: sessions get their walkway (the default one)."""
        with self._transaction():
            columns = {r[1] for r in self.db.execute("PRAGMA table_info(sessions)")}
            if "walkway" not in columns:
                self.db.execute(f"ALTER TABLE sessions ADD COLUMN walkway TEXT NOT NULL DEFAULT '{DEFAULT_WALKWAY}'")
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

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

    # ------------------------------------------------------------------ writes

    def save_session(self, session: WalkSession, summary: dict[str, Any]) -> None:
        """Insert or update a session row (on start, on end)."""
        with self._transaction():
            self._upsert(session, summary)

    def add_window(self, session: WalkSession, summary: dict[str, Any], record: dict[str, Any]) -> None:
        """One window and its session's new summary, atomically."""
        with self._transaction():
            self._upsert(session, summary)
            self.db.execute(
                "INSERT OR REPLACE INTO windows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session.id, record["index"], record["stream"], record["window"], record["t_s"],
                 record["t_start_wall_ns"], int(record["valid"]), record["reason_code"], record["p_asd"],
                 json.dumps(record, allow_nan=False)))

    def _upsert(self, session: WalkSession, s: dict[str, Any]) -> None:
        self.db.execute(
            _UPSERT_SESSION,
            (session.id, session.stream, session.walk, s["status"], session.started_wall_ns, session.ended_wall_ns,
             session.end_reason, session.t0_mono_ns, session.last_seen_mono_ns, session.windows,
             s["valid_windows"], s["cumulative_p_asd"], s["ci_low"], s["ci_high"], s["decision"], session.model,
             int(session.untrained), int(session.synthetic), json.dumps(s, allow_nan=False), session.walkway))

    def _transaction(self):
        db = self.db

        class _Tx:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, _exc, _tb) -> None:
                db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    # ------------------------------------------------------------------ reads

    def max_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM sessions").fetchone()[0])

    def open_session_ids(self) -> list[int]:
        return [session_id for session_id, _walkway in self.open_sessions()]

    def open_sessions(self) -> list[tuple[int, str]]:
        """(id, walkway) of every open session, oldest first."""
        walkway = "walkway" if self._has_walkway else f"'{DEFAULT_WALKWAY}'"
        rows = self.db.execute(f"SELECT id, {walkway} FROM sessions WHERE status = 'open' ORDER BY id")
        return [(int(r[0]), str(r[1])) for r in rows]

    @staticmethod
    def _summary(text: str) -> dict[str, Any]:
        summary = json.loads(text)
        summary.setdefault("walkway", DEFAULT_WALKWAY)  # stored before walkways existed
        return summary

    def list_sessions(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Summaries, newest first."""
        sql = "SELECT summary_json FROM sessions ORDER BY id DESC" + (" LIMIT ?" if limit else "")
        rows = self.db.execute(sql, (limit,) if limit else ())
        return [self._summary(r[0]) for r in rows]

    def get_session(self, session_id: int) -> dict[str, Any]:
        row = self.db.execute("SELECT summary_json FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise StoreError(f"no session {session_id} in {self.path}")
        return self._summary(row[0])

    def windows(self, session_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT record_json FROM windows WHERE session_id = ? ORDER BY idx", (session_id,))
        return [json.loads(r[0]) for r in rows]

    def load_session(self, session_id: int) -> WalkSession:
        """Rebuild a session (to carry on with it after a restart) from its row and its windows."""
        row = self.db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise StoreError(f"no session {session_id} in {self.path}")
        windows = self.windows(session_id)
        session = WalkSession(
            id=row["id"], stream=row["stream"], walk=row["walk"], started_wall_ns=row["started_wall_ns"],
            t0_mono_ns=row["t0_mono_ns"], last_seen_mono_ns=row["last_seen_mono_ns"], last_seen_rx_ns=0,
            model=row["model"], untrained=bool(row["untrained"]), synthetic=bool(row["synthetic"]),
            windows=len(windows), ended_wall_ns=row["ended_wall_ns"], end_reason=row["end_reason"],
            walkway=row["walkway"] if self._has_walkway else DEFAULT_WALKWAY)
        session.p_values = [w["p_asd"] for w in windows if w["valid"] and w["p_asd"] is not None]
        session.invalid_by_reason = Counter(w["reason_code"] or "unknown" for w in windows if not w["valid"])
        if windows:
            session.last_window, session.last_t_s = windows[-1]["window"], windows[-1]["t_s"]
        return session
