"""A capture process: one view's source published on ZeroMQ, with heartbeats and camera state events.

The reader thread (``capture.reader``) owns the source; this loop owns the socket. It sends frames,
publishes state changes, detects stalls, sends a heartbeat every ``heartbeat_s`` whatever the camera
does, and on the end of the source publishes ``ended`` a few times (one message can be lost in a full
queue downstream; inference also ends a view whose heartbeats stop).

Transport:
- live (default): XPUB with ``XPUB_NODROP``: a frame that does not fit under the high-water mark of a
  subscriber is not queued, and is counted (``send_drops``) instead of vanishing silently as on PUB;
- lossless: PUSH (inference connects PULL): a send waits for room, so nothing is dropped and the
  replay runs at the consumer's pace.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

import zmq

from capture.faults import FaultInjector
from capture.pacing import Pacer, start_instant_mono_ns
from capture.reader import END_OF_RECORDING, SourceReader
from capture.sources import FileSource, Source, make_source, parse_source
from capture.state import Backoff, CameraStateTracker, Counters
from core.messages import CameraState, encode_camera_state, encode_frame, encode_heartbeat
from core.security import Curve, file_pseudonym
from core.transport import StopFlag

if TYPE_CHECKING:
    from capture.config import CaptureConfig
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)

ENDED_REPEATS = 3
ENDED_GAP_S = 0.1
CONTROL_TIMEOUT_S = 0.02  # a heartbeat must not hold up frames for long: the next one follows anyway
# at the end, messages still queued for a slow consumer (the tail of the stream, "ended") are delivered
# for at most this long before the socket closes (linger 0 would silently drop them)
FINAL_LINGER_MS = 3_000
LOSSLESS_LINGER_MS = 10_000


class FrameSender:
    """The capture's socket: frames (dropped and counted when the queue is full, or waited for in
    lossless mode) and control messages (heartbeats, state events) with a bounded wait."""

    def __init__(self, ctx: zmq.Context, endpoint: str, *, lossless: bool, hwm: int,
                 curve: Curve | None = None) -> None:
        self.lossless = lossless
        self.sock = ctx.socket(zmq.PUSH if lossless else zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, LOSSLESS_LINGER_MS if lossless else 0)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        if not lossless:
            self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        try:
            if curve is not None:  # a CURVE server where the endpoint needs it (core.security)
                curve.server(ctx, self.sock, endpoint)
            self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(linger=0)
            raise OSError(f"cannot bind {endpoint}: {exc}") from None
        self.poller = zmq.Poller()
        self.poller.register(self.sock, zmq.POLLOUT)

    def _try_send(self, parts: list, deadline_s: float, stop: StopFlag | None) -> bool:
        while True:
            try:
                self.sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
                return True
            except zmq.Again:
                if time.monotonic() >= deadline_s or (stop is not None and stop):
                    return False
                if self.lossless:
                    self.poller.poll(50)  # PUSH: POLLOUT says when a peer has room
                else:
                    time.sleep(0.005)  # XPUB reports POLLOUT even when a pipe is full

    def send_frame(self, parts: list, stop: StopFlag) -> bool:
        """Live: True when queued, False when dropped at the high-water mark. Lossless: waits (until stop)."""
        if self.lossless:
            return self._try_send(parts, float("inf"), stop)
        try:
            self.sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            return False

    def send_control(self, parts: list, timeout_s: float) -> bool:
        return self._try_send(parts, time.monotonic() + timeout_s, None)

    def wait_for_subscriber(self, timeout_s: float, stop: StopFlag) -> bool:
        """Live: wait (up to ``timeout_s``, or a stop) for a subscription message, i.e. a first subscriber."""
        if self.lossless:
            return True
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        deadline_s = time.monotonic() + timeout_s
        while not stop and (left_s := deadline_s - time.monotonic()) > 0:
            if poller.poll(min(100, max(1, round(left_s * 1e3)))):
                self.drain_subscriptions()
                return True
        return False

    def drain_subscriptions(self) -> None:
        """XPUB hands subscription messages to the application: read them so they do not pile up."""
        if self.lossless:
            return
        while True:
            try:
                self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return


def _log_event(event: CameraState) -> None:
    quiet = event.state == "connected" or (event.state == "ended" and event.reason in (END_OF_RECORDING, "stopped"))
    level = logging.INFO if quiet else logging.WARNING
    log.log(level, "%s: camera %s%s%s", event.view, event.state, f" ({event.reason})" if event.reason else "",
            f", attempt {event.attempt}" if event.attempt else "")


def _open_source(ccfg: CaptureConfig, view: str) -> tuple[Source, str | None]:
    """The view's source (a synthetic walker already rendered) and, for a file, its path (see :func:`_scrubbed`)."""
    spec = parse_source(ccfg.source(view))  # SourceError: reported by the CLI in one line
    source = make_source(spec, view, width_px=ccfg.width_px, height_px=ccfg.height_px, fps=ccfg.fps,
                         fourcc=ccfg.fourcc, start_offset_s=ccfg.start_offset_s, loop=ccfg.loop,
                         timeout_s=ccfg.open_timeout_s, max_side_px=ccfg.max_side_px)
    private = str(source.path) if isinstance(source, FileSource) else None
    if private is not None:  # logs and camera events name it by a digest: a file name can identify the patient
        source.description = f"file {file_pseudonym(private)}"  # (docs/security.md)
    log.info("%s: %s (%s)", view, source.description, "lossless, paced by the consumer" if ccfg.lossless else
             f"{ccfg.encoding}, high-water mark {ccfg.send_hwm_frames} frames")
    if not source.live:
        source.open()  # a synthetic walker renders here: before the start instant, not after it
    return source, private


