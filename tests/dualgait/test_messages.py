"""Wire-format tests for dualgait.messages: round trips and rejection of every malformed layout."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from dualgait.messages import (
    MAX_HEADER_BYTES,
    MAX_SIDE_PX,
    PROTOCOL_VERSION,
    CameraState,
    EndOfStream,
    Frame,
    Heartbeat,
    MessageError,
    WindowScore,
    decode,
    encode_camera_state,
    encode_eos,
    encode_frame,
    encode_heartbeat,
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
        t_end_mono_ns=20, t_start_wall_ns=30, valid=True, reason=None, p_asd=0.25, p_front=0.5, p_side=0.0,
        view_weights={"front": 0.75, "side": 0.25},
        visible={"front": 8, "side": 7}, max_skew_ms=3.5, timings_ms={"detect": 1.5, "model": 20.0},
        latency_ms=42.0, model="late fusion (untrained)", untrained=True,
    )
    return replace(score, **changes)


def _window_parts(**header_changes: Any) -> list[bytes]:
    header = json.loads(encode_window(_window())[0])
    header.update(header_changes)
    return [json.dumps(header).encode()]


# --------------------------------------------------------------------------- round trips


def test_raw_bgr_frame_round_trip_is_pixel_exact():
    """A raw BGR frame survives encode -> decode with identical pixels and metadata."""
    image = _bgr_image()
    frame = Frame(view="side", seq=12, capture_mono_ns=111, capture_wall_ns=222, image=image, source_ts_ns=333)
    out = decode(_to_bytes(encode_frame(frame)))
    assert isinstance(out, Frame)
    assert (out.view, out.seq, out.capture_mono_ns, out.capture_wall_ns, out.source_ts_ns) == ("side", 12, 111, 222,
                                                                                             333)
    assert out.image.dtype == np.uint8
    assert out.image.shape == (3, 4, 3)
    np.testing.assert_array_equal(out.image, image)


def test_grayscale_frame_round_trip_keeps_two_dimensions():
    """A single-channel frame is sent with channels=1 and decodes back to an HxW array."""
    image = np.arange(20, dtype=np.uint8).reshape(4, 5)
    frame = Frame(view="front", seq=0, capture_mono_ns=0, capture_wall_ns=0, image=image)
    parts = encode_frame(frame)
    assert json.loads(parts[0])["channels"] == 1
    out = decode(_to_bytes(parts))
    assert out.image.shape == (4, 5)
    assert out.source_ts_ns is None
    np.testing.assert_array_equal(out.image, image)


def test_jpeg_frame_round_trip_is_close():
    """A JPEG frame decodes to the header's shape with pixels close to the original."""
    image = _gradient_image()
    frame = Frame(view="front", seq=1, capture_mono_ns=5, capture_wall_ns=6, image=image)
    parts = encode_frame(frame, encoding="jpeg", jpeg_quality=95)
    assert json.loads(parts[0])["encoding"] == "jpeg"
    out = decode(_to_bytes(parts))
    assert out.image.shape == image.shape
    assert out.image.dtype == np.uint8
    assert np.abs(out.image.astype(np.int16) - image.astype(np.int16)).mean() < 3


def test_jpeg_grayscale_round_trip():
    """A single-channel JPEG frame decodes to HxW."""
    image = _gradient_image()[:, :, 0].copy()
    frame = Frame(view="side", seq=1, capture_mono_ns=5, capture_wall_ns=6, image=image)
    out = decode(_to_bytes(encode_frame(frame, encoding="jpeg")))
    assert out.image.shape == image.shape
    assert np.abs(out.image.astype(np.int16) - image.astype(np.int16)).mean() < 3


def test_raw_decode_accepts_memoryview_payload_without_copy():
    """Raw payloads may arrive as memoryviews (zmq copy=False); the decoded image is a view of that buffer."""
    image = _bgr_image(5, 6)
    frame = Frame(view="front", seq=3, capture_mono_ns=1, capture_wall_ns=2, image=image)
    parts = encode_frame(frame)
    assert isinstance(parts[1], memoryview)  # encode does not copy either
    buffer = bytearray(parts[1])
    out = decode([bytes(parts[0]), memoryview(buffer)])
    np.testing.assert_array_equal(out.image, image)
    assert np.shares_memory(out.image, np.frombuffer(buffer, dtype=np.uint8))
    # the encode output can be decoded directly, payload memoryview and all
    np.testing.assert_array_equal(decode(encode_frame(frame)).image, image)


