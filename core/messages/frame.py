"""Frame (capture -> inference) and end-of-stream messages; layouts in :mod:`core.messages`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.messages.base import (
    DEFAULT_WALKWAY,
    MAX_SIDE_PX,
    PROTOCOL_VERSION,
    VIEWS,
    Encoding,
    MessageError,
    _dump,
    _get,
    _get_int,
    _get_walkway,
    jpeg_size,
)

# --------------------------------------------------------------------------- frame


@dataclass(slots=True)
class Frame:
    """One camera frame. ``image`` is HxWxC uint8 BGR."""

    view: str
    seq: int
    capture_mono_ns: int
    capture_wall_ns: int
    image: np.ndarray  # (H, W, C) uint8
    source_ts_ns: int | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def encode_frame(frame: Frame, *, encoding: Encoding = "raw", jpeg_quality: int = 90) -> list[bytes | memoryview]:
    """Frame -> multipart message parts (header, payload). Raw payloads are not copied."""
    image = frame.image
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"frame image must be uint8 HxW[xC], got {image.dtype} {image.shape}")
    channels = 1 if image.ndim == 2 else int(image.shape[2])
    header = {
        "v": PROTOCOL_VERSION,
        "type": "frame",
        "view": frame.view,
        "seq": frame.seq,
        "capture_mono_ns": frame.capture_mono_ns,
        "capture_wall_ns": frame.capture_wall_ns,
        "source_ts_ns": frame.source_ts_ns,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "channels": channels,
        "encoding": encoding,
    }
    if encoding == "raw":
        payload: bytes | memoryview = memoryview(np.ascontiguousarray(image)).cast("B")
    elif encoding == "jpeg":
        import cv2

        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise ValueError("JPEG encoding failed")
        payload = buf.tobytes()
    else:
        raise ValueError(f"unknown encoding {encoding!r}")
    return [_dump(header), payload]


def decode_frame(header: dict[str, Any], parts: list[bytes]) -> Frame:
    """Validate a parsed frame header and its payload part(s); returns a Frame (raw: zero-copy view)."""
    view = _get(header, "view", str)
    if view not in VIEWS:
        raise MessageError(f"unknown view {view!r} (expected one of {VIEWS})")
    seq = _get_int(header, "seq", 0)
    mono = _get_int(header, "capture_mono_ns", 0)
    wall = _get_int(header, "capture_wall_ns", 0)
    source_ts = _get_int(header, "source_ts_ns", 0, nullable=True)
    width = _get_int(header, "width", 1, MAX_SIDE_PX)
    height = _get_int(header, "height", 1, MAX_SIDE_PX)
    channels = _get_int(header, "channels", 1, 3)
    if channels == 2:
        raise MessageError("channels must be 1 or 3")
    encoding = _get(header, "encoding", str)
    if len(parts) != 1:
        raise MessageError(f"frame message has {len(parts)} payload parts, expected 1")
    payload = parts[0]
    expected = width * height * channels
    if encoding == "raw":
        if len(payload) != expected:
            raise MessageError(f"raw payload is {len(payload)} bytes, expected {width}x{height}x{channels}={expected}")
        image = np.frombuffer(payload, dtype=np.uint8).reshape(height, width, channels)
    elif encoding == "jpeg":
        import cv2

        if len(payload) == 0 or len(payload) > expected + 65536:
            raise MessageError(f"jpeg payload of {len(payload)} bytes is implausible for {width}x{height}")
        jpeg_w, jpeg_h, components = jpeg_size(payload)  # before decoding: the JPEG may declare any size
        if (jpeg_w, jpeg_h) != (width, height) or components not in (1, 3):
            raise MessageError(f"jpeg declares {jpeg_w}x{jpeg_h}x{components}, header says {width}x{height}")
        flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
        image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), flag)
        if image is None:
            raise MessageError("jpeg payload does not decode")
        image = image.reshape(image.shape[0], image.shape[1], -1)
        if image.shape != (height, width, channels):
            raise MessageError(f"jpeg decodes to {image.shape}, header says {(height, width, channels)}")
    else:
        raise MessageError(f"unknown encoding {encoding!r}")
    if channels == 1:
        image = image.reshape(height, width)
    return Frame(view=view, seq=seq, capture_mono_ns=mono, capture_wall_ns=wall, image=image, source_ts_ns=source_ts)


# --------------------------------------------------------------------------- end of stream


@dataclass(slots=True)
class EndOfStream:
    """No more messages will follow from ``source`` (a view name, or "inference")."""

    source: str
    reason: str = "end of recording"
    stats: dict[str, float] = field(default_factory=dict)
    walkway: str = DEFAULT_WALKWAY


def encode_eos(eos: EndOfStream) -> list[bytes]:
    return [_dump({"v": PROTOCOL_VERSION, "type": "eos", "source": eos.source, "reason": eos.reason,
                   "stats": eos.stats, "walkway": eos.walkway})]


def decode_eos(header: dict[str, Any], parts: list[bytes]) -> EndOfStream:
    if parts:
        raise MessageError("eos message carries no payload parts")
    stats = _get(header, "stats", dict)
    for key, value in stats.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise MessageError(f"eos stat '{key}' is not a number")
    return EndOfStream(source=_get(header, "source", str), reason=_get(header, "reason", str), stats=stats,
                       walkway=_get_walkway(header))
