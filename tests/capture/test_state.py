"""Backoff, camera state machine and fault injection (plain classes, fake clocks)."""

from __future__ import annotations

import random

import pytest

from capture.faults import FaultInjector
from capture.state import Backoff, CameraStateTracker, Counters


def test_backoff_doubles_up_to_max_and_resets() -> None:
    backoff = Backoff(0.5, 6.0, jitter=0.0)
    assert [backoff.next_delay_s() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0]
    assert backoff.attempt == 6
    backoff.reset()
    assert backoff.attempt == 0 and backoff.next_delay_s() == 0.5


def test_backoff_jitter_stays_within_a_quarter() -> None:
    backoff = Backoff(1.0, 1.0, rng=random.Random(3))
    delays = [backoff.next_delay_s() for _ in range(200)]
    assert all(1.0 <= d <= 1.25 for d in delays)
    assert max(delays) - min(delays) > 0.1  # not constant: two captures do not retry in lockstep


class FakeClock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def __call__(self) -> int:
        return self.ns


def test_tracker_states_and_counters() -> None:
    clock, counters = FakeClock(), Counters()
    tracker = CameraStateTracker("front", counters, stall_timeout_s=2.0, clock_ns=clock, wall_ns=clock)
    assert tracker.heartbeat().state == "reconnecting"  # before the first opening
    event = tracker.connected(reconnected=False)
    assert (event.state, event.attempt, counters.reconnects) == ("connected", 0, 0)
    assert tracker.frame(0) is None
    clock.ns += 1_900_000_000
    assert tracker.tick() is None
    clock.ns += 200_000_000
    stalled = tracker.tick()
    assert stalled.state == "stalled" and stalled.reason == "no frame for 2.1 s"
    assert tracker.tick() is None  # published once, not on every tick
    back = tracker.frame(1)
    assert back.state == "connected" and tracker.heartbeat().last_seq == 1
    assert [tracker.lost("read failed", a).attempt for a in (1, 2)] == [1, 2]
    assert tracker.lost("read failed", 2) is None  # same attempt: no new event
    counters.frames_sent = 5
    again = tracker.connected(reconnected=True)
    assert again.reason == "reconnected" and again.counters["reconnects"] == 1 and again.counters["frames_sent"] == 5
    ended = tracker.ended("end of recording")
    assert ended.state == "ended" and tracker.ended("end of recording").state == "ended"  # may be repeated


def test_tracker_does_not_stall_files() -> None:
    clock = FakeClock()
    tracker = CameraStateTracker("side", Counters(), stall_timeout_s=1.0, detect_stalls=False, clock_ns=clock)
    tracker.connected(reconnected=False)
    clock.ns += 10_000_000_000
    assert tracker.tick() is None


def test_fault_injection_rate_jitter_and_seed() -> None:
    faults = FaultInjector(drop_rate=0.1, jitter_ms=20.0, seed=5)
    decisions = [faults.decide() for _ in range(5000)]
    drops = sum(d.drop for d in decisions)
    assert 400 <= drops <= 600
    delays = [d.delay_ns for d in decisions if not d.drop]
    assert min(delays) >= 0 and max(delays) <= 20_000_000 and max(delays) > 15_000_000
    again = FaultInjector(drop_rate=0.1, jitter_ms=20.0, seed=5)
    assert [again.decide() for _ in range(50)] == decisions[:50]
    assert not FaultInjector().active and FaultInjector().decide().drop is False
    with pytest.raises(ValueError, match="drop_rate"):
        FaultInjector(drop_rate=1.0)
