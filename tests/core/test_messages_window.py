"""Wire-format tests: every malformed window score is rejected."""

from __future__ import annotations

import pytest
from message_helpers import (
    _window_parts,
)

from core.messages import (
    MessageError,
    decode,
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
