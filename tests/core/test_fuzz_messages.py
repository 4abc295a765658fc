"""Property-based fuzzing of every wire decoder (issue 8, hostile input; docs/hostile-input.md).

Valid messages of every type (all eight) are generated, encoded and then mutated: fields removed, added or replaced by
garbage (wrong types, out-of-range and huge integers, NaN/inf, huge strings, lone surrogates, deep nesting),
unknown versions and types, raw header bytes cut or flipped, payloads of the wrong size, garbage, truncated and
size-forged JPEGs. Properties:

* ``decode`` raises MessageError or returns a message, never another exception;
* a message it accepts encodes again and decodes to the same message (so the aggregator can store and
  republish whatever it accepted);
* valid messages round-trip;
* a message that declares a huge shape is refused before anything of that size is allocated;
* a real Receiver over an inproc PAIR counts exactly the rejected messages and yields the others.

Examples per test: ``DUALGAIT_FUZZ_EXAMPLES`` (default 150); under CI the runs are derandomized (the same
examples every time). ``DUALGAIT_FUZZ_EXAMPLES=5000 pytest tests/core/test_fuzz_messages.py`` for a long run.
"""

from __future__ import annotations

import json
import math
import os
import resource
import struct
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.messages import (
    CAMERA_STATES,
    DECISIONS,
    MAX_HEADER_BYTES,
    MAX_SIDE_PX,
    PROCESS_EVENTS,
    PROTOCOL_VERSION,
    REASON_CODES,
    REQUIRED_COUNTERS,
    SESSION_END_REASONS,
    SESSION_EVENTS,
    VIEWS,
    CameraState,
    EndOfStream,
    Frame,
    Heartbeat,
    Message,
    MessageError,
    Preview,
    ProcessEvent,
    SessionUpdate,
    WindowScore,
    decode,
    encode_camera_state,
    encode_eos,
    encode_frame,
    encode_heartbeat,
    encode_preview,
    encode_process_event,
    encode_session,
    encode_window,
)
from core.messages.base import INT64_MAX, INT64_MIN, jpeg_size
from core.transport import Receiver

