"""Benchmark statistics: percentiles per stage and the lag over time."""

from __future__ import annotations

import numpy as np
import pytest

from bench.stats import describe, lag_over_time, lag_table, stage_stats, stats_table


def test_describe_matches_numpy_and_handles_empty() -> None:
    values = list(range(1, 1001))  # 1..1000
    out = describe(values)
    assert out["n"] == 1000 and out["max"] == 1000.0
    assert out["p50"] == pytest.approx(500.5) and out["p99"] == pytest.approx(np.percentile(values, 99))
    assert out["p99.9"] == pytest.approx(np.percentile(values, 99.9)) and out["std"] == pytest.approx(np.std(values))
    assert describe([])["p95"] is None and describe([])["n"] == 0


def test_stage_stats_use_only_windows_that_report_the_stage() -> None:
    stats = stage_stats([{"detect": 10.0, "model": 5.0}, {"detect": 30.0}], ("detect", "model", "wait"))
    assert stats["detect"]["p50"] == 20.0 and stats["model"]["n"] == 1 and stats["wait"]["n"] == 0
    table = stats_table(stats)
    assert table.splitlines()[0] == "| stage | n | p50 | p90 | p95 | p99 | p99.9 | max | std |"
    assert "| wait | 0 | - |" in table


def test_a_flat_lag_has_no_slope_and_a_falling_behind_one_grows_a_second_per_second() -> None:
    flat = lag_over_time([(t, 300.0 + (t % 3)) for t in range(300)])
    assert abs(flat["slope_ms_per_min"]) < 1.0 and len(flat["buckets"]) == 10
    behind = lag_over_time([(float(t), 300.0 + 1000.0 * t * 0.5) for t in range(60)])  # 0.5 s late per second
    assert behind["slope_ms_per_min"] == pytest.approx(30_000.0)
    assert behind["last_p50_ms"] > behind["first_p50_ms"] + 10_000
    assert lag_table(flat).count("\n") == 11
    assert lag_over_time([])["slope_ms_per_min"] is None
