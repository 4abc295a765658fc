"""The session store on both backends (aggregator/store/: SQLite and a real PostgreSQL server, parametrised) and
the exports (aggregator/session_export.py). PostgreSQL-only behaviour (the server away, restarted, a second
writer's lock) is in test_store_postgres.py."""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from agg_helpers import rx, score

from aggregator.config import SessionConfig, StoreConfig
from aggregator.session_export import CSV_COLUMNS, export_session
from aggregator.sessions import SessionTracker, session_summary
from aggregator.store import SessionStore, SqliteStore, StoreError, open_store
from aggregator.store.migrations import migrate

CFG = SessionConfig(gone_timeout_s=3.0, min_valid_windows=3)


@dataclass
class Backend:
    """One database on one backend: open its store, run SQL on it beside the store (``?`` placeholders)."""

    name: str
    url: str

    def open(self, *, read_only: bool = False) -> SessionStore:
        return open_store(StoreConfig(url=self.url), read_only=read_only)

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.name == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                return conn.execute(sql, params).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite:///{tmp_path / 'sub' / 's.db'}")
    return Backend("postgres", request.getfixturevalue("pg_schema_url"))


def _play(store: SessionStore, tracker: SessionTracker, scores) -> None:
    """What the process loop does with the tracker's events."""
    for s in scores:
        for event in tracker.window(s, rx(s.window)):
            summary = session_summary(event.session, CFG)
            if event.kind == "window":
                store.add_window(event.session, summary, event.record)
            else:
                store.save_session(event.session, summary)


def _walk():
    return [score(0, 0.7), score(1, 0.8), score(2, code="patient_missing", visible=(8, 2)), score(3, 0.9),
            score(4, 0.75, synthetic=True)]


