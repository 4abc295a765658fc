"""Start the four processes (aggregator, inference, capture x2) and supervise them until they end or a stop.

``components`` (``dualgait run --only``) starts some of them: a GPU host of a several-host set-up runs its
captures and inference (``--only capture,inference``), the aggregator's host the aggregator (``--only aggregator``).

Supervision (restart with backoff, giving up, stopping) is :class:`dualgait.supervisor.Supervisor`; this
module owns what touches the operating system: spawning, signals, the process-event PUB socket.

Children run in their own session (a Ctrl-C in the terminal reaches the supervisor only, which stops them
in order on SIGINT, SIGTERM or SIGHUP: SIGTERM, then SIGKILL after ``supervisor.stop_grace_s``), and on Linux
they ask the kernel for SIGKILL when the supervisor dies without stopping them (``PR_SET_PDEATHSIG``: a
``kill -9`` or an out-of-memory kill of the supervisor), so no orphan is left even then. SIGKILL, not SIGTERM:
a child busy with a backlog can take many seconds to notice a SIGTERM and nobody is left to escalate; the
aggregator's store loses at most the window in flight to a SIGKILL. A restarted capture that replays a file
resumes where the replay is now, on the shared timeline.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.configtools import to_mapping, with_overrides
from core.messages import DEFAULT_WALKWAY, ProcessEvent, encode_process_event
from core.transport import ipc_endpoints
from dualgait.config import DualgaitConfig, dump_config
from dualgait.supervisor import COMPONENTS, ChildSpec, GaveUp, Supervisor

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


class LaunchError(RuntimeError):
    """A process failed to start or died."""


def _pdeathsig_setter() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies (Linux; None elsewhere).

    libc and prctl are looked up here, in the parent: after fork the child only makes the call.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``argv`` in its own session, dying with this process (see the module docstring)."""
    log.debug("starting %s", " ".join(argv))
    # stdout is inherited: the aggregator's live lines reach the user's terminal
    return subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_pdeathsig_setter())


def _dualgait(*args: str) -> list[str]:
    return [sys.executable, "-m", "dualgait", *args]


def _wait_ready(sup: Supervisor, ready_files: dict[str, Path], timeout_s: float, stop: Callable[[], bool]) -> None:
    """Wait for the ready files; a process that dies while starting fails the launch (no restart: a start
    failure is a configuration problem, a bad model or a busy port, that a restart would repeat)."""
    deadline = time.monotonic() + timeout_s
    pending = dict(ready_files)
    while pending and not stop():
        for name in [n for n, path in pending.items() if path.exists()]:
            del pending[name]
        for name, child in sup.children.items():
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                raise LaunchError(f"{name} exited with code {proc.returncode} while starting")
        if time.monotonic() > deadline:
            raise LaunchError(f"{', '.join(pending)} not ready after {timeout_s:.0f} s")
        time.sleep(0.05)


def private_endpoint_overrides(cfg: DualgaitConfig, run_dir: Path) -> dict[str, Any]:
    """Overrides putting every endpoint of ``cfg`` (extra walkways' cameras included) on ipc in ``run_dir``."""
    walkways = [{**to_mapping(w), "front_endpoint": f"ipc://{run_dir / w.id}-front.sock",
                 "side_endpoint": f"ipc://{run_dir / w.id}-side.sock"} for w in cfg.walkways]
    return {"endpoints": ipc_endpoints(run_dir), "walkways": walkways}


def capture_name(walkway: str, view: str, main: str = DEFAULT_WALKWAY) -> str:
    """The supervisor's name of a capture process: ``capture-front`` for the walkway of capture/endpoints
    (``main``: its id, ``walkway_id``), ``capture-<id>-front`` for the others."""
    return f"capture-{view}" if walkway == main else f"capture-{walkway}-{view}"


# --------------------------------------------------------------------------- restarted captures


