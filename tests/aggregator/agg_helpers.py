"""Shared builders for the aggregator tests."""

from __future__ import annotations

from dualgait.messages import WindowScore

S = 1_000_000_000
T0 = 100 * S


def score(window: int, p_asd: float | None = 0.5, *, stream: str = "stream-1", code: str | None = None,
          visible: tuple[int, int] = (8, 8), walk: int | None = None, latency_ms: float = 50.0,
          synthetic: bool = False, untrained: bool = False) -> WindowScore:
    """Window ``window`` of a stream starting at T0, one per second; invalid when ``code`` is given."""
    valid = code is None
    return WindowScore(
        session=stream, window=window, frames={"front": [8 * window], "side": [8 * window]},
        t_start_mono_ns=T0 + window * S, t_end_mono_ns=T0 + window * S + 875_000_000,
        t_start_wall_ns=1_700_000_000 * S + window * S, valid=valid,
        reason=None if valid else f"{code}: test", reason_code=code, walk=walk,
        p_asd=p_asd if valid else None, p_front=p_asd if valid else None, p_side=p_asd if valid else None,
        view_weights=None, visible={"front": visible[0], "side": visible[1]}, max_skew_ms=1.0,
        timings_ms={"detect": 20.0, "model": 30.0}, latency_ms=latency_ms, model="late fusion (test)",
        untrained=untrained, synthetic=synthetic)


def rx(window: int) -> int:
    """The aggregator's receive clock for window ``window`` (arrives 1 s after its start)."""
    return T0 + (window + 1) * S
