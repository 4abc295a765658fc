"""Process supervision: start children, restart a crashed one with backoff, give up on a crash loop, stop all.

A plain class without sockets or signals of its own (the launcher owns those): :class:`Supervisor` is
driven by :meth:`Supervisor.poll` and reports what happens through a ``publish`` callback as
:class:`~core.messages.ProcessEvent` (logged here; the launcher also publishes them on ZeroMQ).

Policy (``supervisor`` section of the config, :class:`SupervisorConfig`):

- a child that exits with code 0 has ended (a recording that ended): it is not restarted;
- a child that exits with :data:`FATAL_EXIT_CODE` (2: the CLI's one-line user error, e.g. a missing
  video or a bad model) is not restarted: the same start would fail the same way; the supervisor gives up;
- any other exit (a non-zero code, a signal such as ``kill -9``) is a crash: the child is started again
  after ``min(max_backoff_s, initial_backoff_s * 2**(n-1))`` seconds, +/- ``backoff_jitter_frac``
  at random, where n counts its crashes within the last ``restart_window_s`` (so the backoff falls back
  once a child has run well for a while); more than ``max_restarts`` crashes within that window, or
  ``restart: false``, and the supervisor gives up: every child is stopped and the run fails;
- :meth:`stop`: stage by stage (``dualgait run``: captures, then inference, then the aggregator, so that
  windows still in flight are stored), SIGTERM, up to ``stop_grace_s`` to finish, then SIGKILL.
"""

from __future__ import annotations

import logging
import random
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.messages.supervisor import ProcessEvent

log = logging.getLogger(__name__)

COMPONENTS = ("aggregator", "inference", "capture")  # what ``dualgait run`` starts; ``--only`` picks some

FATAL_EXIT_CODE = 2


@dataclass(slots=True)
class SupervisorConfig:
    """How ``dualgait run`` watches its processes (docs/reliability.md)."""

    restart: bool = True  # restart a crashed process (false: the first crash stops everything)
    initial_backoff_s: float = 0.5  # first restart after this, doubling per crash within restart_window_s
    max_backoff_s: float = 30.0
    backoff_jitter_frac: float = 0.2  # each delay +/- this fraction, at random (no synchronised restarts)
    max_restarts: int = 5  # more crashes than this within restart_window_s: give up, stop all, fail
    restart_window_s: float = 300.0
    stop_grace_s: float = 5.0  # SIGTERM, then SIGKILL after this
    # restart and exit events (ZeroMQ PUB, bound here; null: only logged)
    event_endpoint: str | None = "tcp://127.0.0.1:5705"

    def __post_init__(self) -> None:
        if not (0 < self.initial_backoff_s <= self.max_backoff_s):
            raise ValueError("need 0 < initial_backoff_s <= max_backoff_s")
        if not 0.0 <= self.backoff_jitter_frac < 1.0:
            raise ValueError("backoff_jitter_frac must be in [0, 1)")
        if self.max_restarts < 0 or self.restart_window_s <= 0 or self.stop_grace_s < 0:
            raise ValueError("max_restarts >= 0, restart_window_s > 0 and stop_grace_s >= 0 are required")
        from core.security import is_loopback

        if self.event_endpoint and not is_loopback(self.event_endpoint):
            # CURVE is not wired for this socket: events name processes and pids, they stay on the host
            raise ValueError(f"event_endpoint {self.event_endpoint} must be loopback tcp or ipc")


