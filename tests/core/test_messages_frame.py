"""Wire-format tests: every malformed frame layout is rejected."""

from __future__ import annotations

import json

import pytest
from message_helpers import (
    FRAME_FIELDS,
    _frame_header,
    _frame_parts,
    _gradient_image,
    _to_bytes,
    _window,
)

from core.messages import (
    MAX_SIDE_PX,
    EndOfStream,
    Frame,
    MessageError,
    decode,
    encode_eos,
    encode_frame,
    encode_window,
)

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
    """A JPEG whose size differs from the header is rejected (from its frame header, before decoding)."""
    image = _gradient_image(64, 96)
    payload = encode_frame(Frame("front", 0, 0, 0, image), encoding="jpeg")[1]
    header = _frame_header(encoding="jpeg", width=width, height=height, channels=channels)
    with pytest.raises(MessageError, match="jpeg declares 96x64x3"):
        decode(_frame_parts(header, bytes(payload)))
