"""The PostgreSQL session store's own behaviour, on real servers: the server away and restarted mid-run (nothing
lost, nothing doubled against a clean run), the bounded queue, the writer's lock across a restart, a ``kill -9``
of the real aggregator, and the one-line errors (bad URL, unreachable server, no driver, the renamed key).

The restart tests run their own throw-away cluster (they stop and start it); the rest use ``pg_url``."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator

import pytest
from agg_helpers import AggregatorProcess, rx, score, write_config
from pg_helpers import own_cluster, with_search_path
from prometheus_client import generate_latest

from aggregator.config import SessionConfig, StoreConfig
from aggregator.metrics import AggregatorMetrics
from aggregator.sessions import SessionTracker, session_summary
from aggregator.store import SessionStore, SqliteStore, StoreError, open_store
from aggregator.store.postgres import PostgresStore, display_url
from bench.pg_cluster import PgCluster, free_port
from core.configtools import ConfigError
from core.messages import EndOfStream, encode_eos, encode_window
from dualgait.cli import main
from dualgait.config import load_config

psycopg = pytest.importorskip("psycopg")  # the test extra has it; the demo install does not

CFG = SessionConfig(gone_timeout_s=3.0, min_valid_windows=3)
WALL_NS = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A server of this module's own, to stop and start."""
    own = own_cluster()
    try:
        yield own
    finally:
        own.destroy()


@pytest.fixture
def schema_url(cluster: PgCluster, request) -> str:
    schema = f"t_{request.node.name.split('[')[0][-40:].lower()}"
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return with_search_path(cluster.url, schema)


def _feed() -> list:
    """Two walkways interleaved, a gap that ends A's first session (gone), 60 windows in all."""
    scores = []
    for i in range(30):
        scores.append(score(i, 0.5 + (i % 7) / 20, stream="a-1", walkway="A",
                            code="patient_missing" if i % 9 == 4 else None))
        scores.append(score(i if i < 12 else i + 10, 0.3, stream="b-1", walkway="B"))  # B: 10 s gap at 12
    return scores


def _play(store: SessionStore, scores, on_window=None,
          tracker: SessionTracker | None = None) -> list[tuple[int, float]]:
    """The aggregator's writes for ``scores``; returns (score number, seconds the write took the caller) per write."""
    tracker = tracker or SessionTracker(CFG, wall_clock_ns=lambda: WALL_NS)
    took = []
    for n, s in enumerate(scores):
        if on_window is not None:
            on_window(n)
        for event in tracker.window(s, rx(s.window)):
            summary = session_summary(event.session, CFG)
            t0 = time.perf_counter()
            if event.kind == "window":
                store.add_window(event.session, summary, event.record)
            else:
                store.save_session(event.session, summary)
            took.append((n, time.perf_counter() - t0))
    return took


def _content(store: SessionStore) -> tuple[list, dict]:
    sessions = store.list_sessions()
    return sessions, {s["id"]: store.windows(s["id"]) for s in sessions}


def _scrape(metrics: AggregatorMetrics, name: str) -> float:
    line = next(line for line in generate_latest(metrics.registry).decode().splitlines() if line.startswith(name))
    return float(line.split()[-1])