class Proc(Protocol):
    """What the supervisor needs of a child (``subprocess.Popen`` fits; tests pass fakes)."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


@dataclass(slots=True)
class ChildSpec:
    """One supervised process. ``command(restarts)``: its argv for that start (a restarted capture resumes
    where the replay is now); None means nothing is left to run (the child counts as ended)."""

    name: str
    command: Callable[[int], list[str] | None]


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    proc: Proc | None = None
    restarts: int = 0
    crashes_s: deque[float] = field(default_factory=deque)  # monotonic times of recent crashes
    restart_at_s: float | None = None  # a restart is due then
    ended: bool = False  # exited 0 (or nothing left to run): not restarted
    started_s: float = 0.0


def exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class GaveUp(RuntimeError):
    """A child crashed too often (or fatally, or restarts are off): the run has failed."""


class Supervisor:
    def __init__(self, cfg: SupervisorConfig, specs: Sequence[ChildSpec], *, spawn: Callable[[list[str]], Proc],
                 publish: Callable[[ProcessEvent], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 wall_ns: Callable[[], int] = time.time_ns, sleep: Callable[[float], object] = time.sleep,
                 rng: random.Random | None = None, stop_order: Sequence[Sequence[str]] | None = None) -> None:
        self.cfg = cfg
        self.children = {spec.name: _Child(spec) for spec in specs}
        self.stop_order = [list(stage) for stage in stop_order] if stop_order else [list(self.children)]
        self._spawn, self._publish = spawn, publish
        self.clock, self.wall_ns, self.sleep = clock, wall_ns, sleep
        self.rng = rng or random.Random()
        self.failure: str | None = None  # why the supervisor gave up
        self.events: list[ProcessEvent] = []  # everything published, in order

    # ----------------------------------------------------------------------------------- events

    def _event(self, child: _Child, event: str, reason: str, *, exit_code: int | None = None,
               backoff_s: float | None = None) -> None:
        proc = child.proc
        ev = ProcessEvent(process=child.spec.name, event=event, pid=proc.pid if proc is not None else None,
                          exit_code=exit_code, restarts=child.restarts, backoff_s=backoff_s, reason=reason,
                          mono_ns=round(self.clock() * 1e9), wall_ns=self.wall_ns())
        self.events.append(ev)
        level = logging.INFO if event in ("started", "ended", "stopped") else logging.WARNING
        if event == "gave_up":
            level = logging.ERROR
        log.log(level, "%s %s%s", child.spec.name, event, f": {reason}" if reason else "")
        if self._publish is not None:
            try:
                self._publish(ev)
            except Exception:  # publishing is best effort: never lets supervision fail
                log.exception("could not publish a process event")

    # ----------------------------------------------------------------------------------- life cycle

    def start(self, names: Sequence[str] | None = None) -> None:
        """Start the named children (default: all) now."""
        for name in names if names is not None else list(self.children):
            self._start(self.children[name])

    def _start(self, child: _Child) -> None:
        argv = child.spec.command(child.restarts)
        if argv is None:
            child.ended, child.proc = True, None
            self._event(child, "ended", "nothing left to run")
            return
        child.proc = self._spawn(argv)
        child.started_s = self.clock()
        child.restart_at_s = None
        self._event(child, "started", "restart" if child.restarts else "")

    def proc(self, name: str) -> Proc | None:
        return self.children[name].proc

    def backoff_s(self, crashes: int) -> float:
        """Delay before the restart that follows the ``crashes``-th recent crash, jittered."""
        base = min(self.cfg.max_backoff_s, self.cfg.initial_backoff_s * 2 ** max(0, crashes - 1))
        jitter = self.cfg.backoff_jitter_frac
        return base * (1.0 + self.rng.uniform(-jitter, jitter))

    def poll(self) -> None:
        """One supervision step: notice exits, schedule restarts, start the ones that are due.

        Raises :class:`GaveUp` (after stopping everything) when a child cannot be kept running.
        """
        now = self.clock()
        for child in self.children.values():
            if child.ended:
                continue
            if child.restart_at_s is not None:
                if now >= child.restart_at_s:
                    child.restarts += 1
                    self._start(child)
                continue
            if child.proc is None:
                continue
            code = child.proc.poll()
            if code is None:
                continue
            if code == 0:
                child.ended = True
                self._event(child, "ended", "exit code 0", exit_code=0)
                continue
            self._crashed(child, code, now)

    def _crashed(self, child: _Child, code: int, now: float) -> None:
        reason = exit_reason(code)
        window = self.cfg.restart_window_s
        child.crashes_s.append(now)
        while child.crashes_s and child.crashes_s[0] < now - window:
            child.crashes_s.popleft()
        if code == FATAL_EXIT_CODE:
            why = f"{reason} (a start error: restarting would fail the same way)"
        elif not self.cfg.restart:
            why = f"{reason} (supervisor.restart is off)"
        elif len(child.crashes_s) > self.cfg.max_restarts:
            why = f"{reason}; {len(child.crashes_s)} crashes within {window:g} s (max_restarts {self.cfg.max_restarts})"
        else:
            delay = self.backoff_s(len(child.crashes_s))
            child.restart_at_s = now + delay
            self._event(child, "crashed", f"{reason}; restart in {delay:.2f} s", exit_code=code, backoff_s=delay)
            return
        self._event(child, "crashed", reason, exit_code=code)
        self._event(child, "gave_up", why, exit_code=code)
        self.failure = f"{child.spec.name} {why}"
        child.ended = True  # already gone: the others are stopped
        self.stop()
        raise GaveUp(f"{child.spec.name}: {why}; gave up")

    @property
    def all_ended(self) -> bool:
        """Every child exited cleanly (code 0) and none is waiting for a restart."""
        return all(c.ended for c in self.children.values())

    def running(self) -> list[str]:
        return [name for name, c in self.children.items()
                if c.proc is not None and not c.ended and c.proc.poll() is None]

    def stop(self) -> None:
        """Stop every running child, stage by stage in ``stop_order`` (default: all at once): SIGTERM, up to
        ``stop_grace_s`` to finish, then SIGKILL. Upstream first, so that what is still in flight is stored."""
        for child in self.children.values():
            child.restart_at_s = None
        t0 = self.clock()
        for stage in self.stop_order:
            self._stop_stage([self.children[name] for name in stage])
        for child in self.children.values():
            if child.proc is not None and not child.ended:
                code = child.proc.poll()
                child.ended = True
                self._event(child, "stopped", "" if code is None else exit_reason(code), exit_code=code)
        log.debug("stopped in %.2f s", self.clock() - t0)

    def _stop_stage(self, children: list[_Child]) -> None:
        alive = []
        for child in children:
            if child.proc is not None and child.proc.poll() is None:
                try:
                    child.proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    continue
                alive.append(child)
        deadline = self.clock() + self.cfg.stop_grace_s
        while alive and self.clock() < deadline:
            alive = [c for c in alive if c.proc.poll() is None]
            if alive:
                self.sleep(0.05)
        for child in alive:
            if child.proc.poll() is None:
                log.warning("%s did not stop in %.0f s after SIGTERM; killing it", child.spec.name,
                            self.cfg.stop_grace_s)
                child.proc.kill()
                if hasattr(child.proc, "wait"):
                    child.proc.wait()  # SIGKILL: reaped at once


__all__ = ["FATAL_EXIT_CODE", "ChildSpec", "GaveUp", "Proc", "Supervisor", "SupervisorConfig", "exit_reason"]
