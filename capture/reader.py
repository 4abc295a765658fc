"""The reading side of a capture process: one thread that owns the source (no sockets).

It opens the source (reopening a lost camera with exponential backoff), paces replayed files on the
shared start instant (or not at all in lossless mode), applies the test-only fault injection, stamps
each frame on the host clocks and hands it to the sender loop through a bounded queue:

- live mode: the queue drops its oldest frame when full (counted in ``queue_drops``): lag stays bounded;
- lossless mode: the reader blocks until the sender has room, so replay is paced by the consumer.

State changes (connected, reconnecting, ended) go to an unbounded event queue; "ended" is always
queued after the last frame.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from capture.faults import FaultInjector
from capture.pacing import Pacer
from capture.sources import DecodedFrame, Source, SourceError
from capture.state import Backoff, CameraStateTracker, Counters
from core.messages import CameraState, Frame

log = logging.getLogger(__name__)

END_OF_RECORDING = "end of recording"


class SourceReader:
    def __init__(self, source: Source, view: str, tracker: CameraStateTracker, counters: Counters, *,
                 pacer: Pacer | None, backoff: Backoff, faults: FaultInjector | None = None,
                 lossless: bool = False, queue_frames: int = 4, stop: threading.Event | None = None,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.source, self.view = source, view
        self.tracker, self.counters = tracker, counters
        self.pacer, self.backoff = pacer, backoff
        self.faults = faults or FaultInjector()
        self.lossless = lossless
        self.frames: queue.Queue[Frame] = queue.Queue(maxsize=queue_frames)
        self.events: queue.SimpleQueue[CameraState] = queue.SimpleQueue()
        self.stop = stop or threading.Event()
        self.wall_ns = wall_ns
        self.failed = False  # ended because the source could not be read (not a clean end)
        self.end_reason: str | None = None

    # ------------------------------------------------------------------------------- thread body

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug must still end the stream visibly, not hang the sender loop
            log.exception("%s: reader failed", self.view)
            self._end(f"capture error: {exc}", failed=True)

    def _run(self) -> None:
        ever_connected = False
        while not self.stop.is_set():
            try:
                self.source.open()
            except SourceError as exc:
                if not self.source.live:
                    self._end(str(exc), failed=True)
                    return
                self._lost(str(exc))
                continue
            self._emit(self.tracker.connected(reconnected=ever_connected))
            log.info("%s: %s %s", self.view, self.source.description, "reconnected" if ever_connected else "open")
            ever_connected = True
            self.backoff.reset()
            try:
                ended = self._read_until_lost()
            except SourceError as exc:
                self.source.close()
                if not self.source.live:
                    self._end(str(exc), failed=True)
                    return
                self._lost(str(exc))
                continue
            if ended:
                self.source.close()
                self._end(END_OF_RECORDING)
                return
        self.source.close()
        self._end("stopped")

    def _read_until_lost(self) -> bool:
        """Read and queue frames; True at the end of a file, False when asked to stop."""
        while not self.stop.is_set():
            decoded = self.source.read()
            if decoded is None:
                if self.source.live:
                    raise SourceError(f"{self.source.description}: stream closed by the camera")
                return True
            self._handle(decoded)
        return False

    # ------------------------------------------------------------------------------- per frame

    def _handle(self, decoded: DecodedFrame) -> None:
        seq = self.counters.frames_read
        self.counters.frames_read += 1
        fault = self.faults.decide()
        if self.pacer is not None:
            due_ns = self.pacer.due_ns(decoded.pts_ns) + fault.delay_ns
            if not self.lossless:
                lateness_ns = due_ns - time.monotonic_ns()
                if lateness_ns > 0:
                    self.stop.wait(lateness_ns / 1e9)
                elif -lateness_ns > 5_000_000:
                    self.counters.late_frames += 1
            # a replayed frame is stamped with the instant it is due (a camera stamps at exposure, not
            # when its process gets the CPU); in lossless mode that is a virtual, consumer-paced timeline
            capture_ns = due_ns
        else:
            capture_ns = decoded.read_mono_ns + fault.delay_ns
            if fault.delay_ns:
                self.stop.wait(fault.delay_ns / 1e9)
        if fault.drop:
            self.counters.frames_dropped_injected += 1
            return
        wall_ns = self.wall_ns() - (time.monotonic_ns() - capture_ns)
        frame = Frame(view=self.view, seq=seq, capture_mono_ns=capture_ns, capture_wall_ns=wall_ns,
                      image=decoded.image, source_ts_ns=decoded.pts_ns if decoded.pts_from_container else None)
        self._put(frame)

    def _put(self, frame: Frame) -> None:
        if self.lossless:
            while not self.stop.is_set():
                try:
                    self.frames.put(frame, timeout=0.2)
                    return
                except queue.Full:
                    continue
            return
        while True:
            try:
                self.frames.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self.frames.get_nowait()  # the oldest goes: a live camera must not build up lag
                    self.counters.queue_drops += 1
                except queue.Empty:
                    pass

    # ------------------------------------------------------------------------------- state

    def _emit(self, event: CameraState | None) -> None:
        if event is not None:
            self.events.put(event)

    def _lost(self, reason: str) -> None:
        attempt = self.backoff.attempt + 1
        delay_s = self.backoff.next_delay_s()
        log.warning("%s: %s; reconnect attempt %d in %.2f s", self.view, reason, attempt, delay_s)
        self._emit(self.tracker.lost(reason, attempt))
        self.stop.wait(delay_s)

    def _end(self, reason: str, *, failed: bool = False) -> None:
        if self.end_reason is not None:
            return
        self.failed = failed
        self.end_reason = reason
        self._emit(self.tracker.ended(reason))
