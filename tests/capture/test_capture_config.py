"""capture.* settings: each bad value is a one-line ConfigError naming the key."""

from __future__ import annotations

import pytest

from core.configtools import ConfigError
from dualgait.config import load_config


@pytest.mark.parametrize(("override", "match"), [
    ("capture.width_px=0", "width_px must be in 1..8192"),
    ("capture.fps=-1", "fps must be in"),
    ("capture.fourcc=MJPEG", "fourcc must be 4 ASCII"),
    ("capture.start_offset_s=-2", "start_offset_s must be >= 0"),
    ("capture.reconnect_initial_s=20", "reconnect_initial_s must be > 0 and <= reconnect_max_s"),
    ("capture.stall_timeout_s=0", "stall_timeout_s must be > 0"),
    ("capture.heartbeat_s=0", "heartbeat_s must be > 0"),
    ("capture.inject_drop_rate=1.0", r"inject_drop_rate must be in \[0, 1\)"),
    ("capture.inject_jitter_ms=-1", "inject_jitter_ms must be >= 0"),
    ("capture.lossless=maybe", "capture.lossless: expected true/false"),
    ("capture.loop=1", "capture.loop: expected true/false"),
    ("inference.view_silence_s=0", "view_silence_s must be > 0"),
])
def test_bad_capture_settings(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_usb_settings_and_modes_load() -> None:
    cfg = load_config(None, ["capture.front=usb:0", "capture.width_px=1280", "capture.height_px=720",
                             "capture.fps=30", "capture.fourcc=MJPG", "capture.lossless=true", "capture.loop=true"])
    c = cfg.capture
    assert (c.front, c.width_px, c.height_px, c.fps, c.fourcc, c.lossless, c.loop) == (
        "usb:0", 1280, 720, 30.0, "MJPG", True, True)