def test_eos_round_trip():
    """EndOfStream keeps source, reason and numeric stats."""
    eos = EndOfStream(source="front", reason="end of recording", stats={"frames": 380, "fps": 25.0})
    out = decode(_to_bytes(encode_eos(eos)))
    assert out == eos


def test_valid_window_round_trip():
    """A valid WindowScore survives encode -> decode unchanged."""
    score = _window()
    out = decode(_to_bytes(encode_window(score)))
    assert isinstance(out, WindowScore)
    assert out == score


def test_invalid_window_round_trip():
    """An invalid WindowScore (reason set, probabilities null) survives encode -> decode."""
    score = _window(valid=False, reason="no patient: front 3/8", p_asd=None, p_front=None, p_side=None)
    out = decode(_to_bytes(encode_window(score)))
    assert out == score
    assert out.valid is False and out.reason == "no patient: front 3/8" and out.p_asd is None


# --------------------------------------------------------------------------- common header rejection


def test_decode_empty_list_raises():
    """A message with no parts at all is malformed, not an IndexError."""
    with pytest.raises(MessageError, match="empty"):
        decode([])


@pytest.mark.parametrize("version", [0, 1, 2, 4, None, "3"])
def test_wrong_protocol_version_rejected(version):
    """Only PROTOCOL_VERSION is accepted."""
    with pytest.raises(MessageError, match="protocol version"):
        decode(_frame_parts(_frame_header(v=version)))


def test_missing_protocol_version_rejected():
    """A header without "v" is rejected."""
    header = _frame_header()
    del header["v"]
    with pytest.raises(MessageError, match="protocol version"):
        decode(_frame_parts(header))


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe\x00garbage", b""])
def test_non_json_header_rejected(raw):
    """A header that is not JSON (or not UTF-8) raises MessageError."""
    with pytest.raises(MessageError, match="not valid JSON"):
        decode([raw])


@pytest.mark.parametrize("raw", [b"[1, 2]", b"1", b'"frame"', b"null"])
def test_header_not_object_rejected(raw):
    """A JSON header must be an object."""
    with pytest.raises(MessageError, match="not a JSON object"):
        decode([raw])


def test_header_too_large_rejected():
    """Headers over MAX_HEADER_BYTES are refused before parsing."""
    header = _header(v=PROTOCOL_VERSION, type="eos", source="front", reason="x" * MAX_HEADER_BYTES, stats={})
    assert len(header) > MAX_HEADER_BYTES
    with pytest.raises(MessageError, match="too large"):
        decode([header])


def test_header_just_under_limit_accepted():
    """A header right at the size limit is still accepted (the limit is not off by much)."""
    base = _header(v=PROTOCOL_VERSION, type="eos", source="front", reason="", stats={})
    header = _header(v=PROTOCOL_VERSION, type="eos", source="front", reason="x" * (MAX_HEADER_BYTES - len(base)),
                     stats={})
    assert len(header) == MAX_HEADER_BYTES
    assert decode([header]).reason == "x" * (MAX_HEADER_BYTES - len(base))


@pytest.mark.parametrize("type_", ["frames", "Frame", "score", ""])
def test_unknown_type_rejected(type_):
    """Only frame/eos/window message types exist."""
    with pytest.raises(MessageError, match="unknown message type"):
        decode([_header(v=PROTOCOL_VERSION, type=type_)])


@pytest.mark.parametrize("type_", [None, 3])
def test_missing_or_non_string_type_rejected(type_):
    """'type' must be a string."""
    with pytest.raises(MessageError, match="type"):
        decode([_header(v=PROTOCOL_VERSION, type=type_)])


# --------------------------------------------------------------------------- frame rejection


def test_valid_frame_helper_is_accepted():
    """Sanity check: the hand-made frame message used below is valid as is."""
    out = decode(_frame_parts(_frame_header()))
    assert out.image.shape == (3, 4, 3)
    assert out.seq == 7


@pytest.mark.parametrize("view", ["top", "Front", ""])
def test_unknown_view_rejected(view):
    """Views are exactly 'front' and 'side'."""
    with pytest.raises(MessageError, match="unknown view"):
        decode(_frame_parts(_frame_header(view=view)))


