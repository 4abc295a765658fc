"""Wire-format tests: every malformed window score is rejected."""

from __future__ import annotations

import json
import math

import pytest
from message_helpers import (
    _window,
    _window_parts,
)

from core.messages import (
    PROTOCOL_VERSION,
    MessageError,
    decode,
    decode_window,
    encode_window,
)

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


@pytest.mark.parametrize(("changes"), [
    {"valid": False, "reason": "x", "p_asd": None, "reason_code": None},  # invalid needs a code
    {"reason_code": "skew"},  # a valid window has none
    {"valid": False, "reason": "x", "p_asd": None, "reason_code": "bad luck"},  # not a known code
])
def test_reason_code_checked(changes):
    """reason_code is one of REASON_CODES exactly when the window is invalid."""
    with pytest.raises(MessageError, match="reason_code"):
        decode(_window_parts(**changes))


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


# --------------------------------------------------------------------------- window duration and stride (protocol 6)


def test_duration_and_stride_round_trip():
    """duration_s and stride_s (here 2 s and 0.5 s: overlapping windows) come back as sent, as floats."""
    score = _window(duration_s=2.0, stride_s=0.5)
    header = json.loads(encode_window(score)[0])
    assert (header["v"], header["duration_s"], header["stride_s"]) == (PROTOCOL_VERSION, 2.0, 0.5)
    assert decode(encode_window(score)) == score
    out = decode(_window_parts(duration_s=1, stride_s=3))  # integers are numbers of seconds too
    assert (out.duration_s, out.stride_s) == (1.0, 3.0)
    assert isinstance(out.duration_s, float) and isinstance(out.stride_s, float)


@pytest.mark.parametrize("field", ["duration_s", "stride_s"])
@pytest.mark.parametrize("value", [0, 0.0, -0.5, -1, True, "1.0", None, [1.0]])
def test_bad_duration_or_stride_rejected(field, value):
    """duration_s and stride_s must be finite numbers > 0."""
    with pytest.raises(MessageError, match=f"'{field}'"):
        decode(_window_parts(**{field: value}))


@pytest.mark.parametrize("field", ["duration_s", "stride_s"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_duration_or_stride_rejected(field, value):
    """NaN and inf are refused by the window decoder itself, and already by the header parser on the wire."""
    header = json.loads(encode_window(_window())[0])
    with pytest.raises(MessageError, match=f"'{field}'.*finite"):
        decode_window({**header, field: value}, [])
    with pytest.raises(MessageError):
        decode([json.dumps({**header, field: value}).encode()])  # NaN / Infinity tokens


@pytest.mark.parametrize("field", ["duration_s", "stride_s"])
def test_missing_duration_or_stride_rejected(field):
    """A window without its duration or stride (a protocol 5 layout) is refused."""
    header = json.loads(encode_window(_window())[0])
    del header[field]
    with pytest.raises(MessageError, match=f"misses field '{field}'"):
        decode([json.dumps(header).encode()])


# --------------------------------------------------------------------------- single-view windows (protocol 8)


def test_single_view_window_round_trips():
    """A single-view walkway's window carries its one view in frames and visible."""
    out = decode(_window_parts(frames={"side": [0, 3, 6]}, visible={"side": 3}))
    assert out.frames == {"side": [0, 3, 6]} and out.visible == {"side": 3}
    assert decode(encode_window(out)) == out


@pytest.mark.parametrize(("frames", "visible", "match"), [
    ({}, {}, "must map front and side, or one of them"),
    ({"top": [1]}, {"top": 1}, "must map front and side, or one of them"),
    ({"side": [1], "top": [1]}, {"side": 1}, "must map front and side, or one of them"),
    ({"side": [1]}, {"front": 1, "side": 1}, "'visible' must map side"),
    ({"front": [1], "side": [1]}, {"side": 1}, "'visible' must map front and side"),
])
def test_window_views_must_agree(frames, visible, match):
    with pytest.raises(MessageError, match=match):
        decode(_window_parts(frames=frames, visible=visible))
