"""Offline scoring of a recorded front/side pair (or one view's recording), as fast as the machine allows
(``dualgait score``).

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

from capture.config import MAX_SIDE_PX_DEFAULT
from capture.sources import SourceError
from core.messages import EndOfStream, Frame, WindowScore, by_view

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


def _decode(path: str, view: str, out: queue.Queue, stop: threading.Event, max_side_px: int | None) -> None:
    from capture.sources import FileSource

    try:
        source = FileSource(path, max_side_px=max_side_px)
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


def decoded_pair(front: str | None, side: str | None, *, queue_frames: int = 16,
                 max_side_px: int | None = MAX_SIDE_PX_DEFAULT) -> Iterator[Frame]:
    """Both files' frames in capture-time order (or the one file's, the other view None), decoded by one thread
    per view (bounded queues), upright and downscaled to ``max_side_px`` like a capture process's
    (capture.max_side_px)."""
    files = by_view(front, side)
    if not files:
        raise ValueError("no recording: give a front or a side file")
    stop = threading.Event()
    queues = {view: queue.Queue(maxsize=queue_frames) for view in files}
    threads = [threading.Thread(target=_decode, args=(path, view, queues[view], stop, max_side_px), daemon=True,
                                name=f"decode-{view}") for view, path in files.items()]
    for thread in threads:
        thread.start()
    heads: dict[str, Frame | None] = {}
    try:
        def take(view: str) -> Frame | None:
            item = queues[view].get()
            if isinstance(item, Exception):
                raise item
            return None if item is _END else item

        heads = {view: take(view) for view in files}
        while any(heads.values()):
            view = min((v for v in files if heads[v] is not None), key=lambda v: heads[v].capture_mono_ns)
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
    error: str | None = None  # the decoding error that ended the recording early (one line)

    @property
    def speed(self) -> float:
        """Recording seconds scored per wall-clock second."""
        return self.recording_s / self.wall_s if self.wall_s > 0 else 0.0


class ScoringStopped(SourceError):
    """A file stopped decoding mid-stream: the one-line error, with what was scored before it in ``result``
    (its ``eos`` taken, its ``error`` set). A :class:`SourceError`, so it is reported like any other."""

    def __init__(self, error: SourceError, result: OfflineResult) -> None:
        super().__init__(str(error))
        self.result = result


def score_pair(pipeline, front: str | None, side: str | None, *, on_score: Callable[[WindowScore], None] | None = None,
               clock: ReplayClock | None = None, max_side_px: int | None = MAX_SIDE_PX_DEFAULT) -> OfflineResult:
    """Run ``pipeline`` (built with ``clock_ns=clock``) over the pair (or one view's file, the other None);
    ``on_score`` sees each score.

    A decoding error (truncated or corrupt file) still ends the pipeline, with the error as the reason, and
    raises :class:`ScoringStopped` holding the windows scored before it.
    """
    result = OfflineResult()
    clock = clock or ReplayClock()
    t0 = time.perf_counter()
    try:
        _score_frames(pipeline, decoded_pair(front, side, max_side_px=max_side_px), result, clock, on_score)
    except SourceError as exc:
        result.error = str(exc)
        _end(pipeline, result, t0, f"decoding error: {exc}")
        log.debug("scoring stopped by a decoding error after %d frames, %d windows", result.frames,
                  len(result.scores))
        raise ScoringStopped(exc, result) from exc
    _end(pipeline, result, t0, "end of recording")
    return result


def _score_frames(pipeline, frames: Iterator[Frame], result: OfflineResult, clock: ReplayClock,
                  on_score: Callable[[WindowScore], None] | None) -> None:
    """Push every frame through the pipeline, keeping the scores (and counts) in ``result`` as they come."""
    last_ns = 0
    for frame in frames:
        clock.mark(frame.capture_mono_ns)
        last_ns = max(last_ns, frame.capture_mono_ns)
        result.frames += 1
        result.recording_s = last_ns / 1e9
        for score in pipeline.push(frame, received_ns=frame.capture_mono_ns):
            pipeline.stamp_latency(score)
            result.scores.append(score)
            if on_score is not None:
                on_score(score)


def _end(pipeline, result: OfflineResult, t0: float, reason: str) -> None:
    result.eos = pipeline.end(reason)
    result.wall_s = time.perf_counter() - t0