@pytest.mark.parametrize("field", FRAME_FIELDS)
def test_missing_frame_field_rejected(field):
    """Every documented frame header field is required (source_ts_ns may be null but must be present)."""
    header = _frame_header()
    del header[field]
    payload = bytes(4 * 3 * 3)
    with pytest.raises(MessageError, match=f"misses field '{field}'"):
        decode(_frame_parts(header, payload))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", "7"),
        ("seq", 7.0),
        ("seq", True),
        ("width", True),
        ("height", 3.0),
        ("channels", "3"),
        ("capture_mono_ns", None),
        ("capture_wall_ns", "now"),
        ("source_ts_ns", 1.5),
        ("view", 1),
        ("encoding", None),
    ],
)
def test_frame_field_of_wrong_type_rejected(field, value):
    """Wrong JSON types (including bool where an int is expected) are rejected, naming the field."""
    with pytest.raises(MessageError, match=f"'{field}'"):
        decode(_frame_parts(_frame_header(**{field: value}), bytes(4 * 3 * 3)))


@pytest.mark.parametrize("field", ["seq", "capture_mono_ns", "capture_wall_ns", "source_ts_ns"])
def test_negative_counter_rejected(field):
    """Sequence numbers and timestamps are >= 0."""
    with pytest.raises(MessageError, match="out of range"):
        decode(_frame_parts(_frame_header(**{field: -1})))


@pytest.mark.parametrize("field", ["width", "height"])
def test_side_over_max_rejected(field):
    """Width/height above MAX_SIDE_PX are refused before the payload is even looked at."""
    with pytest.raises(MessageError, match="out of range"):
        decode(_frame_parts(_frame_header(**{field: MAX_SIDE_PX + 1}), b"\x00"))


@pytest.mark.parametrize("field", ["width", "height"])
def test_side_zero_rejected(field):
    """Width/height must be at least 1."""
    with pytest.raises(MessageError, match="out of range"):
        decode(_frame_parts(_frame_header(**{field: 0}), b""))


def test_side_at_max_accepted():
    """MAX_SIDE_PX itself is allowed."""
    header = _frame_header(width=MAX_SIDE_PX, height=1, channels=1)
    out = decode(_frame_parts(header))
    assert out.image.shape == (1, MAX_SIDE_PX)


@pytest.mark.parametrize("channels", [0, 2, 4])
def test_bad_channel_count_rejected(channels):
    """Only 1 or 3 channels are allowed."""
    with pytest.raises(MessageError, match="channels"):
        decode(_frame_parts(_frame_header(channels=channels), bytes(4 * 3 * 3)))


@pytest.mark.parametrize("delta", [-1, 1])
def test_raw_payload_wrong_size_rejected(delta):
    """A raw payload one byte short or one byte long is rejected."""
    with pytest.raises(MessageError, match="raw payload"):
        decode(_frame_parts(_frame_header(), bytes(4 * 3 * 3 + delta)))


def test_unknown_encoding_rejected():
    """Only raw and jpeg encodings exist."""
    with pytest.raises(MessageError, match="unknown encoding"):
        decode(_frame_parts(_frame_header(encoding="png")))


@pytest.mark.parametrize("extra_parts", [0, 2])
def test_frame_with_wrong_number_of_parts_rejected(extra_parts):
    """A frame has exactly one payload part."""
    header = json.dumps(_frame_header()).encode()
    parts = [header, *([bytes(4 * 3 * 3)] * extra_parts)]
    with pytest.raises(MessageError, match="payload parts"):
        decode(parts)


def test_eos_with_payload_part_rejected():
    """An eos message carries no payload parts."""
    with pytest.raises(MessageError, match="no payload"):
        decode([*_to_bytes(encode_eos(EndOfStream(source="front"))), b"x"])


def test_window_with_payload_part_rejected():
    """A window message carries no payload parts."""
    with pytest.raises(MessageError, match="no payload"):
        decode([*_to_bytes(encode_window(_window())), b"x"])


def test_jpeg_garbage_payload_rejected():
    """A JPEG payload that does not decode is a MessageError, not a crash."""
    header = _frame_header(encoding="jpeg", width=16, height=16)
    with pytest.raises(MessageError, match="does not decode"):
        decode(_frame_parts(header, b"this is not a jpeg file at all" * 4))


