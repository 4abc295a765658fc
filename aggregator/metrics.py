"""Prometheus metrics of the aggregator (prometheus_client, one registry per aggregator).

Counted here: windows by validity (``valid`` or the reason code), frames used by windows, per-stage and
end-to-end latency histograms, sessions started/ended/open, previews, malformed messages, and the cameras'
own counters (frames sent, send drops, reconnects) as last reported by a camera state event, a heartbeat or
the end-of-stream statistics. No scores are exported: they are patient data.

Per-window, session and camera metrics carry a ``walkway`` label (the camera pair; few, and configured, so
the cardinality stays small). With several scores endpoints (inference hosts), messages per endpoint, the endpoint
serving each walkway and the messages refused because another endpoint serves their walkway carry an
``endpoint`` label (the configured endpoints: few as well).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.messages import CAMERA_STATES, VIEWS, CameraState, EndOfStream, Heartbeat, WindowScore

log = logging.getLogger(__name__)

SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CAMERA_COUNTERS = {"frames_sent": "frames the capture published", "send_drops": "frames the capture dropped "
                   "because a subscriber's queue was full", "reconnects": "camera reconnections",
                   "frames_dropped_injected": "frames dropped on purpose (test fault injection)"}


class _CameraCollector(Collector):
    """The cameras' own counters (absolute values reported upstream) and the aggregator's malformed count."""

    def __init__(self, metrics: AggregatorMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        for key, text in CAMERA_COUNTERS.items():
            family = CounterMetricFamily(f"dualgait_camera_{key}", f"Camera: {text} (as last reported)",
                                         labels=["view", "walkway"])
            for (walkway, view), counters in sorted(self.metrics.camera_counters.items()):
                if key in counters:
                    family.add_metric([view, walkway], counters[key])
            yield family
        gaps = CounterMetricFamily("dualgait_inference_seq_gaps", "Frames inference never received (sequence "
                                   "gaps), as of the last end of stream", labels=["view", "walkway"])
        for (walkway, view), value in sorted(self.metrics.seq_gaps.items()):
            gaps.add_metric([view, walkway], value)
        yield gaps
        malformed = CounterMetricFamily("dualgait_aggregator_malformed_messages", "Messages the aggregator dropped "
                                        "as malformed")
        malformed.add_metric([], self.metrics.malformed)
        yield malformed


class StoreStatus(Protocol):
    """What the metrics read of the session store (aggregator.store.SessionStore)."""

    @property
    def pending_windows(self) -> int: ...

    @property
    def dropped_windows(self) -> int: ...


class _StoreCollector(Collector):
    """The session store's queue, read at each scrape: windows waiting for the database, windows given up on."""

    def __init__(self, store: StoreStatus) -> None:
        self.store = store

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield GaugeMetricFamily("dualgait_store_pending_windows", "Windows received but not yet in the session "
                                "database (queued while it is away)", value=self.store.pending_windows)
        yield CounterMetricFamily("dualgait_store_dropped_windows", "Windows never stored: the queue was full while "
                                  "the session database was away", value=self.store.dropped_windows)


