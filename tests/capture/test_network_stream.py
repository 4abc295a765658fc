"""Capture against a real network stream: a recording served as MJPEG over HTTP (tests/capture/mjpeg_server.py),
read by OpenCV's FFmpeg backend in a real capture process. The camera stalls, is cut and comes back: the
process keeps running, reports stalled -> reconnecting -> connected, and frames flow again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import yaml
import zmq
from mjpeg_server import MjpegServer

from core.messages import CameraState, Frame, Heartbeat
from core.transport import Receiver, sub_socket


def _recording_jpegs(path: Path, frames: int, size_px: int = 160) -> list[bytes]:
    cap = cv2.VideoCapture(str(path))
    out = []
    for _ in range(frames):
        ok, image = cap.read()
        assert ok
        ok, buf = cv2.imencode(".jpg", cv2.resize(image, (size_px, size_px)), [cv2.IMWRITE_JPEG_QUALITY, 80])
        out.append(buf.tobytes())
    cap.release()
    return out


class Collector:
    def __init__(self, receiver: Receiver, proc: subprocess.Popen) -> None:
        self.receiver, self.proc = receiver, proc
        self.frames: list[Frame] = []
        self.states: list[CameraState] = []
        self.beats: list[Heartbeat] = []

    def until(self, done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert self.proc.poll() is None, f"capture exited with {self.proc.returncode} waiting for {what}"
            assert time.monotonic() < deadline, (f"no {what} after {timeout_s} s; states "
                                                 f"{[(s.state, s.reason) for s in self.states]}")
            for message, _ in self.receiver.poll(100):
                if isinstance(message, Frame):
                    self.frames.append(message)
                elif isinstance(message, CameraState):
                    self.states.append(message)
                elif isinstance(message, Heartbeat):
                    self.beats.append(message)

    def state_names(self) -> list[str]:
        return [s.state for s in self.states]


def test_http_mjpeg_camera_stalls_is_cut_and_comes_back(tmp_path: Path, assets: Path) -> None:
    server = MjpegServer(_recording_jpegs(assets / "videos" / "walk_front.mp4", 50), fps=25.0).start()
    endpoint = f"ipc://{tmp_path}/front.sock"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "endpoints": {"front": endpoint},
        "capture": {"front": server.url, "stall_timeout_s": 0.6, "open_timeout_s": 1.5, "heartbeat_s": 0.2,
                    "reconnect_initial_s": 0.2, "reconnect_max_s": 0.8, "encoding": "jpeg"},
    }))
    ctx = zmq.Context()
    proc = subprocess.Popen([sys.executable, "-m", "dualgait", "capture", "--config", str(config), "--view", "front"],
                            stderr=subprocess.PIPE, text=True)
    try:
        sub = sub_socket(ctx, [endpoint], hwm=1000)  # 1000: ZeroMQ's default
        got = Collector(Receiver(sub), proc)
        got.until(lambda: len(got.frames) >= 10, 60, "frames")  # the first connection may precede our SUB
        # 1. the camera stops sending but keeps the connection: stalled (heartbeats go on)
        server.paused.set()
        got.until(lambda: "stalled" in got.state_names(), 15, "stalled state")
        beats_while_stalled = len(got.beats)
        # 2. the camera goes away: reconnect attempts with backoff while it is down
        server.cut()
        got.until(lambda: sum(s.state == "reconnecting" for s in got.states) >= 2, 15, "reconnect attempts")
        frames_before = len(got.frames)
        reconnecting = [s for s in got.states if s.state == "reconnecting"]
        assert [s.attempt for s in reconnecting][:2] == [1, 2]
        # 3. the camera comes back on the same port: connected again and frames flow
        server.restart()
        got.until(lambda: got.state_names()[-1] == "connected" and len(got.frames) >= frames_before + 10, 30,
                  "frames after the reconnection")
        assert proc.poll() is None  # camera loss never ended the process
        proc.send_signal(signal.SIGTERM)
        got.until(lambda: "ended" in got.state_names(), 15, "ended state")
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.cut()
        ctx.destroy(linger=0)
    stderr = proc.stderr.read()
    assert code == 0, stderr[-2000:]
    names = got.state_names()
    # the order of what happened, after the first connection
    first = names.index("stalled")
    assert names[first:first + 2] == ["stalled", "reconnecting"], names
    assert names[-2:] == ["connected", "ended"], names
    back = got.states[-2]
    assert back.reason == "reconnected" and back.counters["reconnects"] == 1
    ended = got.states[-1]
    assert ended.reason == "stopped" and ended.counters["reconnects"] == 1
    assert ended.counters["frames_sent"] >= len(got.frames) and ended.counters["send_drops"] == 0
    assert ended.counters["frames_read"] == ended.counters["frames_sent"] + ended.counters["queue_drops"]
    assert len(got.beats) > beats_while_stalled  # heartbeats kept coming through the outage
    assert {b.state for b in got.beats} >= {"connected", "reconnecting"}
    seqs = [f.seq for f in got.frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # numbering continued across the reconnection
    assert server.connections >= 2
    assert got.frames[-1].image.shape == (160, 160, 3)
    assert "reconnect attempt 1" in stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/nothing.mjpg"])
def test_unreachable_camera_keeps_retrying_with_backoff(tmp_path: Path, url: str) -> None:
    """Nothing listens: the process does not exit, it publishes reconnect attempts and heartbeats."""
    endpoint = f"ipc://{tmp_path}/front.sock"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "endpoints": {"front": endpoint},
        "capture": {"front": url, "open_timeout_s": 0.5, "heartbeat_s": 0.1, "reconnect_initial_s": 0.1,
                    "reconnect_max_s": 0.2},
    }))
    ctx = zmq.Context()
    proc = subprocess.Popen([sys.executable, "-m", "dualgait", "capture", "--config", str(config), "--view", "front"],
                            stderr=subprocess.DEVNULL)
    try:
        sub = sub_socket(ctx, [endpoint], hwm=1000)  # 1000: ZeroMQ's default
        got = Collector(Receiver(sub), proc)
        got.until(lambda: len([s for s in got.states if s.state == "reconnecting"]) >= 3 and len(got.beats) >= 3, 60,
                  "reconnect attempts")
        attempts = [s.attempt for s in got.states if s.state == "reconnecting"]
        assert attempts == sorted(attempts) and len(set(attempts)) == len(attempts)
        assert all(b.state == "reconnecting" and b.last_seq is None for b in got.beats)
        assert all("cannot open http://127.0.0.1:1/nothing.mjpg" in s.reason for s in got.states)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            ctx.destroy(linger=0)
    assert proc.returncode == 0
