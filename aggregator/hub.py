"""The aggregator without its sockets: every message goes through here to the stages.

``AggregatorHub`` feeds the per-stream scorer (console lines, windows.jsonl, summary.json), the walk
sessions, the store, the metrics and the live view, and returns what the process loop must print, append
and publish (:class:`Output`). On start it carries on with the session that was open in the store, one per
walkway.

Walkways (camera pairs, of one or several inference hosts) are kept apart everywhere: sessions, cumulative
scores, the live view. With several scores endpoints, :meth:`AggregatorHub.admit` refuses messages about a
walkway that another endpoint serves (aggregator.sources.WalkwayOwners). Console lines get a ``[walkway]``
prefix once more than one walkway has been seen (a single walkway's output stays as it always was), and
summary.json then holds one summary per walkway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aggregator.config import AggregatorConfig
from aggregator.live import AMBIGUOUS_WALKWAY, LiveState
from aggregator.metrics import AggregatorMetrics
from aggregator.publisher import session_update
from aggregator.scoring import (
    NOT_CLINICAL_NOTE,
    SYNTHETIC_NOTE,
    UNTRAINED_NOTE,
    ScoreAggregator,
    summary_lines,
)
from aggregator.sessions import AmbiguousWalkway, SessionEvent, SessionTracker, session_summary
from aggregator.sources import WalkwayOwners
from aggregator.store import SessionStore
from core.messages import CameraState, EndOfStream, Heartbeat, Preview, SessionUpdate, WindowScore

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
                 live: LiveState, now_ns: Callable[[], int], endpoints: list[str] | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.metrics = metrics
        self.live = live
        self.now_ns = now_ns
        self.scorer = ScoreAggregator()
        self.walkways: dict[str, None] = {}           # walkways seen, in order (an ordered set)
        self.summaries: dict[str, dict[str, Any]] = {}  # the latest stream summary of each walkway
        self.ended: set[str] = set()                  # walkways whose stream ended (no window since its eos)
        self.owners = WalkwayOwners(endpoints or [], clock_s=lambda: now_ns() / 1e9)  # endpoint of each walkway
        for endpoint in self.owners.endpoints:
            metrics.scores_endpoint(endpoint)
        self.tracker = SessionTracker(cfg.session, next_id=(store.max_id() + 1) if store else 1)
        if store is not None:
            self._resume(store)

    def _resume(self, store: SessionStore) -> None:
        newest: dict[str, int] = {}
        for session_id, walkway in store.open_sessions():  # ordered by id
            if walkway in newest:  # one open per walkway; close an older one left by a crash
                session = store.load_session(newest[walkway])
                session.end_reason, session.ended_wall_ns = "gone", session.started_wall_ns
                store.save_session(session, session_summary(session, self.cfg.session))
            newest[walkway] = session_id
        for walkway, session_id in sorted(newest.items(), key=lambda item: item[1]):
            session = store.load_session(session_id)
            self.tracker.resume(session, self.now_ns())
            self._seen(walkway)
            summary = session_summary(session, self.cfg.session)
            self.live.set_session(summary, new=True, windows=store.windows(session.id)[-self.live.chart_windows:])
            self.metrics.session_resumed(walkway)
            log.info("carrying on with open session %d of walkway %s (%d windows so far)", session.id, walkway,
                     session.windows)

    def _seen(self, walkway: str) -> None:
        self.walkways.setdefault(walkway, None)

    def _line(self, walkway: str, line: str) -> str:
        """``line`` with its walkway in front once several walkways have been seen."""
        return f"[{walkway}] {line}" if len(self.walkways) > 1 else line

    # ------------------------------------------------------------------ messages

    def admit(self, walkway: str, endpoint: str) -> bool:
        """Whether a message about ``walkway`` from scores endpoint ``endpoint`` is taken (False: another endpoint
        serves that walkway; counted and logged)."""
        admission = self.owners.admit(walkway, endpoint)
        self.metrics.source_message(walkway, endpoint, admission)
        return admission != "refused"

    @property
    def all_sources_heard(self) -> bool:
        """Every scores endpoint has sent something."""
        return self.owners.all_heard

    def window(self, score: WindowScore, rx_ns: int) -> Output:
        out = Output()
        self._seen(score.walkway)
        self.ended.discard(score.walkway)
        record, line = self.scorer.update(score)
        self.metrics.window(score)
        events = self.tracker.window(score, rx_ns)
        session_record = next((e.record for e in events if e.kind == "window"), None)
        self._apply(events, out, console_after=self._line(score.walkway, line))
        notes = [NOT_CLINICAL_NOTE] + ([UNTRAINED_NOTE] if score.untrained else []) + (
            [SYNTHETIC_NOTE] if score.synthetic else [])
        self.live.window(score, session_record, notes)
        if session_record is not None:
            record["session_id"] = session_record["session_id"]
        out.records.append(record)
        return out

    def camera(self, event: CameraState) -> Output:
        self._seen(event.walkway)
        _record, line = self.scorer.camera_event(event)
        self.metrics.camera(event)
        self.live.camera(event)
        return Output(lines=[self._line(event.walkway, line)])

    def heartbeat(self, beat: Heartbeat) -> None:
        self._seen(beat.walkway)
        self.metrics.camera(beat)
        self.live.camera(beat)

    def preview(self, preview: Preview, rx_ns: int) -> None:
        self._seen(preview.walkway)
        self.metrics.previews.labels(view=preview.view, walkway=preview.walkway).inc()
        self.live.preview(preview, rx_ns)

    def end_of_stream(self, eos: EndOfStream) -> Output:
        """The end of one walkway's stream: its session ends, its summary is written."""
        out = Output()
        self._seen(eos.walkway)
        self.ended.add(eos.walkway)
        self._apply(self.tracker.end("end_of_stream", eos.walkway), out)
        self.metrics.end_of_stream(eos)
        self.live.end_of_stream(eos)
        summary = self.scorer.finish(eos)
        self.summaries[summary["walkway"]] = summary
        out.summary = self.summary_document()
        out.lines.extend(self._line(summary["walkway"], line) for line in summary_lines(summary))
        return out

    @property
    def all_streams_ended(self) -> bool:
        """Every walkway seen so far has ended its stream (``exit_on_end_of_stream`` waits for this)."""
        return bool(self.walkways) and self.ended.issuperset(self.walkways)

    def summary_document(self) -> dict[str, Any]:
        """summary.json: the one walkway's summary, or ``{"walkways": {id: summary}}`` once several were seen."""
        if len(self.walkways) <= 1 and len(self.summaries) <= 1:
            return next(iter(self.summaries.values())) if self.summaries else self.scorer.finish(None)
        order = [*self.walkways, *(w for w in self.summaries if w not in self.walkways)]
        return {"walkways": {w: self.summaries[w] for w in order if w in self.summaries}}

    def stop_summary(self) -> dict[str, Any] | None:
        """At shutdown: summary.json with the streams that did not end (None when every scored stream ended)."""
        pending = [w for w, agg in self.scorer.current_by_walkway.items()
                   if self.summaries.get(w, {}).get("session") != agg.session]
        if not pending:
            return None
        for walkway in pending:  # the stream goes on; its walk session stays open in the database
            self.summaries[walkway] = self.scorer.finish(None, walkway)
        return self.summary_document()

    def tick(self, rx_ns: int, malformed: int) -> Output:
        """Time passes: the gone time-out, operator commands, the malformed count."""
        out = Output()
        self.metrics.malformed = malformed
        self.live.set_malformed(malformed)
        self.live.set_sources(self.owners.snapshot())
        self._apply(self.tracker.tick(rx_ns), out)
        for command in self.live.take_commands():
            if command.name == "end_session":
                command.result = self._end_session(command.args.get("walkway"), out)
            else:
                command.result = {"ok": False, "error": f"unknown command {command.name!r}"}
            command.done.set()
        return out

    def _end_session(self, walkway: str | None, out: Output) -> dict[str, Any]:
        """The operator ends the open session of ``walkway`` (None: of the only walkway with one)."""
        try:
            walkway = self.tracker.resolve_walkway(walkway)
        except AmbiguousWalkway as exc:
            return {"ok": False, "error": str(exc), "reason": AMBIGUOUS_WALKWAY,
                    "walkways": sorted(self.tracker.open_sessions)}
        events = self.tracker.end("operator", walkway) if walkway is not None else []
        self._apply(events, out)
        return {"ok": True, "ended": events[0].session.id if events else None, "walkway": walkway}

    # ------------------------------------------------------------------ session events

    def _apply(self, events: list[SessionEvent], out: Output, console_after: str | None = None) -> None:
        """Store, publish, show and count what happened to the sessions; ``console_after``: the window's line,
        printed after a start and before a window's own session output."""
        printed = console_after is None
        for event in events:
            summary = session_summary(event.session, self.cfg.session)
            walkway = event.session.walkway
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
                out.lines.append(self._line(walkway, session_line(event.kind, summary)))
                if event.kind == "started":
                    self.metrics.session_started(walkway)
                    self.live.set_session(summary, new=True)
                else:
                    self.metrics.session_ended(event.session.end_reason or "unknown", walkway)
                    self.live.set_session(summary)
            out.updates.append(session_update(event.kind, summary, event.record))
        if not printed:
            out.lines.append(console_after)
