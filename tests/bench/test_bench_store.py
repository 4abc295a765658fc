"""``dualgait bench store`` with few windows: both backends write, read back and time every window."""

from __future__ import annotations

import json

import pytest

from bench.store import add_bench_store_args, render, run_bench_store
from core.configtools import ConfigError
from dualgait.cli import get_args_parser
from dualgait.config import load_config


def test_bench_store_times_every_window_on_both_backends(pg_url, tmp_path, capsys):
    output = tmp_path / "bench_store.json"
    args = get_args_parser().parse_args(["bench", "store", "--windows", "25", "--output", str(output),
                                         "--postgres-url", pg_url])
    assert run_bench_store(args, load_config(None)) == 0
    report = json.loads(output.read_text())
    assert [r["backend"] for r in report["results"]] == ["sqlite", "postgres"]
    for row in report["results"]:
        assert row["status"] == "ok" and row["stored"] == row["windows"] == 25, row
        lat = row["latency_ms"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] and row["writes_per_s"] > 0
        assert row["pending"] == 0 and row["dropped"] == 0
    assert "fsync=" in report["results"][1]["where"] and "dualgait_bench_" not in report["results"][1]["where"]
    table = output.with_suffix(".md").read_text()
    assert table.count("| 25 of 25 |") == 2 and "| backend | windows stored | p50 ms | p99 ms |" in table
    assert table.strip() in capsys.readouterr().out
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:  # its schema is gone
        left = conn.execute("SELECT COUNT(*) FROM pg_namespace WHERE nspname LIKE 'dualgait_bench_%'").fetchone()[0]
    assert left == 0


def test_bench_store_arguments_and_a_skipped_backend_row(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    add_bench_store_args(parser)
    with pytest.raises(ConfigError, match="--backends"):
        run_bench_store(parser.parse_args(["--backends", "mysql"]), load_config(None))
    with pytest.raises(ConfigError, match="--windows"):
        run_bench_store(parser.parse_args(["--windows", "0"]), load_config(None))
    text = render({"meta": {"date": "d", "cpu": "c", "cores": 2, "load_avg_1m": 0.1, "windows": 5},
                   "results": [{"backend": "postgres", "status": "skipped: no server", "windows": 5}]})
    assert text.splitlines()[-1] == "| postgres | - | - | - | - | - | - | skipped: no server |"
