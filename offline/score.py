"""Offline scoring of a recorded front/side pair, as fast as the machine allows (``dualgait score``).

The same code path as live: the frames go through :class:`inference.pipeline.InferencePipeline` (pairing,
sampling, detector, patient lock, crop, window checks, model) and the scores through the aggregator's
:class:`aggregator.scoring.ScoreAggregator` (per-second line, cumulative score, summary). Only the
transport differs: both files are decoded by background threads (decoding overlaps detection and the
model) and handed over in capture-time order, with no pacing.

Times: a frame's capture time is its container timestamp; it counts as received when decoded. The
pipeline's clock runs on the same timeline (the last frame's timestamp plus the wall time since it was
handed over), so a score's ``latency_ms`` is the compute time from the window's last frame being
available to its score, and ``timings_ms`` keep their live meaning.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from core.messages import VIEWS, EndOfStream, Frame, WindowScore

log = logging.getLogger(__name__)

_END = object()


class ReplayClock:
    """Monotonic clock on the recording's timeline: the last handed-over frame's time + wall time since."""

    def __init__(self) -> None:
        self._frame_ns = 0
        self._at_ns = time.perf_counter_ns()

    def mark(self, frame_ns: int) -> None:
        self._frame_ns, self._at_ns = frame_ns, time.perf_counter_ns()

    def __call__(self) -> int:
        return self._frame_ns + time.perf_counter_ns() - self._at_ns


def _decode(path: str, view: str, out: queue.Queue, stop: threading.Event) -> None:
    from capture.sources import FileSource, SourceError

    try:
        source = FileSource(path)
    except SourceError as exc:
        out.put(exc)
        return
    try:
        for decoded in source.frames():
            frame = Frame(view, decoded.index, decoded.pts_ns, decoded.pts_ns, decoded.image,
                          source_ts_ns=decoded.pts_ns)
            while not stop.is_set():
                try:
                    out.put(frame, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
    except SourceError as exc:
        out.put(exc)
    finally:
        source.close()
        out.put(_END)


def decoded_pair(front: str, side: str, *, queue_frames: int = 16) -> Iterator[Frame]:
    """Both files' frames in capture-time order, decoded by one thread per view (bounded queues)."""
    stop = threading.Event()
    queues = {view: queue.Queue(maxsize=queue_frames) for view in VIEWS}
    threads = [threading.Thread(target=_decode, args=(path, view, queues[view], stop), daemon=True,
                                name=f"decode-{view}") for view, path in (("front", front), ("side", side))]
    for thread in threads:
        thread.start()
    heads: dict[str, Frame | None] = {}
    try:
        def take(view: str) -> Frame | None:
            item = queues[view].get()
            if isinstance(item, Exception):
                raise item
            return None if item is _END else item

        heads = {view: take(view) for view in VIEWS}
        while any(heads.values()):
            view = min((v for v in VIEWS if heads[v] is not None), key=lambda v: heads[v].capture_mono_ns)
            yield heads[view]
            heads[view] = take(view)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2)


@dataclass(slots=True)
class OfflineResult:
    scores: list[WindowScore] = field(default_factory=list)
    eos: EndOfStream | None = None
    frames: int = 0
    wall_s: float = 0.0
    recording_s: float = 0.0

    @property
    def speed(self) -> float:
        """Recording seconds scored per wall-clock second."""
        return self.recording_s / self.wall_s if self.wall_s > 0 else 0.0


def score_pair(pipeline, front: str, side: str, *, on_score: Callable[[WindowScore], None] | None = None,
               clock: ReplayClock | None = None) -> OfflineResult:
    """Run ``pipeline`` (built with ``clock_ns=clock``) over the pair; ``on_score`` sees each score."""
    result = OfflineResult()
    clock = clock or ReplayClock()
    t0 = time.perf_counter()
    last_ns = 0
    for frame in decoded_pair(front, side):
        clock.mark(frame.capture_mono_ns)
        last_ns = max(last_ns, frame.capture_mono_ns)
        result.frames += 1
        for score in pipeline.push(frame, received_ns=frame.capture_mono_ns):
            pipeline.stamp_latency(score)
            result.scores.append(score)
            if on_score is not None:
                on_score(score)
    result.eos = pipeline.end("end of recording")
    result.wall_s = time.perf_counter() - t0
    result.recording_s = last_ns / 1e9
    return result
