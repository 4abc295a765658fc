"""Shared builders for the aggregator tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from core.messages import WindowScore

S = 1_000_000_000
T0 = 100 * S


def score(window: int, p_asd: float | None = 0.5, *, stream: str = "stream-1", code: str | None = None,
          visible: tuple[int, int] = (8, 8), walk: int | None = None, latency_ms: float = 50.0,
          synthetic: bool = False, untrained: bool = False, walkway: str = "main",
          stride_s: float = 1.0, duration_s: float = 1.0) -> WindowScore:
    """Window ``window`` of a stream starting at T0, one per ``stride_s`` (a second by default), ``duration_s``
    long; invalid when ``code`` is given."""
    valid = code is None
    start_ns = T0 + round(window * stride_s * S)
    return WindowScore(
        session=stream, window=window, frames={"front": [8 * window], "side": [8 * window]},
        t_start_mono_ns=start_ns, t_end_mono_ns=start_ns + round(duration_s * 875_000_000),
        t_start_wall_ns=1_700_000_000 * S + (start_ns - T0), valid=valid,
        reason=None if valid else f"{code}: test", reason_code=code, walk=walk,
        p_asd=p_asd if valid else None, p_front=p_asd if valid else None, p_side=p_asd if valid else None,
        view_weights=None, visible={"front": visible[0], "side": visible[1]}, max_skew_ms=1.0,
        timings_ms={"detect": 20.0, "model": 30.0}, latency_ms=latency_ms, model="late fusion (test)",
        untrained=untrained, duration_s=duration_s, stride_s=stride_s, synthetic=synthetic, walkway=walkway)


def rx(window: int) -> int:
    """The aggregator's receive clock for window ``window`` (arrives 1 s after its start)."""
    return T0 + (window + 1) * S


def write_config(tmp_path: Path, **aggregator) -> Path:
    cfg = {"endpoints": {"scores": f"ipc://{tmp_path}/scores.sock"},
           "aggregator": {"publish_endpoint": f"ipc://{tmp_path}/sessions.sock", "exit_on_end_of_stream": True,
                          "store": {"url": f"sqlite:///{tmp_path / 'sessions.db'}"},
                          "http": {"port": 0}, "metrics": {"enabled": False}, **aggregator}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class AggregatorProcess:
    """``dualgait aggregate`` in a subprocess, its stdout collected line by line."""

    def __init__(self, config: Path, tmp_path: Path) -> None:
        ready = tmp_path / "aggregator.ready"
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "dualgait", "aggregate", "--config", str(config),
                                      "--ready-file", str(ready)], stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")))
        self._reader.start()
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert self.proc.poll() is None, f"aggregator exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, "aggregator not ready"
            time.sleep(0.05)
        time.sleep(0.5)  # the SUB connects asynchronously: let it join before anything is published

    def url(self) -> str:
        line = next(line for line in self.lines if line.startswith("live view: "))
        return line.split(": ", 1)[1].strip()

    def wait(self, timeout_s: float = 30) -> int:
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.wait()