def test_jpeg_empty_payload_rejected():
    """An empty JPEG payload is rejected."""
    header = _frame_header(encoding="jpeg", width=16, height=16)
    with pytest.raises(MessageError, match="implausible"):
        decode(_frame_parts(header, b""))


@pytest.mark.parametrize(("width", "height", "channels"), [(96, 32, 3), (48, 64, 3), (96, 65, 3)])
def test_jpeg_size_mismatch_rejected(width, height, channels):
    """A JPEG whose decoded size differs from the header is rejected."""
    image = _gradient_image(64, 96)
    payload = encode_frame(Frame("front", 0, 0, 0, image), encoding="jpeg")[1]
    header = _frame_header(encoding="jpeg", width=width, height=height, channels=channels)
    with pytest.raises(MessageError, match="jpeg decodes to"):
        decode(_frame_parts(header, bytes(payload)))


# --------------------------------------------------------------------------- window rejection


def test_valid_window_with_reason_rejected():
    """A valid window must not carry a reason."""
    with pytest.raises(MessageError, match="valid window"):
        decode(_window_parts(reason="looks odd"))


def test_valid_window_without_p_asd_rejected():
    """A valid window must carry p_asd."""
    with pytest.raises(MessageError, match="valid window"):
        decode(_window_parts(p_asd=None))


@pytest.mark.parametrize("reason", [None, ""])
def test_invalid_window_without_reason_rejected(reason):
    """An invalid window needs a non-empty reason."""
    with pytest.raises(MessageError, match="needs a reason"):
        decode(_window_parts(valid=False, reason=reason, p_asd=None))


@pytest.mark.parametrize(("field", "value"), [("p_asd", 1.5), ("p_asd", -0.01), ("p_front", 2), ("p_side", -1)])
def test_probability_out_of_range_rejected(field, value):
    """Probabilities must lie in [0, 1]."""
    with pytest.raises(MessageError, match=f"'{field}'.*probability"):
        decode(_window_parts(**{field: value}))


@pytest.mark.parametrize("value", [0, 1, 0.0, 1.0])
def test_probability_bounds_accepted(value):
    """0 and 1 (int or float) are valid probabilities and come back as floats."""
    out = decode(_window_parts(p_asd=value))
    assert out.p_asd == float(value)
    assert isinstance(out.p_asd, float)


def test_probability_bool_rejected():
    """true is not a probability."""
    with pytest.raises(MessageError, match="'p_asd'"):
        decode(_window_parts(p_asd=True))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("frames", {"front": [1, 2]}),
        ("frames", {"front": [1, "2"], "side": []}),
        ("frames", {"front": [True], "side": []}),
        ("visible", {"front": 3}),
        ("visible", {"front": 3, "side": "4"}),
        ("timings_ms", {"detect": "fast"}),
        ("valid", 1),
        ("window", -1),
        ("session", 5),
        ("untrained", "no"),
        ("latency_ms", None),
    ],
)
def test_window_malformed_field_rejected(field, value):
    """Malformed window fields raise MessageError."""
    with pytest.raises(MessageError):
        decode(_window_parts(**{field: value}))


# --------------------------------------------------------------------------- eos rejection


@pytest.mark.parametrize("value", ["many", None, True, [1]])
def test_eos_non_numeric_stat_rejected(value):
    """EOS stats map names to numbers only."""
    header = _header(v=PROTOCOL_VERSION, type="eos", source="front", reason="done", stats={"frames": value})
    with pytest.raises(MessageError, match="stat 'frames'"):
        decode([header])


def test_eos_missing_field_rejected():
    """EOS needs source, reason and stats."""
    with pytest.raises(MessageError, match="misses field 'reason'"):
        decode([_header(v=PROTOCOL_VERSION, type="eos", source="front", stats={})])


# --------------------------------------------------------------------------- known validation gaps (source bugs)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_number_tokens_rejected(token):
    """NaN/Infinity are not JSON; a header carrying them must be rejected, not turned into float('nan')."""
    header = encode_window(_window())[0].decode().replace('"latency_ms":42.0', f'"latency_ms":{token}')
    assert token in header
    with pytest.raises(MessageError):
        decode([header.encode()])


