"""Configuration of the capture processes (one per view)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(slots=True)
class CaptureConfig:
    """``front`` / ``side``: the source of each view (for now a recorded video file, replayed as a camera).

    Replay publishes frame i of each file at ``start + pts_i / speed`` from one shared start instant.
    """

    front: str = "${DUALGAIT_ASSETS:-../shared/assets}/videos/walk_front.mp4"
    side: str = "${DUALGAIT_ASSETS:-../shared/assets}/videos/walk_side.mp4"
    speed: float = 1.0
    encoding: Literal["raw", "jpeg"] = "raw"
    jpeg_quality: int = 90
    send_hwm_frames: int = 64
    # delay between process start and the shared start instant when none is given on the command line
    start_delay_s: float = 1.0

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.send_hwm_frames < 1:
            raise ValueError("send_hwm_frames must be >= 1")

    def source(self, view: str) -> str:
        return self.front if view == "front" else self.side
