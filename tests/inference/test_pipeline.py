"""The inference pipeline with stand-in tracker and model: windows, validity reasons, timings, stats."""

from __future__ import annotations

import numpy as np

from dualgait.messages import Frame
from inference.config import InferenceConfig
from inference.detector import Detection
from inference.pipeline import InferencePipeline

PERIOD_NS = 40_000_000  # 25 fps


class FakeTracker:
    """Finds the patient unless the frame's top-left pixel is 0 (a frame without the patient)."""

    def __init__(self) -> None:
        self.calls = 0
        self.resets = 0

    def update(self, image: np.ndarray) -> tuple[Detection | None, int]:
        self.calls += 1
        if image[0, 0, 0] == 0:
            return None, 0
        return Detection((10.0, 5.0, 30.0, 60.0), 0.9, 1), 1

    def reset(self) -> None:
        self.resets += 1


class FakeEngine:
    description = "fake"
    untrained = True
    synthetic = False

    def __init__(self, views: tuple[str, ...] = ("front", "side"), outputs: dict[str, float] | None = None) -> None:
        self.views = views
        self.outputs = outputs or {"p_asd": 0.5, "p_front": 0.25, "p_side": 0.75}
        self.clips: list[tuple[np.ndarray, ...]] = []

    def predict(self, clips: dict[str, np.ndarray]) -> dict[str, float]:
        self.clips.append(tuple(clips[v] for v in self.views))
        return dict(self.outputs)


def _frames(view: str, n: int, *, hidden: set[int] = frozenset(), offset_ns: int = 0) -> list[Frame]:
    out = []
    for i in range(n):
        image = np.full((64, 48, 3), 0 if i in hidden else 200, dtype=np.uint8)
        t = 1_000_000_000 + i * PERIOD_NS + offset_ns
        out.append(Frame(view, i, t, t + 5, image, source_ts_ns=i * PERIOD_NS))
    return out


def _run(front: list[Frame], side: list[Frame], cfg: InferenceConfig | None = None,
         engine: FakeEngine | None = None):
    trackers = {"front": FakeTracker(), "side": FakeTracker()}
    engine = engine or FakeEngine()
    clock = iter(range(10**12, 10**13, 1_000_000))
    pipe = InferencePipeline(cfg or InferenceConfig(), trackers=trackers, engine=engine, clock_ns=lambda: next(clock))
    scores = []
    for f, s in zip(front, side, strict=True):
        scores += pipe.push(f)
        scores += pipe.push(s)
    return pipe, scores, trackers, engine


def test_full_windows_are_scored_from_eight_crops_per_view() -> None:
    pipe, scores, trackers, engine = _run(_frames("front", 76), _frames("side", 76))
    assert [s.window for s in scores] == [0, 1, 2]
    assert all(s.valid and s.reason is None for s in scores)
    assert (scores[0].p_asd, scores[0].p_front, scores[0].p_side) == (0.5, 0.25, 0.75)
    front_clip, side_clip = engine.clips[0]
    assert front_clip.shape == side_clip.shape == (8, 224, 224, 3)
    assert scores[0].frames["front"] == scores[0].frames["side"] == [0, 3, 6, 9, 12, 16, 19, 22]
    assert scores[0].visible == {"front": 8, "side": 8}
    assert scores[0].view_weights is None
    # the tracker runs on sampled frames only: 8 per second per view, not 25
    assert trackers["front"].calls == trackers["side"].calls == pipe.stats["samples"]
    assert pipe.stats["samples"] < 76 / 2
    assert set(scores[0].timings_ms) == {"receive", "pair", "detect", "crop", "window", "model"}
    assert scores[0].t_end_mono_ns == 1_000_000_000 + 22 * PERIOD_NS


def test_patient_missing_in_one_view_makes_the_window_invalid() -> None:
    _pipe, scores, _trackers, engine = _run(_frames("front", 51), _frames("side", 51, hidden={3}))
    assert [s.valid for s in scores] == [False, True]
    assert scores[0].reason.startswith("patient not visible")
    assert "7/8 side" in scores[0].reason
    assert scores[0].p_asd is None and len(engine.clips) == 1


