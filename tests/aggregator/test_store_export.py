"""Tests for the SQLite session store (aggregator/store.py) and the exports (aggregator/export.py)."""

from __future__ import annotations

import csv
import json
import sqlite3

import cv2
import pytest
from agg_helpers import rx, score

from aggregator.config import SessionConfig
from aggregator.export import CSV_COLUMNS, export_session
from aggregator.sessions import SessionTracker, session_summary
from aggregator.store import SessionStore, StoreError

CFG = SessionConfig(gone_timeout_s=3.0, min_valid_windows=3)


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


def test_store_keeps_sessions_and_windows_and_uses_wal(tmp_path):
    store = SessionStore(tmp_path / "sub" / "s.db")
    tracker = SessionTracker(CFG)
    _play(store, tracker, _walk())
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.open_session_ids() == [1] and store.max_id() == 1
    summary = store.get_session(1)
    assert summary["windows"] == 5 and summary["valid_windows"] == 4
    assert summary["cumulative_p_asd"] == pytest.approx(0.7875)
    assert summary["synthetic"] is True and summary["status"] == "open"
    windows = store.windows(1)
    assert [w["index"] for w in windows] == [0, 1, 2, 3, 4]
    assert windows[2]["reason_code"] == "patient_missing" and windows[2]["p_asd"] is None
    for event in tracker.end("operator"):
        store.save_session(event.session, session_summary(event.session, CFG))
    assert store.open_session_ids() == []
    assert store.list_sessions()[0]["end_reason"] == "operator"
    store.close()


def test_load_session_rebuilds_what_resume_needs(tmp_path):
    store = SessionStore(tmp_path / "s.db")
    tracker = SessionTracker(CFG)
    _play(store, tracker, _walk())
    store.close()
    reopened = SessionStore(tmp_path / "s.db")
    session = reopened.load_session(1)
    assert session.p_values == [0.7, 0.8, 0.9, 0.75] and session.windows == 5
    assert dict(session.invalid_by_reason) == {"patient_missing": 1}
    fresh = SessionTracker(CFG, next_id=reopened.max_id() + 1)
    fresh.resume(session, rx(5))
    record = fresh.window(score(5, 0.85), rx(5))[-1].record
    assert record["index"] == 5 and record["valid_windows"] == 5
    assert record["cumulative_p_asd"] == pytest.approx(0.8)


def test_bad_paths_and_unknown_sessions_are_one_line_errors(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open session database"):
        SessionStore(tmp_path / "dir.db")
    (tmp_path / "junk.db").write_text("not a database at all" * 100)
    with pytest.raises(StoreError):
        SessionStore(tmp_path / "junk.db")
    with pytest.raises(StoreError, match="not found"):
        SessionStore(tmp_path / "missing.db", read_only=True)
    store = SessionStore(tmp_path / "s.db")
    with pytest.raises(StoreError, match="no session 7"):
        store.get_session(7)
    with pytest.raises(StoreError, match="no session 7"):
        export_session(store, 7, tmp_path)


def test_one_writer_per_database(tmp_path):
    """A second writable store on the same file is refused until the first closes; readers are never refused."""
    first = SessionStore(tmp_path / "s.db")
    with pytest.raises(StoreError, match="in use by another aggregator"):
        SessionStore(tmp_path / "s.db")
    SessionStore(tmp_path / "s.db", read_only=True).close()
    first.close()
    SessionStore(tmp_path / "s.db").close()


def test_read_only_store_cannot_write(tmp_path):
    SessionStore(tmp_path / "s.db").close()
    ro = SessionStore(tmp_path / "s.db", read_only=True)
    assert ro.list_sessions() == []
    with pytest.raises(sqlite3.OperationalError):
        ro.db.execute("DELETE FROM sessions")


def test_export_csv_json_png(tmp_path):
    store = SessionStore(tmp_path / "s.db")
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
