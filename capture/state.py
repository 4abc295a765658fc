"""Camera state, counters and reconnection backoff of one capture process (no sockets, no threads).

States (published as ``camera_state`` events on every change, and in every heartbeat)::

    start ──► reconnecting (attempt 0: first open) ──open ok──► connected ──no frame for stall_timeout_s──► stalled
                  ▲    │ open failed: attempt+1, wait backoff          │  ▲                                      │
                  │    └──────────────────────────────────────┘        │  └───────── a frame arrives ───────────┘
                  └──────────── read failed / stream closed ───────────┴─────────────────────────────────────┘
    end of a file (no loop), a file that cannot be read, or a stop request ──► ended (published a few times)
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from core.messages import CameraState, Heartbeat


@dataclass(slots=True)
class Counters:
    """Per capture process, since it started. ``frames_sent + send_drops + frames_dropped_injected +
    queue_drops == frames_read`` once everything read has left (an invariant tests check)."""

    frames_read: int = 0  # frames the source delivered (each gets a sequence number)
    frames_sent: int = 0  # handed to ZeroMQ
    frames_dropped_injected: int = 0  # TEST ONLY injection
    send_drops: int = 0  # the socket's high-water mark was reached (a subscriber is too slow)
    queue_drops: int = 0  # reader -> sender queue full: the sender fell behind the camera (live mode)
    reconnects: int = 0  # successful reopenings after a loss
    late_frames: int = 0  # replay frames released > 5 ms after they were due
    control_drops: int = 0  # heartbeats / state events that could not be queued

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class Backoff:
    """Exponential backoff with random jitter: initial, 2x, 4x ... up to ``max_s``, each + U(0, jitter)."""

    def __init__(self, initial_s: float, max_s: float, *, factor: float = 2.0, jitter: float = 0.25,
                 rng: random.Random | None = None) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        self.initial_s, self.max_s, self.factor, self.jitter = initial_s, max_s, factor, jitter
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay_s(self) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** self.attempt)
        self.attempt += 1
        return base * (1.0 + self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempt = 0


class CameraStateTracker:
    """The current state of one view's camera; returns the event to publish when the state changes.

    Thread-safe: the reader thread reports opens and losses, the sender loop reports frames and ticks.
    """

    def __init__(self, view: str, counters: Counters, *, stall_timeout_s: float, detect_stalls: bool = True,
                 clock_ns: Callable[[], int] = time.monotonic_ns, wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.view = view
        self.counters = counters
        self.stall_timeout_ns = round(stall_timeout_s * 1e9)
        self.detect_stalls = detect_stalls
        self.clock_ns, self.wall_ns = clock_ns, wall_ns
        self.state = "reconnecting"
        self.reason = "starting"
        self.attempt = 0
        self.last_frame_ns: int | None = None
        self.last_seq: int | None = None
        self._lock = threading.Lock()

    def _enter(self, state: str, reason: str, attempt: int) -> CameraState | None:
        with self._lock:
            if state == self.state and attempt == self.attempt and state != "ended":
                return None
            if state == self.state == "ended":
                return self.event()  # the first reason to end stands (e.g. max_duration_s before "stopped")
            self.state, self.reason, self.attempt = state, reason, attempt
            return self.event()

    def event(self) -> CameraState:
        return CameraState(self.view, self.state, self.reason, self.attempt, self.clock_ns(), self.wall_ns(),
                           self.counters.snapshot())

    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.view, self.state, self.clock_ns(), self.wall_ns(), self.last_seq,
                         self.counters.snapshot())

    def connected(self, reconnected: bool) -> CameraState | None:
        if reconnected:
            self.counters.reconnects += 1
        self.last_frame_ns = self.clock_ns()  # the stall clock starts at the opening
        return self._enter("connected", "reconnected" if reconnected else "", 0)

    def lost(self, reason: str, attempt: int) -> CameraState | None:
        return self._enter("reconnecting", reason, attempt)

    def ended(self, reason: str) -> CameraState | None:
        return self._enter("ended", reason, 0)

    def frame(self, seq: int) -> CameraState | None:
        """A frame arrived; a stalled camera is connected again."""
        self.last_frame_ns = self.clock_ns()
        self.last_seq = seq
        if self.state == "stalled":
            return self._enter("connected", "frames again", 0)
        return None

    def tick(self) -> CameraState | None:
        """Call regularly: a connected camera without a frame for ``stall_timeout_s`` is stalled."""
        if not self.detect_stalls or self.state != "connected" or self.last_frame_ns is None:
            return None
        silent_ns = self.clock_ns() - self.last_frame_ns
        if silent_ns < self.stall_timeout_ns:
            return None
        return self._enter("stalled", f"no frame for {silent_ns / 1e9:.1f} s", 0)
