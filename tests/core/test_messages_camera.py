"""Wire-format tests: camera state events and heartbeats (protocol v3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from message_helpers import (
    _to_bytes,
)

from core.messages import (
    PROTOCOL_VERSION,
    CameraState,
    Heartbeat,
    MessageError,
    decode,
    encode_camera_state,
    encode_heartbeat,
)

# --------------------------------------------------------------------------- camera state, heartbeat

COUNTERS = {"frames_sent": 10, "frames_dropped_injected": 1, "send_drops": 2, "reconnects": 3}


def _state_parts(**changes: Any) -> list[bytes]:
    header = json.loads(encode_camera_state(CameraState("side", "stalled", "no frame for 2.0 s", 0, 5, 6,
                                                        dict(COUNTERS)))[0])
    header.update(changes)
    return [json.dumps(header).encode()]


def test_protocol_version_is_8():
    """Camera state and heartbeat messages came with version 3, window reason codes with 4, walkways with 5,
    window duration and stride with 6, four reason codes with 7, single-view windows and no_side_stride with 8."""
    assert PROTOCOL_VERSION == 8


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