def test_store_keeps_sessions_and_windows(backend):
    store = backend.open()
    tracker = SessionTracker(CFG)
    _play(store, tracker, _walk())
    assert store.open_session_ids() == [1] and store.max_id() == 1
    summary = store.get_session(1)
    assert summary["windows"] == 5 and summary["valid_windows"] == 4
    assert summary["cumulative_p_asd"] == pytest.approx(0.7875)
    assert summary["synthetic"] is True and summary["status"] == "open"
    windows = store.windows(1)
    assert [w["index"] for w in windows] == [0, 1, 2, 3, 4]
    assert windows[2]["reason_code"] == "patient_missing" and windows[2]["p_asd"] is None
    assert list(windows[0]) == list(_first_record())  # the record as written, key order kept
    for event in tracker.end("operator"):
        store.save_session(event.session, session_summary(event.session, CFG))
    assert store.open_session_ids() == []
    assert store.list_sessions()[0]["end_reason"] == "operator"
    # the key columns beside the JSON: what SQL on the database sees
    rows = backend.execute('SELECT idx, "window", valid, reason_code, p_asd FROM windows ORDER BY idx')
    assert [(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows][1:3] == [
        (1, 1, True, None, 0.8), (2, 2, False, "patient_missing", None)]
    assert backend.execute("SELECT status, end_reason, windows, synthetic FROM sessions")[0][:3] == (
        "closed", "operator", 5)
    store.close()


def _first_record() -> dict:
    return SessionTracker(CFG).window(score(0, 0.7), rx(0))[-1].record


def test_sqlite_uses_wal(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_writing_a_window_again_replaces_it(backend):
    """A retried write (its commit's answer was lost) leaves one row, not two."""
    store = backend.open()
    tracker = SessionTracker(CFG)
    _play(store, tracker, _walk()[:2])
    session = tracker.open_sessions["main"]
    record = store.windows(1)[1]
    store.add_window(session, session_summary(session, CFG), record)
    assert backend.execute("SELECT COUNT(*) FROM windows")[0][0] == 2 and store.windows(1)[1] == record
    store.close()


def test_load_session_rebuilds_what_resume_needs(backend):
    store = backend.open()
    tracker = SessionTracker(CFG)
    _play(store, tracker, _walk())
    store.close()
    reopened = backend.open()
    session = reopened.load_session(1)
    assert session.p_values == [0.7, 0.8, 0.9, 0.75] and session.windows == 5
    assert dict(session.invalid_by_reason) == {"patient_missing": 1}
    assert session.synthetic is True and session.walkway == "main" and session.last_window == 4
    fresh = SessionTracker(CFG, next_id=reopened.max_id() + 1)
    fresh.resume(session, rx(5))
    record = fresh.window(score(5, 0.85), rx(5))[-1].record
    assert record["index"] == 5 and record["valid_windows"] == 5
    assert record["cumulative_p_asd"] == pytest.approx(0.8)
    reopened.close()


def test_unknown_sessions_are_one_line_errors(backend, tmp_path):
    store = backend.open()
    with pytest.raises(StoreError, match=r"^no session 7 in \S+$") as caught:
        store.get_session(7)
    assert str(caught.value) == f"no session 7 in {store.where}"
    with pytest.raises(StoreError, match="no session 7"):
        store.load_session(7)
    with pytest.raises(StoreError, match="no session 7"):
        export_session(store, 7, tmp_path)
    store.close()


def test_bad_sqlite_paths_are_one_line_errors(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open session database"):
        SqliteStore(tmp_path / "dir.db")
    (tmp_path / "junk.db").write_text("not a database at all" * 100)
    with pytest.raises(StoreError):
        SqliteStore(tmp_path / "junk.db")
    with pytest.raises(StoreError, match="not found"):
        SqliteStore(tmp_path / "missing.db", read_only=True)
    with pytest.raises(StoreError, match="url is null"):
        open_store(StoreConfig(url=None))


def test_one_writer_per_database(backend):
    """A second writable store on the same database is refused until the first closes; readers are never refused."""
    first = backend.open()
    with pytest.raises(StoreError, match="in use by another aggregator"):
        backend.open()
    backend.open(read_only=True).close()
    first.close()
    backend.open().close()


def test_read_only_store_cannot_write(backend):
    backend.open().close()
    ro = backend.open(read_only=True)
    assert ro.list_sessions() == [] and ro.max_id() == 0
    tracker = SessionTracker(CFG)
    event = tracker.window(score(0, 0.5), rx(0))[0]
    with pytest.raises(StoreError, match="read-only"):
        ro.save_session(event.session, session_summary(event.session, CFG))
    ro.close()


def test_read_only_sqlite_connection_cannot_write(tmp_path):
    SqliteStore(tmp_path / "s.db").close()
    ro = SqliteStore(tmp_path / "s.db", read_only=True)
    with pytest.raises(sqlite3.OperationalError):
        ro.db.execute("DELETE FROM sessions")
    ro.close()


def test_export_csv_json_png(backend, tmp_path):
    store = backend.open()
    _play(store, SessionTracker(CFG), _walk())
    paths = export_session(store, 1, tmp_path / "out")
    assert [p.name for p in paths] == ["session-1.csv", "session-1.json", "session-1.png"]
    rows = list(csv.DictReader(paths[0].read_text(encoding="utf-8").splitlines()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 5
    assert rows[2]["valid"] == "False" and rows[2]["reason_code"] == "patient_missing" and rows[2]["p_asd"] == ""
    assert float(rows[4]["cumulative_p_asd"]) == pytest.approx(0.7875)
    assert rows[0]["t_start_utc"].startswith("2023-11-14T22:13:20")
    doc = json.loads(paths[1].read_text())
    assert doc["session"]["id"] == 1 and len(doc["windows"]) == 5
    assert doc["session"]["notes"][0].startswith("research tool")
    image = cv2.imread(str(paths[2]))
    assert image is not None and image.shape == (420, 1000, 3)
    # the invalid window is drawn as a grey band (RGB 217): some pixels of that exact grey exist
    assert ((image[:, :, 0] == 217) & (image[:, :, 1] == 217) & (image[:, :, 2] == 217)).sum() > 1000
    with pytest.raises(ValueError, match="unknown export format"):
        export_session(store, 1, tmp_path, ["xls"])
    store.close()


# ---------------------------------------------------------------------------- walkways, schema migration

V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY, stream TEXT NOT NULL, walk INTEGER,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')), started_wall_ns INTEGER NOT NULL,
    ended_wall_ns INTEGER, end_reason TEXT, t0_mono_ns INTEGER NOT NULL, last_seen_mono_ns INTEGER NOT NULL,
    windows INTEGER NOT NULL, valid_windows INTEGER NOT NULL, cumulative_p_asd REAL, ci_low REAL, ci_high REAL,
    decision TEXT NOT NULL, model TEXT NOT NULL, untrained INTEGER NOT NULL, synthetic INTEGER NOT NULL,
    summary_json TEXT NOT NULL);
CREATE TABLE windows (
    session_id INTEGER NOT NULL REFERENCES sessions(id), idx INTEGER NOT NULL, stream TEXT NOT NULL,
    window INTEGER NOT NULL, t_s REAL NOT NULL, t_start_wall_ns INTEGER NOT NULL, valid INTEGER NOT NULL,
    reason_code TEXT, p_asd REAL, record_json TEXT NOT NULL, PRIMARY KEY (session_id, idx));
CREATE INDEX sessions_status ON sessions(status);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def _v1_database(backend: Backend) -> None:
    """A database as the aggregator wrote it before walkways (schema 1): session 1 closed, session 2 open,
    records and summaries without any walkway field. SQLite: the schema as it was written then (V1_SCHEMA);
    PostgreSQL (which came with schema 2): step 1 of the migrations only."""
    if backend.name == "sqlite":
        path = Path(backend.url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as conn:
            conn.executescript(V1_SCHEMA)
    else:
        import psycopg

        class Target:
            dialect = "postgres"

            def __init__(self, conn) -> None:
                self.execute, self.transaction = conn.execute, conn.transaction

        with psycopg.connect(backend.url, autocommit=True) as conn:
            assert migrate(Target(conn), 0, to=1) == 1
    tracker = SessionTracker(CFG)
    for scores in ([score(0, 0.3), score(1, 0.5)], [score(0, 0.7, stream="s-2"), score(1, 0.9, stream="s-2")]):
        windows = []
        for s in scores:
            for event in tracker.window(s, rx(s.window)):
                if event.kind == "window":
                    record = {k: v for k, v in event.record.items() if k != "walkway"}
                    windows.append((event.session.id, record["index"], record["stream"], record["window"],
                                    record["t_s"], record["t_start_wall_ns"], bool(record["valid"]),
                                    record["reason_code"], record["p_asd"], json.dumps(record)))
        session = tracker.open_sessions["main"]
        if session.id == 1:
            tracker.end("new_stream")
        summary = {k: v for k, v in session_summary(session, CFG).items() if k != "walkway"}
        backend.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (session.id, session.stream, session.walk, summary["status"], session.started_wall_ns,
                         session.ended_wall_ns, session.end_reason, session.t0_mono_ns, session.last_seen_mono_ns,
                         session.windows, summary["valid_windows"], summary["cumulative_p_asd"], summary["ci_low"],
                         summary["ci_high"], summary["decision"], session.model, False, False, json.dumps(summary)))
        for row in windows:  # after their session: PostgreSQL checks the foreign key
            backend.execute('INSERT INTO windows (session_id, idx, stream, "window", t_s, t_start_wall_ns, valid, '
                            "reason_code, p_asd, record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)


def _walkway_column(backend: Backend) -> tuple[bool, str]:
    """(NOT NULL, default) of sessions.walkway."""
    if backend.name == "sqlite":
        columns = {r[1]: r for r in backend.execute("PRAGMA table_info(sessions)")}
        return bool(columns["walkway"][3]), columns["walkway"][4]
    (nullable, default), = backend.execute(
        "SELECT is_nullable, column_default FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'sessions' AND column_name = 'walkway'")
    return nullable == "NO", default


def test_schema_1_is_read_and_migrated_in_place(backend, tmp_path):
    """An old database (no walkway) is readable as is, and an aggregator's store migrates it in place: its sessions
    belong to walkway 'main', the open one can be carried on with, new sessions get their walkway."""
    _v1_database(backend)
    reader = backend.open(read_only=True)  # the CLI on a database no aggregator has opened since
    assert reader.version == 1 and [s["walkway"] for s in reader.list_sessions()] == ["main", "main"]
    assert reader.open_sessions() == [(2, "main")] and reader.load_session(2).walkway == "main"
    reader.close()
    assert backend.execute("SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]  # readers never migrate
    store = backend.open()
    assert store.version == 2 and _walkway_column(backend) in ((True, "'main'"), (True, "'main'::text"))
    assert backend.execute("SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
    assert backend.execute("SELECT id, walkway FROM sessions ORDER BY id") == [(1, "main"), (2, "main")]
    session = store.load_session(2)
    assert session.p_values == [0.7, 0.9] and session.walkway == "main"
    tracker = SessionTracker(CFG, next_id=store.max_id() + 1)
    tracker.resume(session, rx(2))
    _play(store, tracker, [score(2, 0.8, stream="s-2"), score(0, 0.4, stream="e-1", walkway="east")])
    assert store.open_sessions() == [(2, "main"), (3, "east")]
    assert store.get_session(2)["windows"] == 3 and store.get_session(2)["cumulative_p_asd"] == pytest.approx(0.8)
    store.close()
    again = backend.open()  # already migrated: opened as is
    assert again.get_session(3)["walkway"] == "east" and again.get_session(1)["walkway"] == "main"
    paths = export_session(again, 1, tmp_path / "out", ["csv", "json"])
    rows = list(csv.DictReader(paths[0].read_text(encoding="utf-8").splitlines()))
    assert [r["walkway"] for r in rows] == ["main", "main"]  # old records: their session's walkway
    assert json.loads(paths[1].read_text())["session"]["walkway"] == "main"
    again.close()


def test_an_unknown_schema_version_is_refused(backend):
    backend.open().close()
    backend.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"not a dualgait session database .*the database says 3\)$"):
        backend.open()
    with pytest.raises(StoreError, match="not a dualgait session database"):
        backend.open(read_only=True)
    backend.execute("DELETE FROM meta")  # tables without a version: not ours either
    with pytest.raises(StoreError, match="the database says None"):
        backend.open()


def test_sessions_of_two_walkways_are_stored_and_exported_with_their_walkway(backend, tmp_path):
    store = backend.open()
    tracker = SessionTracker(CFG)
    _play(store, tracker, [score(0, 0.2, stream="a-1", walkway="A"), score(0, 0.6, stream="b-1", walkway="B"),
                           score(1, 0.4, stream="a-1", walkway="A")])
    assert store.open_sessions() == [(1, "A"), (2, "B")]
    assert [(s["id"], s["walkway"], s["windows"]) for s in store.list_sessions()] == [(2, "B", 1), (1, "A", 2)]
    assert [s["id"] for s in store.list_sessions(limit=1)] == [2]
    assert store.load_session(2).walkway == "B"
    rows = list(csv.DictReader(export_session(store, 1, tmp_path, ["csv"])[0].read_text().splitlines()))
    assert [r["walkway"] for r in rows] == ["A", "A"]
    store.close()
