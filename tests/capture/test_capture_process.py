"""The capture loop over real ZeroMQ sockets (run in a thread with its own stop flag)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import zmq
from capture_helpers import frame_value, write_clip

from capture.process import run_capture
from core.configtools import with_overrides
from core.messages import CameraState, Frame, Heartbeat
from core.transport import Receiver, StopFlag, pull_socket, sub_socket
from dualgait.config import DualgaitConfig


def _config(tmp_path: Path, source: Path, **capture) -> DualgaitConfig:
    return with_overrides(DualgaitConfig(), {
        "endpoints": {"front": f"ipc://{tmp_path}/front.sock"},
        "capture": {"front": str(source), "start_delay_s": 0.0, **capture},
    })


def _start(cfg: DualgaitConfig, stop: StopFlag) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(run_capture(cfg, "front", stop=stop)))
    thread.start()
    return thread, codes


def test_lossless_delivers_every_frame_in_order_to_a_slow_consumer(tmp_path: Path) -> None:
    cfg = _config(tmp_path, write_clip(tmp_path / "c.avi", 40), lossless=True, send_hwm_frames=2,
                  heartbeat_s=0.05)
    ctx = zmq.Context()
    stop = StopFlag(handle_signals=False)
    try:
        receiver = Receiver(pull_socket(ctx, cfg.endpoints.front, hwm=2))
        thread, codes = _start(cfg, stop)
        frames: list[Frame] = []
        states: list[CameraState] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(s.state == "ended" for s in states):
            for message, _ in receiver.poll(100, max_messages=1):
                if isinstance(message, Frame):
                    frames.append(message)
                    time.sleep(0.01)  # slower than the replay's 25 fps
                elif isinstance(message, CameraState):
                    states.append(message)
        thread.join(timeout=15)
        assert not thread.is_alive() and codes == [0]
    finally:
        stop.set()
        ctx.destroy(linger=0)
    assert [f.seq for f in frames] == list(range(40))
    assert [frame_value(f.image) for f in frames] == [(4 * i) % 256 for i in range(40)]
    ended = next(s for s in states if s.state == "ended")
    assert ended.reason == "end of recording"
    assert ended.counters["frames_sent"] == 40 and ended.counters["send_drops"] == 0
    assert ended.counters["queue_drops"] == 0


def test_live_counts_frames_dropped_at_the_high_water_mark(tmp_path: Path) -> None:
    """A subscriber far slower than the camera: frames beyond the queues are dropped and counted, never
    queued without bound, and the end still arrives with counters that add up."""
    big = write_clip(tmp_path / "big.avi", 60, size_px=(640, 480))  # 0.9 MB raw frames fill pipes quickly
    cfg = _config(tmp_path, big, speed=4.0, send_hwm_frames=2, heartbeat_s=0.05, inject_drop_rate=0.1)
    ctx = zmq.Context()
    stop = StopFlag(handle_signals=False)
    got: list = []
    try:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 2)
        sub.setsockopt(zmq.RCVBUF, 65536)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(cfg.endpoints.front)
        receiver = Receiver(sub)
        thread, codes = _start(cfg, stop)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(isinstance(m, CameraState) and m.state == "ended"
                                                      for m in got):
            got.extend(m for m, _ in receiver.poll(100, max_messages=1))
            time.sleep(0.05)  # 20 messages/s against 100 frames/s
        thread.join(timeout=15)
        assert not thread.is_alive() and codes == [0]
    finally:
        stop.set()
        ctx.destroy(linger=0)
    ended = [m for m in got if isinstance(m, CameraState) and m.state == "ended"]
    frames = [m for m in got if isinstance(m, Frame)]
    assert ended and frames
    c = ended[-1].counters
    assert c["frames_read"] == 60 and c["frames_dropped_injected"] > 0 and c["send_drops"] > 0
    assert c["frames_sent"] + c["send_drops"] + c["frames_dropped_injected"] + c["queue_drops"] == 60
    assert len(frames) <= c["frames_sent"]
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and seqs[-1] - seqs[0] + 1 > len(seqs)  # the drops show as sequence gaps


def test_stop_flag_ends_a_looping_replay_with_ended_stopped(tmp_path: Path) -> None:
    cfg = _config(tmp_path, write_clip(tmp_path / "c.avi", 10), loop=True, heartbeat_s=0.05)
    ctx = zmq.Context()
    stop = StopFlag(handle_signals=False)
    try:
        sub = sub_socket(ctx, [cfg.endpoints.front], hwm=1000)  # 1000: ZeroMQ's default
        receiver = Receiver(sub)
        thread, codes = _start(cfg, stop)
        got: list = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(isinstance(m, Frame) for m in got) < 30:
            got.extend(m for m, _ in receiver.poll(100))
        stop.set()
        while thread.is_alive():
            got.extend(m for m, _ in receiver.poll(100))
        while batch := [m for m, _ in receiver.poll(300)]:
            got.extend(batch)
    finally:
        stop.set()
        ctx.destroy(linger=0)
    assert codes == [0]
    seqs = [m.seq for m in got if isinstance(m, Frame)]
    assert len(seqs) >= 30 and seqs == sorted(seqs)  # the loop went round three times, numbering continued
    beats = [m for m in got if isinstance(m, Heartbeat)]
    assert beats and all(b.state == "connected" for b in beats[:-1])
    assert any(isinstance(m, CameraState) and m.state == "ended" and m.reason == "stopped" for m in got)
    assert np.all(np.diff([m.capture_mono_ns for m in got if isinstance(m, Frame)]) > 0)


def test_a_late_subscriber_still_gets_the_first_frames(tmp_path: Path) -> None:
    """ZeroMQ's slow joiner: frames published before the subscription is up go nowhere. The capture waits
    (capture.subscriber_wait_s) for its first subscriber, so one that connects 0.6 s late gets frame 0 and the
    camera's first state; the replay's timeline is kept (late frames are stamped when they were due)."""
    cfg = _config(tmp_path, write_clip(tmp_path / "c.avi", 30), heartbeat_s=0.05)
    ctx = zmq.Context()
    stop = StopFlag(handle_signals=False)
    try:
        t0 = time.monotonic_ns()
        thread, codes = _start(cfg, stop)
        time.sleep(0.6)  # 15 frames' worth at 25 fps
        receiver = Receiver(sub_socket(ctx, [cfg.endpoints.front], hwm=1000))
        got: list = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(isinstance(m, CameraState) and m.state == "ended"
                                                      for m in got):
            got.extend(m for m, _ in receiver.poll(100))
        thread.join(timeout=10)
    finally:
        stop.set()
        ctx.destroy(linger=0)
    assert codes == [0]
    frames = [m for m in got if isinstance(m, Frame)]
    states = [m for m in got if isinstance(m, CameraState)]
    # the 15 frames due while nobody listened go out at once; a live reader's 4-frame queue may shed some of
    # that burst on a loaded machine (counted), never silently
    counters = states[-1].counters
    assert states[0].state == "connected"  # without the wait: no state (it went out before the subscription)
    # without the wait frame 15 comes first and none of 0-14 is counted as dropped: they were "sent" to nobody
    assert frames[0].seq <= counters["queue_drops"] + counters["send_drops"] and frames[0].seq < 15
    assert states[-1].state == "ended" and len(frames) == counters["frames_sent"]
    assert counters["frames_sent"] + counters["queue_drops"] + counters["send_drops"] == 30
    assert len(frames) >= 20
    seqs = np.array([f.seq for f in frames])
    times = np.array([f.capture_mono_ns for f in frames])  # the 25-fps timeline, not the catch-up burst
    assert np.allclose(np.diff(times), np.diff(seqs) * 40_000_000, atol=2_000_000)
    assert times[0] - t0 < 1.0e9
