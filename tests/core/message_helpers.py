"""Shared builders for the wire-format tests (tests/core/test_messages*.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np

from core.messages import (
    PROTOCOL_VERSION,
    WindowScore,
    encode_window,
)

FRAME_FIELDS = ("view", "seq", "capture_mono_ns", "capture_wall_ns", "source_ts_ns", "width", "height", "channels",
                "encoding")


# --------------------------------------------------------------------------- helpers


def _to_bytes(parts: list[bytes | memoryview]) -> list[bytes]:
    return [bytes(p) for p in parts]


def _header(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _frame_header(**changes: Any) -> dict[str, Any]:
    header = {"v": PROTOCOL_VERSION, "type": "frame", "view": "front", "seq": 7, "capture_mono_ns": 1_000,
              "capture_wall_ns": 2_000, "source_ts_ns": None, "width": 4, "height": 3, "channels": 3,
              "encoding": "raw"}
    header.update(changes)
    return header


def _frame_parts(header: dict[str, Any], payload: bytes | None = None) -> list[bytes]:
    if payload is None:
        payload = bytes(header["width"] * header["height"] * header["channels"])
    return [json.dumps(header).encode(), payload]


def _bgr_image(h: int = 3, w: int = 4) -> np.ndarray:
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)


def _gradient_image(h: int = 64, w: int = 96) -> np.ndarray:
    """A smooth image (JPEG keeps it nearly intact)."""
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.stack([xs * 255 // (w - 1), ys * 255 // (h - 1), (xs + ys) * 255 // (w + h - 2)], axis=-1)
    return img.astype(np.uint8)


def _window(**changes: Any) -> WindowScore:
    score = WindowScore(
        session="walk-1", window=3, frames={"front": [0, 3, 6], "side": [1, 4, 7]}, t_start_mono_ns=10,
        t_end_mono_ns=20, t_start_wall_ns=30, valid=True, reason=None, reason_code=None, walk=0,
        p_asd=0.25, p_front=0.5, p_side=0.0,
        view_weights={"front": 0.75, "side": 0.25},
        visible={"front": 8, "side": 7}, max_skew_ms=3.5, timings_ms={"detect": 1.5, "model": 20.0},
        latency_ms=42.0, model="late fusion (untrained)", untrained=True, duration_s=1.0, stride_s=0.5,
    )
    return replace(score, **changes)


def _window_parts(**header_changes: Any) -> list[bytes]:
    header = json.loads(encode_window(_window())[0])
    header.update(header_changes)
    return [json.dumps(header).encode()]