def test_unpairable_views_are_never_scored() -> None:
    """Side frames 12 ms off the front ones (28 ms from the next) never pair at a 5 ms tolerance."""
    cfg = InferenceConfig()
    cfg.window.pair_tolerance_s = 0.005
    pipe, scores, _trackers, engine = _run(_frames("front", 101), _frames("side", 101, offset_ns=12_000_000), cfg)
    assert engine.clips == []
    # windows still come out (once 2 s have settled), each invalid with its reason: not silence, not a guess
    assert [s.window for s in scores] == [0, 1]
    assert all(not s.valid and s.reason.startswith("pairing: 8 of 8 samples") for s in scores)
    end = pipe.end("test")
    assert end.stats["pairs"] == 0 and end.stats["unpaired_front"] > 40


def test_sequence_gaps_are_counted_and_reset_starts_a_new_session() -> None:
    front = [f for f in _frames("front", 30) if f.seq not in (10, 11)]
    side = [f for f in _frames("side", 30) if f.seq not in (10, 11)]
    pipe, _scores, trackers, _engine = _run(front, side)
    assert pipe.stats["seq_gaps_front"] == pipe.stats["seq_gaps_side"] == 2
    session = pipe.session
    pipe.reset()
    assert pipe.session != session and pipe.stats["frames_front"] == 0
    assert trackers["front"].resets == 2  # once at construction, once now


def test_latency_is_measured_from_the_last_frame_capture() -> None:
    pipe, scores, _trackers, _engine = _run(_frames("front", 26), _frames("side", 26))
    pipe.clock_ns = lambda: scores[0].t_end_mono_ns + 123_000_000
    assert pipe.stamp_latency(scores[0]).latency_ms == 123.0


def test_a_stopped_camera_yields_invalid_windows() -> None:
    """The side camera stops after 1.2 s; front frames keep coming for 4.5 s."""
    trackers = {"front": FakeTracker(), "side": FakeTracker()}
    pipe = InferencePipeline(InferenceConfig(), trackers=trackers, engine=FakeEngine())
    scores = []
    for f in _frames("front", 113):
        scores += pipe.push(f)
        if f.seq < 30:
            scores += pipe.push(_frames("side", 30)[f.seq])
    # a target is given up 2 s (max_pair_wait_s) behind the newest frame: window 2 (2..3 s) is not yet
    assert [s.window for s in scores] == [0, 1]
    assert scores[0].valid
    assert not scores[1].valid and scores[1].reason.startswith("pairing:")


def test_a_backlog_read_one_view_first_still_pairs_everything() -> None:
    """After a slow model call, a second of front frames may be read before the side ones."""
    trackers = {"front": FakeTracker(), "side": FakeTracker()}
    pipe = InferencePipeline(InferenceConfig(), trackers=trackers, engine=FakeEngine())
    front, side = _frames("front", 76), _frames("side", 76)
    scores = []
    for start in range(0, 76, 19):  # bursts of 19 frames (0.76 s), front burst first
        for f in front[start:start + 19]:
            scores += pipe.push(f)
        for s in side[start:start + 19]:
            scores += pipe.push(s)
    assert pipe.stats["samples_missing"] == 0
    assert [s.valid for s in scores] == [True, True, True]


def test_single_view_model_gets_only_its_view_and_reports_no_view_probabilities() -> None:
    """A single_side model sees side crops only; p_front/p_side stay null rather than copied from p_asd."""
    engine = FakeEngine(views=("side",), outputs={"p_asd": 0.625})
    _, scores, _, engine = _run(_frames("front", 76), _frames("side", 76), engine=engine)
    assert len(engine.clips[0]) == 1 and engine.clips[0][0].shape == (8, 224, 224, 3)
    assert (scores[0].p_asd, scores[0].p_front, scores[0].p_side, scores[0].view_weights) == (0.625, None, None, None)


def test_gated_model_view_weights_reach_the_score() -> None:
    engine = FakeEngine(outputs={"p_asd": 0.4, "p_front": 0.3, "p_side": 0.6, "w_front": 0.7, "w_side": 0.3})
    _, scores, _, _ = _run(_frames("front", 36), _frames("side", 36), engine=engine)
    assert scores[0].view_weights == {"front": 0.7, "side": 0.3}
    assert (scores[0].p_front, scores[0].p_side) == (0.3, 0.6)
