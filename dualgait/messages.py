"""Wire messages shared by capture, inference and the aggregator.

Every message is one ZeroMQ multipart message: a UTF-8 JSON header, followed by zero or more raw
buffers. Nothing is pickled. The header always carries ``"v"`` (the protocol version, currently
``PROTOCOL_VERSION``) and ``"type"``. Messages are validated on receipt: a message that does not
match its layout raises :class:`MessageError`; the process loops count such messages and drop them.

Frame layout (``type = "frame"``, capture -> inference)::

    part 0: header JSON
        v                int   protocol version
        type             "frame"
        view             "front" | "side"
        seq              int >= 0, per view, +1 per published frame (gaps = frames lost upstream)
        capture_mono_ns  int   host CLOCK_MONOTONIC at capture (latency; same host only)
        capture_wall_ns  int   host wall clock at capture (records; cross-host with NTP/PTP)
        source_ts_ns     int | null   the container's own timestamp (pts) when known
        width, height    int   pixels, 1..MAX_SIDE_PX
        channels         1 | 3 (3 = BGR, OpenCV order)
        encoding         "raw" | "jpeg"
    part 1: payload
        raw:  height * width * channels bytes, uint8, row-major HWC (C-contiguous)
        jpeg: a JPEG file; its decoded size must equal width x height x channels

End of stream (``type = "eos"``, inference -> aggregator)::

    part 0: header JSON {v, type: "eos", source: str, reason: str, stats: {str: number}}

Camera state event (``type = "camera_state"``, capture -> inference -> aggregator, on every change)::

    part 0: header JSON
        view             "front" | "side"
        state            "connected" | "stalled" | "reconnecting" | "ended"
        reason           str   why (empty for a first connection)
        attempt          int >= 0   reconnection attempt (0 when connected or ended)
        mono_ns, wall_ns int   host clocks when the state was entered
        counters         {str: int >= 0}  at least frames_sent, frames_dropped_injected,
                         send_drops, reconnects (all of them: capture.state.Counters)

Heartbeat (``type = "heartbeat"``, capture -> inference, every ``capture.heartbeat_s``, also while the
camera is stalled or reconnecting, so "camera silent" is told apart from "capture process gone")::

    part 0: header JSON {v, type: "heartbeat", view, state, mono_ns, wall_ns, last_seq: int | null, counters}

Window score (``type = "window"``, inference -> aggregator)::

    part 0: header JSON
        v, type "window"
        session          str   identifies one stream/walk
        window           int >= 0
        frames           {"front": [seq, ...], "side": [seq, ...]}  sequence numbers used per view
        t_start_mono_ns  int   capture time of the window's first sampled frame (front view)
        t_end_mono_ns    int   capture time of the window's last sampled frame (later of the two views)
        t_start_wall_ns  int   wall-clock counterpart of t_start_mono_ns
        valid            bool
        reason           str | null   required (non-empty) when not valid, null when valid
        p_asd            float in [0, 1] | null   fused probability (null when invalid)
        p_front, p_side  float in [0, 1] | null   per-view probabilities (null when invalid or n/a)
        view_weights     {front, side: float in [0, 1]} | null   per-window view weights of gated fusion
        visible          {"front": int, "side": int}  sampled frames in which the patient was found
        max_skew_ms      float  largest front/side capture-time difference among the window's pairs
        timings_ms       {stage: float}  per-stage time spent on this window
        latency_ms       float  capture of the window's last frame -> score published (host monotonic)
        model            str    model description
        untrained        bool   true when the model's weights are random (scores are meaningless)
        synthetic        bool   true when the model was trained on simulated walkers only
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

PROTOCOL_VERSION = 3  # 2: window scores carry view_weights and synthetic; 3: camera_state, heartbeat
VIEWS: tuple[str, str] = ("front", "side")
MAX_SIDE_PX = 8192
MAX_HEADER_BYTES = 64 * 1024

Encoding = Literal["raw", "jpeg"]


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


def encode_eos(eos: EndOfStream) -> list[bytes]:
    return [_dump({"v": PROTOCOL_VERSION, "type": "eos", "source": eos.source, "reason": eos.reason,
                   "stats": eos.stats})]


def decode_eos(header: dict[str, Any], parts: list[bytes]) -> EndOfStream:
    if parts:
        raise MessageError("eos message carries no payload parts")
    stats = _get(header, "stats", dict)
    for key, value in stats.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise MessageError(f"eos stat '{key}' is not a number")
    return EndOfStream(source=_get(header, "source", str), reason=_get(header, "reason", str), stats=stats)


# --------------------------------------------------------------------------- window score


@dataclass(slots=True)
class WindowScore:
    """The score of one window (see the module docstring for the field meanings)."""

    session: str
    window: int
    frames: dict[str, list[int]]
    t_start_mono_ns: int
    t_end_mono_ns: int
    t_start_wall_ns: int
    valid: bool
    reason: str | None
    p_asd: float | None
    p_front: float | None
    p_side: float | None
    view_weights: dict[str, float] | None
    visible: dict[str, int]
    max_skew_ms: float
    timings_ms: dict[str, float]
    latency_ms: float
    model: str
    untrained: bool
    synthetic: bool = False


def encode_window(score: WindowScore) -> list[bytes]:
    header = {"v": PROTOCOL_VERSION, "type": "window", **asdict(score)}
    return [_dump(header)]


def decode_window(header: dict[str, Any], parts: list[bytes]) -> WindowScore:
    if parts:
        raise MessageError("window message carries no payload parts")
    frames = _get(header, "frames", dict)
    for view in VIEWS:
        seqs = frames.get(view)
        if not isinstance(seqs, list) or not all(type(s) is int and s >= 0 for s in seqs):
            raise MessageError(f"field 'frames.{view}' must be a list of sequence numbers")
    visible = _get(header, "visible", dict)
    if set(visible) != set(VIEWS) or not all(type(v) is int and v >= 0 for v in visible.values()):
        raise MessageError("field 'visible' must map front and side to counts")
    timings = _get(header, "timings_ms", dict)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in timings.values()):
        raise MessageError("field 'timings_ms' must map stage names to numbers")
    valid = _get(header, "valid", bool)
    reason = _get(header, "reason", str, nullable=True)
    p_asd = _get_prob(header, "p_asd")
    if valid and (reason is not None or p_asd is None):
        raise MessageError("a valid window needs p_asd and no reason")
    if not valid and (not reason or p_asd is not None):
        raise MessageError("an invalid window needs a reason and no p_asd")
    return WindowScore(
        session=_get(header, "session", str),
        window=_get_int(header, "window", 0),
        frames={view: list(frames[view]) for view in VIEWS},
        t_start_mono_ns=_get_int(header, "t_start_mono_ns", 0),
        t_end_mono_ns=_get_int(header, "t_end_mono_ns", 0),
        t_start_wall_ns=_get_int(header, "t_start_wall_ns", 0),
        valid=valid,
        reason=reason,
        p_asd=p_asd,
        p_front=_get_prob(header, "p_front"),
        p_side=_get_prob(header, "p_side"),
        view_weights=_get_view_weights(header),
        visible={view: int(visible[view]) for view in VIEWS},
        max_skew_ms=float(_get(header, "max_skew_ms", (int, float))),
        timings_ms={str(k): float(v) for k, v in timings.items()},
        latency_ms=float(_get(header, "latency_ms", (int, float))),
        model=_get(header, "model", str),
        untrained=_get(header, "untrained", bool),
        synthetic=_get(header, "synthetic", bool),
    )


# --------------------------------------------------------------------------- camera state, heartbeat

CAMERA_STATES: tuple[str, ...] = ("connected", "stalled", "reconnecting", "ended")
REQUIRED_COUNTERS: tuple[str, ...] = ("frames_sent", "frames_dropped_injected", "send_drops", "reconnects")


@dataclass(slots=True)
class CameraState:
    """A capture's camera entered ``state`` (see the module docstring)."""

    view: str
    state: str
    reason: str = ""
    attempt: int = 0
    mono_ns: int = 0
    wall_ns: int = 0
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Heartbeat:
    """The capture process of ``view`` is alive; its camera is in ``state``."""

    view: str
    state: str
    mono_ns: int = 0
    wall_ns: int = 0
    last_seq: int | None = None
    counters: dict[str, int] = field(default_factory=dict)