def resume_position(*, elapsed_s: float, speed: float, base_offset_s: float, duration_s: float, loop: bool,
                    max_duration_s: float | None) -> tuple[float, float, float | None] | None:
    """Where a replay restarted ``elapsed_s`` (wall) after the shared start instant takes up again.

    Returns (shift of its start instant from the shared one in wall seconds, ``capture.start_offset_s``,
    ``capture.max_duration_s``), so that every frame keeps the capture time it had on the shared timeline
    (frame i at ``start + pts_i / speed``) and pairs with the other view; None when nothing is left to play.
    A looped replay resumes at the start of its next pass (a pass skips ``start_offset_s`` again, so a
    mid-pass offset would shift every later pass); a single pass resumes at the current position.
    """
    elapsed_s = max(0.0, elapsed_s)
    media_s = elapsed_s * speed
    if loop:
        pass_s = duration_s - base_offset_s
        shift_s = math.ceil(media_s / pass_s - 1e-9) * pass_s / speed
        offset_s = base_offset_s
    else:
        shift_s, offset_s = elapsed_s, base_offset_s + media_s
        if offset_s >= duration_s:
            return None
    remaining_s = None if max_duration_s is None else max_duration_s - shift_s
    if remaining_s is not None and remaining_s <= 0:
        return None
    return shift_s, offset_s, remaining_s


def _capture_command(cfg: DualgaitConfig, view: str, common: list[str], start_at_box: list[float],
                     restart_delay_s: float, *, name: str) -> Callable[[int], list[str] | None]:
    """argv of capture ``view``: the shared start instant first (``start_at_box[0]``, set once known); on a
    restart, the resumed position."""
    duration: list[float] = []

    def command(restarts: int) -> list[str] | None:
        base = ["capture", *common, "--view", view]
        start_at = start_at_box[0]
        from capture.sources import FileSource, parse_source

        ccfg = cfg.capture
        if restarts == 0 or ccfg.lossless or parse_source(ccfg.source(view)).kind != "file":
            # cameras have no timeline; a lossless replay is paced by inference: both start afresh
            at = start_at if restarts == 0 else time.time() + restart_delay_s
            return _dualgait(*base, "--start-at", f"{at:.6f}")
        if not duration:
            src = FileSource(ccfg.source(view))
            duration.append(src.duration_s)
            src.close()
        now = time.time() + restart_delay_s
        resumed = resume_position(elapsed_s=now - start_at, speed=ccfg.speed, base_offset_s=ccfg.start_offset_s,
                                  duration_s=duration[0], loop=ccfg.loop, max_duration_s=ccfg.max_duration_s)
        if resumed is None:
            return None
        shift_s, offset_s, remaining_s = resumed
        log.info("%s resumes the replay at %.2f s of the file, %.2f s after the shared start", name,
                 offset_s, shift_s)
        return _dualgait(*base, "--start-at", f"{start_at + shift_s:.6f}",
                         "--set", f"capture.start_offset_s={offset_s:.6f}",
                         "--set", f"capture.max_duration_s={json.dumps(remaining_s)}")

    return command


# --------------------------------------------------------------------------- the run


class _EventPublisher:
    """The supervisor's process events on a ZeroMQ PUB (``supervisor.event_endpoint``)."""

    def __init__(self, endpoint: str | None) -> None:
        self.ctx = self.sock = None
        if endpoint:
            import zmq

            from core.transport import pub_socket

            self.ctx = zmq.Context()
            try:
                self.sock = pub_socket(self.ctx, endpoint, hwm=1000)
            except OSError:
                self.ctx.destroy(linger=0)
                raise

    def __call__(self, event: ProcessEvent) -> None:
        if self.sock is not None:
            import zmq

            try:
                self.sock.send_multipart(encode_process_event(event), zmq.NOBLOCK)
            except zmq.Again:
                log.warning("process event dropped: publisher queue full")

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.destroy(linger=200)  # the last events ("stopped") may still leave


