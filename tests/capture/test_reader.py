"""The reader thread's logic: reconnect with backoff, stamping, pacing, queue policy, fault injection."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from capture_helpers import write_clip

from capture.faults import FaultInjector
from capture.pacing import Pacer
from capture.reader import END_OF_RECORDING, SourceReader
from capture.sources import DecodedFrame, FileSource, SourceError
from capture.state import Backoff, CameraStateTracker, Counters


class ScriptedCamera:
    """A live source following a script: 'fail' (open fails), an int (open, then that many frames, then the
    stream is lost), 'stop' (open, then frames until the test stops the reader)."""

    live = True
    description = "scripted camera"

    def __init__(self, script: list, stop: threading.Event) -> None:
        self.script = list(script)
        self.stop = stop
        self.remaining: int | None = 0
        self.opens = 0

    def open(self) -> None:
        self.opens += 1
        step = self.script.pop(0)
        if step == "fail":
            raise SourceError("connection refused")
        self.remaining = None if step == "stop" else step

    def read(self) -> DecodedFrame | None:
        if self.remaining is None:
            self.stop.set()
            return DecodedFrame(0, 0, False, np.zeros((2, 2, 3), np.uint8), 5)
        if self.remaining == 0:
            raise SourceError("no frame (disconnected)")
        self.remaining -= 1
        return DecodedFrame(0, 0, False, np.zeros((2, 2, 3), np.uint8), 1_000 + self.remaining)

    def close(self) -> None:
        pass


def _reader(source, *, lossless: bool = False, queue_frames: int = 100, pacer: Pacer | None = None,
            faults: FaultInjector | None = None, stop: threading.Event | None = None) -> SourceReader:
    counters = Counters()
    tracker = CameraStateTracker("front", counters, stall_timeout_s=1.0)
    return SourceReader(source, "front", tracker, counters, pacer=pacer, backoff=Backoff(0.001, 0.004),
                        faults=faults, lossless=lossless, queue_frames=queue_frames, stop=stop)


def _drain(q) -> list:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def test_camera_loss_reconnects_with_attempts_and_continues_sequence() -> None:
    stop = threading.Event()
    camera = ScriptedCamera(["fail", "fail", 3, "fail", 2, "stop"], stop)
    reader = _reader(camera, stop=stop)
    reader.run()  # synchronous: returns once the script stops it
    events = [(e.state, e.attempt) for e in _drain(reader.events)]
    assert events == [("reconnecting", 1), ("reconnecting", 2), ("connected", 0),
                      ("reconnecting", 1), ("reconnecting", 2), ("connected", 0),
                      ("reconnecting", 1), ("connected", 0), ("ended", 0)]
    frames = _drain(reader.frames)
    assert [f.seq for f in frames] == list(range(6))  # numbering continues across reconnections
    assert frames[0].capture_mono_ns == 1_002  # a camera frame is stamped when it was read
    assert reader.counters.reconnects == 2 and reader.counters.frames_read == 6
    assert reader.end_reason == "stopped" and not reader.failed


def test_file_replay_lossless_keeps_every_frame_on_the_virtual_timeline(tmp_path: Path) -> None:
    source = FileSource(write_clip(tmp_path / "c.avi", 10))
    reader = _reader(source, lossless=True, queue_frames=100, pacer=Pacer(start_mono_ns=5_000_000_000, speed=2.0))
    reader.run()
    frames = _drain(reader.frames)
    assert [f.seq for f in frames] == list(range(10))
    # frame i at start + pts_i / speed: 40 ms of video at 2x = 20 ms apart, no waiting in lossless mode
    assert [f.capture_mono_ns for f in frames] == [5_000_000_000 + i * 20_000_000 for i in range(10)]
    assert [f.source_ts_ns for f in frames] == [i * 40_000_000 for i in range(10)]
    assert [(e.state, e.reason) for e in _drain(reader.events)] == [("connected", ""), ("ended", END_OF_RECORDING)]


def test_live_queue_drops_oldest_and_counts(tmp_path: Path) -> None:
    source = FileSource(write_clip(tmp_path / "c.avi", 10))
    reader = _reader(source, queue_frames=2, pacer=Pacer(start_mono_ns=0))  # long overdue: no waiting
    reader.run()
    assert [f.seq for f in _drain(reader.frames)] == [8, 9]
    assert reader.counters.queue_drops == 8 and reader.counters.late_frames == 10


def test_injected_drops_leave_sequence_gaps_and_are_counted(tmp_path: Path) -> None:
    source = FileSource(write_clip(tmp_path / "c.avi", 20))
    reader = _reader(source, lossless=True, pacer=Pacer(0), faults=FaultInjector(drop_rate=0.3, seed=1))
    reader.run()
    seqs = [f.seq for f in _drain(reader.frames)]
    assert len(seqs) + reader.counters.frames_dropped_injected == 20
    assert 0 < reader.counters.frames_dropped_injected < 20
    assert sorted(set(range(20)) - set(seqs)) and seqs == sorted(seqs)


def test_injected_jitter_shifts_capture_stamps(tmp_path: Path) -> None:
    source = FileSource(write_clip(tmp_path / "c.avi", 10))
    reader = _reader(source, lossless=True, pacer=Pacer(0), faults=FaultInjector(jitter_ms=10.0, seed=2))
    reader.run()
    offsets = [f.capture_mono_ns - i * 40_000_000 for i, f in enumerate(_drain(reader.frames))]
    assert all(0 <= o <= 10_000_000 for o in offsets) and len(set(offsets)) > 1


def test_unreadable_file_ends_as_failure(tmp_path: Path) -> None:
    source = FileSource(write_clip(tmp_path / "c.avi", 5))

    def broken_read():
        raise SourceError("decoder error")

    source.read = broken_read  # type: ignore[method-assign]
    reader = _reader(source, pacer=Pacer(0))
    reader.run()
    assert reader.failed and reader.end_reason == "decoder error"
    assert [e.state for e in _drain(reader.events)] == ["connected", "ended"]


@pytest.mark.parametrize("lossless", [False, True])
def test_stop_ends_a_blocked_reader(tmp_path: Path, lossless: bool) -> None:
    source = FileSource(write_clip(tmp_path / "c.avi", 30), loop=True)
    reader = _reader(source, lossless=lossless, queue_frames=1, pacer=Pacer(0))
    thread = threading.Thread(target=reader.run)
    thread.start()
    reader.stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and reader.end_reason == "stopped"