def encode_camera_state(event: CameraState) -> list[bytes]:
    return [_dump({"v": PROTOCOL_VERSION, "type": "camera_state", **asdict(event)})]


def encode_heartbeat(beat: Heartbeat) -> list[bytes]:
    return [_dump({"v": PROTOCOL_VERSION, "type": "heartbeat", **asdict(beat)})]


def _get_view_state_counters(header: dict[str, Any], parts: list[bytes]) -> tuple[str, str, dict[str, int]]:
    if parts:
        raise MessageError(f"{header['type']} message carries no payload parts")
    view = _get(header, "view", str)
    if view not in VIEWS:
        raise MessageError(f"unknown view {view!r} (expected one of {VIEWS})")
    state = _get(header, "state", str)
    if state not in CAMERA_STATES:
        raise MessageError(f"unknown camera state {state!r} (expected one of {CAMERA_STATES})")
    counters = _get(header, "counters", dict)
    for key, value in counters.items():
        if type(value) is not int or value < 0:
            raise MessageError(f"counter '{key}' is not an integer >= 0")
    missing = [key for key in REQUIRED_COUNTERS if key not in counters]
    if missing:
        raise MessageError(f"counters miss {', '.join(missing)}")
    return view, state, dict(counters)


def decode_camera_state(header: dict[str, Any], parts: list[bytes]) -> CameraState:
    view, state, counters = _get_view_state_counters(header, parts)
    return CameraState(view=view, state=state, reason=_get(header, "reason", str),
                       attempt=_get_int(header, "attempt", 0), mono_ns=_get_int(header, "mono_ns", 0),
                       wall_ns=_get_int(header, "wall_ns", 0), counters=counters)


def decode_heartbeat(header: dict[str, Any], parts: list[bytes]) -> Heartbeat:
    view, state, counters = _get_view_state_counters(header, parts)
    return Heartbeat(view=view, state=state, mono_ns=_get_int(header, "mono_ns", 0),
                     wall_ns=_get_int(header, "wall_ns", 0),
                     last_seq=_get_int(header, "last_seq", 0, nullable=True), counters=counters)


# --------------------------------------------------------------------------- dispatch

Message = Frame | EndOfStream | WindowScore | CameraState | Heartbeat

_DECODERS = {"frame": decode_frame, "eos": decode_eos, "window": decode_window,
             "camera_state": decode_camera_state, "heartbeat": decode_heartbeat}


def decode(parts: list[bytes]) -> Message:
    """Decode any message from its multipart parts; raises MessageError on anything malformed."""
    if not parts:
        raise MessageError("empty message")
    header = parse_header(parts[0])
    decoder = _DECODERS.get(header["type"])
    if decoder is None:
        raise MessageError(f"unknown message type {header['type']!r}")
    return decoder(header, list(parts[1:]))
