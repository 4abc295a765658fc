"""Camera state events and heartbeats (capture -> inference -> aggregator); layouts in :mod:`core.messages`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.messages.base import (
    DEFAULT_WALKWAY,
    PROTOCOL_VERSION,
    VIEWS,
    MessageError,
    _dump,
    _get,
    _get_int,
    _get_walkway,
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
    walkway: str = DEFAULT_WALKWAY  # set by inference when it forwards the event


@dataclass(slots=True)
class Heartbeat:
    """The capture process of ``view`` is alive; its camera is in ``state``."""

    view: str
    state: str
    mono_ns: int = 0
    wall_ns: int = 0
    last_seq: int | None = None
    counters: dict[str, int] = field(default_factory=dict)
    walkway: str = DEFAULT_WALKWAY  # set by inference when it forwards the heartbeat


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
                       wall_ns=_get_int(header, "wall_ns", 0), counters=counters,
                       walkway=_get_walkway(header))


def decode_heartbeat(header: dict[str, Any], parts: list[bytes]) -> Heartbeat:
    view, state, counters = _get_view_state_counters(header, parts)
    return Heartbeat(view=view, state=state, mono_ns=_get_int(header, "mono_ns", 0),
                     wall_ns=_get_int(header, "wall_ns", 0),
                     last_seq=_get_int(header, "last_seq", 0, nullable=True), counters=counters,
                     walkway=_get_walkway(header))
