"""Start the four processes (aggregator, inference, capture x2) and watch them until they end."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dualgait.config import DualgaitConfig, dump_config, with_overrides
from dualgait.messages import VIEWS

log = logging.getLogger(__name__)


class LaunchError(RuntimeError):
    """A process failed to start or died."""


@dataclass(slots=True)
class Child:
    name: str
    proc: subprocess.Popen


def _spawn(name: str, args: list[str], env: dict[str, str]) -> Child:
    cmd = [sys.executable, "-m", "dualgait", *args]
    log.debug("starting %s: %s", name, " ".join(cmd))
    # stdout is inherited: the aggregator's live lines reach the user's terminal
    return Child(name, subprocess.Popen(cmd, env=env, start_new_session=False))


def _wait_ready(children: list[Child], ready_files: dict[str, Path], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = dict(ready_files)
    while pending:
        for name in [n for n, path in pending.items() if path.exists()]:
            del pending[name]
        for child in children:
            if child.proc.poll() is not None:
                raise LaunchError(f"{child.name} exited with code {child.proc.returncode} while starting")
        if time.monotonic() > deadline:
            raise LaunchError(f"{', '.join(pending)} not ready after {timeout_s:.0f} s")
        time.sleep(0.05)


def _stop_all(children: list[Child], grace_s: float = 5.0) -> None:
    for child in children:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s; killing it", child.name, grace_s)
            child.proc.kill()
            child.proc.wait()


def ipc_endpoints(run_dir: Path) -> dict[str, str]:
    """Private ipc endpoints in a run folder: no port clashes, nothing reachable from the network."""
    return {name: f"ipc://{run_dir / name}.sock" for name in ("front", "side", "scores")}


def run_pipeline(cfg: DualgaitConfig, *, timeout_s: float | None = None, start_delay_s: float = 1.0,
                 private_endpoints: bool = False, log_level: str = "INFO") -> int:
    """Run the whole pipeline; returns 0 when every process ended cleanly.

    ``timeout_s``: stop everything (and fail) if the processes have not all ended by then.
    ``private_endpoints``: replace the configured endpoints by ipc sockets in a private run folder.
    """
    with tempfile.TemporaryDirectory(prefix="dualgait-run-") as tmp:
        run_dir = Path(tmp)
        if private_endpoints:
            cfg = with_overrides(cfg, {"endpoints": ipc_endpoints(run_dir)})
        cfg_path = run_dir / "config.yaml"
        dump_config(cfg, cfg_path)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        common = ["--config", str(cfg_path), "--log-level", log_level]
        ready = {"aggregator": run_dir / "aggregator.ready", "inference": run_dir / "inference.ready"}
        children: list[Child] = []
        try:
            children.append(_spawn("aggregator", ["aggregate", *common, "--ready-file", str(ready["aggregator"])],
                                   env))
            children.append(_spawn("inference", ["infer", *common, "--ready-file", str(ready["inference"])], env))
            _wait_ready(children, ready, timeout_s=300)
            # one shared start instant for both views, far enough ahead for the subscriptions to connect
            start_at = time.time() + start_delay_s
            for view in VIEWS:
                children.append(_spawn(f"capture-{view}",
                                       ["capture", *common, "--view", view, "--start-at", f"{start_at:.6f}"], env))
            return _supervise(children, timeout_s)
        except KeyboardInterrupt:
            log.info("interrupted: stopping all processes")
            return 130
        finally:
            _stop_all(children)


def _supervise(children: list[Child], timeout_s: float | None) -> int:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        codes = {c.name: c.proc.poll() for c in children}
        failed = {n: c for n, c in codes.items() if c not in (None, 0)}
        if failed:
            name, code = next(iter(failed.items()))
            raise LaunchError(f"{name} exited with code {code}")
        if all(c == 0 for c in codes.values()):
            return 0
        if deadline is not None and time.monotonic() > deadline:
            running = [n for n, c in codes.items() if c is None]
            raise LaunchError(f"still running after {timeout_s:.0f} s: {', '.join(running)}")
        time.sleep(0.1)
