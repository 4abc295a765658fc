"""``dualgait bench store``: the session store's write latency per backend (SQLite, PostgreSQL).

Writes ``--windows`` windows of one walk session through each backend's store, as the aggregator does (each
window with its session's new summary, one transaction, committed before the call returns), and reports the time
of each ``add_window`` call: p50, p99, max, mean, and writes per second. Every window is read back afterwards and
counted. The summaries are computed before the clock starts: only the store is timed.

- ``sqlite``: a file in a temporary folder, ``synchronous`` from the config (FULL by default: an fsync per commit);
- ``postgres``: ``--postgres-url`` (or the config's ``aggregator.store.url`` when it is PostgreSQL), in a schema of
  its own created for the run and dropped after; without one, a throw-away cluster with the server's default
  durability (``bench.pg_cluster``, over TCP on loopback), skipped with the reason where the server binaries are
  missing.

JSON to ``--output``, markdown beside it (``.md``).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.configtools import ConfigError

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)

BACKENDS = ("sqlite", "postgres")
_S = 1_000_000_000


def add_bench_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="bench-output/bench_store.json",
                        help="JSON file (the markdown goes beside it, .md)")
    parser.add_argument("--windows", type=int, default=2000, help="windows written per backend")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"comma list of {', '.join(BACKENDS)}")
    parser.add_argument("--postgres-url", help="a PostgreSQL server to write to (a schema of its own, dropped "
                        "after); default: aggregator.store.url when it is PostgreSQL, else a throw-away cluster")


def _scores(n: int) -> list[Any]:
    """``n`` windows of one walk, one a second, every tenth invalid."""
    from core.messages import WindowScore

    out = []
    for i in range(n):
        valid = i % 10 != 9
        start_ns = 100 * _S + i * _S
        p = 0.4 + 0.3 * ((i * 7) % 10) / 10
        out.append(WindowScore(
            session="bench-stream", window=i, frames={"front": list(range(8 * i, 8 * i + 8)),
                                                      "side": list(range(8 * i, 8 * i + 8))},
            t_start_mono_ns=start_ns, t_end_mono_ns=start_ns + 875_000_000,
            t_start_wall_ns=1_700_000_000 * _S + i * _S, valid=valid,
            reason=None if valid else "patient_missing: bench", reason_code=None if valid else "patient_missing",
            walk=None, p_asd=p if valid else None, p_front=p if valid else None, p_side=p if valid else None,
            view_weights=None, visible={"front": 8, "side": 8}, max_skew_ms=1.0,
            timings_ms={"detect": 20.0, "model": 30.0}, latency_ms=50.0, model="bench", untrained=True,
            duration_s=1.0, stride_s=1.0))
    return out


def _writes(cfg: DualgaitConfig, n: int) -> list[tuple[Any, dict[str, Any], dict[str, Any] | None]]:
    """(session, summary, record or None for a session row) per write, summaries computed up front."""
    from aggregator.sessions import SessionTracker, session_summary

    tracker = SessionTracker(cfg.aggregator.session, wall_clock_ns=lambda: 1_700_000_000 * _S)
    writes = []
    for s in _scores(n):
        for event in tracker.window(s, 100 * _S + (s.window + 1) * _S):
            # a copy of the session as it is now (the tracker changes it afterwards)
            writes.append((replace(event.session, p_values=[]), session_summary(event.session, cfg.aggregator.session),
                           event.record if event.kind == "window" else None))
    return writes


def _time_store(store: Any, writes: list, n: int) -> dict[str, Any]:
    from bench.stats import describe

    took_ms = []
    t0 = time.perf_counter()
    for session, summary, record in writes:
        if record is None:
            store.save_session(session, summary)
            continue
        t = time.perf_counter_ns()
        store.add_window(session, summary, record)
        took_ms.append((time.perf_counter_ns() - t) / 1e6)
    total_s = time.perf_counter() - t0
    stored = len(store.windows(1))
    stats = describe(took_ms)
    return {"status": "ok" if stored == n else f"only {stored} of {n} windows read back", "windows": n,
            "stored": stored, "latency_ms": {k: stats[k] for k in ("p50", "p99", "max", "mean")},
            "writes_per_s": round(len(took_ms) / total_s, 1), "pending": store.pending_windows,
            "dropped": store.dropped_windows}


def _sqlite(cfg: DualgaitConfig, writes: list, n: int) -> dict[str, Any]:
    from aggregator.store import SqliteStore

    with tempfile.TemporaryDirectory(prefix="dualgait-bench-store-") as tmp:
        store = SqliteStore(Path(tmp) / "sessions.db", synchronous=cfg.aggregator.store.synchronous)
        try:
            row = _time_store(store, writes, n)
        finally:
            store.close()
    return {"backend": "sqlite", "where": f"file in {tempfile.gettempdir()}, WAL, synchronous="
            f"{cfg.aggregator.store.synchronous}", **row}


def _postgres(cfg: DualgaitConfig, writes: list, n: int, url: str | None) -> dict[str, Any]:
    from bench.pg_cluster import ClusterUnavailable, PgCluster

    cluster = None
    if url is None:
        try:
            cluster = PgCluster(durable=True).start()
        except ClusterUnavailable as exc:
            return {"backend": "postgres", "where": "-", "status": f"skipped: {exc}", "windows": n}
        url = cluster.url
    try:
        return _postgres_schema(cfg, writes, n, url, "throw-away cluster, TCP loopback, default durability"
                                if cluster is not None else "given server")
    finally:
        if cluster is not None:
            cluster.destroy()


def _postgres_schema(cfg: DualgaitConfig, writes: list, n: int, url: str, what: str) -> dict[str, Any]:
    try:
        import psycopg
    except ImportError:
        return {"backend": "postgres", "where": "-", "status": "skipped: psycopg is not installed (pip install "
                "'dualgait[postgres]')", "windows": n}
    from aggregator.store.postgres import PostgresStore, display_url

    schema = f"dualgait_bench_{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in url else "?"
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            scfg = cfg.aggregator.store
            store = PostgresStore(f"{url}{sep}options=-csearch_path%3D{schema}",
                                  connect_timeout_s=scfg.connect_timeout_s, write_wait_s=scfg.write_wait_s,
                                  max_pending_windows=scfg.max_pending_windows)
            try:
                row = _time_store(store, writes, n)
            finally:
                store.close()
            settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                                         "('fsync', 'synchronous_commit', 'server_version')").fetchall())
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return {"backend": "postgres", "where": f"{display_url(url)} ({what}; PostgreSQL {settings['server_version']}, "
            f"fsync={settings['fsync']}, synchronous_commit={settings['synchronous_commit']})", **row}


def render(report: dict[str, Any]) -> str:
    m = report["meta"]
    lines = ["# dualgait session store benchmark", "",
             f"- date: {m['date']}; CPU: {m['cpu']}, {m['cores']} cores; load average at start: {m['load_avg_1m']}",
             f"- {m['windows']} windows of one walk session per backend, each `add_window` call timed (one "
             "transaction with the session's summary, committed before it returns)", "",
             "| backend | windows stored | p50 ms | p99 ms | max ms | mean ms | writes/s | where |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        if r["status"] != "ok" and "latency_ms" not in r:
            lines.append(f"| {r['backend']} | - | - | - | - | - | - | {r['status']} |")
            continue
        lat = r["latency_ms"]
        lines.append(f"| {r['backend']} | {r['stored']} of {r['windows']} | {lat['p50']} | {lat['p99']} | "
                     f"{lat['max']} | {lat['mean']} | {r['writes_per_s']} | {r['where']} |")
    return "\n".join(lines)


def run_bench_store(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    import os
    from datetime import UTC, datetime

    from aggregator.config import store_backend
    from bench.report import _cpuinfo, write_report

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or any(b not in BACKENDS for b in backends):
        raise ConfigError(f"--backends takes a comma list of {', '.join(BACKENDS)}, got {args.backends!r}")
    if args.windows < 1:
        raise ConfigError("--windows must be >= 1")
    url = args.postgres_url
    if url is None and cfg.aggregator.store.url and store_backend(cfg.aggregator.store.url) == "postgres":
        url = cfg.aggregator.store.url
    writes = _writes(cfg, args.windows)
    results = []
    for backend in backends:
        log.info("%s: %d windows", backend, args.windows)
        row = _sqlite(cfg, writes, args.windows) if backend == "sqlite" else _postgres(cfg, writes, args.windows, url)
        log.info("%s: %s", backend, row.get("latency_ms") or row["status"])
        results.append(row)
    report = {"meta": {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": _cpuinfo()[0],
                       "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                       "windows": args.windows}, "results": results}
    write_report(args.output, report, render(report))
    return 0
