"""The inference pipeline with stand-in tracker and model: windows, validity reasons, timings, stats."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from core.messages import Frame, decode, encode_window
from inference.config import DetectorConfig, InferenceConfig, WindowConfig
from inference.detector import Detection, PerViewDetector
from inference.errors import ModelViewsError
from inference.pipeline import InferencePipeline

PERIOD_NS = 40_000_000  # 25 fps


class FakeTracker:
    """Finds the patient (track 1) unless the frame's top-left pixel is 0 (a frame without the patient)."""

    def __init__(self) -> None:
        self.calls = 0
        self.resets = 0

    def track(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        if image[0, 0, 0] == 0:
            return []
        return [Detection((10.0, 5.0, 30.0, 60.0), 0.9, 1)]

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
    """Frames of a "walking" patient: new random pixels in every frame, so the patient's box moves."""
    out = []
    for i in range(n):
        image = np.random.default_rng(i).integers(1, 256, (64, 48, 3), dtype=np.uint8)
        if i in hidden:
            image[0, 0] = 0
        t = 1_000_000_000 + i * PERIOD_NS + offset_ns
        out.append(Frame(view, i, t, t + 5, image, source_ts_ns=i * PERIOD_NS))
    return out


def _every_sample(**kwargs) -> InferenceConfig:
    """The detector on every sample (the tests below count its calls per sample; the default, every other
    sample with interpolation, has its own tests)."""
    return InferenceConfig(detector=DetectorConfig(interval_samples=0), **kwargs)


def _push_pairs(pipe: InferencePipeline, front: list[Frame], side: list[Frame],
                delay_ns: Callable[[int], int] = lambda seq: 0) -> list:
    """Push front and side frame by frame, each received ``delay_ns(seq)`` after its capture; the scores out."""
    scores = []
    for f, s in zip(front, side, strict=True):
        scores += pipe.push(f, received_ns=f.capture_mono_ns + delay_ns(f.seq))
        scores += pipe.push(s, received_ns=s.capture_mono_ns + delay_ns(s.seq))
    return scores


def _run(front: list[Frame], side: list[Frame], cfg: InferenceConfig | None = None,
         engine: FakeEngine | None = None):
    trackers = {"front": FakeTracker(), "side": FakeTracker()}
    engine = engine or FakeEngine()
    clock = iter(range(10**12, 10**13, 1_000_000))
    pipe = InferencePipeline(cfg or _every_sample(), detector=PerViewDetector(trackers), engine=engine,
                             clock_ns=lambda: next(clock))
    return pipe, _push_pairs(pipe, front, side, lambda seq: 1_000_000), trackers, engine


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
    assert set(scores[0].timings_ms) == {"receive", "pair", "detect", "crop", "wait", "model"}
    assert scores[0].timings_ms["receive"] == 1.0
    assert scores[0].t_end_mono_ns == 1_000_000_000 + 22 * PERIOD_NS
    # the lock needs ~0.5 s of motion history; the patient's earlier sightings still count (window 0 valid)
    assert scores[0].walk == 0 and pipe.end("test").stats["patient_locks_front"] == 1


def test_scores_carry_the_configured_window_duration_and_stride() -> None:
    """duration_s and stride_s on every score are inference.window's (the aggregator's times come from them)."""
    _pipe, scores, _trackers, _engine = _run(_frames("front", 51), _frames("side", 51))
    assert scores and all((s.duration_s, s.stride_s) == (1.0, 1.0) for s in scores)
    cfg = _every_sample(window=WindowConfig(stride_s=0.5))
    _pipe, scores, _trackers, _engine = _run(_frames("front", 76), _frames("side", 76), cfg)
    assert [s.window for s in scores] == [0, 1, 2, 3, 4]
    assert all((s.duration_s, s.stride_s) == (1.0, 0.5) for s in scores)
    starts = [s.t_start_mono_ns for s in scores]
    # windows start half a second apart, on the nearest frame (25 fps: within one 40-ms period)
    assert all(abs(b - a - 500_000_000) <= PERIOD_NS for a, b in itertools.pairwise(starts))


def test_patient_missing_in_one_view_makes_the_window_invalid() -> None:
    pipe, scores, _trackers, engine = _run(_frames("front", 51), _frames("side", 51, hidden={3}))
    assert [s.valid for s in scores] == [False, True]
    assert scores[0].reason_code == "patient_missing" and scores[0].reason.startswith("patient not found")
    assert "7/8 side" in scores[0].reason
    assert pipe.stats["invalid_patient_missing"] == 1
    assert scores[0].p_asd is None and len(engine.clips) == 1


def test_unpairable_views_are_never_scored() -> None:
    """Side frames 12 ms off the front ones (28 ms from the next) never pair at a 5 ms tolerance."""
    cfg = _every_sample()
    cfg.window.pair_tolerance_s = 0.005
    pipe, scores, _trackers, engine = _run(_frames("front", 101), _frames("side", 101, offset_ns=12_000_000), cfg)
    assert engine.clips == []
    # windows still come out (once 2 s have settled), each invalid with its reason: not silence, not a guess
    assert [s.window for s in scores] == [0, 1]
    # both views have frames near every sample time, just never close enough together: skew, not a gap
    assert all(not s.valid and s.reason_code == "skew" and "in 8 of 8 samples" in s.reason for s in scores)
    end = pipe.end("test")
    assert end.stats["pairs"] == 0 and end.stats["unpaired_front"] > 40 and end.stats["invalid_skew"] == 2


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
    pipe = InferencePipeline(_every_sample(), detector=PerViewDetector(trackers), engine=FakeEngine())
    scores = []
    for f in _frames("front", 113):
        scores += pipe.push(f, received_ns=f.capture_mono_ns)
        if f.seq < 30:
            side = _frames("side", 30)[f.seq]
            scores += pipe.push(side, received_ns=side.capture_mono_ns)
    # a target is given up 2 s (max_pair_wait_s) behind the newest frame: window 2 (2..3 s) is not yet
    assert [s.window for s in scores] == [0, 1]
    assert scores[0].valid
    assert not scores[1].valid and scores[1].reason_code == "too_few_frames"
    assert scores[1].reason.startswith("too few frames:") and "no side frame" in scores[1].reason


def test_a_backlog_read_one_view_first_still_pairs_everything() -> None:
    """After a slow model call, a second of front frames may be read before the side ones."""
    trackers = {"front": FakeTracker(), "side": FakeTracker()}
    pipe = InferencePipeline(_every_sample(), detector=PerViewDetector(trackers), engine=FakeEngine())
    front, side = _frames("front", 76), _frames("side", 76)
    scores = []
    for start in range(0, 76, 19):  # bursts of 19 frames (0.76 s), front burst first
        for f in front[start:start + 19]:
            scores += pipe.push(f, received_ns=f.capture_mono_ns)
        for s in side[start:start + 19]:
            scores += pipe.push(s, received_ns=s.capture_mono_ns)
    assert pipe.stats["samples_missing"] == 0
    assert [s.valid for s in scores] == [True, True, True]


def test_one_side_camera_is_scored_by_a_single_view_model() -> None:
    """Single-view mode: side frames only, a single_side model sees side crops only, the window carries the side view
    alone (frames, visible) and p_front/p_side stay null rather than copied from p_asd."""
    engine = FakeEngine(views=("side",), outputs={"p_asd": 0.625})
    tracker = FakeTracker()
    pipe = InferencePipeline(_every_sample(), detector=PerViewDetector({"side": tracker}), engine=engine,
                             views=("side",))
    scores = []
    for frame in _frames("side", 76):
        scores += pipe.push(frame, received_ns=frame.capture_mono_ns + 1_000_000)
    assert [(s.window, s.valid) for s in scores] == [(0, True), (1, True), (2, True)]
    assert len(engine.clips[0]) == 1 and engine.clips[0][0].shape == (8, 224, 224, 3)
    assert (scores[0].p_asd, scores[0].p_front, scores[0].p_side, scores[0].view_weights) == (0.625, None, None, None)
    assert scores[0].frames == {"side": [0, 3, 6, 9, 12, 16, 19, 22]} and scores[0].visible == {"side": 8}
    assert scores[0].max_skew_ms == 0.0
    assert tracker.calls == pipe.stats["samples"]
    assert decode(encode_window(scores[0])) == scores[0]  # the wire takes a one-view window
    # a gap in the one camera: the windows there are too_few_frames, naming the side view
    gap = InferencePipeline(_every_sample(), detector=PerViewDetector({"side": FakeTracker()}), engine=engine,
                            views=("side",))
    scores = []
    for frame in [f for f in _frames("side", 76) if not 30 <= f.seq < 40]:
        scores += gap.push(frame, received_ns=frame.capture_mono_ns)
    assert [(s.valid, s.reason_code) for s in scores] == [(True, None), (False, "too_few_frames"), (True, None)]
    assert "no side frame" in scores[1].reason


@pytest.mark.parametrize(("model_views", "views"), [(("front", "side"), ("side",)), (("side",), ("front", "side")),
                                                    (("front",), ("side",))])
def test_a_model_whose_views_are_not_the_cameras_is_refused(model_views, views) -> None:
    with pytest.raises(ModelViewsError, match=r"the model takes the .* view\(s\) but the cameras are"):
        InferencePipeline(_every_sample(), detector=PerViewDetector({"front": FakeTracker(), "side": FakeTracker()}),
                          engine=FakeEngine(views=model_views), views=views)


def test_gated_model_view_weights_reach_the_score() -> None:
    engine = FakeEngine(outputs={"p_asd": 0.4, "p_front": 0.3, "p_side": 0.6, "w_front": 0.7, "w_side": 0.3})
    _, scores, _, _ = _run(_frames("front", 36), _frames("side", 36), engine=engine)
    assert scores[0].view_weights == {"front": 0.7, "side": 0.3}
    assert (scores[0].p_front, scores[0].p_side) == (0.3, 0.6)


def test_frames_that_arrive_too_late_are_stale_and_never_scored() -> None:
    """Frames received 3 s after capture (limit 2 s) in the second second: window 1 is invalid, stale (with the
    overload shedding off: on, such frames are dropped at receive, test below)."""
    front, side = _frames("front", 76), _frames("side", 76)
    trackers = {"front": FakeTracker(), "side": FakeTracker()}
    cfg = _every_sample()
    cfg.overload.enabled = False
    pipe = InferencePipeline(cfg, detector=PerViewDetector(trackers), engine=FakeEngine())
    scores = _push_pairs(pipe, front, side, lambda seq: 3_000_000_000 if 25 <= seq < 50 else 0)
    assert [(s.valid, s.reason_code) for s in scores] == [(True, None), (False, "stale"), (True, None)]
    assert "arrived 3000 ms after capture (limit 2 s)" in scores[1].reason
    assert pipe.stats["frames_stale_front"] == pipe.stats["frames_stale_side"] == 25
    assert pipe.stats["invalid_stale"] == 1
    # the detector never ran on the stale second (its window is invalid whatever it finds): load shed
    assert pipe.stats["samples_shed_stale"] == 8
    assert trackers["front"].calls == pipe.stats["samples_detected"] == pipe.stats["samples"] - 8


def test_a_camera_repeating_its_last_frame_is_stale() -> None:
    """The side camera delivers frame 10's image again for frames 11-14 (same source timestamp)."""
    side = _frames("side", 51)
    for f in side[11:15]:
        f.source_ts_ns = side[10].source_ts_ns
    _pipe, scores, _trackers, _engine = _run(_frames("front", 51), side)
    assert [(s.valid, s.reason_code) for s in scores] == [(False, "stale"), (True, None)]
    assert "repeats the camera's previous frame" in scores[0].reason


def test_views_locked_on_a_walker_and_a_standing_person_disagree() -> None:
    """Without the motion rule the side view locks a person who stands still while the front one walks."""
    cfg = _every_sample()
    cfg.patient.require_motion = False
    side = _frames("side", 51)
    for f in side:
        f.image = np.full_like(f.image, 120)
    pipe, scores, _trackers, engine = _run(_frames("front", 51), side, cfg)
    assert [s.reason_code for s in scores] == ["views_disagree", "views_disagree"]
    assert "front moving" in scores[1].reason and "side still" in scores[1].reason
    assert engine.clips == [] and pipe.stats["invalid_views_disagree"] == 2


def test_motion_rule_leaves_a_standing_person_unlocked() -> None:
    """With the motion rule (default) a person who never moves is never the patient: patient_missing."""
    side = _frames("side", 51)
    for f in side:
        f.image = np.full_like(f.image, 120)
    _pipe, scores, _trackers, _engine = _run(_frames("front", 51), side)
    assert [s.reason_code for s in scores] == ["patient_missing", "patient_missing"]
    assert scores[0].visible == {"front": 8, "side": 0}


def test_the_walk_ends_after_the_gap_and_the_trackers_are_reset() -> None:
    """The patient leaves both views for 4 s (walk_gap_s 3 s): walk 0 ends, trackers reset, walk 1 starts."""
    hidden = set(range(50, 150))
    pipe, scores, trackers, _engine = _run(_frames("front", 226, hidden=hidden), _frames("side", 226, hidden=hidden))
    assert trackers["front"].resets == 2  # construction + end of walk 0
    walks = [(s.window, s.walk, s.reason_code) for s in scores]
    assert walks[0] == (0, 0, None) and walks[1] == (1, 0, None)
    assert (6, 1, None) in walks and all(w == 1 for _i, w, code in walks[6:] if code is None)
    assert pipe.stats["walks"] == 2


class MovingTracker(FakeTracker):
    """The patient's box slides right by 0.25 px per frame (the frame's seq is in pixel (0, 1))."""

    def track(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        x = float(image[0, 1, 0]) / 4
        return [Detection((x, 5.0, x + 20.0, 60.0), 0.9, 1)]


def test_detector_interval_detects_every_other_sample_and_interpolates_the_rest() -> None:
    """interval_samples 1: once both views are locked the detector runs on odd samples only (each window's last is
    odd); the box of an even sample is interpolated in time between its neighbours, so it equals the true box of
    its frame. While the lock is decided it runs on every sample (test below)."""
    cfg = InferenceConfig()
    cfg.detector.interval_samples = 1
    front, side = _frames("front", 76), _frames("side", 76)
    for f in front + side:
        f.image[0, 1] = f.seq
    trackers = {"front": MovingTracker(), "side": MovingTracker()}
    pipe = InferencePipeline(cfg, detector=PerViewDetector(trackers), engine=FakeEngine())
    boxes: dict[tuple[int, str], float] = {}
    set_patient = pipe.patients.set_patient

    def spy(sample, view, patient):
        boxes[(sample.index, view)] = patient.box_xyxy[0]
        set_patient(sample, view, patient)

    pipe.patients.set_patient = spy
    scores = _push_pairs(pipe, front, side)
    assert [s.valid for s in scores] == [True, True, True]
    assert trackers["front"].calls == pipe.stats["samples_detected"]
    assert pipe.stats["samples"] // 2 < pipe.stats["samples_detected"] <= pipe.stats["samples"] // 2 + 6
    for window in scores:
        for k, seq in enumerate(window.frames["front"]):
            if window.window == k == 0:  # the stream's first sample has no detection before it: sample 1's box
                assert boxes[(0, "front")] == window.frames["front"][1] / 4
                continue
            # the box follows the frame: interpolated ones land on the frame's own box
            assert boxes[(8 * window.window + k, "front")] == pytest.approx(seq / 4, abs=0.26)
    with pytest.raises(ValueError, match=r"multiple of detector\.interval_samples"):
        InferenceConfig(detector=DetectorConfig(interval_samples=2))


def test_the_default_interval_follows_the_window_stride() -> None:
    """null: every other sample where each window still ends on a detection, else every sample."""
    assert InferenceConfig().detector.interval_samples == 1
    assert InferenceConfig(window=WindowConfig(stride_s=0.125)).detector.interval_samples == 0
    assert InferenceConfig(window=WindowConfig(stride_s=0.375)).detector.interval_samples == 0
    assert InferenceConfig(window=WindowConfig(stride_s=0.25)).detector.interval_samples == 1


class SizeRecorder(PerViewDetector):
    """Records, per detector call, whether it asked for full-size frames."""

    def __init__(self, trackers) -> None:
        super().__init__(trackers)
        self.full_size: list[bool] = []

    def track(self, images, *, full_size=False):
        self.full_size.append(full_size)
        return super().track(images, full_size=full_size)


def test_the_detector_runs_full_size_on_every_sample_until_both_views_are_locked() -> None:
    """The lock's motion measure needs every sample's full-size boxes; after the lock, tiled every other sample."""
    front, side = _frames("front", 76), _frames("side", 76)
    for f in front + side:
        f.image[0, 1] = f.seq
    detector = SizeRecorder({"front": MovingTracker(), "side": MovingTracker()})
    pipe = InferencePipeline(InferenceConfig(), detector=detector, engine=FakeEngine())
    scores = _push_pairs(pipe, front, side)
    assert [s.valid for s in scores] == [True, True, True]
    sizes = detector.full_size
    assert sizes[0] is False  # nobody seen yet: the cheap detection of an empty walkway
    locked_at = sizes.index(False, 1)
    assert locked_at >= 3 and all(sizes[1:locked_at])  # someone seen, not locked: every sample, full size
    assert not any(sizes[locked_at:])  # locked: tiled from then on
    assert pipe.stats["samples_detected"] == locked_at + (pipe.stats["samples"] - locked_at) // 2


def test_frames_too_old_to_use_are_dropped_at_receive_and_the_next_window_is_current() -> None:
    """Live shedding: frames reaching the pipeline over 0.75 s after capture are dropped before pairing (counted);
    the window over them has too few frames, the next one is valid: the pipeline goes on with the newest."""
    front, side = _frames("front", 76), _frames("side", 76)
    trackers = {"front": FakeTracker(), "side": FakeTracker()}
    pipe = InferencePipeline(_every_sample(), detector=PerViewDetector(trackers), engine=FakeEngine())
    scores = _push_pairs(pipe, front, side, lambda seq: 1_000_000_000 if 25 <= seq < 50 else 0)
    assert [(s.valid, s.reason_code) for s in scores] == [(True, None), (False, "too_few_frames"), (True, None)]
    assert pipe.stats["frames_dropped_late_front"] == pipe.stats["frames_dropped_late_side"] == 25
    assert pipe.stats["frames_stale_front"] == 0  # dropped before they were booked


class CutOffTracker(FakeTracker):
    """The patient's box reaches the frame's top edge (head outside) in frames whose pixel (0, 2) is 255."""

    def track(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        top = 0.0 if image[0, 2, 0] == 255 else 5.0
        return [Detection((10.0, top, 30.0, 60.0), 0.9, 1)]


def test_a_patient_cut_off_by_the_frame_edge_is_not_scored() -> None:
    """The side view's patient has the head above the frame in the first 1.5 s: the windows where more than a
    quarter of the samples are cut off are truncated_body, naming the view and the edge; the rest are scored."""
    front, side = _frames("front", 76), _frames("side", 76)
    for f in side:
        f.image[0, 2] = 255 if f.seq < 38 else 1
    trackers = {"front": FakeTracker(), "side": CutOffTracker()}
    engine = FakeEngine()
    pipe = InferencePipeline(_every_sample(), detector=PerViewDetector(trackers), engine=engine)
    scores = _push_pairs(pipe, front, side)
    assert [s.reason_code for s in scores] == ["truncated_body", "truncated_body", None]
    assert scores[0].reason == ("patient cut off by the frame edge: side 8/8 samples (top 8) "
                                "(limit 25% of the samples)")
    # window 1 samples frames 25-47: 25-37 are cut off
    assert scores[1].reason.startswith("patient cut off by the frame edge: side 5/8 samples (top 5)")
    assert len(engine.clips) == 1 and pipe.stats["invalid_truncated_body"] == 2


class CrowdTracker(FakeTracker):
    """Four people, each moving (new pixels every frame), all tall enough to be the patient."""

    def track(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        return [Detection((2.0 + 11 * i, 5.0, 11.0 + 11 * i, 60.0), 0.9, i + 1) for i in range(4)]


def test_a_crowd_is_not_scored() -> None:
    """More people who could be the patient than patient.max_people (3) in a view: crowded, whoever is locked."""
    trackers = {"front": CrowdTracker(), "side": FakeTracker()}
    pipe = InferencePipeline(_every_sample(), detector=PerViewDetector(trackers), engine=FakeEngine())
    scores = _push_pairs(pipe, _frames("front", 51), _frames("side", 51))
    assert [s.reason_code for s in scores] == ["crowded", "crowded"]
    assert scores[0].reason == ("crowded: 4 people who could be the patient in the front view (median of 8 detected "
                                "samples, limit 3)")


def test_views_whose_patients_wear_different_colours_disagree() -> None:
    """The front patient in reds, the side one in blues (two people, one per view): views_disagree by colour; the
    same frames with max colour distance off are scored."""
    front, side = _frames("front", 51), _frames("side", 51)
    for f in front:
        f.image[..., :2] //= 8  # red: little blue or green
    for f in side:
        f.image[..., 1:] //= 8  # blue
    _pipe, scores, _trackers, _engine = _run(front, side)
    assert [s.reason_code for s in scores] == ["views_disagree", "views_disagree"]
    assert "the patients' clothes differ between the views" in scores[1].reason
    cfg = _every_sample()
    cfg.patient.cross_view_max_distance = None
    _pipe, scores, _trackers, _engine = _run(front, side, cfg)
    assert all(s.valid for s in scores)


class RenumberingTracker(FakeTracker):
    """The patient's track id is 1 until frame 50, then 2 (a new id after the patient was lost for a while)."""

    def track(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        if image[0, 0, 0] == 0:
            return []
        return [Detection((10.0, 5.0, 30.0, 60.0), 0.9, 1 if image[0, 1, 0] < 50 else 2)]


@pytest.mark.parametrize(("recolour", "codes"), [
    (False, [None, None, "patient_missing", "patient_missing", None, None]),
    (True, [None, None, "patient_missing", "patient_missing", "identity_changed", "identity_changed"]),
])
def test_a_lock_taken_again_in_the_walk_must_look_like_the_walks_patient(recolour, codes) -> None:
    """The patient is unseen in both views for 1.6 s (longer than lost_after_s, shorter than walk_gap_s) and comes
    back as a new track id. Looking the same, it is the walk's patient again; in other colours (someone else), the
    windows of that lock are identity_changed."""
    hidden = set(range(50, 90))
    front, side = _frames("front", 151, hidden=hidden), _frames("side", 151, hidden=hidden)
    for f in front + side:
        f.image[0, 1] = min(f.seq, 255)
        if recolour and f.seq >= 90 and f.view == "side":
            f.image[1:, :, 1:] //= 8  # blue
    trackers = {"front": RenumberingTracker(), "side": RenumberingTracker()}
    pipe = InferencePipeline(_every_sample(), detector=PerViewDetector(trackers), engine=FakeEngine())
    scores = _push_pairs(pipe, front, side)
    assert [s.reason_code for s in scores] == codes
    assert all(s.walk == 0 for s in scores if s.valid) and pipe.stats["walks"] == 1
    if recolour:
        assert "locked again in the walk, is not the walk's patient" in scores[-1].reason


class BoxesTracker(FakeTracker):
    """Fixed people (track id -> box) on every frame."""

    def __init__(self, boxes: dict[int, tuple[float, float, float, float]]) -> None:
        super().__init__()
        self.boxes = boxes

    def track(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        return [Detection(box, 0.9, tid) for tid, box in self.boxes.items()]


def _paint(frames: list[Frame], box: tuple[float, float, float, float], keep_channel: int) -> None:
    """The person in ``box`` wears one colour (the other two channels dimmed); the texture still changes."""
    x0, y0, x1, y1 = (int(v) for v in box)
    for f in frames:
        region = f.image[y0:y1, x0:x1]
        for c in range(3):
            if c != keep_channel:
                region[..., c] //= 8


def test_the_clearer_view_decides_first_and_the_other_locks_the_same_person_by_colour() -> None:
    """Front: a person in red and a slightly taller one in blue (alike in size: ambiguous). Side: the person in red,
    large, and a small one in blue far back (clear). The side view decides first and locks red; the front view then
    locks red too, not the taller blue one it would take by size alone."""
    red_front, blue_front = (2.0, 8.0, 20.0, 60.0), (24.0, 5.0, 44.0, 60.0)
    red_side, blue_side = (5.0, 5.0, 25.0, 60.0), (30.0, 30.0, 40.0, 50.0)
    front, side = _frames("front", 51), _frames("side", 51)
    _paint(front, red_front, 2), _paint(front, blue_front, 0), _paint(side, red_side, 2), _paint(side, blue_side, 0)
    trackers = {"front": BoxesTracker({1: red_front, 2: blue_front}), "side": BoxesTracker({1: red_side, 2: blue_side})}
    pipe = InferencePipeline(_every_sample(), detector=PerViewDetector(trackers), engine=FakeEngine())
    scores = _push_pairs(pipe, front, side)
    assert pipe.latest_patient["side"].box_xyxy == red_side
    assert pipe.latest_patient["front"].box_xyxy == red_front
    assert scores[-1].valid
