"""Tests for the camera preview throttle (inference/preview.py)."""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import Frame, decode, encode_preview
from inference.preview import PreviewConfig, PreviewThrottle

MS = 1_000_000


def _frame(view: str = "front", t_ms: int = 0, seq: int = 0, h: int = 480, w: int = 640) -> Frame:
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (0, 0, 255)  # left half red
    return Frame(view=view, seq=seq, capture_mono_ns=t_ms * MS, capture_wall_ns=0, image=image)


def test_at_most_rate_hz_per_view_on_the_capture_clock():
    throttle = PreviewThrottle(rate_hz=2.0, width_px=160)
    got = [t for t in range(0, 2000, 40) if throttle.offer(_frame(t_ms=t), None) is not None]
    assert got == [0, 520, 1040, 1560]  # first frame at or after each 500-ms period
    assert throttle.offer(_frame("side", t_ms=40), None) is not None  # views throttle independently


def test_downscaled_jpeg_keeps_the_aspect_and_the_box_is_in_original_pixels():
    preview = PreviewThrottle(rate_hz=2.0, width_px=160).offer(_frame(seq=7, t_ms=3), (100, 50, 300.5, 470), 4)
    assert (preview.preview_width, preview.preview_height) == (160, 120)
    assert (preview.width, preview.height) == (640, 480)
    assert preview.box_xyxy == (100.0, 50.0, 300.5, 470.0) and preview.track_id == 4
    assert preview.seq == 7 and preview.capture_mono_ns == 3 * MS
    decoded = decode(encode_preview(preview))  # a valid wire message
    assert decoded.box_xyxy == preview.box_xyxy and decoded.jpeg == preview.jpeg
    import cv2

    image = cv2.imdecode(np.frombuffer(preview.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (120, 160, 3)
    assert image[60, 20, 2] > 200 and image[60, 140, 2] < 50  # red stays on the left


def test_box_is_clipped_to_the_frame_and_dropped_when_empty():
    throttle = PreviewThrottle(rate_hz=100.0, width_px=64)
    assert throttle.offer(_frame(t_ms=0), (-5, -5, 700, 500), 1).box_xyxy == (0.0, 0.0, 640.0, 480.0)
    none = throttle.offer(_frame(t_ms=100), (700, 10, 800, 20), 1)
    assert none.box_xyxy is None and none.track_id is None


def test_small_frames_are_not_upscaled_and_grey_frames_work():
    frame = Frame(view="side", seq=0, capture_mono_ns=0, capture_wall_ns=0, image=np.zeros((40, 50), np.uint8))
    preview = PreviewThrottle(rate_hz=1.0, width_px=320).offer(frame, None)
    assert (preview.preview_width, preview.preview_height) == (50, 40)


def test_config_checks_and_disabled_gives_no_throttle():
    assert PreviewThrottle.from_config(PreviewConfig(enabled=False)) is None
    assert isinstance(PreviewThrottle.from_config(PreviewConfig()), PreviewThrottle)
    for bad in ({"rate_hz": 0}, {"width_px": 8}, {"jpeg_quality": 0}):
        with pytest.raises(ValueError):
            PreviewConfig(**bad)
