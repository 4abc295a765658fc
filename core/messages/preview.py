"""Camera preview (inference -> aggregator, for the live view); layout in :mod:`core.messages`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.messages.base import (
    DEFAULT_WALKWAY,
    MAX_SIDE_PX,
    PROTOCOL_VERSION,
    VIEWS,
    MessageError,
    _dump,
    _get,
    _get_int,
    _get_walkway,
    jpeg_size,
)

MAX_PREVIEW_SIDE_PX = 1024
MAX_PREVIEW_BYTES = 256 * 1024
# what a preview shows: a camera frame, or the last window's model input of the view (the crops, in a row)
PREVIEW_KINDS = ("frame", "crops")


@dataclass(slots=True)
class Preview:
    """A downscaled JPEG of one camera frame with the patient's box in the original frame's pixels; ``kind``
    "crops": the model input of a window (``seq``: its index) in one row, its size in ``width``/``height``."""

    view: str
    seq: int
    capture_mono_ns: int
    width: int                              # original frame
    height: int
    box_xyxy: tuple[float, float, float, float] | None
    track_id: int | None
    jpeg: bytes
    preview_width: int
    preview_height: int
    walkway: str = DEFAULT_WALKWAY
    kind: str = "frame"  # PREVIEW_KINDS


def encode_preview(preview: Preview) -> list[bytes]:
    header = {"v": PROTOCOL_VERSION, "type": "preview", "view": preview.view, "seq": preview.seq,
              "capture_mono_ns": preview.capture_mono_ns, "width": preview.width, "height": preview.height,
              "box_xyxy": None if preview.box_xyxy is None else [float(v) for v in preview.box_xyxy],
              "track_id": preview.track_id, "preview_width": preview.preview_width,
              "preview_height": preview.preview_height, "walkway": preview.walkway, "kind": preview.kind}
    return [_dump(header), bytes(preview.jpeg)]


def _get_box(header: dict[str, Any], width: int, height: int) -> tuple[float, float, float, float] | None:
    box = _get(header, "box_xyxy", list, nullable=True)
    if box is None:
        return None
    if len(box) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                                for v in box):
        raise MessageError("field 'box_xyxy' must be 4 finite numbers")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (0.0 <= x1 < x2 <= width and 0.0 <= y1 < y2 <= height):
        raise MessageError(f"field 'box_xyxy' {box} is not a box inside the {width}x{height} frame")
    return x1, y1, x2, y2


def decode_preview(header: dict[str, Any], parts: list[bytes]) -> Preview:
    view = _get(header, "view", str)
    if view not in VIEWS:
        raise MessageError(f"unknown view {view!r} (expected one of {VIEWS})")
    kind = _get(header, "kind", str) if "kind" in header else "frame"  # optional: a frame
    if kind not in PREVIEW_KINDS:
        raise MessageError(f"unknown preview kind {kind!r} (expected one of {PREVIEW_KINDS})")
    width = _get_int(header, "width", 1, MAX_SIDE_PX)
    height = _get_int(header, "height", 1, MAX_SIDE_PX)
    pw = _get_int(header, "preview_width", 1, MAX_PREVIEW_SIDE_PX)
    ph = _get_int(header, "preview_height", 1, MAX_PREVIEW_SIDE_PX)
    if len(parts) != 1:
        raise MessageError(f"preview message has {len(parts)} payload parts, expected 1")
    if not 0 < len(parts[0]) <= MAX_PREVIEW_BYTES:  # before the copy below
        raise MessageError(f"preview JPEG of {len(parts[0])} bytes (limit {MAX_PREVIEW_BYTES})")
    jpeg = bytes(parts[0])
    jpeg_w, jpeg_h, components = jpeg_size(jpeg)  # before decoding: a 1 KiB JPEG may declare 20000x20000
    if (jpeg_w, jpeg_h) != (pw, ph) or components not in (1, 3):
        raise MessageError(f"preview JPEG declares {jpeg_w}x{jpeg_h}x{components}, header says {pw}x{ph}")
    import cv2

    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MessageError("preview JPEG does not decode")
    if image.shape[:2] != (ph, pw):
        raise MessageError(f"preview JPEG is {image.shape[1]}x{image.shape[0]}, header says {pw}x{ph}")
    box = _get_box(header, width, height)
    track_id = _get_int(header, "track_id", 0, nullable=True)
    if kind == "crops" and (box is not None or track_id is not None):
        raise MessageError("a crops preview carries no box_xyxy or track_id")
    return Preview(view=view, seq=_get_int(header, "seq", 0), capture_mono_ns=_get_int(header, "capture_mono_ns", 0),
                   width=width, height=height, box_xyxy=box, track_id=track_id, jpeg=jpeg, preview_width=pw,
                   preview_height=ph, walkway=_get_walkway(header), kind=kind)