def _scrubbed(event: CameraState, private: str | None) -> CameraState:
    """``event`` with the file path ``private`` replaced by its pseudonym, e.g. in "video is truncated or
    corrupt: ...: <path>"."""
    if private is None or not event.reason or private not in event.reason:
        return event
    return dataclasses.replace(event, reason=event.reason.replace(private, file_pseudonym(private)))


def _make_reader(ccfg: CaptureConfig, view: str, source: Source, tracker: CameraStateTracker, counters: Counters,
                 start_ns: int) -> SourceReader:
    """The reader that owns the source (paced from ``start_ns`` unless live), stopped through ``reader.stop``."""
    pacer = None if source.live else Pacer(start_ns, ccfg.speed)
    return SourceReader(source, view, tracker, counters, pacer=pacer, stop=threading.Event(), lossless=ccfg.lossless,
                        backoff=Backoff(ccfg.reconnect_initial_s, ccfg.reconnect_max_s),
                        faults=FaultInjector(drop_rate=ccfg.inject_drop_rate, jitter_ms=ccfg.inject_jitter_ms,
                                             seed=ccfg.inject_seed))


class _Control:
    """Control messages on the capture's socket: camera events (scrubbed and logged) and heartbeats, each
    waited for a bounded time and counted in ``control_drops`` when it cannot leave."""

    def __init__(self, sender: FrameSender, counters: Counters, private: str | None) -> None:
        self.sender, self.counters, self.private = sender, counters, private
        self.timeout_s = CONTROL_TIMEOUT_S

    def send(self, parts: list, timeout_s: float | None = None) -> None:
        if not self.sender.send_control(parts, self.timeout_s if timeout_s is None else timeout_s):
            self.counters.control_drops += 1

    def publish(self, event: CameraState | None) -> None:
        if event is None:
            return
        event = _scrubbed(event, self.private)
        _log_event(event)
        self.send(encode_camera_state(event))


