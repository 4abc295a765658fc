"""Walk sessions from window scores (a stage without sockets).

Sessions are kept per walkway (a front/side camera pair; ``WindowScore.walkway``): one inference process may
serve several walkways, and their windows arrive interleaved. Each walkway has at most one open session, and
everything below applies within one walkway: a window of walkway A never ends a session of walkway B.

A session starts with the first window in which the patient is seen in both views (both ``visible``
counts >= ``seen_min_visible_frames``). It ends when

* no window has seen the patient for ``gone_timeout_s``, on the windows' capture clock (windows keep
  coming but show nobody) or on the aggregator's receive clock (nothing arrives at all): ``gone``;
* the operator ends it (CLI ``dualgait session end [--walkway ID]`` or HTTP ``POST /api/session/end``):
  ``operator``;
* inference starts a new stream on that walkway or locks onto another walker (``walk`` changes):
  ``new_stream`` / ``new_walk``;
* the walkway's stream ends (end-of-stream from inference, which names its walkway): ``end_of_stream``.

Every window received while a session is open belongs to it (also the invalid ones: they are stored with
their reason and never counted in the score). Windows outside any session are only counted in metrics.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aggregator.config import SessionConfig
from aggregator.scoring import NOT_CLINICAL_NOTE, SYNTHETIC_NOTE, UNTRAINED_NOTE
from aggregator.stats import DECISION_TEXT, Cumulative, cumulative
from core.messages import DEFAULT_WALKWAY, WindowScore

END_REASONS = ("gone", "operator", "new_stream", "new_walk", "end_of_stream")


@dataclass(slots=True)
class WalkSession:
    """One walk: its identity, its windows' scores and its cumulative score."""

    id: int
    stream: str
    walk: int | None
    started_wall_ns: int
    t0_mono_ns: int                  # capture time of the first window (time origin of t_s)
    last_seen_mono_ns: int           # capture time (end) of the last window that saw the patient
    last_seen_rx_ns: int             # aggregator receive clock of that window
    model: str = ""
    untrained: bool = False
    synthetic: bool = False
    windows: int = 0
    p_values: list[float] = field(default_factory=list)
    invalid_by_reason: Counter[str] = field(default_factory=Counter)
    ended_wall_ns: int | None = None
    end_reason: str | None = None
    score: Cumulative | None = None
    last_window: int | None = None   # the latest window's index and time in the session
    last_t_s: float = 0.0
    walkway: str = DEFAULT_WALKWAY   # the camera pair whose walk this is

    @property
    def open(self) -> bool:
        return self.end_reason is None


@dataclass(slots=True)
class SessionEvent:
    """What happened: ``started``, ``window`` (with the window's record) or ``ended``."""

    kind: str
    session: WalkSession
    record: dict[str, Any] | None = None


def sees_patient(score: WindowScore, min_visible: int) -> bool:
    """Every camera of the window's walkway (both views, or the one of a single-view walkway) found the patient."""
    return all(n >= min_visible for n in score.visible.values())


class AmbiguousWalkway(ValueError):
    """An operator command names no walkway while several have an open session."""


