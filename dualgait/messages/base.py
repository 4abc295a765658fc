"""Protocol constants, the error type and header helpers shared by every message layout."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

PROTOCOL_VERSION = 4  # 2: window view_weights, synthetic; 3: camera_state, heartbeat; 4: window reason_code, walk
VIEWS: tuple[str, str] = ("front", "side")
MAX_SIDE_PX = 8192
MAX_HEADER_BYTES = 64 * 1024

Encoding = Literal["raw", "jpeg"]

# Why a window is invalid (``WindowScore.reason_code``); ``reason`` says it in words with the numbers.
#   too_few_frames   a view has no frame near one or more sample times (camera gap, frames lost)
#   skew             both views have frames there, but no front/side pair within the pairing tolerance
#   stale            frames arrived older than inference.window.max_frame_age_s, or a camera repeated a frame
#   patient_missing  the locked patient is not found in both views in enough samples
#   views_disagree   the two views do not see the same walk (timing or motion, inference.patient)
REASON_CODES: tuple[str, ...] = ("too_few_frames", "skew", "stale", "patient_missing", "views_disagree")


class MessageError(ValueError):
    """A received message does not match the documented layout."""


# --------------------------------------------------------------------------- header helpers


def _dump(header: dict[str, Any]) -> bytes:
    return json.dumps(header, separators=(",", ":"), allow_nan=False).encode()


def _reject_constant(token: str) -> Any:
    raise MessageError(f"header holds {token}, which is not valid JSON")


def parse_header(part: bytes) -> dict[str, Any]:
    """Parse and check the common part of a header: size, JSON object, version, type."""
    if len(part) > MAX_HEADER_BYTES:
        raise MessageError(f"header too large ({len(part)} bytes > {MAX_HEADER_BYTES})")
    try:
        header = json.loads(part, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise MessageError("header is not a JSON object")
    version = header.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise MessageError(f"unsupported protocol version {version!r} (expected {PROTOCOL_VERSION})")
    if not isinstance(header.get("type"), str):
        raise MessageError("header has no 'type'")
    return header


def _get(header: dict[str, Any], key: str, kind: type | tuple[type, ...], *, nullable: bool = False) -> Any:
    if key not in header:
        raise MessageError(f"{header.get('type', 'message')} header misses field '{key}'")
    value = header[key]
    if value is None and nullable:
        return None
    # bool is an int subclass: never accept it where a number is expected
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise MessageError(f"field '{key}' has type bool, expected {kind}")
    if not isinstance(value, kind):
        raise MessageError(f"field '{key}' has type {type(value).__name__}, expected {kind}")
    return value


def _get_int(header: dict[str, Any], key: str, lo: int, hi: int | None = None, *, nullable: bool = False):
    value = _get(header, key, int, nullable=nullable)
    if value is None:
        return None
    if value < lo or (hi is not None and value > hi):
        raise MessageError(f"field '{key}' = {value} out of range [{lo}, {hi if hi is not None else 'inf'}]")
    return value


def _get_prob(header: dict[str, Any], key: str) -> float | None:
    value = _get(header, key, (int, float), nullable=True)
    if value is None:
        return None
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise MessageError(f"field '{key}' = {value} is not a probability in [0, 1]")
    return float(value)


def _get_view_weights(header: dict[str, Any]) -> dict[str, float] | None:
    weights = _get(header, "view_weights", dict, nullable=True)
    if weights is None:
        return None
    if set(weights) != set(VIEWS):
        raise MessageError("field 'view_weights' must map front and side to weights")
    for view in VIEWS:
        _get_prob(weights, view)
    return {view: float(weights[view]) for view in VIEWS}
