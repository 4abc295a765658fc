"""What inference knows of each capture: camera state, capture counters, and when a view has ended.

A plain class (no sockets). A view ends when its capture says ``ended`` (sent a few times), when an
old-style end-of-stream arrives, or when nothing at all (frame, heartbeat, state) has come from a
capture that was heard before for ``silence_s``: captures send heartbeats every ``capture.heartbeat_s``
even while their camera is stalled, so silence means the capture process is gone, or every one of its
messages was dropped in a full receive queue. Either way waiting longer would never end the stream.

Silence is measured on an idle clock (``idle_ns``: the receiver's time spent waiting for input), not the
wall clock: while inference is busy scoring a window for seconds, messages queue up unread, and that
must not look like a silent capture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.messages import CAMERA_STATES, REQUIRED_COUNTERS, VIEWS, CameraState, Heartbeat

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ViewStatus:
    state: str | None = None  # None until the capture said something about its camera
    reason: str = ""
    last_heard_ns: int | None = None
    counters: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAMERA_STATES, 0))
    ended: bool = False


class CameraMonitor:
    def __init__(self, *, silence_s: float, idle_ns: Callable[[], int] = time.monotonic_ns,
                 clock_ns: Callable[[], int] = time.monotonic_ns, wall_ns: Callable[[], int] = time.time_ns,
                 views: tuple[str, ...] = VIEWS) -> None:
        self.silence_ns = round(silence_s * 1e9)
        self.camera_views = views  # the walkway's cameras (both views, or one)
        self.idle_ns, self.clock_ns, self.wall_ns = idle_ns, clock_ns, wall_ns
        self.reset()

    def reset(self) -> None:
        self.views: dict[str, ViewStatus] = {v: ViewStatus() for v in self.camera_views}

    def heard(self, view: str) -> None:
        """Any message from ``view``'s capture (a frame included)."""
        self.views[view].last_heard_ns = self.idle_ns()

    def heartbeat(self, beat: Heartbeat) -> None:
        status = self.views[beat.view]
        status.last_heard_ns = self.idle_ns()
        status.counters = beat.counters

    def camera_state(self, event: CameraState) -> bool:
        """Record a state event; True when it is a change worth forwarding (repeats of ``ended`` are not)."""
        status = self.views[event.view]
        status.last_heard_ns = self.idle_ns()
        status.counters = event.counters
        if event.state == "ended" and status.ended:
            return False
        changed = (event.state, event.reason) != (status.state, status.reason)
        status.state, status.reason = event.state, event.reason
        if changed:
            status.events[event.state] += 1
            level = logging.INFO if event.state == "connected" else logging.WARNING
            log.log(level, "camera %s: %s%s", event.view, event.state, f" ({event.reason})" if event.reason else "")
        if event.state == "ended":
            status.ended = True
        return changed

    def end_of_stream(self, view: str, reason: str) -> None:
        status = self.views[view]
        status.ended, status.state, status.reason = True, "ended", reason

    def silent_views(self) -> list[CameraState]:
        """Views heard before and silent for ``silence_s`` now: marked ended; returns the events to forward."""
        idle = self.idle_ns()
        out = []
        for view, status in self.views.items():
            if status.ended or status.last_heard_ns is None or idle - status.last_heard_ns < self.silence_ns:
                continue
            reason = f"capture silent for {(idle - status.last_heard_ns) / 1e9:.1f} s (process gone?)"
            counters = {**dict.fromkeys(REQUIRED_COUNTERS, 0), **status.counters}
            event = CameraState(view, "ended", reason, 0, self.clock_ns(), self.wall_ns(), counters)
            self.camera_state(event)
            out.append(event)
        return out

    @property
    def all_ended(self) -> bool:
        return all(s.ended for s in self.views.values())

    def stats(self) -> dict[str, float]:
        """Flat counters for the end-of-stream stats: state events and the captures' own counters."""
        out: dict[str, float] = {}
        for view, status in self.views.items():
            for state, n in status.events.items():
                out[f"camera_{state}_{view}"] = n
            for key, value in status.counters.items():
                out[f"capture_{key}_{view}"] = value
        return out
