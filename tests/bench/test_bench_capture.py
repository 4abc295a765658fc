"""``dualgait bench capture`` on a tiny setting: the output's structure only (no timed assertions)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from capture_helpers import write_clip

from bench.capture import add_bench_capture_args, run_bench_capture
from core.configtools import ConfigError, with_overrides
from dualgait.config import DualgaitConfig


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_capture_args(parser)
    return parser.parse_args(["--output", str(tmp_path / "out"), "--width", "64", "--height", "48", "--fps", "10",
                              "--seconds", "1", "--timeout-s", "60", *extra])


def test_bench_capture_writes_json_and_table(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.avi", 5)
    cfg = with_overrides(DualgaitConfig(), {"capture": {"front": str(clip), "side": str(clip)}})
    assert run_bench_capture(_args(tmp_path, "--transports", "raw-ipc,jpeg-tcp", "--jpeg-quality", "70"), cfg) == 0
    data = json.loads((tmp_path / "out" / "bench_capture.json").read_text())
    assert data["settings"] == {"width": 64, "height": 48, "fps": 10.0, "seconds": 1.0, "jpeg_quality": 70,
                                "receive_hwm_frames": 200}
    rows = {r["transport"]: r for r in data["results"]}
    assert set(rows) == {"raw-ipc", "jpeg-tcp"}
    for row in rows.values():
        assert row["status"] == "ok", row
        assert row["frames_expected"] == 20 and 0 < row["frames_received"] <= 20
        assert set(row["latency_ms"]) == {"p50", "p99", "max"}
        assert set(row["capture_cpu_share"]) == {"front", "side"}
        assert row["wire_bytes_per_frame"] > 0
    assert rows["raw-ipc"]["p50_ratio"] == 1.0
    assert rows["raw-ipc"]["wire_bytes_per_frame"] > 64 * 48 * 3 > rows["jpeg-tcp"]["wire_bytes_per_frame"]
    table = (tmp_path / "out" / "bench_capture.md").read_text()
    assert "| raw-ipc |" in table and "| jpeg-tcp |" in table and "64x48 at 10 fps" in table


def test_bench_capture_rejects_unknown_transport(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown transport carrier-pigeon"):
        run_bench_capture(_args(tmp_path, "--transports", "carrier-pigeon"), DualgaitConfig())
