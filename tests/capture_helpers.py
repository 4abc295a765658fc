"""Helpers of the capture tests: small generated clips (fast to decode, no shared assets needed)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_clip(path: Path, frames: int, *, fps: float = 25.0, size_px: tuple[int, int] = (64, 48)) -> Path:
    """An MJPG AVI whose frame i is filled with the value 4*i (so tests can tell frames apart)."""
    width, height = size_px
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for i in range(frames):
        writer.write(np.full((height, width, 3), (4 * i) % 256, dtype=np.uint8))
    writer.release()
    return path


def frame_value(image: np.ndarray) -> int:
    """The fill value of a clip frame, rounded to the nearest multiple of 4 (JPEG is lossy)."""
    return round(float(image.mean()) / 4) * 4
