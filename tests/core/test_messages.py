"""Wire-format tests for core.messages: round trips, the common header, end of stream, past gaps."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from message_helpers import (
    _bgr_image,
    _frame_header,
    _frame_parts,
    _gradient_image,
    _header,
    _to_bytes,
    _window,
    _window_parts,
)

from core.messages import (
    MAX_HEADER_BYTES,
    PROTOCOL_VERSION,
    EndOfStream,
    Frame,
    MessageError,
    WindowScore,
    decode,
    encode_eos,
    encode_frame,
    encode_window,
)

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
    score = _window(valid=False, reason="no patient: front 3/8", reason_code="patient_missing", walk=None,
                    p_asd=None, p_front=None, p_side=None)
    out = decode(_to_bytes(encode_window(score)))
    assert out == score
    assert out.valid is False and out.reason == "no patient: front 3/8" and out.p_asd is None
    assert out.reason_code == "patient_missing" and out.walk is None


# --------------------------------------------------------------------------- common header rejection


def test_decode_empty_list_raises():
    """A message with no parts at all is malformed, not an IndexError."""
    with pytest.raises(MessageError, match="empty"):
        decode([])


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4, 5, 6, 7, 9, None, "8"])
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
    base = _header(v=PROTOCOL_VERSION, type="eos", source="front", reason="", stats={}, walkway="main")
    header = _header(v=PROTOCOL_VERSION, type="eos", source="front", reason="x" * (MAX_HEADER_BYTES - len(base)),
                     stats={}, walkway="main")
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
                                     [0.5, 0.5], {"front": None, "side": 0.0}])  # the last: found by the fuzzer
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


@pytest.mark.parametrize("walkway", ["", "-a", "a b", "x" * 33, "bay/2", "ä", 3, None])
def test_bad_walkway_rejected(walkway):
    """Every message about one camera pair names it with a walkway id (letters, digits, _ . -; 1-32 long)."""
    header = json.loads(_header(v=PROTOCOL_VERSION, type="eos", source="inference", reason="", stats={},
                                walkway=walkway))
    with pytest.raises(MessageError, match="walkway"):
        decode([json.dumps(header).encode()])


def test_walkway_round_trips_and_defaults_to_main():
    from core.messages import DEFAULT_WALKWAY, EndOfStream, decode, encode_eos

    assert decode(encode_eos(EndOfStream(source="inference"))).walkway == DEFAULT_WALKWAY == "main"
    assert decode(encode_eos(EndOfStream(source="inference", walkway="bay-2.b_3"))).walkway == "bay-2.b_3"
