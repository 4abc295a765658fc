"""The session store's interface (:class:`SessionStore`) and what both backends share: the rows written for a
session and a window, the upsert statements, and every read (sessions, windows, rebuilding an open session).

Writes are upserts keyed by the session id and by (session id, window index): writing a window again (a retry
after a lost connection) replaces it, never doubles it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aggregator.sessions import WalkSession
from aggregator.store.migrations import READABLE_VERSIONS, SCHEMA_VERSION, Dialect
from core.messages import DEFAULT_WALKWAY

SESSION_COLUMNS = ("id", "stream", "walk", "status", "started_wall_ns", "ended_wall_ns", "end_reason", "t0_mono_ns",
                   "last_seen_mono_ns", "windows", "valid_windows", "cumulative_p_asd", "ci_low", "ci_high",
                   "decision", "model", "untrained", "synthetic", "summary_json", "walkway")
WINDOW_COLUMNS = ("session_id", "idx", "stream", "window", "t_s", "t_start_wall_ns", "valid", "reason_code", "p_asd",
                  "record_json")
# what load_session reads back (the scores come from the windows)
_LOAD_COLUMNS = ("id", "stream", "walk", "started_wall_ns", "t0_mono_ns", "last_seen_mono_ns", "model", "untrained",
                 "synthetic", "ended_wall_ns", "end_reason")


class StoreError(OSError):
    """The session database cannot be opened, reached or read (one-line message for the user)."""


def quote(column: str) -> str:
    return '"window"' if column == "window" else column  # WINDOW is a reserved word in PostgreSQL


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], placeholder: str) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` (SQLite >= 3.24 and PostgreSQL)."""
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in key)
    return (f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(placeholder for _ in columns)}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")


def session_row(session: WalkSession, s: dict[str, Any]) -> tuple:
    """The session's row as it is now (values copied: the session object changes afterwards)."""
    return (session.id, session.stream, session.walk, s["status"], session.started_wall_ns, session.ended_wall_ns,
            session.end_reason, session.t0_mono_ns, session.last_seen_mono_ns, session.windows, s["valid_windows"],
            s["cumulative_p_asd"], s["ci_low"], s["ci_high"], s["decision"], session.model, bool(session.untrained),
            bool(session.synthetic), json.dumps(s, allow_nan=False), session.walkway)


def window_row(session: WalkSession, record: dict[str, Any]) -> tuple:
    return (session.id, record["index"], record["stream"], record["window"], record["t_s"], record["t_start_wall_ns"],
            bool(record["valid"]), record["reason_code"], record["p_asd"], json.dumps(record, allow_nan=False))


def _summary(text: str) -> dict[str, Any]:
    summary = json.loads(text)
    summary.setdefault("walkway", DEFAULT_WALKWAY)  # stored before walkways existed
    return summary


def not_ours(where: str, version: object) -> StoreError:
    readable = "-".join(str(v) for v in (READABLE_VERSIONS[0], READABLE_VERSIONS[-1]))
    return StoreError(f"{where} is not a dualgait session database (schema {SCHEMA_VERSION}; this dualgait reads "
                      f"versions {readable}, the database says {version!s:.20})")


class SessionStore(ABC):
    """Sessions and their windows, durable. Backends: :class:`~aggregator.store.sqlite.SqliteStore`,
    :class:`~aggregator.store.postgres.PostgresStore`; :func:`aggregator.store.open_store` picks one by URL.

    Writes (``save_session``, ``add_window``) come from one thread, the aggregator's loop. ``pending_windows``:
    windows received but not yet in the database (PostgreSQL while it is away); ``dropped_windows``: windows
    given up on (the pending queue was full). Reads are the CLI's and the start-up's.
    """

    dialect: Dialect
    where: str          # the database, for messages (a file path, or a URL without its password)
    version: int = SCHEMA_VERSION  # the schema version of the database as opened

    # ------------------------------------------------------------------ writes

    @abstractmethod
    def save_session(self, session: WalkSession, summary: dict[str, Any]) -> None:
        """Insert or update a session row (on start, on end)."""

    @abstractmethod
    def add_window(self, session: WalkSession, summary: dict[str, Any], record: dict[str, Any]) -> None:
        """One window and its session's new summary, atomically."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    def pending_windows(self) -> int:
        return 0

    @property
    def dropped_windows(self) -> int:
        return 0

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until nothing is pending (at most ``timeout_s``); True when nothing is."""
        return True

    # ------------------------------------------------------------------ reads

    @abstractmethod
    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a query written with ``?`` placeholders; JSON columns come back as text."""

    @property
    def _walkway_column(self) -> str:
        return "walkway" if self.version >= 2 else f"'{DEFAULT_WALKWAY}'"

    def max_id(self) -> int:
        return int(self._fetch("SELECT COALESCE(MAX(id), 0) FROM sessions")[0][0])

    def open_session_ids(self) -> list[int]:
        return [session_id for session_id, _walkway in self.open_sessions()]

    def open_sessions(self) -> list[tuple[int, str]]:
        """(id, walkway) of every open session, oldest first."""
        rows = self._fetch(f"SELECT id, {self._walkway_column} FROM sessions WHERE status = 'open' ORDER BY id")
        return [(int(r[0]), str(r[1])) for r in rows]

    def list_sessions(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Summaries, newest first."""
        sql = "SELECT summary_json FROM sessions ORDER BY id DESC" + (" LIMIT ?" if limit else "")
        return [_summary(r[0]) for r in self._fetch(sql, (limit,) if limit else ())]

    def get_session(self, session_id: int) -> dict[str, Any]:
        rows = self._fetch("SELECT summary_json FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise StoreError(f"no session {session_id} in {self.where}")
        return _summary(rows[0][0])

    def windows(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._fetch("SELECT record_json FROM windows WHERE session_id = ? ORDER BY idx", (session_id,))
        return [json.loads(r[0]) for r in rows]

    def load_session(self, session_id: int) -> WalkSession:
        """Rebuild a session (to carry on with it after a restart) from its row and its windows."""
        rows = self._fetch(f"SELECT {', '.join(_LOAD_COLUMNS)}, {self._walkway_column} FROM sessions WHERE id = ?",
                           (session_id,))
        if not rows:
            raise StoreError(f"no session {session_id} in {self.where}")
        row = dict(zip((*_LOAD_COLUMNS, "walkway"), rows[0], strict=True))
        windows = self.windows(session_id)
        session = WalkSession(
            id=int(row["id"]), stream=row["stream"], walk=row["walk"], started_wall_ns=int(row["started_wall_ns"]),
            t0_mono_ns=int(row["t0_mono_ns"]), last_seen_mono_ns=int(row["last_seen_mono_ns"]), last_seen_rx_ns=0,
            model=row["model"], untrained=bool(row["untrained"]), synthetic=bool(row["synthetic"]),
            windows=len(windows), ended_wall_ns=row["ended_wall_ns"], end_reason=row["end_reason"],
            walkway=str(row["walkway"]))
        session.p_values = [w["p_asd"] for w in windows if w["valid"] and w["p_asd"] is not None]
        session.invalid_by_reason = Counter(w["reason_code"] or "unknown" for w in windows if not w["valid"])
        if windows:
            session.last_window, session.last_t_s = windows[-1]["window"], windows[-1]["t_s"]
        return session
