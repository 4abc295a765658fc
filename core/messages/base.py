"""Protocol constants, the error type and header helpers shared by every message layout."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal, TypeVar

PROTOCOL_VERSION = 8  # 2: window view_weights, synthetic; 3: camera_state, heartbeat; 4: window reason_code, walk;
#                       5: walkway on window, eos, camera_state, heartbeat and preview; 6: window duration_s, stride_s;
#                       7: reason codes truncated_body, identity_changed, lock_contested, crowded;
#                       8: a window of a single-view walkway carries only its view in frames and visible; reason
#                          code no_side_stride
VIEWS: tuple[str, str] = ("front", "side")


_T = TypeVar("_T")


def by_view(front: _T | None, side: _T | None) -> dict[str, _T]:
    """``{view: value}`` of the views that have a value, front first: a walkway's cameras (one null: single-view
    mode) or a recording's files."""
    return {view: value for view, value in zip(VIEWS, (front, side), strict=True) if value is not None}

MAX_SIDE_PX = 8192
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_DEPTH = 8  # the deepest layout (window frames, session window) uses 3
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # every integer on the wire is an int64 (clocks in ns, counters)

Encoding = Literal["raw", "jpeg"]

# Why a window is invalid (``WindowScore.reason_code``); ``reason`` says it in words with the numbers.
#   too_few_frames   a view has no frame near one or more sample times (camera gap, frames lost)
#   skew             both views have frames there, but no front/side pair within the pairing tolerance
#   stale            frames arrived older than inference.window.max_frame_age_s, or a camera repeated a frame
#   patient_missing  the locked patient is not found in both views in enough samples
#   views_disagree   the two views do not see the same walk (timing or motion, inference.patient)
#   shed             not scored: inference was overloaded and scored every other window (inference.overload)
#   truncated_body   the patient's box touches the frame's edge (head or feet outside) in too many samples
#   identity_changed the locked track's appearance jumped between samples: the tracker swapped people
#   lock_contested   while the lock was young, someone with clearly more evidence of being the patient was in
#                    the view (the lock may be on a reflection or a bystander; it may move: inference.patient)
#   crowded          more eligible people in a view than inference.patient.max_people: no telling who the patient is
REASON_CODES: tuple[str, ...] = ("too_few_frames", "skew", "stale", "patient_missing", "views_disagree", "shed",
                                 "truncated_body", "identity_changed", "lock_contested", "crowded",
                                 "no_side_stride")

# One inference process may serve several walkways (front/side camera pairs); messages that concern one say which.
# The walkway of a single-walkway setup is DEFAULT_WALKWAY.
DEFAULT_WALKWAY = "main"
WALKWAY_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}"
_WALKWAY_RE = re.compile(WALKWAY_ID_PATTERN)


class MessageError(ValueError):
    """A received message does not match the documented layout."""


# --------------------------------------------------------------------------- header helpers


def _dump(header: dict[str, Any]) -> bytes:
    return json.dumps(header, separators=(",", ":"), allow_nan=False).encode()


def _reject_constant(token: str) -> Any:
    raise MessageError(f"header holds {token}, which is not valid JSON")


