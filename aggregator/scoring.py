"""Per-second and cumulative ASD scores from window scores (a stage without sockets).

The cumulative score of a stream is the mean of ``p_asd`` over its valid windows (each valid window
counts once); invalid windows are reported with their reason and never counted. Times come from the
windows' capture clock; the "over N s" of a console line is the valid windows' time, one stride each
(``WindowScore.stride_s``: 1 s by default, so N is then the count). Streams are told apart by inference's
session (stream) id; each walkway (camera pair) has its own streams, so one walkway's windows never change
another's cumulative score.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.messages import DEFAULT_WALKWAY, CameraState, EndOfStream, WindowScore

UNTRAINED_NOTE = "untrained model: scores are meaningless"
SYNTHETIC_NOTE = "model trained on simulated walkers only: scores say nothing about real patients"
NOT_CLINICAL_NOTE = "research tool: not a medical device, no clinical validity"


@dataclass(slots=True)
class StreamAggregate:
    session: str
    walkway: str = DEFAULT_WALKWAY
    model: str = ""
    untrained: bool = False
    synthetic: bool = False
    windows: int = 0
    valid_windows: int = 0
    p_asd_sum: float = 0.0
    valid_s: float = 0.0  # a stride (WindowScore.stride_s) per valid window: the time the score is over
    first_window: int | None = None
    t0_mono_ns: int | None = None  # capture time of the first window's start (from the first window with frames)
    latencies_ms: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def cumulative_p_asd(self) -> float | None:
        return self.p_asd_sum / self.valid_windows if self.valid_windows else None


def _fmt(p: float | None) -> str:
    return "  -  " if p is None else f"{p:.3f}"


def _fmt_s(seconds: float) -> str:
    """Seconds without a needless fraction: ``3`` for 3.0 (what a 1-s stride always gives), ``1.5``, ``0.125``."""
    r = round(seconds, 3)
    return f"{r:.0f}" if r == int(r) else f"{r:.3f}".rstrip("0")


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


class ScoreAggregator:
    """``update(window) -> (record, console line)``; ``finish(eos) -> summary`` (of the eos's walkway).

    ``current``: the stream of the latest window; ``current_by_walkway``: the latest stream of each walkway.
    """

    MAX_CAMERA_EVENTS = 100  # the summary keeps the latest ones (a flapping camera must not grow it forever)

    def __init__(self) -> None:
        self.streams: dict[str, StreamAggregate] = {}
        self.current: StreamAggregate | None = None
        self.current_by_walkway: dict[str, StreamAggregate] = {}
        self.camera_events: list[dict[str, Any]] = []
        self.camera_states: dict[str, dict[str, str]] = {}  # walkway -> view -> state

    def camera_event(self, event: CameraState) -> tuple[dict[str, Any], str]:
        """A camera changed state (forwarded by inference): a record and a console line."""
        self.camera_states.setdefault(event.walkway, {})[event.view] = event.state
        record = {"walkway": event.walkway, "view": event.view, "state": event.state, "reason": event.reason,
                  "attempt": event.attempt, "wall_ns": event.wall_ns, "counters": event.counters}
        self.camera_events = [*self.camera_events[-(self.MAX_CAMERA_EVENTS - 1):], record]
        detail = f" ({event.reason})" if event.reason else ""
        attempt = f", attempt {event.attempt}" if event.attempt else ""
        counters = event.counters
        line = (f"camera {event.view}: {event.state}{detail}{attempt}  [sent {counters.get('frames_sent', 0)}, "
                f"dropped {counters.get('send_drops', 0)}, reconnects {counters.get('reconnects', 0)}]")
        return record, line

    def update(self, score: WindowScore) -> tuple[dict[str, Any], str]:
        agg = self.streams.get(score.session)
        if agg is None:
            agg = self.streams[score.session] = StreamAggregate(session=score.session, walkway=score.walkway)
        self.current = self.current_by_walkway[score.walkway] = agg
        agg.model, agg.untrained, agg.synthetic = score.model, score.untrained, score.synthetic
        if agg.first_window is None:
            agg.first_window = score.window
        if agg.t0_mono_ns is None and score.t_start_mono_ns > 0:
            agg.t0_mono_ns = score.t_start_mono_ns - round((score.window - agg.first_window) * score.stride_s * 1e9)
        agg.windows += 1
        if score.valid and score.p_asd is not None:
            agg.valid_windows += 1
            agg.p_asd_sum += score.p_asd
            agg.valid_s += score.stride_s
        else:
            agg.reasons[_reason_kind(score.reason or "invalid")] += 1
        agg.latencies_ms.append(score.latency_ms)
        if score.t_start_mono_ns > 0 and agg.t0_mono_ns is not None:
            t_s = (score.t_start_mono_ns - agg.t0_mono_ns) / 1e9
        else:  # a window without a single frame has no capture time: placed by window index and stride
            t_s = (score.window - agg.first_window) * score.stride_s
        record = {
            "walkway": score.walkway,
            "session": score.session,
            "window": score.window,
            "t_start_s": round(t_s, 3),
            "t_start_wall_ns": score.t_start_wall_ns,
            "duration_s": score.duration_s,
            "stride_s": score.stride_s,
            "valid": score.valid,
            "reason": score.reason,
            "p_asd": score.p_asd,
            "p_front": score.p_front,
            "p_side": score.p_side,
            "view_weights": score.view_weights,
            "cumulative_p_asd": agg.cumulative_p_asd,
            "valid_windows_so_far": agg.valid_windows,
            "visible": score.visible,
            "frames": score.frames,
            "max_skew_ms": score.max_skew_ms,
            "latency_ms": score.latency_ms,
            "timings_ms": score.timings_ms,
            "model": score.model,
            "untrained": score.untrained,
            "synthetic": score.synthetic,
        }
        if score.valid:
            views = ""
            if score.p_front is not None or score.p_side is not None:
                views = f" (front {_fmt(score.p_front)}, side {_fmt(score.p_side)})"
            if score.view_weights:
                views += f" weights front {score.view_weights['front']:.2f} side {score.view_weights['side']:.2f}"
            body = (f"p_asd {_fmt(score.p_asd)}{views}  "
                    f"cumulative {_fmt(agg.cumulative_p_asd)} over {_fmt_s(agg.valid_s)} s")
        else:
            body = f"invalid: {score.reason}"
        tag = (f"  [{UNTRAINED_NOTE}]" if score.untrained
               else "  [model trained on simulated walkers]" if score.synthetic else "")
        line = (f"window {score.window:3d}  t={t_s:5.1f}s  {body}  latency {score.latency_ms:.0f} ms{tag}")
        return record, line

    def finish(self, eos: EndOfStream | None, walkway: str | None = None) -> dict[str, Any]:
        """Summary of a walkway's current stream (after its end-of-stream message, or at shutdown).

        The walkway is the eos's, else ``walkway``, else the one of the latest window.
        """
        walkway = eos.walkway if eos is not None else walkway
        agg = self.current_by_walkway.get(walkway) if walkway is not None else self.current
        if agg is None and len(self.current_by_walkway) <= 1:
            agg = self.current  # one walkway only: its stream, whatever the eos says
        agg = agg or StreamAggregate(session="", walkway=walkway or DEFAULT_WALKWAY)
        lat = sorted(agg.latencies_ms)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, round(q * (len(lat) - 1)))], 1) if lat else None

        summary: dict[str, Any] = {
            "walkway": agg.walkway,
            "session": agg.session,
            "windows": agg.windows,
            "valid_windows": agg.valid_windows,
            "invalid_reasons": dict(agg.reasons),
            "cumulative_p_asd": agg.cumulative_p_asd,
            "model": agg.model,
            "untrained": agg.untrained,
            "synthetic": agg.synthetic,
            "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "max": lat[-1] if lat else None,
                           "mean": round(statistics.fmean(lat), 1) if lat else None},
            "end_reason": eos.reason if eos else "aggregator stopped",
            "inference_stats": eos.stats if eos else {},
            "camera_states": dict(self.camera_states.get(agg.walkway, {})),
            "camera_events": [e for e in self.camera_events if e["walkway"] == agg.walkway],
            "notes": [NOT_CLINICAL_NOTE] + ([UNTRAINED_NOTE] if agg.untrained else [])
            + ([SYNTHETIC_NOTE] if agg.synthetic else []),
        }
        return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Human-readable end-of-stream summary."""
    stats = summary.get("inference_stats", {})
    lines = [
        f"summary: {summary['valid_windows']} valid of {summary['windows']} windows; "
        f"cumulative p_asd {_fmt(summary['cumulative_p_asd'])}",
        f"model: {summary['model']}",
        f"latency (capture of a window's last frame -> score): p50 {summary['latency_ms']['p50']} ms, "
        f"p95 {summary['latency_ms']['p95']} ms, max {summary['latency_ms']['max']} ms",
    ]
    if summary["invalid_reasons"]:
        lines.append("invalid windows: " + ", ".join(f"{k} x{v}" for k, v in summary["invalid_reasons"].items()))
    if stats.get("samples"):
        views = [v for v in ("front", "side") if stats.get(f"frames_{v}")] or ["front", "side"]  # one camera: its view
        lines.append("patient found in " + " and ".join(f"{stats.get(f'visible_{v}', 0):.0f}/{stats['samples']:.0f} {v}"
                                                         for v in views) + " samples")
    lines.extend(f"NOTE: {note}" for note in summary["notes"])
    return lines