class AggregatorMetrics:
    """Update methods per message; :meth:`serve` exposes ``/metrics``. ``store``: its queue is exported too."""

    def __init__(self, store: StoreStatus | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.windows = Counter("dualgait_windows", "Window scores received, by validity (valid or reason code)",
                               ["validity", "walkway"], registry=r)
        self.window_frames = Counter("dualgait_window_frames", "Frames used by window scores", ["view", "walkway"],
                                     registry=r)
        self.stage_seconds = Histogram("dualgait_stage_seconds", "Time per window spent in each inference stage",
                                       ["stage", "walkway"], buckets=SECONDS_BUCKETS, registry=r)
        self.latency_seconds = Histogram("dualgait_window_latency_seconds", "Capture of a window's last frame -> "
                                         "score published", ["walkway"], buckets=SECONDS_BUCKETS, registry=r)
        self.receive_lag_seconds = Histogram("dualgait_aggregator_receive_seconds", "Aggregator time to handle one "
                                             "window (store, publish, live view)", buckets=SECONDS_BUCKETS,
                                             registry=r)
        self.sessions_started = Counter("dualgait_sessions_started", "Walk sessions started", ["walkway"],
                                        registry=r)
        self.sessions_ended = Counter("dualgait_sessions_ended", "Walk sessions ended, by reason",
                                      ["reason", "walkway"], registry=r)
        self.overload_level = Gauge("dualgait_overload_level", "Inference's load-shedding step at the walkway's last "
                                    "window (0: none; docs/inference.md)", ["walkway"], registry=r)
        self.session_open = Gauge("dualgait_session_open", "1 while a walk session of the walkway is open",
                                  ["walkway"], registry=r)
        self.camera_state = Gauge("dualgait_camera_state", "1 for each camera's current state",
                                  ["view", "state", "walkway"], registry=r)
        self.previews = Counter("dualgait_previews", "Camera previews received", ["view", "walkway"], registry=r)
        self.streams_ended = Counter("dualgait_streams_ended", "End-of-stream messages from inference", ["walkway"],
                                     registry=r)
        self.scores_messages = Counter("dualgait_scores_endpoint_messages", "Messages received from each scores "
                                       "endpoint (inference host)", ["endpoint"], registry=r)
        self.walkway_source = Gauge("dualgait_walkway_source", "1 for the scores endpoint that serves the walkway",
                                    ["walkway", "endpoint"], registry=r)
        self.walkway_refused = Counter("dualgait_walkway_refused_messages", "Messages about a walkway refused "
                                       "because another scores endpoint serves it (walkway ids clash across "
                                       "inference hosts)", ["walkway", "endpoint"], registry=r)
        self._sources: dict[str, str] = {}  # walkway -> the endpoint whose walkway_source is 1
        self.camera_counters: dict[tuple[str, str], dict[str, int]] = {}  # (walkway, view) -> counters
        self.seq_gaps: dict[tuple[str, str], float] = {}                  # (walkway, view) -> gaps
        self.malformed = 0
        r.register(_CameraCollector(self))
        if store is not None:
            r.register(_StoreCollector(store))
        self._server = None

    # ------------------------------------------------------------------ updates

    def window(self, score: WindowScore) -> None:
        walkway = score.walkway
        self.windows.labels(validity="valid" if score.valid else (score.reason_code or "unknown"),
                            walkway=walkway).inc()
        for view, seqs in score.frames.items():  # a single-view walkway's windows have its one view
            self.window_frames.labels(view=view, walkway=walkway).inc(len(seqs))
        for stage, ms in score.timings_ms.items():
            self.stage_seconds.labels(stage=stage, walkway=walkway).observe(max(0.0, ms) / 1e3)
        self.latency_seconds.labels(walkway=walkway).observe(max(0.0, score.latency_ms) / 1e3)
        self.overload_level.labels(walkway=walkway).set(score.overload_level)

    def camera(self, event: CameraState | Heartbeat) -> None:
        self.camera_counters[(event.walkway, event.view)] = dict(event.counters)
        for state in CAMERA_STATES:
            self.camera_state.labels(view=event.view, state=state, walkway=event.walkway).set(
                1 if state == event.state else 0)

    def end_of_stream(self, eos: EndOfStream) -> None:
        self.streams_ended.labels(walkway=eos.walkway).inc()
        for view in VIEWS:
            key = (eos.walkway, view)
            if f"seq_gaps_{view}" in eos.stats:
                self.seq_gaps[key] = float(eos.stats[f"seq_gaps_{view}"])
            counters = {name: int(eos.stats[f"capture_{name}_{view}"]) for name in CAMERA_COUNTERS
                        if f"capture_{name}_{view}" in eos.stats}
            if counters:
                self.camera_counters[key] = {**self.camera_counters.get(key, {}), **counters}

    def scores_endpoint(self, endpoint: str) -> None:
        """An endpoint the aggregator subscribes to: its message count is exported (as 0) before any message."""
        self.scores_messages.labels(endpoint=endpoint)

    def source_message(self, walkway: str, endpoint: str, admission: str) -> None:
        """A message about ``walkway`` from ``endpoint``: ``served``, ``claimed`` or ``refused`` (sources.Admission)."""
        self.scores_messages.labels(endpoint=endpoint).inc()
        if admission == "refused":
            self.walkway_refused.labels(walkway=walkway, endpoint=endpoint).inc()
        elif admission == "claimed":
            previous = self._sources.get(walkway)
            if previous is not None:
                self.walkway_source.labels(walkway=walkway, endpoint=previous).set(0)
            self.walkway_source.labels(walkway=walkway, endpoint=endpoint).set(1)
            self._sources[walkway] = endpoint

    def session_started(self, walkway: str) -> None:
        self.sessions_started.labels(walkway=walkway).inc()
        self.session_open.labels(walkway=walkway).set(1)

    def session_resumed(self, walkway: str) -> None:
        """A session left open by the previous aggregator is carried on with (not counted as started)."""
        self.session_open.labels(walkway=walkway).set(1)

    def session_ended(self, reason: str, walkway: str) -> None:
        self.sessions_ended.labels(reason=reason, walkway=walkway).inc()
        self.session_open.labels(walkway=walkway).set(0)

    # ------------------------------------------------------------------ endpoint

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` in a thread; returns the bound port (OSError with one line)."""
        try:
            self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} (stop the program using "
                          "it, or --set aggregator.metrics.port=PORT, 0: any free)") from None
        bound = int(self._server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
