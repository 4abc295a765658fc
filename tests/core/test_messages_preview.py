"""Wire-format tests of the preview (inference -> aggregator) and session-update (aggregator ->) messages."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from core.messages import (
    MAX_PREVIEW_BYTES,
    MessageError,
    Preview,
    SessionUpdate,
    decode,
    encode_preview,
    encode_session,
)


def _jpeg(w: int = 32, h: int = 24) -> bytes:
    return cv2.imencode(".jpg", np.full((h, w, 3), 128, np.uint8))[1].tobytes()


def _preview(**changes) -> Preview:
    p = Preview(view="front", seq=3, capture_mono_ns=10, width=640, height=480, box_xyxy=(10.0, 20.0, 100.0, 400.0),
                track_id=2, jpeg=_jpeg(), preview_width=32, preview_height=24)
    return replace(p, **changes)


def _with_header(parts: list[bytes], **changes) -> list[bytes]:
    header = json.loads(parts[0])
    header.update(changes)
    return [json.dumps(header).encode(), *parts[1:]]


def test_preview_round_trip():
    for p in (_preview(), _preview(box_xyxy=None, track_id=None, view="side")):
        assert decode(encode_preview(p)) == p


@pytest.mark.parametrize("changes, match", [
    ({"view": "top"}, "unknown view"),
    ({"box_xyxy": [10, 20, 5, 400]}, "not a box inside"),
    ({"box_xyxy": [10, 20, 100, 481]}, "not a box inside"),
    ({"box_xyxy": [10, 20, 100]}, "4 finite numbers"),
    ({"box_xyxy": [10, 20, True, 40]}, "4 finite numbers"),
    ({"preview_width": 33}, "header says 33x24"),
    ({"preview_width": 2048}, "out of range"),
    ({"width": 0}, "out of range"),
    ({"track_id": -1}, "out of range"),
])
def test_preview_header_is_validated(changes, match):
    with pytest.raises(MessageError, match=match):
        decode(_with_header(encode_preview(_preview()), **changes))


def test_preview_payload_is_validated():
    header = encode_preview(_preview())[0]
    for payload, match in ((b"", "bytes"), (b"\xff\xd8" + bytes(MAX_PREVIEW_BYTES), "bytes"),
                           (b"PNG....", "not a JPEG"), (b"\xff\xd8garbage", "does not decode")):
        with pytest.raises(MessageError, match=match):
            decode([header, payload])
    with pytest.raises(MessageError, match="payload parts"):
        decode([header])


def test_crops_preview_round_trip_and_kind():
    crops = _preview(kind="crops", box_xyxy=None, track_id=None, width=32, height=24, seq=12)
    assert decode(encode_preview(crops)) == crops
    header = json.loads(encode_preview(_preview())[0])
    assert header["kind"] == "frame"
    del header["kind"]  # optional: a preview without it is a camera frame
    assert decode([json.dumps(header).encode(), _jpeg()]).kind == "frame"
    with pytest.raises(MessageError, match="unknown preview kind 'mask'"):
        decode(_with_header(encode_preview(_preview()), kind="mask"))
    with pytest.raises(MessageError, match="type int"):
        decode(_with_header(encode_preview(_preview()), kind=3))
    with pytest.raises(MessageError, match="no box_xyxy or track_id"):
        decode(encode_preview(replace(crops, box_xyxy=(1.0, 1.0, 5.0, 5.0))))


def _update(**changes) -> SessionUpdate:
    u = SessionUpdate(event="window", session_id=4, stream="s", walk=None, status="open", started_wall_ns=5,
                      ended_wall_ns=None, end_reason=None, windows=3, valid_windows=2,
                      invalid_by_reason={"skew": 1}, cumulative_p_asd=0.6, ci_low=0.4, ci_high=0.8, ci_level=0.95,
                      decision="not_enough_data", min_valid_windows=5, decision_threshold=0.5,
                      window={"window": 9, "t_s": 2.0, "valid": True, "reason_code": None, "p_asd": 0.7},
                      model="m", untrained=False, synthetic=True)
    return replace(u, **changes)


def test_session_round_trip():
    for u in (_update(), _update(event="ended", status="closed", end_reason="gone", ended_wall_ns=9, window=None),
              _update(ci_low=None, ci_high=None, cumulative_p_asd=None, valid_windows=0),
              _update(walkway="bay-2.b_3")):
        assert decode(encode_session(u)) == u


def test_session_names_its_walkway():
    """A session belongs to one walkway (camera pair): the header always carries it, 'main' by default."""
    assert _update().walkway == "main"
    assert json.loads(encode_session(_update(walkway="east"))[0])["walkway"] == "east"
    header = json.loads(encode_session(_update())[0])
    del header["walkway"]
    with pytest.raises(MessageError, match="misses field 'walkway'"):
        decode([json.dumps(header).encode()])


@pytest.mark.parametrize("changes, match", [
    ({"event": "paused"}, "event"),
    ({"status": "closed"}, "closed session needs an end_reason"),
    ({"end_reason": "tired", "status": "closed"}, "end_reason"),
    ({"valid_windows": 4}, "out of range"),
    ({"ci_low": 0.7}, "ci_low"),
    ({"ci_high": None}, "ci_low"),
    ({"decision": "sick"}, "decision"),
    ({"cumulative_p_asd": 1.5}, "probability"),
    ({"window": {"window": 1, "t_s": 0, "valid": True, "reason_code": "skew", "p_asd": 0.5}}, "valid window"),
    ({"invalid_by_reason": {"skew": -1}}, "counts"),
    ({"walkway": "a b"}, "walkway"),
    ({"walkway": ""}, "walkway"),
    ({"walkway": 7}, "walkway"),
])
def test_session_header_is_validated(changes, match):
    with pytest.raises(MessageError, match=match):
        decode(_with_header(encode_session(_update()), **changes))
