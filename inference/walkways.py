"""Several walkways in one inference process: their detector and model calls batched across walkways.

Each walkway (a front/side camera pair) keeps its own :class:`~inference.pipeline.InferencePipeline`: pairing,
sampling, trackers, patient lock, windows and session. What they share is the expensive part: one detector
network (:class:`~inference.detector.YoloModel`) and one classifier engine. :class:`WalkwayBatcher` drives the
pipelines as steps (:meth:`InferencePipeline.feed`) and gathers the work they ask for:

- detector: the sampled frames of every walkway waiting for detection go through the network in one call
  (both views of each), then each walkway's own trackers take their boxes;
- model: the windows completed across walkways go to the engine in one ``predict_batch`` call.

When is a batch run? Without waiting for work that has not arrived (Triton's dynamic batching with no queue
delay): a batch runs as soon as it cannot grow, when every walkway is waiting for the detector (or holds a
finished window), or at the end of a receive burst (:meth:`WalkwayBatcher.flush`, called by the process loop
when nothing more is queued). A machine that keeps up sees small batches and no added latency; a loaded one
sees its queues fill and its batches grow, so the cost per window falls as the load rises. With one walkway
every call runs at once, exactly as :meth:`InferencePipeline.push` does.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.messages import Frame, WindowScore
from inference.detector import Detection
from inference.pipeline import DetectRequest, InferencePipeline, Model, PendingWindow, Steps, score_windows

log = logging.getLogger(__name__)

__all__ = ["BatchStats", "WalkwayBatcher"]


@dataclass(slots=True)
class BatchStats:
    """How the work was batched: calls, and how many walkways' samples or windows each call carried."""

    detect_calls: int = 0
    detect_samples: int = 0
    model_calls: int = 0
    model_windows: int = 0
    detect_sizes: collections.Counter[int] = field(default_factory=collections.Counter)
    model_sizes: collections.Counter[int] = field(default_factory=collections.Counter)

    def counters(self) -> dict[str, int]:
        """For end-of-stream stats (numbers only); process-wide, over every walkway."""
        return {"batch_detect_calls": self.detect_calls, "batch_detect_samples": self.detect_samples,
                "batch_model_calls": self.model_calls, "batch_model_windows": self.model_windows}

    def as_dict(self) -> dict[str, Any]:
        return {"detect_calls": self.detect_calls, "detect_samples": self.detect_samples,
                "model_calls": self.model_calls, "model_windows": self.model_windows,
                "detect_batch_sizes": dict(sorted(self.detect_sizes.items())),
                "model_batch_sizes": dict(sorted(self.model_sizes.items()))}


@dataclass(slots=True)
class _Lane:
    pipeline: InferencePipeline
    backlog: collections.deque[tuple[Frame, int]] = field(default_factory=collections.deque)
    steps: Steps | None = None
    request: DetectRequest | None = None  # waiting for the detector
    reply: dict[str, list[Detection]] | None = None  # the detector's answer, sent on the next advance


