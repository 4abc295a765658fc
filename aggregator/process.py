"""The aggregator process: window scores, camera events and previews in; console lines, windows.jsonl,
summary.json, the session database, session updates (ZeroMQ PUB), the live view and /metrics out.

The only module of the aggregator that touches sockets (one SUB per scores endpoint: :class:`ScoreSources`);
everything else is in :class:`AggregatorHub`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import zmq

from aggregator.hub import AggregatorHub, Output
from aggregator.live import LiveState
from aggregator.metrics import AggregatorMetrics
from aggregator.store import open_store
from aggregator.web import LiveServer
from core.messages import CameraState, EndOfStream, Heartbeat, Message, Preview, WindowScore, encode_session
from core.security import Curve, scores_names
from core.transport import Receiver, StopFlag, mark_ready, pub_socket, sub_socket

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)

POLL_MS = 200


class ScoreSources:
    """One SUB socket per scores endpoint, polled together; each message comes with its endpoint."""

    def __init__(self, ctx: zmq.Context, endpoints: list[str], *, hwm: int, curve: Curve | None = None) -> None:
        self.receivers: dict[str, Receiver] = {}
        self.poller = zmq.Poller()
        for endpoint in endpoints:  # OSError (one line) when an endpoint is malformed; ctx.destroy closes the rest
            receiver = Receiver(sub_socket(ctx, [endpoint], hwm=hwm, curve=curve))
            self.receivers[endpoint] = receiver
            self.poller.register(receiver.sock, zmq.POLLIN)

    @property
    def endpoints(self) -> list[str]:
        return list(self.receivers)

    @property
    def malformed(self) -> int:
        return sum(r.malformed for r in self.receivers.values())

    def poll(self, timeout_ms: int) -> Iterator[tuple[str, Message, int]]:
        """Wait up to ``timeout_ms`` for input on any endpoint, then yield (endpoint, message, receive time ns) for
        what is queued (at most 256 messages per endpoint per call, so no host can starve another)."""
        ready = dict(self.poller.poll(timeout_ms))
        for endpoint, receiver in self.receivers.items():
            if receiver.sock in ready:
                for message, received_ns in receiver.poll(0):
                    yield endpoint, message, received_ns


def _echo(line: str, enabled: bool) -> None:
    if enabled:
        print(line, flush=True)  # CLI output: the live scores are this process's product


class _Outputs:
    """Where the hub's outputs go: console, windows.jsonl, summary.json, the PUB socket."""

    def __init__(self, console: bool, out_dir: Path | None, pub: zmq.Socket | None) -> None:
        self.console = console
        self.out_dir = out_dir
        self.pub = pub
        self.jsonl: IO[str] | None = None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.jsonl = open(out_dir / "windows.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def emit(self, out: Output) -> None:
        for line in out.lines:
            _echo(line, self.console)
        if self.jsonl is not None:
            for record in out.records:
                self.jsonl.write(json.dumps(record) + "\n")
            self.jsonl.flush()
        if self.pub is not None:
            for update in out.updates:
                try:
                    self.pub.send_multipart(encode_session(update), zmq.NOBLOCK)
                except zmq.Again:  # PUB never blocks; kept for safety
                    log.warning("session update dropped: publisher queue full")
        if out.summary is not None:
            self.write_summary(out.summary)

    def write_summary(self, summary: dict) -> None:
        if self.out_dir is not None:
            (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()


def run_aggregator(cfg: DualgaitConfig, *, ready_file: str | None = None) -> int:
    acfg = cfg.aggregator
    # ConfigError before anything starts
    curve = Curve.for_process(cfg, binds=("publish",), connects=tuple(scores_names(cfg)))
    stop = StopFlag()
    store = open_store(acfg.store) if acfg.store.url else None  # StoreError (one line) before anything starts
    metrics = AggregatorMetrics(store=store)
    live = LiveState(chart_windows=acfg.http.chart_windows, preview_max_age_s=acfg.http.preview_max_age_s)
    server: LiveServer | None = None
    ctx = zmq.Context()
    outputs: _Outputs | None = None
    try:
        endpoints = cfg.endpoints.scores_list  # one per inference host (docs/aggregator.md)
        hub = AggregatorHub(acfg, store=store, metrics=metrics, live=live, now_ns=time.monotonic_ns,
                            endpoints=endpoints)
        receiver = ScoreSources(ctx, endpoints, hwm=10_000, curve=curve)
        pub = pub_socket(ctx, acfg.publish_endpoint, hwm=1_000, curve=curve) if acfg.publish_endpoint else None
        if acfg.metrics.enabled:
            metrics.serve(acfg.metrics.host, acfg.metrics.port)
        if acfg.http.enabled:
            server = LiveServer(live, acfg.http.host, acfg.http.port, access_token=acfg.http.access_token)
            if acfg.console:
                print(f"live view: {server.url}", flush=True)
        outputs = _Outputs(acfg.console, Path(acfg.output_dir) if acfg.output_dir else None, pub)
        mark_ready(ready_file)
        _loop(hub, receiver, outputs, stop, exit_on_end_of_stream=acfg.exit_on_end_of_stream)
    finally:
        if server is not None:
            server.close()
        metrics.close()
        if outputs is not None:
            outputs.close()
        if store is not None:
            store.close()
        if curve is not None:
            curve.close()
        ctx.destroy(linger=0)
        sys.stdout.flush()
    return 0


def _loop(hub: AggregatorHub, receiver: ScoreSources, outputs: _Outputs, stop: StopFlag, *,
          exit_on_end_of_stream: bool) -> None:
    while not stop:
        for endpoint, message, received_ns in receiver.poll(POLL_MS):
            walkway = getattr(message, "walkway", None)
            if walkway is not None and not hub.admit(walkway, endpoint):
                continue  # another endpoint serves this walkway: refused, counted and logged by the hub
            try:
                if isinstance(message, WindowScore):
                    t0 = time.perf_counter()
                    outputs.emit(hub.window(message, received_ns))
                    hub.metrics.receive_lag_seconds.observe(time.perf_counter() - t0)
                elif isinstance(message, CameraState):
                    outputs.emit(hub.camera(message))
                elif isinstance(message, Heartbeat):
                    hub.heartbeat(message)
                elif isinstance(message, Preview):
                    hub.preview(message, received_ns)
                elif isinstance(message, EndOfStream):
                    outputs.emit(hub.end_of_stream(message))
                    # every walkway's stream, and every inference host heard from
                    if exit_on_end_of_stream and hub.all_streams_ended and hub.all_sources_heard:
                        stop.set()
                        break
            except sqlite3.Error as exc:  # disk full, database locked by another writer...
                log.error("session database write failed, window not stored: %s", exc)
        outputs.emit(hub.tick(time.monotonic_ns(), receiver.malformed))
    summary = hub.stop_summary()
    if summary is not None:
        # stopped before a stream ended: still leave a summary of what was scored (the walk sessions
        # stay open in the database: a restarted aggregator carries on with them)
        outputs.write_summary(summary)
