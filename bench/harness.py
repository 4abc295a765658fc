"""The real-time benchmarks' harness: the whole pipeline as a user runs it (``dualgait run``), in its own process.

``bench e2e`` and ``bench soak`` start :class:`PipelineProcess` on a config made with
:func:`looped_replay_overrides` and subscribe to its scores meanwhile; the process's children (captures,
inference, aggregator) are found with :func:`bench.soak.pipeline_children` of its pid. Running the app's
command, not its functions, keeps the benchmarks below the app (docs/architecture.md).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import yaml

from core.configtools import to_mapping
from core.transport import ipc_endpoints

__all__ = ["PipelineProcess", "looped_replay_overrides"]

log = logging.getLogger(__name__)

STOP_GRACE_S = 20.0  # after SIGTERM: the supervisor stops its children in order (each within its own grace)


def looped_replay_overrides(run_dir: Path, duration_s: float) -> dict[str, Any]:
    """What the real-time benchmarks run: the captures' sources replayed in a loop at real speed for
    ``duration_s`` on private ipc endpoints, and the whole aggregator (store, live view, metrics) on private
    paths and free ports, so nothing is shared with a user's own run."""
    return {
        "endpoints": ipc_endpoints(run_dir),
        "capture": {"loop": True, "max_duration_s": duration_s, "lossless": False, "speed": 1.0},
        "inference": {"exit_on_end_of_stream": True},
        "aggregator": {"exit_on_end_of_stream": True, "console": False, "output_dir": None,
                       "publish_endpoint": None, "store": {"url": f"sqlite:///{run_dir / 'sessions.db'}"},
                       "http": {"port": 0}, "metrics": {"port": 0}},
    }


class PipelineProcess:
    """``dualgait run`` on ``cfg`` in a child process, stopped (SIGTERM, then SIGKILL) after ``timeout_s``.

    ``exit_code`` once it ended; ``error``: its last line on stderr when it failed or was stopped.
    """

    def __init__(self, cfg: Any, *, timeout_s: float, name: str = "pipeline") -> None:
        self.cfg, self.timeout_s, self.name = cfg, timeout_s, name
        self.exit_code: int | None = None
        self.error: str | None = None
        self._dir = tempfile.TemporaryDirectory(prefix=f"dualgait-{name}-")
        self._proc: subprocess.Popen | None = None
        self._stderr: IO[str] | None = None
        self._watch: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        folder = Path(self._dir.name)
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump(to_mapping(self.cfg), sort_keys=False))
        self._stderr = open(folder / "stderr.log", "w+", encoding="utf-8")  # noqa: SIM115 - closed in _wait
        argv = [sys.executable, "-m", "dualgait", "run", "--config", str(config), "--log-level", "WARNING"]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self._watch = threading.Thread(target=self._wait, name=f"{self.name}-watch", daemon=True)
        self._watch.start()

    def _wait(self) -> None:
        assert self._proc is not None and self._stderr is not None
        try:
            self.exit_code = self._proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s still running after %.0f s: stopping it", self.name, self.timeout_s)
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self.exit_code = self._proc.wait()
            self.error = f"still running after {self.timeout_s:.0f} s"
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().splitlines() if line.strip()]
        self._stderr.close()
        if self.exit_code != 0 and self.error is None:
            self.error = lines[-1] if lines else f"exit code {self.exit_code}"

    def is_alive(self) -> bool:
        return self._watch is not None and self._watch.is_alive()

    def join(self, timeout_s: float) -> None:
        if self._watch is not None:
            self._watch.join(timeout=timeout_s)
        if not self.is_alive():
            self._dir.cleanup()

    def stop(self) -> None:
        """SIGTERM now (the supervisor stops its children in order), as Ctrl-C would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while self._proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
