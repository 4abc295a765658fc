"""Walk-session update (aggregator -> any consumer); layout in :mod:`core.messages`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.messages.base import (
    DEFAULT_WALKWAY,
    PROTOCOL_VERSION,
    REASON_CODES,
    MessageError,
    _dump,
    _get,
    _get_int,
    _get_prob,
    _get_walkway,
)

SESSION_EVENTS: tuple[str, ...] = ("started", "window", "ended")
SESSION_END_REASONS: tuple[str, ...] = ("gone", "operator", "new_stream", "new_walk", "end_of_stream")
DECISIONS: tuple[str, ...] = ("not_enough_data", "asd_like", "not_asd_like", "uncertain")


@dataclass(slots=True)
class SessionUpdate:
    """A walk session started, got a window, or ended (see the module docstring for the fields)."""

    event: str
    session_id: int
    stream: str
    walk: int | None
    status: str
    started_wall_ns: int
    ended_wall_ns: int | None
    end_reason: str | None
    windows: int
    valid_windows: int
    invalid_by_reason: dict[str, int]
    cumulative_p_asd: float | None
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    decision: str
    min_valid_windows: int
    decision_threshold: float
    window: dict[str, Any] | None
    model: str
    untrained: bool
    synthetic: bool
    walkway: str = DEFAULT_WALKWAY  # the camera pair whose walk this is


def encode_session(update: SessionUpdate) -> list[bytes]:
    return [_dump({"v": PROTOCOL_VERSION, "type": "session", **asdict(update)})]


def _get_choice(header: dict[str, Any], key: str, choices: tuple[str, ...], *, nullable: bool = False) -> str | None:
    value = _get(header, key, str, nullable=nullable)
    if value is not None and value not in choices:
        raise MessageError(f"field '{key}' = {value!r} is not one of {choices}")
    return value


def _get_window(header: dict[str, Any]) -> dict[str, Any] | None:
    window = _get(header, "window", dict, nullable=True)
    if window is None:
        return None
    valid = _get(window, "valid", bool)
    p_asd = _get_prob(window, "p_asd")
    code = _get_choice(window, "reason_code", REASON_CODES, nullable=True)
    if valid != (p_asd is not None) or valid != (code is None):
        raise MessageError("field 'window': a valid window has p_asd and no reason_code, an invalid one the reverse")
    return {"window": _get_int(window, "window", 0), "t_s": float(_get(window, "t_s", (int, float))),
            "valid": valid, "reason_code": code, "p_asd": p_asd}


def decode_session(header: dict[str, Any], parts: list[bytes]) -> SessionUpdate:
    if parts:
        raise MessageError("session message carries no payload parts")
    status = _get_choice(header, "status", ("open", "closed"))
    end_reason = _get_choice(header, "end_reason", SESSION_END_REASONS, nullable=True)
    if (status == "closed") != (end_reason is not None):
        raise MessageError("a closed session needs an end_reason, an open one none")
    invalid = _get(header, "invalid_by_reason", dict)
    if not all(type(v) is int and v >= 0 for v in invalid.values()):
        raise MessageError("field 'invalid_by_reason' must map reason codes to counts")
    windows = _get_int(header, "windows", 0)
    valid_windows = _get_int(header, "valid_windows", 0, windows)
    low, mean, high = _get_prob(header, "ci_low"), _get_prob(header, "cumulative_p_asd"), _get_prob(header, "ci_high")
    if (low is None) != (high is None) or (low is not None and (mean is None or not low <= mean <= high)):
        raise MessageError("fields 'ci_low' <= 'cumulative_p_asd' <= 'ci_high' must hold (or the interval be null)")
    level = float(_get(header, "ci_level", (int, float)))
    threshold = float(_get(header, "decision_threshold", (int, float)))
    if not (0.0 < level < 1.0 and 0.0 < threshold < 1.0):
        raise MessageError("fields 'ci_level' and 'decision_threshold' must be in (0, 1)")
    return SessionUpdate(
        event=_get_choice(header, "event", SESSION_EVENTS), session_id=_get_int(header, "session_id", 1),
        stream=_get(header, "stream", str), walk=_get_int(header, "walk", 0, nullable=True), status=status,
        started_wall_ns=_get_int(header, "started_wall_ns", 0),
        ended_wall_ns=_get_int(header, "ended_wall_ns", 0, nullable=True), end_reason=end_reason,
        windows=windows, valid_windows=valid_windows, invalid_by_reason={str(k): v for k, v in invalid.items()},
        cumulative_p_asd=mean, ci_low=low, ci_high=high, ci_level=level,
        decision=_get_choice(header, "decision", DECISIONS),
        min_valid_windows=_get_int(header, "min_valid_windows", 1), decision_threshold=threshold,
        window=_get_window(header), model=_get(header, "model", str), untrained=_get(header, "untrained", bool),
        synthetic=_get(header, "synthetic", bool), walkway=_get_walkway(header))
