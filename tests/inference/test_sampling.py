"""Tests for WindowSampler (inference/sampling.py): one sample grid, nearest pair per target, window boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import Frame
from inference.pairing import FramePair
from inference.sampling import Sample, WindowReady, WindowSampler

MS = 1_000_000
T0_NS = 7_000 * MS  # the grid starts at the first pair's time, whatever the clock reads
PERIOD_NS = 40 * MS  # 25 fps
STEP_NS = 125 * MS  # 1 s / 8 frames
_PIXEL = np.zeros((1, 1, 3), dtype=np.uint8)


def _pair(seq: int, t_ns: int) -> FramePair:
    front = Frame(view="front", seq=seq, capture_mono_ns=t_ns, capture_wall_ns=t_ns, image=_PIXEL)
    side = Frame(view="side", seq=seq + 1000, capture_mono_ns=t_ns + 2 * MS, capture_wall_ns=t_ns, image=_PIXEL)
    return FramePair(front, side)


def _pairs(seqs) -> list[FramePair]:
    return [_pair(i, T0_NS + i * PERIOD_NS) for i in seqs]


def _run(sampler: WindowSampler, pairs: list[FramePair]) -> list[Sample | WindowReady]:
    events: list[Sample | WindowReady] = []
    for p in pairs:
        events.extend(sampler.push(p))
    return events


def _samples(events) -> list[Sample]:
    return [e for e in events if isinstance(e, Sample)]


def _windows(events) -> list[WindowReady]:
    return [e for e in events if isinstance(e, WindowReady)]


def _nearest_seq(target_ms: float, frame_times_ms: dict[int, float]) -> int:
    """Reference: the frame nearest the target; on a tie the earlier frame (min() keeps the first candidate,
    and the sampler lists the previous pair before the current one)."""
    return min(sorted(frame_times_ms), key=lambda s: (abs(frame_times_ms[s] - target_ms), frame_times_ms[s]))


def test_window0_front_seqs_are_nearest_to_targets():
    """Targets 0, 125, ..., 875 ms on a 40-ms frame grid pick seqs [0, 3, 6, 9, 12, 16, 19, 22]."""
    events = _run(WindowSampler(frames=8, step_ns=STEP_NS, stride_samples=8), _pairs(range(30)))
    samples = _samples(events)[:8]
    seqs = [s.pair.front.seq for s in samples]
    assert seqs == [0, 3, 6, 9, 12, 16, 19, 22]
    # the same from the reference (500 ms is equidistant from 480 and 520 and goes to the earlier, seq 12)
    times = {i: i * 40.0 for i in range(30)}
    assert seqs == [_nearest_seq(k * 125.0, times) for k in range(8)]
    assert [s.target_ns for s in samples] == [T0_NS + k * STEP_NS for k in range(8)]
    assert [s.index for s in samples] == list(range(8))
    assert _windows(events)[0] == WindowReady(window=0, first_sample=0)


def test_380_frames_give_15_back_to_back_windows():
    """15.2 s at 25 fps with 1-s windows, stride 8: windows 0..14 of 8 consecutive samples, no pair used twice."""
    events = _run(WindowSampler(frames=8, step_ns=STEP_NS, stride_samples=8), _pairs(range(380)))
    windows = _windows(events)
    assert [w.window for w in windows] == list(range(15))
    assert [w.first_sample for w in windows] == [8 * w for w in range(15)]
    samples = _samples(events)
    # samples are resolved in index order; the last frame (15.16 s) resolves the target at 15.125 s
    assert [s.index for s in samples] == list(range(122))
    assert all(s.pair is not None for s in samples)
    # a window is announced right after its last sample
    for w in windows:
        position = events.index(w)
        assert events[position - 1] == samples[w.first_sample + 7]
    # each chosen pair is the nearest to its target, and no pair is used twice
    times = {i: i * 40.0 for i in range(380)}
    chosen = [s.pair.front.seq for s in samples]
    assert chosen == [_nearest_seq(k * 125.0, times) for k in range(122)]
    assert len(set(map(id, (s.pair for s in samples)))) == len(samples)
    assert all(abs(s.pair.t_mono_ns - s.target_ns) <= STEP_NS // 2 for s in samples)


def test_gap_gives_missing_samples():
    """A 520-ms gap (frames 25..36 lost) leaves the targets inside it without a pair, never filled from elsewhere."""
    seqs = [i for i in range(80) if not 25 <= i <= 36]  # no frames between 960 ms and 1480 ms
    events = _run(WindowSampler(frames=8, step_ns=STEP_NS, stride_samples=8), _pairs(seqs))
    samples = _samples(events)
    by_index = {s.index: s for s in samples}
    assert by_index[8].pair.front.seq == 24  # target 1000 ms: 960 ms is 40 ms away, within half a step
    assert [by_index[k].pair for k in (9, 10, 11)] == [None, None, None]  # 1125, 1250, 1375 ms
    assert [by_index[k].target_ns for k in (9, 10, 11)] == [T0_NS + k * STEP_NS for k in (9, 10, 11)]
    assert by_index[12].pair.front.seq == 37  # target 1500 ms: 1480 and 1520 tie, the earlier wins
    missing = [s.index for s in samples if s.pair is None]
    assert missing == [9, 10, 11]
    # window 1 (samples 8..15) is still announced; the pipeline publishes it as invalid
    assert WindowReady(window=1, first_sample=8) in _windows(events)
    assert [s.index for s in samples] == list(range(len(samples)))


def test_overlapping_windows_stride_4():
    """stride_samples=4: a window every 0.5 s, window w starts at sample 4*w."""
    sampler = WindowSampler(frames=8, step_ns=STEP_NS, stride_samples=4)
    events = _run(sampler, _pairs(range(380)))
    windows = _windows(events)
    assert [w.window for w in windows] == list(range(29))  # last sample 121 -> last window 28 (samples 112..119)
    assert [w.first_sample for w in windows] == [4 * w for w in range(29)]
    samples = _samples(events)
    assert [s.index for s in samples] == list(range(122))  # samples are shared, not duplicated per window
    starts_ms = [(samples[w.first_sample].target_ns - T0_NS) / MS for w in windows]
    assert starts_ms == [500.0 * w for w in range(29)]


@pytest.mark.parametrize("stride", [1, 4, 8, 16])
def test_oldest_sample_still_needed(stride):
    """oldest_sample_still_needed never passes the first sample of the next window that can still complete."""
    sampler = WindowSampler(frames=8, step_ns=STEP_NS, stride_samples=stride)
    assert sampler.oldest_sample_still_needed() == 0
    emitted: set[int] = set()
    resolved = 0
    previous = 0
    for pair in _pairs(range(300)):
        for event in sampler.push(pair):
            if isinstance(event, WindowReady):
                emitted.add(event.window)
            else:
                resolved = event.index + 1
        next_window = max(emitted) + 1 if emitted else 0
        assert emitted == set(range(next_window))  # announced in order, none skipped
        oldest = sampler.oldest_sample_still_needed()
        assert oldest <= next_window * stride
        assert oldest <= resolved
        assert oldest >= previous  # never moves backwards
        previous = oldest
        # tight bound: nothing still needed is released early, and samples are not held for nothing
        if next_window * stride <= resolved:
            assert oldest == next_window * stride
    assert previous > 0


def test_exact_oldest_values_stride_8():
    """After 122 samples and 15 windows (stride 8), samples below 120 (window 15's first) can be released."""
    sampler = WindowSampler(frames=8, step_ns=STEP_NS, stride_samples=8)
    _run(sampler, _pairs(range(380)))
    assert sampler.oldest_sample_still_needed() == 120


def test_first_pair_sets_the_grid():
    """Sample 0 is the first pair itself, at its own time."""
    sampler = WindowSampler(frames=8, step_ns=STEP_NS, stride_samples=8)
    first = _pair(5, 123_456_789)
    events = sampler.push(first)
    assert events == [Sample(0, first, 123_456_789)]


def test_single_frame_windows():
    """frames=1, stride 1: every sample completes a window of its own."""
    sampler = WindowSampler(frames=1, step_ns=STEP_NS, stride_samples=1)
    events = _run(sampler, _pairs(range(20)))  # 0..760 ms -> targets 0..750 ms, 7 samples
    assert [w.window for w in _windows(events)] == list(range(7))
    assert [w.first_sample for w in _windows(events)] == list(range(7))


@pytest.mark.parametrize(("frames", "step_ns", "stride"), [(0, STEP_NS, 1), (8, 0, 8), (8, STEP_NS, 0)])
def test_invalid_parameters(frames, step_ns, stride):
    """Non-positive parameters are a ValueError."""
    with pytest.raises(ValueError, match="positive"):
        WindowSampler(frames=frames, step_ns=step_ns, stride_samples=stride)
