"""Statistics and markdown of the end-to-end benchmark: percentiles per stage, lag over time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9))
STAT_COLUMNS = ("n", *(name for name, _ in PERCENTILES), "max", "std")


def describe(values: Iterable[float]) -> dict[str, float | int | None]:
    """n, p50, p90, p95, p99, p99.9, max, std (population), mean of ``values``; None entries when empty."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {"n": 0, **{name: None for name, _ in PERCENTILES}, "max": None, "std": None, "mean": None}
    out: dict[str, float | int | None] = {"n": int(arr.size)}
    for name, q in PERCENTILES:
        out[name] = round(float(np.percentile(arr, q)), 3)
    out.update(max=round(float(arr.max()), 3), std=round(float(arr.std()), 3), mean=round(float(arr.mean()), 3))
    return out


def stage_stats(timings: Sequence[Mapping[str, float]], stages: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per stage, the statistics over every window that reports it."""
    return {stage: describe(t[stage] for t in timings if stage in t) for stage in stages}


def lag_over_time(points: Sequence[tuple[float, float]], *, bucket_s: float = 30.0) -> dict[str, Any]:
    """Latency against stream time: per-bucket p50/p95/max, and the least-squares slope in ms per minute.

    ``points``: (seconds since the first window, latency ms). A pipeline that keeps up has a flat lag
    (slope near 0); one that falls behind has a lag that grows by up to a second per second.
    """
    if not points:
        return {"buckets": [], "slope_ms_per_min": None, "first_p50_ms": None, "last_p50_ms": None}
    t = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    buckets = []
    for start in np.arange(0.0, float(t.max()) + 1e-9, bucket_s):
        sel = lat[(t >= start) & (t < start + bucket_s)]
        if sel.size:
            buckets.append({"t0_s": round(float(start), 1), "n": int(sel.size),
                            "p50_ms": round(float(np.median(sel)), 1),
                            "p95_ms": round(float(np.percentile(sel, 95)), 1), "max_ms": round(float(sel.max()), 1)})
    slope = float(np.polyfit(t, lat, 1)[0]) * 60.0 if len(set(t.tolist())) > 1 else 0.0
    return {"buckets": buckets, "slope_ms_per_min": round(slope, 2),
            "first_p50_ms": buckets[0]["p50_ms"], "last_p50_ms": buckets[-1]["p50_ms"]}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def stats_table(stats: Mapping[str, Mapping[str, Any]], *, label: str = "stage") -> str:
    """Markdown table: one row per entry of ``stats`` (a describe() dict), columns n, p50 ... max, std (ms)."""
    head = f"| {label} | " + " | ".join(STAT_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(STAT_COLUMNS) + 1)]
    for name, row in stats.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(col)) for col in STAT_COLUMNS) + " |")
    return "\n".join(lines)


def lag_table(lag: Mapping[str, Any]) -> str:
    lines = ["| from s | windows | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|"]
    lines += [f"| {b['t0_s']:g} | {b['n']} | {b['p50_ms']} | {b['p95_ms']} | {b['max_ms']} |" for b in lag["buckets"]]
    return "\n".join(lines)
