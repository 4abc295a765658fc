"""What the live view shows, shared between the aggregator's loop (writer) and the HTTP threads (readers).

A stage without sockets: the loop calls the update methods, the HTTP server calls :meth:`LiveState.snapshot`
and :meth:`LiveState.preview_jpeg`, and operator commands travel the other way through
:meth:`LiveState.request` / :meth:`LiveState.take_commands`. Previews are kept in memory only.

The walk session, its chart, the camera states and the previews are kept per walkway (camera pair); the
page shows one walkway at a time (``?walkway=ID``, by default the first one seen). The pipeline panel
(windows, latency, malformed messages) counts every walkway together.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.messages import (
    DEFAULT_WALKWAY,
    OVERLOAD_STEPS,
    VIEWS,
    CameraState,
    EndOfStream,
    Heartbeat,
    Preview,
    WindowScore,
)

LOST_STATES = ("stalled", "reconnecting")
AMBIGUOUS_WALKWAY = "ambiguous_walkway"  # the ``reason`` of an operator command that must name its walkway
CHART_KEYS = ("index", "window", "t_s", "duration_s", "valid", "reason_code", "p_asd", "cumulative_p_asd",
              "ci_low", "ci_high")


class UnknownWalkway(LookupError):
    """The live view was asked about a walkway it has not seen."""


@dataclass(slots=True)
class Command:
    """An operator command from an HTTP thread; the loop sets ``result`` and ``done``."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class WalkwayView:
    """What the page shows of one walkway: its session, chart, cameras, previews and the last window's crops."""

    chart: deque[dict[str, Any]]
    session: dict[str, Any] | None = None
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)
    previews: dict[str, tuple[Preview, int]] = field(default_factory=dict)
    crops: dict[str, tuple[Preview, int]] = field(default_factory=dict)  # view -> model input of the last window
    views: tuple[str, ...] = VIEWS  # its cameras, as its last window says (one view: a single-view walkway)


