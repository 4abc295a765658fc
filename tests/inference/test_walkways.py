"""Several walkways in one process: the same scores as one pipeline each, with detector and model calls batched."""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import Frame
from inference.config import InferenceConfig
from inference.detector import Detection, PerViewDetector
from inference.pipeline import InferencePipeline
from inference.walkways import WalkwayBatcher
from tests.inference.test_pipeline import PERIOD_NS, FakeEngine, FakeTracker, _frames


class SharedNet:
    """A stand-in detector network shared by every walkway: records how many images each call carried."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, images: list[np.ndarray], *, full_size: bool = False) -> list[bool]:
        self.calls.append(len(images))
        return [bool(image[0, 0, 0]) for image in images]  # "a person is there" unless the pixel is 0


class NetDetector:
    """Per-walkway trackers over a shared network, like YoloDetector (``model`` + ``assign``)."""

    def __init__(self, model: SharedNet) -> None:
        self.model = model
        self.resets = 0

    def track(self, images, *, full_size=False):
        return self.assign(images, dict(zip(images, self.model.predict(list(images.values()), full_size=full_size),
                                            strict=True)))

    def assign(self, images, boxes):
        return {view: [Detection((10.0, 5.0, 30.0, 60.0), 0.9, 1)] if boxes[view] else [] for view in images}

    def reset(self) -> None:
        self.resets += 1


class BatchEngine(FakeEngine):
    """Returns a p_asd made from the clip's pixels, so a mix-up of walkways in a batch would show."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def _one(self, clips) -> dict[str, float]:
        return {"p_asd": float(clips["front"].mean()) / 255.0, "p_front": 0.25, "p_side": 0.75}

    def predict(self, clips):
        self.batches.append(1)
        return self._one(clips)

    def predict_batch(self, clips):
        self.batches.append(len(clips))
        return [self._one(c) for c in clips]