class WalkwayBatcher:
    """Walkway id -> pipeline, all sharing ``engine`` (and, for batched detection, one detector network).

    ``push`` a received frame of a walkway; it returns the scores that became ready (of any walkway). Call
    ``flush`` when the receive queue is empty: whatever waits for a batch is run then. ``batch=False``: every
    call runs as soon as it is due, one walkway at a time (no waiting for a batch).
    """

    def __init__(self, pipelines: Mapping[str, InferencePipeline], *, engine: Model, batch: bool = True) -> None:
        if not pipelines:
            raise ValueError("a WalkwayBatcher needs at least one walkway")
        self.lanes = {walkway: _Lane(pipeline) for walkway, pipeline in pipelines.items()}
        self.engine = engine
        self.batch = batch
        self.stats = BatchStats()
        self._pending: list[PendingWindow] = []

    @property
    def pipelines(self) -> dict[str, InferencePipeline]:
        return {walkway: lane.pipeline for walkway, lane in self.lanes.items()}

    def push(self, walkway: str, frame: Frame, *, received_ns: int | None = None) -> list[WindowScore]:
        lane = self.lanes[walkway]
        lane.backlog.append((frame, lane.pipeline.clock_ns() if received_ns is None else received_ns))
        self._advance(lane)
        if not self.batch:
            while lane.request is not None:
                self._detect_alone(lane)
                self._advance(lane)
            return self._score()
        scores: list[WindowScore] = []
        while all(other.request is not None for other in self.lanes.values()):  # the batch cannot grow
            self._detect()
            for other in self.lanes.values():
                self._advance(other)
        if len({p.owner.walkway for p in self._pending}) >= len(self.lanes):
            scores.extend(self._score())
        return scores

    def flush(self) -> list[WindowScore]:
        """Run everything waiting (detections, then one model call) and return the scores."""
        while any(lane.request is not None for lane in self.lanes.values()):
            self._detect()
            for lane in self.lanes.values():
                self._advance(lane)
        return self._score()

    @property
    def idle(self) -> bool:
        """Nothing queued or waiting in any walkway."""
        return not self._pending and all(lane.request is None and lane.steps is None and not lane.backlog
                                         for lane in self.lanes.values())

    # ----------------------------------------------------------------------------------- internals

    def _advance(self, lane: _Lane) -> None:
        """Run the lane's steps until it waits for the detector or has nothing left to do."""
        if lane.request is not None:
            return
        while True:
            if lane.steps is None:
                if not lane.backlog:
                    return
                frame, received_ns = lane.backlog.popleft()
                lane.steps = lane.pipeline.feed(frame, received_ns=received_ns)
            reply, lane.reply = lane.reply, None
            try:
                item = lane.steps.send(reply)
            except StopIteration:
                lane.steps = None
                continue
            if isinstance(item, DetectRequest):
                lane.request = item
                return
            self._pending.append(item)

    def _detect(self) -> None:
        """One detector call for every waiting lane that shares a network; the others (e.g. test doubles
        without a shared network) are run one by one."""
        waiting = [lane for lane in self.lanes.values() if lane.request is not None]
        groups: dict[tuple[int, bool], list[_Lane]] = {}
        for lane in waiting:
            detector = lane.pipeline.detector
            if hasattr(detector, "assign") and hasattr(detector, "model"):
                groups.setdefault((id(detector.model), lane.request.full_size), []).append(lane)  # type: ignore[union-attr]
            else:
                self._detect_alone(lane)
        for (_, full_size), group in groups.items():
            model = group[0].pipeline.detector.model  # type: ignore[attr-defined]
            keys = [(lane, view) for lane in group for view in lane.request.images]  # type: ignore[union-attr]
            images: list[np.ndarray] = [lane.request.images[view] for lane, view in keys]  # type: ignore[union-attr]
            t0 = time.perf_counter()
            boxes = model.predict(images, full_size=full_size)
            predict_ms = (time.perf_counter() - t0) * 1e3
            by_lane: dict[int, dict[str, Any]] = collections.defaultdict(dict)
            for (lane, view), found in zip(keys, boxes, strict=True):
                by_lane[id(lane)][view] = found
            for lane in group:
                request = lane.request
                assert request is not None
                t1 = time.perf_counter()
                lane.reply = lane.pipeline.detector.assign(request.images, by_lane[id(lane)])  # type: ignore[attr-defined]
                request.detect_ms = predict_ms + (time.perf_counter() - t1) * 1e3  # the call it waited for
                lane.request = None
            self.stats.detect_calls += 1
            self.stats.detect_samples += len(group)
            self.stats.detect_sizes[len(group)] += 1

    def _detect_alone(self, lane: _Lane) -> None:
        request = lane.request
        assert request is not None
        t0 = time.perf_counter()
        lane.reply = lane.pipeline.detector.track(request.images, full_size=request.full_size)
        request.detect_ms = (time.perf_counter() - t0) * 1e3
        lane.request = None
        self.stats.detect_calls += 1
        self.stats.detect_samples += 1
        self.stats.detect_sizes[1] += 1

    def _score(self) -> list[WindowScore]:
        pending, self._pending = self._pending, []
        if not pending:
            return []
        runs = sum(1 for p in pending if p.clips is not None)
        if runs:
            self.stats.model_calls += 1
            self.stats.model_windows += runs
            self.stats.model_sizes[runs] += 1
        return score_windows(self.engine, pending)