class LiveState:
    """Thread-safe state of the live view."""

    def __init__(self, chart_windows: int = 300, preview_max_age_s: float = 5.0,
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self._lock = threading.Lock()
        self._commands: queue.Queue[Command] = queue.Queue(maxsize=16)
        self.clock_ns = clock_ns
        self.chart_windows = chart_windows
        self.preview_max_age_s = preview_max_age_s
        self.walkways: dict[str, WalkwayView] = {}  # in the order first seen
        self.windows = 0
        self.by_validity: Counter[str] = Counter()
        self.latencies_ms: deque[float] = deque(maxlen=120)
        self.last_timings_ms: dict[str, float] = {}
        self.notes: list[str] = []
        self.model = ""
        self.malformed = 0
        self.streams_ended = 0
        self.last_eos: dict[str, Any] | None = None
        self.overload: dict[str, int] = {}  # walkway -> inference's overload level at its last window
        self.sources: dict[str, Any] = {"endpoints": [], "refused": []}  # sources.WalkwayOwners.snapshot()

    def _walkway(self, walkway: str) -> WalkwayView:
        """The view of ``walkway``, created when first seen (call with the lock held)."""
        view = self.walkways.get(walkway)
        if view is None:
            view = self.walkways[walkway] = WalkwayView(chart=deque(maxlen=self.chart_windows))
        return view

    # ------------------------------------------------------------------ loop side

    def window(self, score: WindowScore, record: dict[str, Any] | None, notes: list[str]) -> None:
        """A window arrived; ``record`` is its session record (None outside any session)."""
        with self._lock:
            view = self._walkway(score.walkway)
            self.windows += 1
            self.by_validity["valid" if score.valid else (score.reason_code or "unknown")] += 1
            self.latencies_ms.append(score.latency_ms)
            self.last_timings_ms = dict(score.timings_ms)
            self.overload[score.walkway] = score.overload_level
            self.notes, self.model = list(notes), score.model
            view.views = tuple(v for v in VIEWS if v in score.visible)
            if record is not None:
                view.chart.append({k: record[k] for k in CHART_KEYS})

    def set_session(self, summary: dict[str, Any], *, new: bool = False,
                    windows: list[dict[str, Any]] | None = None) -> None:
        """A session's summary changed (its walkway: ``summary["walkway"]``); ``new``: a new session, clear its
        walkway's chart (refill it from ``windows``)."""
        with self._lock:
            view = self._walkway(summary.get("walkway", DEFAULT_WALKWAY))
            view.session = summary
            if new:
                view.chart.clear()
                for record in windows or []:
                    view.chart.append({k: record.get(k) for k in CHART_KEYS})

    def camera(self, event: CameraState | Heartbeat) -> None:
        with self._lock:
            cam = self._walkway(event.walkway).cameras.setdefault(event.view, {})
            if isinstance(event, CameraState):
                cam.update(reason=event.reason, attempt=event.attempt, since_wall_ns=event.wall_ns)
            cam.update(state=event.state, counters=dict(event.counters))

    def preview(self, preview: Preview, rx_ns: int) -> None:
        with self._lock:
            state = self._walkway(preview.walkway)
            (state.crops if preview.kind == "crops" else state.previews)[preview.view] = (preview, rx_ns)

    def end_of_stream(self, eos: EndOfStream) -> None:
        with self._lock:
            self._walkway(eos.walkway)
            self.streams_ended += 1
            self.last_eos = {"walkway": eos.walkway, "reason": eos.reason, "stats": dict(eos.stats)}

    def set_malformed(self, count: int) -> None:
        with self._lock:
            self.malformed = count

    def set_sources(self, sources: dict[str, Any]) -> None:
        """The scores endpoints (inference hosts), their walkways, and refused walkway clashes."""
        with self._lock:
            self.sources = sources

    def take_commands(self) -> list[Command]:
        out = []
        while True:
            try:
                out.append(self._commands.get_nowait())
            except queue.Empty:
                return out

    # ------------------------------------------------------------------ HTTP side

    def request(self, name: str, timeout_s: float = 2.0, **args: Any) -> dict[str, Any]:
        """Queue a command for the loop and wait for its result ({"ok": False, ...} when the loop is busy)."""
        command = Command(name, args)
        try:
            self._commands.put_nowait(command)
        except queue.Full:
            return {"ok": False, "error": "too many pending commands"}
        if not command.done.wait(timeout_s):
            return {"ok": False, "error": "the aggregator did not answer in time"}
        return command.result

    def _pick(self, walkway: str | None) -> tuple[str, WalkwayView | None]:
        """(walkway id, its view): ``walkway`` (UnknownWalkway when not seen), else the first one seen (call with
        the lock held; before any message: DEFAULT_WALKWAY with no view)."""
        if walkway is not None:
            if walkway not in self.walkways:
                raise UnknownWalkway(walkway)
            return walkway, self.walkways[walkway]
        first = next(iter(self.walkways), None)
        return (first, self.walkways[first]) if first is not None else (DEFAULT_WALKWAY, None)

    def preview_jpeg(self, view: str, walkway: str | None = None, *, kind: str = "frame") -> bytes | None:
        """The latest preview JPEG of ``view``: its camera frame, or (``kind`` "crops") its last window's crops."""
        with self._lock:
            try:
                _name, state = self._pick(walkway)
            except UnknownWalkway:
                return None
            kept = (state.crops if kind == "crops" else state.previews) if state is not None else {}
            got = kept.get(view)
        return None if got is None else got[0].jpeg

    def snapshot(self, walkway: str | None = None) -> dict[str, Any]:
        """Everything the page shows of ``walkway`` (default: the first seen); UnknownWalkway when not seen."""
        now = self.clock_ns()
        with self._lock:
            name, state = self._pick(walkway)
            state = state or WalkwayView(chart=deque())
            lat = sorted(self.latencies_ms)
            cameras = {}
            for view in VIEWS:
                cam = dict(state.cameras.get(view, {"state": "unknown", "counters": {}}))
                cam["lost"] = cam.get("state") in LOST_STATES
                got = state.previews.get(view)
                if got is not None:
                    p, rx_ns = got
                    age_s = (now - rx_ns) / 1e9
                    cam["preview"] = {"seq": p.seq, "width": p.width, "height": p.height, "box_xyxy": p.box_xyxy,
                                      "track_id": p.track_id, "age_s": round(age_s, 2),
                                      "stale": age_s > self.preview_max_age_s}
                else:
                    cam["preview"] = None
                cameras[view] = cam
            crops = {}
            for view in VIEWS:
                got = state.crops.get(view)
                if got is not None:
                    p, rx_ns = got
                    age_s = (now - rx_ns) / 1e9
                    crops[view] = {"window": p.seq, "width": p.preview_width, "height": p.preview_height,
                                   "age_s": round(age_s, 2), "stale": age_s > self.preview_max_age_s}
                else:
                    crops[view] = None
            return {
                "walkway": name,
                "walkways": list(self.walkways),
                "views": list(state.views),
                "session": state.session,
                "chart": list(state.chart),
                "cameras": cameras,
                "crops": crops,
                "pipeline": {
                    "windows": self.windows,
                    "by_validity": dict(self.by_validity),
                    "latency_ms": {"last": self.latencies_ms[-1] if lat else None,
                                   "p50": statistics.median(lat) if lat else None,
                                   "p95": lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))] if lat else None},
                    "timings_ms": self.last_timings_ms,
                    "malformed": self.malformed,
                    "streams_ended": self.streams_ended,
                    "last_end_of_stream": self.last_eos,
                    "overload": {walkway: {"level": level, "step": OVERLOAD_STEPS[level]}
                                 for walkway, level in self.overload.items()},
                    "sources": self.sources,
                },
                "model": self.model,
                "notes": self.notes,
            }
