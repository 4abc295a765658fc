"""Window score message (inference -> aggregator); layout in :mod:`core.messages`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.messages.base import (
    DEFAULT_WALKWAY,
    PROTOCOL_VERSION,
    REASON_CODES,
    VIEWS,
    MessageError,
    _dump,
    _get,
    _get_int,
    _get_positive,
    _get_prob,
    _get_view_weights,
    _get_walkway,
)

# --------------------------------------------------------------------------- window score


# what inference runs at each overload level (``WindowScore.overload_level``; inference.overload sheds in these steps)
OVERLOAD_STEPS: tuple[str, ...] = (
    "as configured",
    "detector on every 4th sample",
    "detector once per window",
    "detector once per window, every other window scored",
)


@dataclass(slots=True)
class WindowScore:
    """The score of one window (see the module docstring for the field meanings)."""

    session: str
    window: int
    frames: dict[str, list[int]]
    t_start_mono_ns: int
    t_end_mono_ns: int
    t_start_wall_ns: int
    valid: bool
    reason: str | None
    reason_code: str | None
    walk: int | None
    p_asd: float | None
    p_front: float | None
    p_side: float | None
    view_weights: dict[str, float] | None
    visible: dict[str, int]
    max_skew_ms: float
    timings_ms: dict[str, float]
    latency_ms: float
    model: str
    untrained: bool
    duration_s: float  # the window's length (inference.window.duration_s)
    stride_s: float  # time from one window's start to the next's (inference.window.stride_s)
    synthetic: bool = False
    walkway: str = DEFAULT_WALKWAY  # the camera pair (inference may serve several)
    overload_level: int = 0  # inference's load-shedding step when the window was made (0: none)


def encode_window(score: WindowScore) -> list[bytes]:
    header = {"v": PROTOCOL_VERSION, "type": "window", **asdict(score)}
    return [_dump(header)]


def decode_window(header: dict[str, Any], parts: list[bytes]) -> WindowScore:
    if parts:
        raise MessageError("window message carries no payload parts")
    frames = _get(header, "frames", dict)
    views = tuple(v for v in VIEWS if v in frames)  # both, or the one view of a single-view walkway
    if not views or set(frames) != set(views):
        raise MessageError("field 'frames' must map front and side, or one of them, to sequence numbers")
    for view in views:
        seqs = frames.get(view)
        if not isinstance(seqs, list) or not all(type(s) is int and s >= 0 for s in seqs):
            raise MessageError(f"field 'frames.{view}' must be a list of sequence numbers")
    visible = _get(header, "visible", dict)
    if set(visible) != set(views) or not all(type(v) is int and v >= 0 for v in visible.values()):
        raise MessageError(f"field 'visible' must map {' and '.join(views)} (the views of 'frames') to counts")
    timings = _get(header, "timings_ms", dict)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in timings.values()):
        raise MessageError("field 'timings_ms' must map stage names to numbers")
    valid = _get(header, "valid", bool)
    reason = _get(header, "reason", str, nullable=True)
    p_asd = _get_prob(header, "p_asd")
    if valid and (reason is not None or p_asd is None):
        raise MessageError("a valid window needs p_asd and no reason")
    if not valid and (not reason or p_asd is not None):
        raise MessageError("an invalid window needs a reason and no p_asd")
    reason_code = _get(header, "reason_code", str, nullable=True)
    if (reason_code is None) != valid or (reason_code is not None and reason_code not in REASON_CODES):
        raise MessageError(f"field 'reason_code' must be null for a valid window, else one of {REASON_CODES}")
    return WindowScore(
        session=_get(header, "session", str),
        window=_get_int(header, "window", 0),
        frames={view: list(frames[view]) for view in views},
        t_start_mono_ns=_get_int(header, "t_start_mono_ns", 0),
        t_end_mono_ns=_get_int(header, "t_end_mono_ns", 0),
        t_start_wall_ns=_get_int(header, "t_start_wall_ns", 0),
        valid=valid,
        reason=reason,
        reason_code=reason_code,
        walk=_get_int(header, "walk", 0, nullable=True),
        p_asd=p_asd,
        p_front=_get_prob(header, "p_front"),
        p_side=_get_prob(header, "p_side"),
        view_weights=_get_view_weights(header),
        visible={view: int(visible[view]) for view in views},
        max_skew_ms=float(_get(header, "max_skew_ms", (int, float))),
        timings_ms={str(k): float(v) for k, v in timings.items()},
        latency_ms=float(_get(header, "latency_ms", (int, float))),
        model=_get(header, "model", str),
        untrained=_get(header, "untrained", bool),
        duration_s=_get_positive(header, "duration_s"),
        stride_s=_get_positive(header, "stride_s"),
        synthetic=_get(header, "synthetic", bool),
        walkway=_get_walkway(header),
        overload_level=(_get_int(header, "overload_level", 0, len(OVERLOAD_STEPS) - 1) if "overload_level" in header
                        else 0),
    )
