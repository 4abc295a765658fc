"""Load shedding steps (inference.overload) and what the pipeline does at each level."""

from __future__ import annotations

import pytest

from core.messages import OVERLOAD_STEPS, decode, encode_window
from inference.config import DetectorConfig, InferenceConfig
from inference.detector import PerViewDetector
from inference.overload import LEVELS, OverloadConfig, OverloadGovernor
from inference.pipeline import InferencePipeline
from tests.inference.test_pipeline import FakeEngine, MovingTracker, _frames, _push_pairs


def test_steps_down_after_lagging_windows_and_back_up_when_the_load_drops():
    gov = OverloadGovernor(OverloadConfig(degrade_windows=2, recover_windows=3))
    assert [gov.observe(lag) for lag in (0.5, 0.1, 0.5, 0.5)] == [None, None, None, 1]  # two in a row
    assert [gov.observe(0.6) for _ in range(6)] == [None, 2, None, 3, None, None]  # max_level 3
    assert [gov.observe(0.05) for _ in range(3)] == [None, None, 2]
    assert gov.stats == {"overload_level": 2, "overload_level_max": 3, "overload_steps_down": 3,
                         "overload_steps_up": 1}
    assert gov.describe() == "level 2 (detector once per window)" and gov.detect_every == 8


def test_disabled_never_sheds():
    gov = OverloadGovernor(OverloadConfig(enabled=False))
    assert gov.keep_frame(10**12) and all(gov.observe(5.0) is None for _ in range(10)) and gov.level == 0


def test_level_words_are_the_protocols():
    assert [words for _, _, words in LEVELS] == list(OVERLOAD_STEPS)
    with pytest.raises(ValueError, match="recover_lag_s must be below"):
        OverloadConfig(degrade_lag_s=0.1, recover_lag_s=0.2)


def _run(level: int, windows: int = 4):
    cfg = InferenceConfig(detector=DetectorConfig(interval_samples=1),
                          overload=OverloadConfig(recover_windows=1000))  # the level stays where it is set
    front, side = _frames("front", 25 * windows + 1), _frames("side", 25 * windows + 1)
    for f in front + side:
        f.image[0, 1] = f.seq
    trackers = {"front": MovingTracker(), "side": MovingTracker()}
    engine = FakeEngine()
    pipe = InferencePipeline(cfg, detector=PerViewDetector(trackers), engine=engine)
    pipe.overload.level = level  # as if the governor had stepped down (its rules: the tests above)
    return pipe, _push_pairs(pipe, front, side), trackers, engine


@pytest.mark.parametrize(("level", "detected_per_window"), [(1, 2), (2, 1)])
def test_detector_steps_make_fewer_calls_and_windows_stay_valid(level, detected_per_window):
    pipe, scores, trackers, _engine = _run(level)
    # the lock needs ~0.5 s of motion history: with sparse detections it comes after the first window
    assert [s.valid for s in scores] == [False, True, True, True] and scores[0].reason_code == "patient_missing"
    assert {s.overload_level for s in scores} == {level}
    assert trackers["front"].calls == pipe.stats["samples_detected"]
    assert pipe.stats["samples_detected"] <= 4 * detected_per_window + 1  # + the stream's first sample
    assert all(s.visible == {"front": 8, "side": 8} for s in scores[1:])  # boxes interpolated or held


def test_the_last_step_scores_every_other_window():
    pipe, scores, _trackers, engine = _run(3)
    assert [(s.valid, s.reason_code) for s in scores] == [(False, "patient_missing"), (False, "shed"), (True, None),
                                                          (False, "shed")]
    assert "overloaded (level 3" in scores[1].reason and len(engine.clips) == 1
    assert pipe.stats["windows_shed"] == 2
    wire = decode(encode_window(scores[1]))
    assert wire.overload_level == 3 and wire.reason_code == "shed"


class _VirtualClock:
    def __init__(self) -> None:
        self.now_ns = 0


class _SlowDetector(PerViewDetector):
    """Each detector call costs ``cost_ns`` of virtual time (a machine far too slow for the default settings)."""

    def __init__(self, trackers, clock: _VirtualClock, cost_ns: int) -> None:
        super().__init__(trackers)
        self.clock, self.cost_ns = clock, cost_ns

    def track(self, images, *, full_size=False):
        self.clock.now_ns += self.cost_ns * (2 if full_size else 1)  # full size: one call per view
        return super().track(images, full_size=full_size)


def _live_run(enabled: bool, seconds: int = 20, cost_ms: int = 300, monkeypatch=None):
    """Frames arrive at their capture times; the pipeline takes them one by one when it is free (virtual time:
    the pipeline's stage timers read the virtual clock too, so the work it measures is the detector's cost)."""
    clock = _VirtualClock()
    if monkeypatch is not None:
        import time
        import types

        import inference.pipeline

        fake = types.SimpleNamespace(perf_counter=lambda: clock.now_ns / 1e9, monotonic_ns=lambda: clock.now_ns,
                                     strftime=time.strftime)
        monkeypatch.setattr(inference.pipeline, "time", fake)
    cfg = InferenceConfig(overload=OverloadConfig(enabled=enabled))
    front, side = _frames("front", 25 * seconds + 1), _frames("side", 25 * seconds + 1)
    for f in front + side:
        f.image[0, 1] = f.seq % 100  # the box slides 25 px and back (MovingTracker)
    trackers = {"front": MovingTracker(), "side": MovingTracker()}
    pipe = InferencePipeline(cfg, detector=_SlowDetector(trackers, clock, cost_ms * 1_000_000),
                             engine=FakeEngine(), clock_ns=lambda: clock.now_ns)
    scores, lags_s = [], []
    for frame in sorted(front + side, key=lambda f: (f.capture_mono_ns, f.view)):
        clock.now_ns = max(clock.now_ns, frame.capture_mono_ns)
        for score in pipe.push(frame, received_ns=clock.now_ns):
            scores.append(pipe.stamp_latency(score))
            lags_s.append(score.timings_ms["receive"] / 1e3)
    return pipe, scores, lags_s


def test_a_detector_too_slow_for_real_time_sheds_load_and_stays_current(monkeypatch):
    """300 ms per detector call: 1.2 s of work per second of video as configured. Without shedding the lag grows
    until every window is stale; with it the pipeline steps down, the lag stays under one window and most
    windows are scored."""
    _pipe, scores, lags = _live_run(enabled=False, monkeypatch=monkeypatch)
    assert sum(s.valid for s in scores[5:]) == 0 and min(lags[5:]) > 1.5  # behind: every window stale
    pipe, scores, lags = _live_run(enabled=True, monkeypatch=monkeypatch)
    assert pipe.overload.stats["overload_level_max"] >= 1
    # level 1 is 60% busy: not calm enough to step back into the overload (the lag alone would say it is)
    assert pipe.overload.stats["overload_steps_up"] == 0
    late = scores[5:]  # once the governor has settled
    assert sum(s.valid for s in late) >= 0.8 * len(late)
    assert max(lags[5:]) < 1.0 and max(s.latency_ms for s in late) < 1500
