"""Replay pacing: release frame i at ``start + pts_i / speed`` from one start instant shared by both views."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Release frame i at ``start + pts_i / speed`` on the host monotonic clock.

    ``start_mono_ns`` is shared by both views so a replayed pair behaves like two synchronised cameras.
    """

    def __init__(self, start_mono_ns: int, speed: float = 1.0) -> None:
        self.start_mono_ns = start_mono_ns
        self.speed = speed
        self.late_frames = 0

    def due_ns(self, pts_ns: int) -> int:
        return self.start_mono_ns + round(pts_ns / self.speed)

    def wait(self, pts_ns: int, *, late_tolerance_ns: int = 5_000_000,
             sleep: Callable[[float], object] = time.sleep) -> int:
        """Sleep until the frame is due; returns how late it is released (ns, >= 0).

        ``sleep`` may return early (an interruptible wait such as ``threading.Event.wait``).
        """
        due = self.due_ns(pts_ns)
        remaining = due - time.monotonic_ns()
        if remaining > 0:
            sleep(remaining / 1e9)
        lateness = max(0, time.monotonic_ns() - due)
        if lateness > late_tolerance_ns:
            self.late_frames += 1
        return lateness


def start_instant_mono_ns(start_at_unix_s: float | None, default_delay_s: float) -> int:
    """Shared start instant as host monotonic ns, from a wall-clock time (works across processes)."""
    now_mono, now_wall = time.monotonic_ns(), time.time_ns()
    if start_at_unix_s is None:
        return now_mono + round(default_delay_s * 1e9)
    return now_mono + (round(start_at_unix_s * 1e9) - now_wall)