EXAMPLES = int(os.environ.get("DUALGAIT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=bool(os.environ.get("CI")), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ENCODERS: dict[type, Callable[[Any], list[Any]]] = {
    Frame: encode_frame, EndOfStream: encode_eos, WindowScore: encode_window, CameraState: encode_camera_state,
    Heartbeat: encode_heartbeat, Preview: encode_preview, SessionUpdate: encode_session,
    ProcessEvent: encode_process_event,
}


# --------------------------------------------------------------------------- hostile JSON


class Raw:
    """JSON text put into a header as is: what json.dumps cannot write (NaN, 1e999, 5000-digit ints, deep nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:30]!r}{'...' if len(self.text) > 30 else ''})"


def dumps(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value)


RAW_TOKENS = [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1e999"), Raw("1e-999"),
              Raw("1" * 5000), Raw("-" + "9" * 4300), Raw("9" * 400), Raw("[" * 5000 + "]" * 5000),
              Raw("{\"a\":" * 2000 + "1" + "}" * 2000), Raw("[" * 9 + "]" * 9), Raw('"\\ud800"'),
              Raw('"\\udfff x"'), Raw('"\\u0000"'), Raw("-0"), Raw("0.0"), Raw("1E400")]
BOUNDARY_INTS = [-1, 0, 1, 2, 3, 4, 255, 256, 1023, 1024, 1025, 8192, 8193, 2**31, 2**32, INT64_MAX, INT64_MAX + 1,
                 INT64_MIN, INT64_MIN - 1, 10**30, -(10**30)]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(BOUNDARY_INTS),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.0000001, -1e-9]),
    st.text(max_size=20), st.sampled_from(["", "front", "side", "raw", "jpeg", "x" * 70_000, "é" * 40_000]),
    st.sampled_from(RAW_TOKENS),
)
garbage = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids,
                                                                                            max_size=4),
                       max_leaves=8)
type_names = st.sampled_from(["frame", "eos", "window", "camera_state", "heartbeat", "preview", "session",
                              "process_event", "",
                              "Frame", "frame ", "__class__", "unknown"])


# --------------------------------------------------------------------------- valid messages

int64s = st.integers(min_value=0, max_value=INT64_MAX)
small_ints = st.integers(min_value=0, max_value=10**6)
finite = st.floats(allow_nan=False, allow_infinity=False)
probs = st.floats(min_value=0.0, max_value=1.0)
positive = st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False)  # durations, s
views = st.sampled_from(VIEWS)
texts = st.text(max_size=30)


def _jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


@st.composite
def images(draw: st.DrawFn, max_side: int = 24) -> np.ndarray:
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    channels = draw(st.sampled_from([1, 3]))
    data = draw(st.binary(min_size=h * w * channels, max_size=h * w * channels))
    image = np.frombuffer(data, np.uint8).reshape(h, w, channels)
    return image[:, :, 0].copy() if channels == 1 else image.copy()


@st.composite
def frames(draw: st.DrawFn) -> tuple[Frame, str]:
    frame = Frame(view=draw(views), seq=draw(int64s), capture_mono_ns=draw(int64s), capture_wall_ns=draw(int64s),
                  image=draw(images()), source_ts_ns=draw(st.none() | int64s))
    return frame, draw(st.sampled_from(["raw", "jpeg"]))


eos_messages = st.builds(EndOfStream, source=texts, reason=texts,
                         stats=st.dictionaries(texts, st.integers(INT64_MIN, INT64_MAX) | finite, max_size=5))


@st.composite
def windows(draw: st.DrawFn) -> WindowScore:
    valid = draw(st.booleans())
    return WindowScore(
        session=draw(texts), window=draw(int64s),
        frames={view: draw(st.lists(int64s, max_size=8)) for view in VIEWS},
        t_start_mono_ns=draw(int64s), t_end_mono_ns=draw(int64s), t_start_wall_ns=draw(int64s), valid=valid,
        reason=None if valid else draw(st.text(min_size=1, max_size=30)),
        reason_code=None if valid else draw(st.sampled_from(REASON_CODES)), walk=draw(st.none() | small_ints),
        p_asd=draw(probs) if valid else None, p_front=draw(st.none() | probs), p_side=draw(st.none() | probs),
        view_weights=draw(st.none() | st.fixed_dictionaries({"front": probs, "side": probs})),
        visible={view: draw(small_ints) for view in VIEWS}, max_skew_ms=draw(finite),
        timings_ms=draw(st.dictionaries(texts, finite, max_size=7)), latency_ms=draw(finite), model=draw(texts),
        untrained=draw(st.booleans()), duration_s=draw(positive), stride_s=draw(positive),
        synthetic=draw(st.booleans()))


counters = st.fixed_dictionaries({key: int64s for key in REQUIRED_COUNTERS},
                                 optional={"extra": int64s, "frames_read": small_ints})
camera_states = st.builds(CameraState, view=views, state=st.sampled_from(CAMERA_STATES), reason=texts,
                          attempt=small_ints, mono_ns=int64s, wall_ns=int64s, counters=counters)
heartbeats = st.builds(Heartbeat, view=views, state=st.sampled_from(CAMERA_STATES), mono_ns=int64s, wall_ns=int64s,
                       last_seq=st.none() | int64s, counters=counters)


@st.composite
def previews(draw: st.DrawFn) -> Preview:
    image = draw(images(max_side=32))
    width, height = draw(st.integers(1, MAX_SIDE_PX)), draw(st.integers(1, MAX_SIDE_PX))
    box = None
    if draw(st.booleans()):
        fx = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2, unique=True)))
        fy = sorted(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2, unique=True)))
        box = (fx[0] * width, fy[0] * height, fx[1] * width, fy[1] * height)
        if not (box[0] < box[2] and box[1] < box[3]):  # the product of two close fractions can collapse
            box = None
    return Preview(view=draw(views), seq=draw(int64s), capture_mono_ns=draw(int64s), width=width, height=height,
                   box_xyxy=box, track_id=draw(st.none() | small_ints) if box else None, jpeg=_jpeg(image),
                   preview_width=image.shape[1], preview_height=image.shape[0])


@st.composite
def sessions(draw: st.DrawFn) -> SessionUpdate:
    status = draw(st.sampled_from(["open", "closed"]))
    windows_n = draw(small_ints)
    mean = draw(st.none() | probs)
    low = high = None
    if mean is not None and draw(st.booleans()):
        low, high = draw(st.floats(0, mean)), draw(st.floats(mean, 1))
    window = None
    if draw(st.booleans()):
        valid = draw(st.booleans())
        window = {"window": draw(int64s), "t_s": draw(finite), "valid": valid,
                  "reason_code": None if valid else draw(st.sampled_from(REASON_CODES)),
                  "p_asd": draw(probs) if valid else None}
    return SessionUpdate(
        event=draw(st.sampled_from(SESSION_EVENTS)), session_id=draw(st.integers(1, INT64_MAX)), stream=draw(texts),
        walk=draw(st.none() | small_ints), status=status, started_wall_ns=draw(int64s),
        ended_wall_ns=draw(st.none() | int64s),
        end_reason=draw(st.sampled_from(SESSION_END_REASONS)) if status == "closed" else None,
        windows=windows_n, valid_windows=draw(st.integers(0, windows_n)),
        invalid_by_reason=draw(st.dictionaries(st.sampled_from(REASON_CODES), small_ints)),
        cumulative_p_asd=mean, ci_low=low, ci_high=high,
        ci_level=draw(st.floats(0, 1, exclude_min=True, exclude_max=True)), decision=draw(st.sampled_from(DECISIONS)),
        min_valid_windows=draw(st.integers(1, 100)),
        decision_threshold=draw(st.floats(0, 1, exclude_min=True, exclude_max=True)), window=window,
        model=draw(texts), untrained=draw(st.booleans()), synthetic=draw(st.booleans()))


@st.composite
def process_events(draw: st.DrawFn) -> ProcessEvent:
    event = draw(st.sampled_from(PROCESS_EVENTS))
    exit_code = draw(st.integers(-64, 255).filter(bool) if event == "crashed" else st.none() | st.integers(-64, 255))
    return ProcessEvent(process=draw(st.text(min_size=1, max_size=64)), event=event,
                        pid=draw(st.none() | st.integers(1, INT64_MAX)), exit_code=exit_code,
                        restarts=draw(small_ints), backoff_s=draw(st.none() | st.floats(0, 1e6, exclude_max=True)),
                        reason=draw(st.text(max_size=1024)), mono_ns=draw(int64s), wall_ns=draw(int64s))


def _encode(message: Message | tuple[Frame, str]) -> list[bytes]:
    if isinstance(message, tuple):
        frame, encoding = message
        return [bytes(p) for p in encode_frame(frame, encoding=encoding)]
    return [bytes(p) for p in ENCODERS[type(message)](message)]


VALID: dict[str, st.SearchStrategy[Any]] = {
    "frame": frames(), "eos": eos_messages, "window": windows(), "camera_state": camera_states,
    "heartbeat": heartbeats, "preview": previews(), "session": sessions(), "process_event": process_events(),
}


# --------------------------------------------------------------------------- the properties


def _same(a: Message, b: Message) -> bool:
    if isinstance(a, Frame):
        return (isinstance(b, Frame) and (a.view, a.seq, a.capture_mono_ns, a.capture_wall_ns, a.source_ts_ns)
                == (b.view, b.seq, b.capture_mono_ns, b.capture_wall_ns, b.source_ts_ns)
                and a.image.shape == b.image.shape and np.array_equal(a.image, b.image))
    return a == b


# per test: [messages decoded, rejected]; written to $DUALGAIT_FUZZ_REPORT (JSON) when set (docs/hostile-input.md)
STATS: dict[str, list[int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _fuzz_report() -> Any:
    yield
    if os.environ.get("DUALGAIT_FUZZ_REPORT"):
        with open(os.environ["DUALGAIT_FUZZ_REPORT"], "w", encoding="utf-8") as fh:
            json.dump(STATS, fh, indent=1)


def decode_or_reject(parts: list[Any]) -> Message | None:
    """decode(): a message or MessageError, nothing else; what it accepts encodes and decodes to itself."""
    counts = STATS.setdefault(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], [0, 0])
    counts[0] += 1
    try:
        message = decode(parts)
    except MessageError as exc:
        assert str(exc)
        counts[1] += 1
        return None
    again = decode([bytes(p) for p in ENCODERS[type(message)](message)])
    assert _same(again, message), (again, message)
    return message


@pytest.mark.parametrize("kind", list(VALID))
@FUZZ
@given(data=st.data())
def test_valid_messages_round_trip(kind: str, data: st.DataObject) -> None:
    original = data.draw(VALID[kind])
    message = decode_or_reject(_encode(original))
    assert message is not None, f"a valid {kind} was rejected"
    if kind == "frame":
        frame, encoding = original
        assert message.image.shape == frame.image.shape
        assert (message.view, message.seq, message.capture_mono_ns, message.source_ts_ns) == (
            frame.view, frame.seq, frame.capture_mono_ns, frame.source_ts_ns)
        if encoding == "raw":
            np.testing.assert_array_equal(message.image, frame.image)
    else:
        assert message == original


@st.composite
def mutated_headers(draw: st.DrawFn, kind: str) -> list[Any]:
    """A valid message of ``kind`` whose header is mutated one to three times."""
    parts: list[Any] = _encode(draw(VALID[kind]))
    header: dict[str, Any] = json.loads(parts[0])
    for _ in range(draw(st.integers(1, 3))):
        keys = sorted(header)
        op = draw(st.sampled_from(["drop", "replace", "replace", "add", "version", "type", "nested"]))
        if op == "drop" and keys:
            del header[draw(st.sampled_from(keys))]
        elif op == "replace" and keys:
            header[draw(st.sampled_from(keys))] = draw(garbage)
        elif op == "add":
            header[draw(st.text(max_size=10))] = draw(garbage)
        elif op == "version":
            header["v"] = draw(st.sampled_from([PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1, 0, -1, True, 4.0, "4",
                                                None, Raw("4e0"), Raw("1" * 5000)]) | st.integers())
        elif op == "type":
            header["type"] = draw(type_names | garbage)
        else:  # inside a nested field: frames, visible, counters, stats, window, view_weights, box_xyxy
            nested = [k for k in keys if isinstance(header[k], dict | list) and header[k]]
            if nested:
                key = draw(st.sampled_from(nested))
                inner = header[key]
                if isinstance(inner, dict):
                    inner[draw(st.sampled_from(sorted(inner)) | st.text(max_size=6))] = draw(garbage)
                else:
                    inner[draw(st.integers(0, len(inner) - 1))] = draw(garbage)
    return [dumps(header).encode(), *parts[1:]]


@pytest.mark.parametrize("kind", list(VALID))
@FUZZ
@given(data=st.data())
def test_mutated_headers_are_rejected_or_sound(kind: str, data: st.DataObject) -> None:
    decode_or_reject(data.draw(mutated_headers(kind)))


@st.composite
def mangled_bytes(draw: st.DrawFn, kind: str) -> list[Any]:
    """A valid message whose header bytes are cut, flipped, spliced, or whose parts are added/removed."""
    parts: list[Any] = _encode(draw(VALID[kind]))
    head = bytearray(parts[0])
    op = draw(st.sampled_from(["cut", "flip", "insert", "parts", "pad", "binary"]))
    if op == "cut":
        del head[draw(st.integers(0, len(head) - 1)):]
    elif op == "flip":
        for _ in range(draw(st.integers(1, 4))):
            head[draw(st.integers(0, len(head) - 1))] ^= draw(st.integers(1, 255))
    elif op == "insert":
        at = draw(st.integers(0, len(head)))
        head[at:at] = draw(st.binary(min_size=1, max_size=16) | st.sampled_from([b"\xed\xa0\x80", b"\xff", b"\x00"]))
    elif op == "parts":
        extra = draw(st.lists(st.binary(max_size=64), max_size=3))
        return [bytes(head), *extra] if draw(st.booleans()) else [bytes(head)]
    elif op == "pad":  # a header at or just over the size limit
        head = head[:-1] + b',"pad":"' + b"x" * (MAX_HEADER_BYTES - len(head) - 9 + draw(st.integers(0, 2))) + b'"}'
    else:
        head = bytearray(draw(st.binary(max_size=200)))
    return [bytes(head), *parts[1:]]


@pytest.mark.parametrize("kind", list(VALID))
@FUZZ
@given(data=st.data())
def test_mangled_bytes_are_rejected_or_sound(kind: str, data: st.DataObject) -> None:
    decode_or_reject(data.draw(mangled_bytes(kind)))


# --------------------------------------------------------------------------- payloads


def _forge_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with another size in its frame header (what a decompression bomb looks like)."""
    data = bytearray(jpeg)
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


@st.composite
def bad_payloads(draw: st.DrawFn) -> list[Any]:
    """A frame or preview whose payload is wrong: size, garbage, truncated, bit-flipped or size-forged JPEG."""
    kind = draw(st.sampled_from(["frame", "preview"]))
    parts = _encode(draw(VALID[kind]))
    header = json.loads(parts[0])
    payload = parts[1]
    if kind == "frame" and draw(st.booleans()):  # a JPEG payload in any case: that is where the decoding is
        image = np.zeros((header["height"], header["width"], 3)[:2 if header["channels"] == 1 else 3], np.uint8)
        payload = _jpeg(image)
        header["encoding"] = "jpeg"
    op = draw(st.sampled_from(["size", "garbage", "truncate", "flip", "forge", "soi", "none", "extra", "shape"]))
    if op == "size":
        n = max(0, len(payload) + draw(st.integers(-len(payload), 64)))
        payload = (payload * 2)[:n]
    elif op == "garbage":
        payload = draw(st.binary(max_size=512))
    elif op == "truncate":
        payload = payload[:draw(st.integers(0, max(0, len(payload) - 1)))]
    elif op == "flip":
        data = bytearray(payload)
        for _ in range(draw(st.integers(1, 8))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        payload = bytes(data)
    elif op == "forge" and payload[:2] == b"\xff\xd8":
        payload = _forge_jpeg_size(payload, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))
    elif op == "soi":
        payload = b"\xff\xd8" + draw(st.binary(max_size=256))
    elif op == "none":
        return [parts[0]]
    elif op == "extra":
        return [parts[0], payload, draw(st.binary(max_size=16))]
    else:  # the header's shape, not the payload, is wrong
        key = draw(st.sampled_from(["width", "height", "channels"] if kind == "frame"
                                   else ["preview_width", "preview_height", "width", "height"]))
        header[key] = draw(st.sampled_from(BOUNDARY_INTS) | st.integers(0, 40))
    return [dumps(header).encode(), payload]


@FUZZ
@given(parts=bad_payloads())
def test_bad_payloads_are_rejected_or_sound(parts: list[Any]) -> None:
    message = decode_or_reject(parts)
    if isinstance(message, Frame):  # accepted: the image is exactly what the header declares
        header = json.loads(parts[0])
        shape = (header["height"], header["width"]) + ((3,) if header["channels"] == 3 else ())
        assert message.image.shape == shape and message.image.dtype == np.uint8
    elif isinstance(message, Preview):
        assert jpeg_size(message.jpeg)[:2] == (message.preview_width, message.preview_height)


# --------------------------------------------------------------------------- no large allocation


def _frame_header(**changes: Any) -> bytes:
    header = {"v": PROTOCOL_VERSION, "type": "frame", "view": "front", "seq": 0, "capture_mono_ns": 0,
              "capture_wall_ns": 0, "source_ts_ns": None, "width": 16, "height": 16, "channels": 3, "encoding": "raw"}
    return dumps({**header, **changes}).encode()


def _preview_header(**changes: Any) -> bytes:
    header = {"v": PROTOCOL_VERSION, "type": "preview", "view": "front", "seq": 0, "capture_mono_ns": 0,
              "width": 640, "height": 480, "box_xyxy": None, "track_id": None, "preview_width": 16,
              "preview_height": 16, "walkway": "main"}
    return dumps({**header, **changes}).encode()


BOMB = _forge_jpeg_size(_jpeg(np.zeros((16, 16, 3), np.uint8)), 20000, 20000)  # 20000x20000x3 = 1.2 GB decoded

HUGE = [
    ("raw frame declaring 8192x8192x3, 10-byte payload", [_frame_header(width=8192, height=8192), b"\0" * 10]),
    ("raw frame declaring 10^9 x 10^9", [_frame_header(width=10**9, height=10**9), b"\0" * 10]),
    ("raw frame declaring 2^64 channels", [_frame_header(channels=2**64), b"\0" * 10]),
    ("raw frame declaring a 5000-digit width", [_frame_header(width=Raw("9" * 5000)), b"\0" * 10]),
    ("jpeg frame 16x16 whose JPEG declares 20000x20000", [_frame_header(encoding="jpeg"), BOMB]),
    ("jpeg frame 8192x8192 whose JPEG declares 20000x20000",
     [_frame_header(encoding="jpeg", width=8192, height=8192), BOMB]),
    ("preview 16x16 whose JPEG declares 20000x20000", [_preview_header(), BOMB]),
    ("preview declaring 20000x20000 with that JPEG", [_preview_header(preview_width=20000, preview_height=20000),
                                                      BOMB]),
    ("jpeg frame whose payload is a PNG of 20000x20000", [_frame_header(encoding="jpeg"), b"\x89PNG\r\n\x1a\n" + BOMB]),
    ("header nested 30000 deep", [("[" * 30000 + "]" * 30000).encode()]),
    ("window header with 30000 sequence numbers in 64 KiB",
     [dumps({"v": PROTOCOL_VERSION, "type": "window", "frames": {"front": [0] * 30000}}).encode()]),
]


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(("name", "parts"), HUGE, ids=[name for name, _ in HUGE])
def test_huge_declared_shapes_are_refused_before_allocating(name: str, parts: list[bytes]) -> None:
    """Python/numpy allocations (tracemalloc) and the C decoders' (peak RSS) stay small, and it is quick."""
    rss0 = _maxrss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(MessageError):
            decode(parts)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"{name}: {peak / 2**20:.1f} MiB traced"
    assert _maxrss_mb() - rss0 < 64, f"{name}: peak RSS grew {_maxrss_mb() - rss0:.0f} MB"
    assert seconds < 0.5, f"{name}: {seconds:.2f} s"


def test_jpeg_bomb_is_refused_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a 631-byte JPEG declaring 20000x20000 made cv2.imdecode allocate 2.3 GB (7 s) before the
    frame/preview decoders compared its size with the header; now its frame header is read first."""
    calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert len(BOMB) < 1024 and jpeg_size(BOMB) == (20000, 20000, 3)
    with pytest.raises(MessageError, match="declares 20000x20000x3, header says 16x16"):
        decode([_frame_header(encoding="jpeg"), BOMB])
    with pytest.raises(MessageError, match="declares 20000x20000x3, header says 16x16"):
        decode([_preview_header(), BOMB])
    with pytest.raises(MessageError, match="not a JPEG"):
        decode([_frame_header(encoding="jpeg"), b"\x89PNG\r\n\x1a\n" + BOMB])
    assert calls == []
    good = _jpeg(np.zeros((16, 16, 3), np.uint8))
    assert decode([_frame_header(encoding="jpeg"), good]).image.shape == (16, 16, 3)
    assert decode([_preview_header(), good]).preview_width == 16
    assert len(calls) == 2


# --------------------------------------------------------------------------- regressions found by fuzzing


@pytest.mark.parametrize(("text", "match"), [
    ('"seq":' + "1" * 5000, "not valid JSON"),                  # ValueError: int over 4300 digits
    ('"seq":' + "[" * 30000 + "]" * 30000, "nested too deeply"),  # RecursionError in json.loads
    ('"seq":' + "[" * 8 + "]" * 8, "deeper than 8"),
    ('"seq":1e999', "non-finite"),                            # inf, then OverflowError or unencodable
    ('"seq":-1e999', "non-finite"),
    ('"seq":' + str(2**63), "int64"),                           # SQLite cannot store it
    ('"seq":' + str(-(2**63) - 1), "int64"),
    ('"view":"\\ud800"', "lone surrogate"),                      # UnicodeEncodeError when stored or logged
    ('"\\udfff":1', "lone surrogate"),
])
def test_regression_header_values(text: str, match: str) -> None:
    with pytest.raises(MessageError, match=match):
        decode([f'{{"v":{PROTOCOL_VERSION},"type":"frame",{text}}}'.encode()])


def test_regression_header_not_utf8() -> None:
    """json.loads(bytes) guessed UTF-16/32 and let UTF-8-encoded surrogates through: headers are UTF-8 only."""
    eos = {"v": PROTOCOL_VERSION, "type": "eos", "source": "x", "reason": "r", "stats": {}, "walkway": "main"}
    assert decode([json.dumps(eos).encode()]).source == "x"
    for raw in (json.dumps(eos).encode("utf-16"), json.dumps(eos).encode("utf-32"),
                json.dumps(eos).replace('"x"', '"\xed\xa0\x80"').encode("latin-1")):
        with pytest.raises(MessageError, match="not UTF-8"):
            decode([raw])


def test_regression_huge_int_where_a_float_is_expected() -> None:
    """A 400-digit max_skew_ms raised OverflowError in float(); inf (1e999) was accepted and could not be
    encoded again."""
    header = json.loads(encode_window(WindowScore(
        session="s", window=0, frames={"front": [], "side": []}, t_start_mono_ns=0, t_end_mono_ns=0,
        t_start_wall_ns=0, valid=False, reason="r", reason_code="skew", walk=None, p_asd=None, p_front=None,
        p_side=None, view_weights=None, visible={"front": 0, "side": 0}, max_skew_ms=1.0, timings_ms={},
        latency_ms=1.0, model="m", untrained=True, duration_s=1.0, stride_s=1.0))[0])
    assert decode([dumps(header).encode()]).max_skew_ms == 1.0
    for field, value in (("max_skew_ms", Raw("9" * 400)), ("latency_ms", Raw("1e999")),
                         ("timings_ms", {"model": Raw("9" * 400)})):
        with pytest.raises(MessageError):
            decode([dumps({**header, field: value}).encode()])


def test_header_size_is_checked_before_copying() -> None:
    """A memoryview header (what the Receiver can pass) is refused by its length, without a copy."""
    huge = memoryview(bytearray(MAX_HEADER_BYTES + 1))
    tracemalloc.start()
    try:
        with pytest.raises(MessageError, match="too large"):
            decode([huge])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_HEADER_BYTES


def test_preview_size_is_checked_before_copying() -> None:
    too_big = memoryview(bytearray(b"\xff\xd8" + bytes(300 * 1024)))
    tracemalloc.start()
    try:
        with pytest.raises(MessageError, match="limit"):
            decode([_preview_header(), too_big])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


# --------------------------------------------------------------------------- through a real Receiver


@pytest.fixture(scope="module")
def pair() -> Any:
    ctx = zmq.Context()
    endpoint = "inproc://fuzz-receiver"
    rx = ctx.socket(zmq.PAIR)
    rx.setsockopt(zmq.LINGER, 0)
    rx.bind(endpoint)
    tx = ctx.socket(zmq.PAIR)
    tx.setsockopt(zmq.LINGER, 0)
    tx.connect(endpoint)
    yield tx, Receiver(rx)
    ctx.destroy(linger=0)


any_message = st.sampled_from(list(VALID)).flatmap(
    lambda kind: st.one_of(VALID[kind].map(_encode), mutated_headers(kind), mangled_bytes(kind)))


@settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
@given(batch=st.lists(any_message | bad_payloads(), min_size=1, max_size=12))
def test_receiver_counts_malformed_and_never_raises(pair: Any, batch: list[list[bytes]]) -> None:
    tx, receiver = pair
    batch = [parts for parts in batch if parts]  # zmq cannot send an empty multipart message
    expected = []
    for parts in batch:
        try:
            expected.append(type(decode(parts)))
        except MessageError:
            expected.append(None)
    malformed0 = receiver.malformed
    for parts in batch:
        tx.send_multipart(parts)
    got: list[type] = []
    deadline = time.monotonic() + 10
    while len(got) + receiver.malformed - malformed0 < len(batch) and time.monotonic() < deadline:
        got.extend(type(message) for message, _ in receiver.poll(50))
    assert got == [kind for kind in expected if kind is not None]
    assert receiver.malformed - malformed0 == expected.count(None)
    counts = STATS.setdefault(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], [0, 0])
    counts[0] += len(batch)
    counts[1] += expected.count(None)


def test_receiver_log_line_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    """A 60 KB unknown type or view name is echoed in the MessageError: the Receiver logs 300 characters of it."""
    ctx = zmq.Context()
    try:
        rx, tx = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        rx.bind("inproc://fuzz-log")
        tx.connect("inproc://fuzz-log")
        receiver = Receiver(rx)
        tx.send(dumps({"v": PROTOCOL_VERSION, "type": "x" * 60_000}).encode())
        with caplog.at_level("WARNING", logger="core.transport"):
            assert list(receiver.poll(2000)) == []
        assert receiver.malformed == 1
        (record,) = [r for r in caplog.records if "dropped malformed" in r.getMessage()]
        assert "unknown message type 'xxx" in record.getMessage() and len(record.getMessage()) < 400
    finally:
        ctx.destroy(linger=0)