def parse_header(part: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Parse and check the common part of a header: size, JSON object, version, type, value sanity.

    Sanity, for every value at any depth: nesting at most ``MAX_HEADER_DEPTH``, integers in the int64 range,
    finite floats (``1e999`` parses to inf), strings that are valid Unicode (no lone surrogates). So whatever a
    decoder accepts can be converted to float, stored in SQLite and encoded again without an error.
    """
    if len(part) > MAX_HEADER_BYTES:  # before any copy: the size of a received part is known without one
        raise MessageError(f"header too large ({len(part)} bytes > {MAX_HEADER_BYTES})")
    try:
        text = bytes(part).decode("utf-8")
        header = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise MessageError(f"header is not valid JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise MessageError("header is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and ints over sys.get_int_max_str_digits() digits
        raise MessageError(f"header is not valid JSON: {exc}"[:300]) from None
    if not isinstance(header, dict):
        raise MessageError("header is not a JSON object")
    version = header.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise MessageError(f"unsupported protocol version {version!r} (expected {PROTOCOL_VERSION})"[:300])
    if not isinstance(header.get("type"), str):
        raise MessageError("header has no 'type'")
    _check_values(header)
    return header


def _check_values(header: dict[str, Any]) -> None:
    """Walk every value of a parsed header (iteratively: its depth is what is being checked).

    Scalars are checked in place and only containers are stacked: a 64 KiB list of integers costs about as much
    as parsing it (json.loads gives exact types: dict, list, str, int, float, bool, None).
    """
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(header, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_HEADER_DEPTH:
            raise MessageError(f"header nests deeper than {MAX_HEADER_DEPTH} levels")
        if isinstance(container, dict):
            for key in container:
                _check_string(key)
            items: Any = container.values()
        else:
            items = container
        for item in items:
            kind = type(item)
            if kind is int:
                if not INT64_MIN <= item <= INT64_MAX:
                    raise MessageError(f"header holds an integer outside the int64 range ({str(item)[:40]}...)")
            elif kind is str:
                _check_string(item)
            elif kind is float:
                if not math.isfinite(item):
                    raise MessageError(f"header holds a non-finite number ({item})")
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))


def _check_string(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise MessageError("header holds a string that is not valid Unicode (lone surrogate)") from None


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


def _get_positive(header: dict[str, Any], key: str) -> float:
    """A finite number > 0 (a duration in seconds), as a float."""
    value = _get(header, key, (int, float))
    if not math.isfinite(value) or value <= 0:
        raise MessageError(f"field '{key}' = {value} must be a finite number > 0")
    return float(value)


def _get_view_weights(header: dict[str, Any]) -> dict[str, float] | None:
    weights = _get(header, "view_weights", dict, nullable=True)
    if weights is None:
        return None
    if set(weights) != set(VIEWS):
        raise MessageError("field 'view_weights' must map front and side to weights")
    out = {view: _get_prob(weights, view) for view in VIEWS}
    missing = [view for view, weight in out.items() if weight is None]
    if missing:  # a probability field may be null; a weight may not
        raise MessageError(f"field 'view_weights' has no weight for {', '.join(missing)}")
    return out


# --------------------------------------------------------------------------- JPEG payloads

# start-of-frame markers (C4 DHT, C8 JPG and CC DAC share the range but are not frames)
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0..7: markers without a length field


def jpeg_size(data: bytes | memoryview) -> tuple[int, int, int]:
    """(width, height, components) from a JPEG's frame header, read without decoding anything.

    A JPEG of a few hundred bytes can declare 20000x20000 pixels, and the decoder allocates that much before it
    notices the data is missing (measured: 2.3 GB and 7 s for a 631-byte file). So a JPEG payload's declared size
    is checked against the message header first; raises MessageError when the data is not a JPEG or has no
    frame header before its first scan.
    """
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    n = len(view)
    if n < 4 or view[0] != 0xFF or view[1] != 0xD8:
        raise MessageError("jpeg payload does not decode: no start-of-image marker (not a JPEG file)")
    i = 2
    while i + 4 <= n:
        if view[i] != 0xFF:
            raise MessageError(f"jpeg payload does not decode: marker expected at byte {i}")
        marker = view[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            i += 2
            continue
        if marker in (0xD8, 0xD9, 0xDA):  # a second SOI, EOI or a scan before any frame header
            break
        length = (view[i + 2] << 8) | view[i + 3]
        if length < 2:
            raise MessageError(f"jpeg payload does not decode: segment of length {length} at byte {i}")
        if marker in _JPEG_SOF:
            if i + 10 > n or length < 8:
                break
            height = (view[i + 5] << 8) | view[i + 6]
            width = (view[i + 7] << 8) | view[i + 8]
            return width, height, view[i + 9]
        i += 2 + length
    raise MessageError("jpeg payload does not decode: no frame header (SOF) before its image data")


def check_walkway_id(value: str) -> str:
    """``value`` if it is a walkway id (1-32 of letters, digits, ``_ . -``, starting with a letter or digit)."""
    if not _WALKWAY_RE.fullmatch(value):
        raise ValueError(f"walkway id {value[:40]!r} must be 1-32 letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit")
    return value


def _get_walkway(header: dict[str, Any]) -> str:
    value = _get(header, "walkway", str)
    try:
        return check_walkway_id(value)
    except ValueError as exc:
        raise MessageError(str(exc)) from None
