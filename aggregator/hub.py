"""The aggregator without its sockets: every message goes through here to the stages.

``AggregatorHub`` feeds the per-stream scorer (console lines, windows.jsonl, summary.json), the walk
sessions, the store, the metrics and the live view, and returns what the process loop must print, append
and publish (:class:`Output`). On start it carries on with the session that was open in the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aggregator.config import AggregatorConfig
from aggregator.live import LiveState
from aggregator.metrics import AggregatorMetrics
from aggregator.publisher import session_update
from aggregator.scoring import (
    NOT_CLINICAL_NOTE,
    SYNTHETIC_NOTE,
    UNTRAINED_NOTE,
    ScoreAggregator,
    summary_lines,
)
from aggregator.sessions import SessionEvent, SessionTracker, session_summary
from aggregator.store import SessionStore
from dualgait.messages import CameraState, EndOfStream, Heartbeat, Preview, SessionUpdate, WindowScore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Output:
    lines: list[str] = field(default_factory=list)            # console
    records: list[dict[str, Any]] = field(default_factory=list)  # windows.jsonl
    updates: list[SessionUpdate] = field(default_factory=list)   # published
    summary: dict[str, Any] | None = None                        # summary.json (end of stream)


def _fmt(p: float | None) -> str:
    return "-" if p is None else f"{p:.3f}"


def session_line(event: str, summary: dict[str, Any]) -> str:
    if event == "started":
        return f"session {summary['id']} started (stream {summary['stream']})"
    ci = ""
    if summary["ci_low"] is not None:
        ci = f" [{summary['ci_level']:.0%} CI {_fmt(summary['ci_low'])}-{_fmt(summary['ci_high'])}]"
    return (f"session {summary['id']} {event} ({summary['end_reason'] or 'open'}): {summary['valid_windows']} valid "
            f"of {summary['windows']} windows; cumulative p_asd {_fmt(summary['cumulative_p_asd'])}{ci}; "
            f"decision: {summary['decision_text']}")


class AggregatorHub:
    def __init__(self, cfg: AggregatorConfig, *, store: SessionStore | None, metrics: AggregatorMetrics,
                 live: LiveState, now_ns: Callable[[], int]) -> None:
        self.cfg = cfg
        self.store = store
        self.metrics = metrics
        self.live = live
        self.now_ns = now_ns
        self.scorer = ScoreAggregator()
        self.tracker = SessionTracker(cfg.session, next_id=(store.max_id() + 1) if store else 1)
        if store is not None:
            self._resume(store)

    def _resume(self, store: SessionStore) -> None:
        open_ids = store.open_session_ids()
        for stale in open_ids[:-1]:  # only one can be open; close any older one left by a crash
            session = store.load_session(stale)
            session.end_reason, session.ended_wall_ns = "gone", session.started_wall_ns
            store.save_session(session, session_summary(session, self.cfg.session))
        if open_ids:
            session = store.load_session(open_ids[-1])
            self.tracker.resume(session, self.now_ns())
            summary = session_summary(session, self.cfg.session)
            self.live.set_session(summary, new=True, windows=store.windows(session.id)[-self.live.chart.maxlen:])
            self.metrics.session_open.set(1)
            log.info("carrying on with open session %d (%d windows so far)", session.id, session.windows)

    # ------------------------------------------------------------------ messages

    def window(self, score: WindowScore, rx_ns: int) -> Output:
        out = Output()
        record, line = self.scorer.update(score)
        self.metrics.window(score)
        events = self.tracker.window(score, rx_ns)
        session_record = next((e.record for e in events if e.kind == "window"), None)
        self._apply(events, out, console_after=line)
        notes = [NOT_CLINICAL_NOTE] + ([UNTRAINED_NOTE] if score.untrained else []) + (
            [SYNTHETIC_NOTE] if score.synthetic else [])
        self.live.window(score, session_record, notes)
        if session_record is not None:
            record["session_id"] = session_record["session_id"]
        out.records.append(record)
        return out

    def camera(self, event: CameraState) -> Output:
        _record, line = self.scorer.camera_event(event)
        self.metrics.camera(event)
        self.live.camera(event)
        return Output(lines=[line])

    def heartbeat(self, beat: Heartbeat) -> None:
        self.metrics.camera(beat)
        self.live.camera(beat)

    def preview(self, preview: Preview, rx_ns: int) -> None:
        self.metrics.previews.labels(view=preview.view).inc()
        self.live.preview(preview, rx_ns)

    def end_of_stream(self, eos: EndOfStream) -> Output:
        out = Output()
        self._apply(self.tracker.end("end_of_stream"), out)
        self.metrics.end_of_stream(eos)
        self.live.end_of_stream(eos)
        out.summary = self.scorer.finish(eos)
        out.lines.extend(summary_lines(out.summary))
        return out

    def tick(self, rx_ns: int, malformed: int) -> Output:
        """Time passes: the gone time-out, operator commands, the malformed count."""
        out = Output()
        self.metrics.malformed = malformed
        self.live.set_malformed(malformed)
        self._apply(self.tracker.tick(rx_ns), out)
        for command in self.live.take_commands():
            if command.name == "end_session":
                events = self.tracker.end("operator")
                self._apply(events, out)
                command.result = {"ok": True, "ended": events[0].session.id if events else None}
            else:
                command.result = {"ok": False, "error": f"unknown command {command.name!r}"}
            command.done.set()
        return out

    # ------------------------------------------------------------------ session events

    def _apply(self, events: list[SessionEvent], out: Output, console_after: str | None = None) -> None:
        """Store, publish, show and count what happened to the sessions; ``console_after``: the window's line,
        printed after a start and before a window's own session output."""
        printed = console_after is None
        for event in events:
            summary = session_summary(event.session, self.cfg.session)
            if event.kind == "window":
                if not printed:
                    out.lines.append(console_after)
                    printed = True
                if self.store is not None:
                    self.store.add_window(event.session, summary, event.record)
                self.live.set_session(summary)
            else:
                if self.store is not None:
                    self.store.save_session(event.session, summary)
                out.lines.append(session_line(event.kind, summary))
                if event.kind == "started":
                    self.metrics.session_started()
                    self.live.set_session(summary, new=True)
                else:
                    self.metrics.session_ended(event.session.end_reason or "unknown")
                    self.live.set_session(summary)
            out.updates.append(session_update(event.kind, summary, event.record))
        if not printed:
            out.lines.append(console_after)