def test_a_server_restart_mid_run_loses_and_doubles_nothing(cluster, schema_url, tmp_path, caplog):
    """Windows keep coming while the server is stopped (pg_ctl stop -m fast) and started again: they wait in
    memory, are written in order when it is back, and the database equals a clean run's, window for window."""
    clean = SqliteStore(tmp_path / "clean.db")
    _play(clean, _feed())
    expected = _content(clean)
    store = PostgresStore(schema_url)
    metrics = AggregatorMetrics(store=store)
    seen: dict[str, float] = {}

    def outage(n: int) -> None:
        if n == 20:
            cluster.stop("fast")
        elif n == 40:
            seen["pending"], seen["metric"] = store.pending_windows, _scrape(metrics, "dualgait_store_pending")
            cluster.start()

    with caplog.at_level(logging.WARNING, logger="aggregator.store"):
        took = _play(store, _feed(), on_window=outage)
        assert store.flush(30.0) and store.pending_windows == 0 and store.dropped_windows == 0
    assert seen["pending"] >= 19 and seen["metric"] == seen["pending"]  # windows 20-39 waited (less one in flight)
    away = [t for n, t in took if 20 <= n < 40]
    assert max(away) < 1.5 and sorted(away)[-2] < 0.25  # one wait for a commit at most, then queued at once
    assert any("away" in r.message or "no commit" in r.message for r in caplog.records)
    assert any("is back" in r.message for r in caplog.records)
    assert _content(store) == expected  # every window once, in order, with its session's final summary
    rows = store._fetch("SELECT COUNT(*), COUNT(DISTINCT (session_id, idx)) FROM windows")[0]
    assert rows == (60, 60) and _scrape(metrics, "dualgait_store_dropped_windows") == 0
    store.close()
    clean.close()


def test_a_full_queue_drops_the_oldest_windows_and_counts_them(cluster, schema_url):
    store = PostgresStore(schema_url, max_pending_windows=5)
    metrics = AggregatorMetrics(store=store)
    scores = [score(i, 0.6) for i in range(12)]

    def outage(n: int) -> None:
        if n == 2:
            cluster.stop("fast")

    _play(store, scores[:10], on_window=outage)  # windows 2-9 while away: 8 for 5 places
    assert store.pending_windows == 5 and store.dropped_windows == 3
    assert _scrape(metrics, "dualgait_store_dropped_windows") == 3
    cluster.start()
    assert store.flush(30.0)
    assert [w["window"] for w in store.windows(1)] == [0, 1, 5, 6, 7, 8, 9]  # the oldest waiting ones went
    assert store.get_session(1)["windows"] == 10  # the session row says what was received
    store.close()


def test_after_a_restart_a_writer_that_lost_its_lock_to_another_never_writes_beside_it(cluster, schema_url, caplog):
    first = PostgresStore(schema_url)
    tracker = SessionTracker(CFG)
    _play(first, [score(0, 0.5)], tracker=tracker)
    cluster.stop("fast")
    cluster.start()
    second = PostgresStore(schema_url)  # the first's lock went with its connection
    with caplog.at_level(logging.WARNING, logger="aggregator.store"):
        _play(first, [score(1, 0.5, stream="other")], tracker=tracker)  # session 1 ends, session 2 starts
        time.sleep(1.5)
    assert not first.up and first.pending_windows == 1 and first.flush(0.1) is False
    assert any("in use by another aggregator" in r.message for r in caplog.records)
    assert second.max_id() == 1  # the first's session 2 is not there
    second.close()
    assert first.flush(30.0) and first.max_id() == 2  # written once the lock is free
    first.close()


def test_kill_9_and_a_server_restart_through_the_real_aggregator(cluster, schema_url, tmp_path, scores_pub):
    """The aggregator on PostgreSQL: windows published while the server restarts are stored when it is back; a
    ``kill -9`` keeps every committed window and the restarted aggregator carries on with the open session."""
    config = write_config(tmp_path, store={"url": schema_url})

    def stored() -> list[int]:
        with psycopg.connect(schema_url, autocommit=True) as conn:
            return [r[0] for r in conn.execute('SELECT "window" FROM windows ORDER BY idx')]

    def wait_stored(n: int, timeout_s: float = 30) -> list[int]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error):
                if len(windows := stored()) >= n:
                    return windows
            time.sleep(0.05)
        raise AssertionError(f"{n} windows not stored after {timeout_s} s")

    agg = AggregatorProcess(config, tmp_path)
    try:
        for i in range(3):
            scores_pub.send_multipart(encode_window(score(i, 0.6)))
        wait_stored(3)
        cluster.stop("fast")
        for i in range(3, 7):
            scores_pub.send_multipart(encode_window(score(i, 0.6)))
            time.sleep(0.1)
        cluster.start()
        assert wait_stored(7) == list(range(7))
        scores_pub.send_multipart(encode_window(score(7, 0.8)))  # in flight when the process dies
        agg.kill()
    finally:
        agg.kill()
    survived = stored()
    assert survived in (list(range(7)), list(range(8)))
    restarted = AggregatorProcess(config, tmp_path)
    try:
        for i in (8, 9):
            scores_pub.send_multipart(encode_window(score(i, 0.9)))
        wait_stored(len(survived) + 2)
        scores_pub.send_multipart(encode_eos(EndOfStream(source="inference")))
        assert restarted.wait() == 0
    finally:
        restarted.kill()
    store = open_store(StoreConfig(url=schema_url), read_only=True)
    assert store.max_id() == 1 and [w["window"] for w in store.windows(1)] == [*survived, 8, 9]
    assert [w["index"] for w in store.windows(1)] == list(range(len(survived) + 2))
    summary = store.get_session(1)
    assert summary["status"] == "closed" and summary["end_reason"] == "end_of_stream"
    assert summary["windows"] == len(survived) + 2
    store.close()


