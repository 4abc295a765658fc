"""Recorded files as cameras: decoding with timestamps, pacing arithmetic, bad files."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from capture.pacing import Pacer, start_instant_mono_ns
from capture.sources import FileSource, SourceError


def test_shared_recording_frames_and_timestamps(assets: Path) -> None:
    source = FileSource(assets / "videos" / "walk_side.mp4")
    assert (source.width_px, source.height_px, source.fps, source.frame_count) == (628, 628, 25.0, 380)
    frames = list(source.frames())
    source.close()
    assert [f.index for f in frames] == list(range(380))
    assert frames[0].image.shape == (628, 628, 3)
    # container timestamps: 40 ms apart, starting at 0
    assert frames[0].pts_ns == 0
    steps = {b.pts_ns - a.pts_ns for a, b in itertools.pairwise(frames)}
    assert all(abs(step - 40_000_000) <= 1_000_000 for step in steps), steps
    assert all(f.pts_from_container for f in frames)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="video not found"):
        FileSource(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match=r"cannot open video|not a readable video"):
        FileSource(bad)


def test_pacer_schedule_and_speed() -> None:
    pacer = Pacer(start_mono_ns=1_000_000_000, speed=2.0)
    assert pacer.due_ns(0) == 1_000_000_000
    assert pacer.due_ns(40_000_000) == 1_020_000_000  # 40 ms of video at 2x = 20 ms of wall time
    fast = Pacer(start_mono_ns=time.monotonic_ns() - 10_000_000_000)  # 10 s behind: released at once, late
    lateness = fast.wait(0)
    assert lateness >= 10_000_000_000 - 1 and fast.late_frames == 1
    on_time = Pacer(start_mono_ns=time.monotonic_ns() + 20_000_000)
    assert on_time.wait(0) < 50_000_000 and time.monotonic_ns() >= on_time.start_mono_ns


def test_shared_start_instant_from_wall_clock() -> None:
    """Two processes given the same wall-clock start instant get the same monotonic instant."""
    start_at = time.time() + 2.0
    a = start_instant_mono_ns(start_at, default_delay_s=99)
    b = start_instant_mono_ns(start_at, default_delay_s=99)
    assert abs(a - b) < 5_000_000
    assert 1.9e9 < a - time.monotonic_ns() < 2.1e9
    default = start_instant_mono_ns(None, default_delay_s=1.5)
    assert 1.4e9 < default - time.monotonic_ns() < 1.6e9