def _walkway_frames(k: int, n: int) -> tuple[list[Frame], list[Frame]]:
    """Walkway ``k``: its own pixels (brightness) and its own phase (k x 7 ms), as unsynchronised cameras."""
    front, side = _frames("front", n, offset_ns=k * 7_000_000), _frames("side", n, offset_ns=k * 7_000_000)
    for f in front + side:
        f.image = (f.image // 4 + 40 * k).astype(np.uint8) | 1  # never 0 at [0, 0]: always someone there
    return front, side


def _pipeline(detector, engine, walkway: str) -> InferencePipeline:
    clock = iter(range(10**12, 10**13, 1_000_000))
    return InferencePipeline(InferenceConfig(), detector=detector, engine=engine, clock_ns=lambda: next(clock),
                             walkway=walkway)


def _interleaved(streams: dict[str, tuple[list[Frame], list[Frame]]]):
    """Frames of every walkway in capture-time order, as one process receives them."""
    out = [(w, f) for w, (front, side) in streams.items() for f in front + side]
    return sorted(out, key=lambda item: item[1].capture_mono_ns)


def test_batched_walkways_score_exactly_like_one_pipeline_each() -> None:
    n_walkways, n_frames = 4, 76
    streams = {f"bay{k}": _walkway_frames(k, n_frames) for k in range(n_walkways)}
    # reference: each walkway alone, its own pipeline driven by push()
    alone = {}
    for walkway, (front, side) in streams.items():
        pipe = _pipeline(NetDetector(SharedNet()), BatchEngine(), walkway)
        alone[walkway] = [s for f in sorted(front + side, key=lambda f: f.capture_mono_ns)
                          for s in pipe.push(f, received_ns=f.capture_mono_ns)]
    # batched: all walkways in one batcher; the process loop flushes once per burst of 8 received frames
    net, engine = SharedNet(), BatchEngine()
    batcher = WalkwayBatcher({w: _pipeline(NetDetector(net), engine, w) for w in streams}, engine=engine)
    together: dict[str, list] = {w: [] for w in streams}
    for i, (walkway, frame) in enumerate(_interleaved(streams)):
        for score in batcher.push(walkway, frame, received_ns=frame.capture_mono_ns):
            together[score.walkway].append(score)
        if i % 8 == 7:
            for score in batcher.flush():
                together[score.walkway].append(score)
    for score in batcher.flush():
        together[score.walkway].append(score)
    assert batcher.idle
    for walkway in streams:
        assert [s.window for s in together[walkway]] == [s.window for s in alone[walkway]] == [0, 1, 2]
        assert [s.p_asd for s in together[walkway]] == [s.p_asd for s in alone[walkway]]
        assert [s.frames for s in together[walkway]] == [s.frames for s in alone[walkway]]
        assert all(s.valid and s.walkway == walkway for s in together[walkway])
    assert len({s.p_asd for scores in together.values() for s in scores}) == 3 * n_walkways  # no walkway mix-up
    # the work was batched: fewer calls than walkway-samples, several walkways' frames per call
    stats = batcher.stats
    assert stats.model_windows == 3 * n_walkways and stats.model_calls < stats.model_windows
    assert max(engine.batches) > 1 and sum(engine.batches) == 3 * n_walkways
    assert stats.detect_calls < stats.detect_samples and max(net.calls) > 2
    assert sum(net.calls) == 2 * stats.detect_samples  # both views of each sample, nothing detected twice


def test_a_walkway_waits_for_nobody_when_it_is_alone() -> None:
    """One walkway: every call runs as soon as it is asked for (no batching delay), as push() does."""
    net, engine = SharedNet(), BatchEngine()
    batcher = WalkwayBatcher({"main": _pipeline(NetDetector(net), engine, "main")}, engine=engine)
    front, side = _walkway_frames(0, 51)
    scores = []
    for f, g in zip(front, side, strict=True):
        scores += batcher.push("main", f, received_ns=f.capture_mono_ns)
        scores += batcher.push("main", g, received_ns=g.capture_mono_ns)
        assert batcher.idle  # nothing left waiting for a flush
    assert [s.window for s in scores] == [0, 1]
    assert set(net.calls) == {2} and set(engine.batches) == {1}


def test_batch_runs_when_every_walkway_waits_without_a_flush() -> None:
    """Two walkways whose samples come due together: the detector runs once for both (4 images)."""
    net, engine = SharedNet(), BatchEngine()
    batcher = WalkwayBatcher({w: _pipeline(NetDetector(net), engine, w) for w in ("a", "b")}, engine=engine)
    streams = {"a": _walkway_frames(0, 30), "b": _walkway_frames(0, 30)}  # same phase
    for f_a, g_a, f_b, g_b in zip(*streams["a"], *streams["b"], strict=True):
        for walkway, frame in (("a", f_a), ("a", g_a), ("b", f_b), ("b", g_b)):
            batcher.push(walkway, frame, received_ns=frame.capture_mono_ns)
    assert net.calls and set(net.calls) == {4}


def test_walkways_keep_their_own_trackers_and_sessions() -> None:
    """A walk ending in one walkway resets that walkway's trackers only."""
    trackers = {w: {"front": FakeTracker(), "side": FakeTracker()} for w in ("a", "b")}
    engine = BatchEngine()
    pipes = {w: _pipeline(PerViewDetector(trackers[w]), engine, w) for w in ("a", "b")}
    batcher = WalkwayBatcher(pipes, engine=engine)
    assert pipes["a"].session != pipes["b"].session
    # walkway a: someone walks for 1 s, then nobody for 4 s (> walk_gap_s 3 s); b: someone walks throughout
    gone = set(range(26, 130))
    a_front, a_side = _frames("front", 130, hidden=gone), _frames("side", 130, hidden=gone)
    b_front, b_side = _frames("front", 130), _frames("side", 130)
    for frames in zip(a_front, a_side, b_front, b_side, strict=True):
        for walkway, frame in zip(("a", "a", "b", "b"), frames, strict=True):
            batcher.push(walkway, frame, received_ns=frame.capture_mono_ns)
        batcher.flush()
    assert trackers["a"]["front"].resets >= 2 and trackers["b"]["front"].resets == 1  # 1: the pipeline's start
    assert pipes["b"].stats["windows_valid"] == 5 and pipes["a"].stats["windows_valid"] == 1


def test_an_empty_batcher_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one walkway"):
        WalkwayBatcher({}, engine=BatchEngine())


def test_latency_stages_include_the_wait_for_the_batch() -> None:
    """A window that waited for another walkway's work has that wait in its 'wait' stage, not hidden."""
    net, engine = SharedNet(), BatchEngine()
    clock_ns = [0]
    pipes = {}
    for w in ("a", "b"):
        pipes[w] = InferencePipeline(InferenceConfig(), detector=NetDetector(net), engine=engine,
                                     clock_ns=lambda: clock_ns[0], walkway=w)
    batcher = WalkwayBatcher(pipes, engine=engine)
    front, side = _walkway_frames(0, 30)
    scores = []
    for f, g in zip(front, side, strict=True):
        clock_ns[0] = g.capture_mono_ns + 2_000_000
        scores += batcher.push("a", f, received_ns=f.capture_mono_ns)
        scores += batcher.push("a", g, received_ns=g.capture_mono_ns)
    assert scores == []  # walkway b never asked for anything: a's work waits for the end of the burst
    clock_ns[0] += 50 * PERIOD_NS // 40  # 50 ms later the process loop finds its queue empty and flushes
    scores = batcher.flush()
    assert [s.walkway for s in scores] == ["a"] and scores[0].timings_ms["wait"] >= 50.0


def test_without_batching_every_call_runs_when_due() -> None:
    """batch=False (inference.batch_walkways: false): nothing waits for a flush; one walkway per call."""
    net, engine = SharedNet(), BatchEngine()
    batcher = WalkwayBatcher({w: _pipeline(NetDetector(net), engine, w) for w in ("a", "b")}, engine=engine,
                             batch=False)
    streams = {"a": _walkway_frames(0, 51), "b": _walkway_frames(1, 51)}
    scores = []
    for walkway, frame in _interleaved(streams):
        scores += batcher.push(walkway, frame, received_ns=frame.capture_mono_ns)
        assert batcher.idle
    assert sorted((s.walkway, s.window) for s in scores) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert set(net.calls) == {2} and set(engine.batches) == {1}
