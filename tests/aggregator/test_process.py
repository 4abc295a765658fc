"""The real aggregator process: ZeroMQ in and out, the session database across a ``kill -9``, the CLI."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from agg_helpers import AggregatorProcess, score, write_config

from aggregator.store import SqliteStore
from core.messages import EndOfStream, SessionUpdate, decode, encode_eos, encode_window


def _stored(db: Path) -> list[int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT window FROM windows ORDER BY idx")]


def _wait_stored(db: Path, n: int, timeout_s: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if db.exists():
            try:
                windows = _stored(db)
            except sqlite3.OperationalError:  # the schema is still being created
                windows = []
            if len(windows) >= n:
                return windows
        time.sleep(0.05)
    raise AssertionError(f"{n} windows not stored after {timeout_s} s")


def test_kill_9_mid_session_loses_at_most_the_window_in_flight(tmp_path, scores_pub):
    config, db = write_config(tmp_path), tmp_path / "sessions.db"
    agg = AggregatorProcess(config, tmp_path)
    try:
        for i in range(4):
            scores_pub.send_multipart(encode_window(score(i, 0.6 + 0.05 * i)))
            _wait_stored(db, i + 1)
        scores_pub.send_multipart(encode_window(score(4, 0.8)))  # in flight when the process dies
        agg.kill()
    finally:
        agg.kill()
    assert agg.proc.returncode == -signal.SIGKILL
    seen = _stored(db)
    assert seen in ([0, 1, 2, 3], [0, 1, 2, 3, 4])
    restarted = AggregatorProcess(config, tmp_path)
    try:
        for i in (5, 6):
            scores_pub.send_multipart(encode_window(score(i, 0.9)))
            _wait_stored(db, len(seen) + i - 4)
        scores_pub.send_multipart(encode_eos(EndOfStream(source="inference")))
        assert restarted.wait() == 0
    finally:
        restarted.kill()
    assert any(line.startswith("session 1 ended (end_of_stream)") for line in restarted.lines), restarted.lines
    store = SqliteStore(db, read_only=True)
    assert store.max_id() == 1  # the restarted aggregator carried on with the same session
    summary = store.get_session(1)
    assert summary["status"] == "closed" and summary["end_reason"] == "end_of_stream"
    # window 4 may surface only now: killed after its commit frame reached the WAL but before the WAL index was
    # updated, it was committed yet invisible to the read above, and the next writer's WAL recovery finds it
    survived = [w["window"] for w in store.windows(1)][:-2]
    assert survived in ([0, 1, 2, 3], [0, 1, 2, 3, 4]) and survived[:len(seen)] == seen
    assert [w["window"] for w in store.windows(1)] == [*survived, 5, 6]
    assert [w["index"] for w in store.windows(1)] == list(range(len(survived) + 2))
    p = [0.6, 0.65, 0.7, 0.75] + ([0.8] if len(survived) == 5 else []) + [0.9, 0.9]
    assert summary["valid_windows"] == len(p) and summary["cumulative_p_asd"] == pytest.approx(sum(p) / len(p))
    print(f"kill -9: {len(survived)} of 5 windows survived; session 1 carried on to {summary['windows']} windows")


def test_session_updates_are_published_and_the_cli_lists_ends_and_exports(tmp_path, scores_pub):
    config = write_config(tmp_path)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    agg = AggregatorProcess(config, tmp_path)
    updates: list[SessionUpdate] = []
    try:
        sub.connect(f"ipc://{tmp_path}/sessions.sock")
        time.sleep(0.3)
        for i in range(3):
            scores_pub.send_multipart(encode_window(score(i, 0.7)))
        _wait_stored(tmp_path / "sessions.db", 3)
        cli = [sys.executable, "-m", "dualgait", "session"]
        ended = subprocess.run([*cli, "end", "--url", agg.url(), "--config", str(config)], capture_output=True,
                               text=True, timeout=30)
        assert ended.returncode == 0 and ended.stdout.strip() == "ended session 1", ended.stderr
        while sub.poll(2000):
            message = decode(sub.recv_multipart())
            updates.append(message)
            if message.event == "ended":
                break
        scores_pub.send_multipart(encode_eos(EndOfStream(source="inference")))
        assert agg.wait() == 0
    finally:
        agg.kill()
        ctx.destroy(linger=0)
    assert [u.event for u in updates] == ["started", "window", "window", "window", "ended"]
    assert updates[-1].end_reason == "operator" and updates[-1].valid_windows == 3
    assert updates[-1].cumulative_p_asd == pytest.approx(0.7)
    listing = subprocess.run([*cli, "list", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0 and listing.stdout.split()[0] == "1"
    assert "operator" in listing.stdout and "not_enough_data" in listing.stdout
    out = tmp_path / "export"
    export = subprocess.run([*cli, "export", "1", "--output", str(out), "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert export.returncode == 0, export.stderr
    assert sorted(p.name for p in out.iterdir()) == ["session-1.csv", "session-1.json", "session-1.png"]
    assert json.loads((out / "session-1.json").read_text())["session"]["end_reason"] == "operator"
    unknown = subprocess.run([*cli, "export", "9", "--config", str(config)], capture_output=True, text=True,
                             timeout=30)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip().endswith(f"no session 9 in {tmp_path / 'sessions.db'}")


def test_bad_db_path_and_busy_port_are_one_line_errors(tmp_path):
    (tmp_path / "a-directory.db").mkdir()
    bad_db = write_config(tmp_path, store={"url": f"sqlite:///{tmp_path / 'a-directory.db'}"})
    result = subprocess.run([sys.executable, "-m", "dualgait", "aggregate", "--config", str(bad_db)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot open session database" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = write_config(tmp_path, http={"port": port})
        result = subprocess.run([sys.executable, "-m", "dualgait", "aggregate", "--config", str(cfg)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot serve the live view on 127.0.0.1:{port}" in result.stderr


def test_two_walkways_over_zeromq_and_the_cli_ends_one(tmp_path, scores_pub):
    """Interleaved windows of two walkways on one scores socket: two sessions; ``session end`` without --walkway is
    a one-line error naming both, with --walkway it ends that walkway's session only; ``session list`` shows it."""
    config = write_config(tmp_path, session={"gone_timeout_s": 120.0})  # the CLI runs take seconds
    db = tmp_path / "sessions.db"
    agg = AggregatorProcess(config, tmp_path)
    cli = [sys.executable, "-m", "dualgait", "session"]
    try:
        for i in range(3):
            scores_pub.send_multipart(encode_window(score(i, 0.8, stream="a-1", walkway="east")))
            scores_pub.send_multipart(encode_window(score(i, 0.2, stream="b-1", walkway="west")))
        _wait_stored(db, 6)
        ambiguous = subprocess.run([*cli, "end", "--url", agg.url(), "--config", str(config)], capture_output=True,
                                   text=True, timeout=30)
        assert ambiguous.returncode == 2 and len(ambiguous.stderr.strip().splitlines()) == 1, ambiguous.stderr
        assert "several walkways have an open session (east, west)" in ambiguous.stderr
        ended = subprocess.run([*cli, "end", "--walkway", "west", "--url", agg.url(), "--config", str(config)],
                               capture_output=True, text=True, timeout=30)
        assert ended.returncode == 0 and ended.stdout.strip() == "ended session 2 (walkway west)", ended.stderr
        bad = subprocess.run([*cli, "end", "--walkway", "no way", "--config", str(config)], capture_output=True,
                             text=True, timeout=30)
        assert bad.returncode == 2 and "walkway id" in bad.stderr
        scores_pub.send_multipart(encode_eos(EndOfStream(source="inference", walkway="east")))
        time.sleep(1.0)
        assert agg.proc.poll() is None  # exit_on_end_of_stream: it waits for the end of every walkway's stream
        scores_pub.send_multipart(encode_eos(EndOfStream(source="inference", walkway="west")))
        assert agg.wait() == 0
    finally:
        agg.kill()
    assert any(line.startswith("[east] session 1 ended (end_of_stream): 3 valid") for line in agg.lines), agg.lines
    assert any(line.startswith("[west] session 2 ended (operator)") for line in agg.lines), agg.lines
    store = SqliteStore(db, read_only=True)
    assert [(s["id"], s["walkway"], s["end_reason"]) for s in store.list_sessions()] == [
        (2, "west", "operator"), (1, "east", "end_of_stream")]
    assert store.get_session(1)["cumulative_p_asd"] == pytest.approx(0.8)
    assert store.get_session(2)["cumulative_p_asd"] == pytest.approx(0.2)
    listing = subprocess.run([*cli, "list", "--config", str(config)], capture_output=True, text=True, timeout=30)
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert [(r[0], r[3]) for r in rows] == [("2", "west"), ("1", "east")], listing.stdout