@contextmanager
def _stop_on_signals() -> Iterator[dict[str, int]]:
    """SIGINT/SIGTERM/SIGHUP set ``got['signal']`` instead of killing the supervisor (main thread only)."""
    got: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s: stopping all processes", signal.Signals(signum).name)
        got.setdefault("signal", signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield got
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_pipeline(cfg: DualgaitConfig, *, timeout_s: float | None = None, start_delay_s: float = 1.0,
                 private_endpoints: bool = False, log_level: str = "INFO",
                 components: tuple[str, ...] = COMPONENTS) -> int:
    """Run the whole pipeline under the supervisor.

    Returns 0 when every process ended cleanly or SIGTERM/SIGHUP stopped them, 130 after SIGINT; raises
    LaunchError when a process failed to start, the supervisor gave up on one, or ``timeout_s`` passed.
    ``private_endpoints``: replace the configured endpoints by ipc sockets in a private run folder.
    ``components``: the processes this host runs (``dualgait run --only``, from :data:`COMPONENTS`): several hosts
    run the captures and inference each, one host the aggregator (docs/aggregator.md, "Many inference hosts").
    """
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown or not components:
        raise LaunchError(f"unknown component {', '.join(unknown) or '(none)'}: choose from {', '.join(COMPONENTS)}")
    with tempfile.TemporaryDirectory(prefix="dualgait-run-") as tmp, _stop_on_signals() as got:
        run_dir = Path(tmp)
        if private_endpoints:
            cfg = with_overrides(cfg, {**private_endpoint_overrides(cfg, run_dir), "supervisor": {
                "event_endpoint": f"ipc://{run_dir / 'events'}.sock" if cfg.supervisor.event_endpoint else None}})
        cfg_path = run_dir / "config.yaml"
        dump_config(cfg, cfg_path)
        captures: dict[str, tuple[str, str, list[str]]] = {}  # name -> (walkway, view, its config's argv)
        for walkway in cfg.walkway_ids():
            path = cfg_path
            if walkway != cfg.walkway_id:  # its captures see its cameras as capture.front/side
                path = run_dir / f"config-{walkway}.yaml"
                dump_config(cfg.for_walkway(walkway), path)
            argv = ["--config", str(path), "--log-level", log_level]
            captures.update({capture_name(walkway, view, cfg.walkway_id): (walkway, view, argv)
                             for view in cfg.views})  # a single-view walkway: one capture
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        common = ["--config", str(cfg_path), "--log-level", log_level]
        if "capture" not in components:
            captures.clear()
        servers = [name for name in ("aggregator", "inference") if name in components]
        ready = {name: run_dir / f"{name}.ready" for name in servers}
        start_at: list[float] = []
        specs = [ChildSpec(name, lambda restarts, name=name: _dualgait(
                     "aggregate" if name == "aggregator" else "infer", *common,
                     *(["--ready-file", str(ready[name])] if restarts == 0 else [])))
                 for name in servers]
        specs += [ChildSpec(name, _capture_command(cfg.for_walkway(walkway), view, argv, start_at,
                                                   max(cfg.capture.start_delay_s, 0.5), name=name))
                  for name, (walkway, view, argv) in captures.items()]
        publisher = _EventPublisher(cfg.supervisor.event_endpoint)
        # stopped upstream first: what inference still publishes while it stops reaches the aggregator
        names = {spec.name for spec in specs}
        order = [stage for stage in (list(captures), ["inference"], ["aggregator"]) if set(stage) <= names and stage]
        sup = Supervisor(cfg.supervisor, specs, spawn=lambda argv: spawn(argv, env), publish=publisher,
                         stop_order=order)
        try:
            sup.start(servers)
            _wait_ready(sup, ready, timeout_s=300, stop=lambda: bool(got))
            # one shared start instant for every camera, far enough ahead for the subscriptions to connect
            start_at.append(time.time() + start_delay_s)
            if not got and captures:
                sup.start(list(captures))
            return _watch(sup, got, timeout_s)
        except GaveUp as exc:
            raise LaunchError(str(exc)) from None
        finally:
            sup.stop()
            publisher.close()


def _watch(sup: Supervisor, got: dict[str, int], timeout_s: float | None) -> int:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not got:
        sup.poll()  # GaveUp: the run has failed
        if sup.all_ended:
            return 0
        if deadline is not None and time.monotonic() > deadline:
            raise LaunchError(f"still running after {timeout_s:.0f} s: {', '.join(sup.running())}")
        time.sleep(0.1)
    return 130 if got["signal"] == signal.SIGINT else 0