def test_bool_protocol_version_rejected():
    """"v" is an int; true must not pass as version 1 (bool is never accepted as a number elsewhere)."""
    with pytest.raises(MessageError, match="protocol version"):
        decode(_frame_parts(_frame_header(v=True)))


def test_invalid_window_with_p_asd_rejected():
    """The docstring says p_asd is null when the window is invalid."""
    with pytest.raises(MessageError):
        decode(_window_parts(valid=False, reason="no patient: front 3/8", p_asd=0.5))


@pytest.mark.parametrize("weights", [{"front": 0.5}, {"front": 0.5, "side": 1.5}, {"front": "a", "side": 0.5},
                                     [0.5, 0.5]])
def test_window_view_weights_are_checked(weights: Any) -> None:
    """view_weights must be null or map both views to weights in [0, 1]."""
    parts = encode_window(_window())
    header = json.loads(parts[0])
    header["view_weights"] = weights
    with pytest.raises(MessageError, match=r"view_weights|'front'|'side'"):
        decode([json.dumps(header).encode()])


def test_window_without_view_weights_round_trips() -> None:
    score = _window(view_weights=None)
    assert decode(encode_window(score)) == score


# --------------------------------------------------------------------------- camera state, heartbeat

COUNTERS = {"frames_sent": 10, "frames_dropped_injected": 1, "send_drops": 2, "reconnects": 3}


def _state_parts(**changes: Any) -> list[bytes]:
    header = json.loads(encode_camera_state(CameraState("side", "stalled", "no frame for 2.0 s", 0, 5, 6,
                                                        dict(COUNTERS)))[0])
    header.update(changes)
    return [json.dumps(header).encode()]


def test_protocol_version_is_3():
    """Camera state and heartbeat messages came with version 3; older peers are rejected."""
    assert PROTOCOL_VERSION == 3


def test_camera_state_round_trip():
    """Every state survives encode -> decode with its reason, attempt and counters."""
    for state in ("connected", "stalled", "reconnecting", "ended"):
        event = CameraState("front", state, "why", 4, 123, 456, {**COUNTERS, "late_frames": 7})
        assert decode(_to_bytes(encode_camera_state(event))) == event


def test_heartbeat_round_trip():
    """A heartbeat keeps its state, last sequence number (or null) and counters."""
    for last_seq in (None, 0, 99):
        beat = Heartbeat("side", "reconnecting", 1, 2, last_seq, dict(COUNTERS))
        assert decode(_to_bytes(encode_heartbeat(beat))) == beat


@pytest.mark.parametrize(("field", "value", "match"), [
    ("view", "top", "unknown view"),
    ("state", "asleep", "unknown camera state"),
    ("state", None, "field 'state'"),
    ("reason", 3, "field 'reason'"),
    ("attempt", -1, "out of range"),
    ("attempt", True, "type bool"),
    ("mono_ns", 1.5, "field 'mono_ns'"),
    ("counters", [], "field 'counters'"),
    ("counters", {**COUNTERS, "frames_sent": -1}, "counter 'frames_sent'"),
    ("counters", {**COUNTERS, "send_drops": 1.5}, "counter 'send_drops'"),
    ("counters", {**COUNTERS, "reconnects": True}, "counter 'reconnects'"),
    ("counters", {"frames_sent": 1}, "counters miss"),
])
def test_malformed_camera_state_rejected(field: str, value: Any, match: str):
    """Each field of a camera state event is checked on receipt."""
    with pytest.raises(MessageError, match=match):
        decode(_state_parts(**{field: value}))


def test_camera_state_missing_field_and_payload_rejected():
    header = json.loads(_state_parts()[0])
    del header["attempt"]
    with pytest.raises(MessageError, match="misses field 'attempt'"):
        decode([json.dumps(header).encode()])
    with pytest.raises(MessageError, match="no payload parts"):
        decode([*_state_parts(), b"x"])


@pytest.mark.parametrize(("field", "value"), [("last_seq", -1), ("last_seq", "3"), ("state", "gone"),
                                              ("view", None), ("wall_ns", -5)])
def test_malformed_heartbeat_rejected(field: str, value: Any):
    header = json.loads(encode_heartbeat(Heartbeat("front", "connected", 1, 2, 3, dict(COUNTERS)))[0])
    header[field] = value
    with pytest.raises(MessageError):
        decode([json.dumps(header).encode()])