class SessionTracker:
    """``window(score, rx_ns)`` / ``tick(rx_ns)`` / ``end(reason, walkway)`` -> list of :class:`SessionEvent`.

    ``open_sessions``: the open session of each walkway that has one (session ids are shared by all walkways).
    """

    def __init__(self, cfg: SessionConfig, *, next_id: int = 1,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.cfg = cfg
        self.next_id = next_id
        self.open_sessions: dict[str, WalkSession] = {}
        self.wall_clock_ns = wall_clock_ns
        self.outside_windows = 0

    @property
    def current(self) -> WalkSession | None:
        """The open session while at most one walkway has one (single-walkway use); ValueError with several."""
        if len(self.open_sessions) > 1:
            raise AmbiguousWalkway(f"several walkways have an open session: {', '.join(self.open_sessions)}")
        return next(iter(self.open_sessions.values()), None)

    def resolve_walkway(self, walkway: str | None) -> str | None:
        """``walkway`` itself when given; else the only walkway with an open session (None: none open).

        Raises :class:`AmbiguousWalkway` when none is given and several are open.
        """
        if walkway is not None:
            return walkway
        if len(self.open_sessions) > 1:
            raise AmbiguousWalkway(f"several walkways have an open session ({', '.join(sorted(self.open_sessions))})"
                                   ": name one with --walkway ID")
        return next(iter(self.open_sessions), None)

    # ------------------------------------------------------------------ inputs

    def window(self, score: WindowScore, rx_ns: int) -> list[SessionEvent]:
        events: list[SessionEvent] = []
        walkway = score.walkway
        cur = self.open_sessions.get(walkway)
        gone_ns = int(self.cfg.gone_timeout_s * 1e9)
        if cur is not None:
            if score.session != cur.stream:
                events += self.end("new_stream", walkway)
            elif score.walk is not None and cur.walk is not None and score.walk != cur.walk:
                events += self.end("new_walk", walkway)
            elif score.t_end_mono_ns - cur.last_seen_mono_ns > gone_ns:
                events += self.end("gone", walkway)
        seen = sees_patient(score, self.cfg.seen_min_visible_frames)
        cur = self.open_sessions.get(walkway)
        if cur is None:
            if not seen:
                self.outside_windows += 1
                return events
            cur = self.open_sessions[walkway] = WalkSession(
                id=self.next_id, stream=score.session, walk=score.walk, started_wall_ns=self.wall_clock_ns(),
                t0_mono_ns=score.t_start_mono_ns, last_seen_mono_ns=score.t_end_mono_ns, last_seen_rx_ns=rx_ns,
                walkway=walkway)
            self.next_id += 1
            self._rescore(cur)
            events.append(SessionEvent("started", cur))
        if seen:
            cur.last_seen_mono_ns, cur.last_seen_rx_ns = score.t_end_mono_ns, rx_ns
            if cur.walk is None:
                cur.walk = score.walk
        cur.model, cur.untrained, cur.synthetic = score.model, score.untrained, score.synthetic
        cur.windows += 1
        if score.valid and score.p_asd is not None:
            cur.p_values.append(score.p_asd)
            self._rescore(cur)
        else:
            cur.invalid_by_reason[score.reason_code or "unknown"] += 1
        events.append(SessionEvent("window", cur, self._record(cur, score)))
        return events

    def tick(self, rx_ns: int) -> list[SessionEvent]:
        """Time passes: end each session whose walkway has not seen the patient for ``gone_timeout_s``."""
        events: list[SessionEvent] = []
        for walkway, cur in list(self.open_sessions.items()):
            if rx_ns - cur.last_seen_rx_ns > self.cfg.gone_timeout_s * 1e9:
                events += self.end("gone", walkway)
        return events

    def end(self, reason: str, walkway: str | None = None) -> list[SessionEvent]:
        """End the open session of ``walkway`` (no-op without one).

        ``walkway`` None: the only open session (:meth:`resolve_walkway`; AmbiguousWalkway with several).
        """
        if reason not in END_REASONS:
            raise ValueError(f"unknown end reason {reason!r}")
        walkway = self.resolve_walkway(walkway)
        cur = self.open_sessions.pop(walkway, None) if walkway is not None else None
        if cur is None:
            return []
        cur.end_reason, cur.ended_wall_ns = reason, self.wall_clock_ns()
        return [SessionEvent("ended", cur)]

    def resume(self, session: WalkSession, rx_ns: int) -> None:
        """Carry on with a session that was open when the aggregator stopped (restored from the store).

        Its receive clock restarts now: the gone time-out counts from the restart. One per walkway.
        """
        session.last_seen_rx_ns = rx_ns
        self._rescore(session)
        self.open_sessions[session.walkway] = session
        self.next_id = max(self.next_id, session.id + 1)

    # ------------------------------------------------------------------ outputs

    def _rescore(self, session: WalkSession) -> None:
        c = self.cfg
        session.score = cumulative(session.p_values, level=c.ci_level, min_valid_windows=c.min_valid_windows,
                                   threshold=c.decision_threshold, autocorrelation=c.ci_autocorrelation)

    def _record(self, session: WalkSession, score: WindowScore) -> dict[str, Any]:
        assert session.score is not None
        if score.t_start_mono_ns > 0:
            t_s = round((score.t_start_mono_ns - session.t0_mono_ns) / 1e9, 3)
        else:  # a window without a single frame has no capture time: place it by window index and stride
            previous = session.last_window if session.last_window is not None else score.window - 1
            t_s = round(session.last_t_s + max(1, score.window - previous) * score.stride_s, 3)
        session.last_window, session.last_t_s = score.window, t_s
        return {
            "session_id": session.id,
            "walkway": session.walkway,
            "index": session.windows - 1,
            "stream": score.session,
            "window": score.window,
            "walk": score.walk,
            "t_s": t_s,
            "t_start_wall_ns": score.t_start_wall_ns,
            "duration_s": score.duration_s,
            "stride_s": score.stride_s,
            "valid": score.valid,
            "reason_code": score.reason_code,
            "reason": score.reason,
            "p_asd": score.p_asd,
            "p_front": score.p_front,
            "p_side": score.p_side,
            "visible_front": score.visible.get("front"),  # null: no camera for that view (single-view walkway)
            "visible_side": score.visible.get("side"),
            "latency_ms": score.latency_ms,
            "timings_ms": dict(score.timings_ms),
            **session.score.as_dict(),
        }

    def summary(self, session: WalkSession) -> dict[str, Any]:
        return session_summary(session, self.cfg)


def session_summary(session: WalkSession, cfg: SessionConfig) -> dict[str, Any]:
    """Everything about a session that the store, the live view and the publisher show."""
    score = session.score or cumulative(session.p_values, level=cfg.ci_level,
                                        min_valid_windows=cfg.min_valid_windows,
                                        threshold=cfg.decision_threshold, autocorrelation=cfg.ci_autocorrelation)
    return {
        "id": session.id,
        "walkway": session.walkway,
        "stream": session.stream,
        "walk": session.walk,
        "status": "open" if session.open else "closed",
        "started_wall_ns": session.started_wall_ns,
        "ended_wall_ns": session.ended_wall_ns,
        "end_reason": session.end_reason,
        "windows": session.windows,
        "invalid_by_reason": dict(session.invalid_by_reason),
        **score.as_dict(),
        "decision_text": DECISION_TEXT[score.decision],
        "ci_level": cfg.ci_level,
        "min_valid_windows": cfg.min_valid_windows,
        "decision_threshold": cfg.decision_threshold,
        "model": session.model,
        "untrained": session.untrained,
        "synthetic": session.synthetic,
        "notes": [NOT_CLINICAL_NOTE] + ([UNTRAINED_NOTE] if session.untrained else [])
        + ([SYNTHETIC_NOTE] if session.synthetic else []),
    }
