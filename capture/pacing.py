"""Recorded video files as cameras: decode, and pace frames on one shared start instant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class SourceError(RuntimeError):
    """A source cannot be opened or read."""


@dataclass(slots=True)
class DecodedFrame:
    index: int
    pts_ns: int  # presentation time from the container (index / fps when the container has none)
    pts_from_container: bool
    image: np.ndarray  # (H, W, 3) uint8 BGR


class VideoFileSource:
    """Frames of a video file in order, with their presentation timestamps."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"video not found: {self.path}")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise SourceError(f"cannot open video (unreadable or unknown format): {self.path}")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 0.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.width_px = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height_px = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if self.fps <= 0 or self.width_px <= 0 or self.height_px <= 0:
            self.close()
            raise SourceError(f"not a readable video (no frame rate or size): {self.path}")

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def frames(self) -> Iterator[DecodedFrame]:
        index = 0
        while True:
            ok, image = self._cap.read()
            if not ok:
                break
            pos_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            from_container = pos_ms > 0 or index == 0
            pts_ns = round(pos_ms * 1e6) if from_container else round(index * 1e9 / self.fps)
            yield DecodedFrame(index, pts_ns, from_container, image)
            index += 1
        if index == 0:
            raise SourceError(f"video has no decodable frames: {self.path}")

    def close(self) -> None:
        self._cap.release()


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

    def wait(self, pts_ns: int, *, late_tolerance_ns: int = 5_000_000) -> int:
        """Sleep until the frame is due; returns how late it is released (ns, >= 0)."""
        due = self.due_ns(pts_ns)
        remaining = due - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)
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