def _send_until_end(ccfg: CaptureConfig, reader: SourceReader, sender: FrameSender, control: _Control,
                    stop: StopFlag, deadline_ns: int | None) -> None:
    """The main loop: frames, camera events and heartbeats, until the source has ended (or a stop, or
    ``max_duration_s``) and every frame read before the end has left."""
    tracker, counters = reader.tracker, reader.counters
    next_beat_s = time.monotonic()
    ending: CameraState | None = None
    while True:
        if stop and not reader.stop.is_set():
            reader.stop.set()
            ending = tracker.ended("stopped")
        elif deadline_ns is not None and time.monotonic_ns() >= deadline_ns and not reader.stop.is_set():
            ending = tracker.ended(f"max_duration_s ({ccfg.max_duration_s:g} s) reached")  # before the reader
            reader.stop.set()  # can end it as "stopped"
        while not reader.events.empty():
            event = reader.events.get()
            if event.state == "ended":
                ending = ending or event
            else:
                control.publish(event)
        try:
            frame = reader.frames.get(timeout=0.02)
        except queue.Empty:
            frame = None
        if frame is not None:
            parts = encode_frame(frame, encoding=ccfg.encoding, jpeg_quality=ccfg.jpeg_quality)
            if sender.send_frame(parts, stop):
                counters.frames_sent += 1
            else:
                counters.send_drops += 1
            control.publish(tracker.frame(frame.seq))
        elif ending is not None:
            break  # everything read before the end has left
        control.publish(tracker.tick())
        sender.drain_subscriptions()
        if time.monotonic() >= next_beat_s:
            control.send(encode_heartbeat(tracker.heartbeat()))
            next_beat_s = time.monotonic() + ccfg.heartbeat_s


def _send_ended(ccfg: CaptureConfig, view: str, tracker: CameraStateTracker, control: _Control) -> None:
    """``ended`` with the final counters, a few times (one message can be lost in a full queue downstream)."""
    final = _scrubbed(tracker.event(), control.private)
    _log_event(final)
    for _ in range(ENDED_REPEATS):
        control.send(encode_camera_state(final), 30.0 if ccfg.lossless else 1.0)
        time.sleep(ENDED_GAP_S)
    log.info("%s: %s; counters %s", view, final.reason, control.counters.snapshot())


def _shut_down(ccfg: CaptureConfig, reader: SourceReader, thread: threading.Thread, curve: Curve | None,
               ctx: zmq.Context) -> None:
    """Stop the reader, close the source (unless the reader is stuck in it), then the sockets after a linger."""
    reader.stop.set()
    if thread.is_alive():
        thread.join(timeout=2.0)  # a camera read can block; the thread is a daemon
    if not thread.is_alive():  # else it is still inside a blocking read: leave the source to it
        reader.source.close()
    linger_ms = LOSSLESS_LINGER_MS if ccfg.lossless else FINAL_LINGER_MS
    if curve is not None:
        curve.close(linger_ms=linger_ms)
    ctx.destroy(linger=linger_ms)


def run_capture(cfg: DualgaitConfig, view: str, *, start_at_unix_s: float | None = None,
                stop: StopFlag | None = None) -> int:
    """Publish ``cfg.capture.<view>`` on ``cfg.endpoints.<view>`` until it ends or a stop; returns an exit code.

    ``stop``: anything true once the process should stop (default: a flag set by SIGINT/SIGTERM).
    """
    ccfg = cfg.capture
    curve = Curve.for_process(cfg, binds=(view,))  # ConfigError before anything starts
    source, private = _open_source(ccfg, view)
    stop = StopFlag() if stop is None else stop
    counters = Counters()
    tracker = CameraStateTracker(view, counters, stall_timeout_s=ccfg.stall_timeout_s, detect_stalls=source.live)
    start_ns = start_instant_mono_ns(start_at_unix_s, ccfg.start_delay_s)
    deadline_ns = None if ccfg.max_duration_s is None else start_ns + round(ccfg.max_duration_s * 1e9)
    reader = _make_reader(ccfg, view, source, tracker, counters, start_ns)
    ctx = zmq.Context()
    thread = threading.Thread(target=reader.run, name=f"capture-{view}-reader", daemon=True)
    try:
        sender = FrameSender(ctx, cfg.endpoints.view(view), lossless=ccfg.lossless, hwm=ccfg.send_hwm_frames,
                             curve=curve)
        control = _Control(sender, counters, private)
        if ccfg.subscriber_wait_s > 0 and not sender.wait_for_subscriber(ccfg.subscriber_wait_s, stop):
            log.info("%s: no subscriber after %g s; publishing anyway", view, ccfg.subscriber_wait_s)
        thread.start()
        _send_until_end(ccfg, reader, sender, control, stop, deadline_ns)
        _send_ended(ccfg, view, tracker, control)
    finally:
        _shut_down(ccfg, reader, thread, curve, ctx)
    return 1 if reader.failed else 0


__all__ = ["END_OF_RECORDING", "FrameSender", "run_capture"]