# ---------------------------------------------------------------------------- one-line errors


def test_unreachable_servers_and_bad_urls_are_one_line_errors(pg_url):
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=rf"^cannot connect to session database postgresql://u:\*\*\*@127.0.0.1:"
                                         rf"{port}/db: .*refused") as caught:
        PostgresStore(f"postgresql://u:secret@127.0.0.1:{port}/db")
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value) and time.monotonic() - t0 < 5
    with pytest.raises(StoreError, match=r"^bad PostgreSQL URL .*: invalid URI query parameter: \"foo\"$"):
        PostgresStore("postgresql://x@/db?foo=bar")
    with pytest.raises(StoreError, match=r"port"):
        PostgresStore("postgresql://x@localhost:notaport/db")
    with pytest.raises(StoreError, match="no schema of the search_path exists"):
        PostgresStore(with_search_path(pg_url, "no_such_schema"))
    assert display_url("postgresql://u:pw@h/db?password=pw&sslmode=require") == (
        "postgresql://u:***@h/db?password=***&sslmode=require")


def test_store_urls_are_checked_with_the_config():
    with pytest.raises(ConfigError, match=r"^aggregator.store: url must be sqlite:///PATH or postgresql://"):
        load_config(None, ["aggregator.store.url=mysql://x/db"])
    with pytest.raises(ConfigError, match="url must be"):
        load_config(None, ["aggregator.store.url=sqlite:///"])
    assert load_config(None, ["aggregator.store.url=postgres://h/db"]).aggregator.store.url == "postgres://h/db"
    with pytest.raises(ConfigError, match="max_pending_windows must be >= 1"):
        load_config(None, ["aggregator.store.max_pending_windows=0"])


def test_an_old_config_with_db_path_names_the_new_key(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^aggregator.store.db_path is now aggregator.store.url: write url: "
                                          r"sqlite:///PATH \(four slashes"):
        load_config(None, [f"aggregator.store.db_path={tmp_path / 's.db'}"])
    assert main(["session", "list", "--set", f"aggregator.store.db_path={tmp_path / 's.db'}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "aggregator.store.db_path is now aggregator.store.url" in err


def test_without_the_driver_a_postgresql_url_says_what_to_install(pg_url, monkeypatch, capsys):
    """psycopg hidden (as in the demo install, which has no extras): one line naming the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    assert main(["session", "list", "--set", f"aggregator.store.url={pg_url}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("dualgait session: error: a postgresql:// session store needs psycopg, which is not installed: "
                   "pip install 'dualgait[postgres]'")


def test_the_cli_lists_sessions_of_a_postgresql_store(pg_schema_url, capsys):
    store = open_store(StoreConfig(url=pg_schema_url))
    _play(store, [score(0, 0.7), score(1, 0.8)])
    store.close()
    assert main(["session", "list", "--set", f"aggregator.store.url={pg_schema_url}"]) == 0
    out = capsys.readouterr().out
    assert out.split()[0] == "1" and "2/2" in out and " open " in out
