"""The inference receive loop over real sockets with a stand-in pipeline: camera states are forwarded, a
stream ends on ``ended``, and also when every ``ended`` was lost (silence after heartbeats)."""

from __future__ import annotations

import threading
import time

import numpy as np
import zmq

from core.messages import (
    REQUIRED_COUNTERS,
    CameraState,
    EndOfStream,
    Frame,
    Heartbeat,
    Preview,
    encode_camera_state,
    encode_eos,
    encode_frame,
    encode_heartbeat,
)
from core.transport import Receiver, StopFlag, pull_socket, sub_socket
from inference.camera_monitor import CameraMonitor
from inference.detector import Detection
from inference.preview import PreviewThrottle
from inference.process import WalkwayInput, serve
from inference.walkways import BatchStats

COUNTERS = dict.fromkeys(REQUIRED_COUNTERS, 0)


class FakePipeline:
    """Counts frames (optionally slowly, like a loaded CPU) and produces no windows."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.frames = 0
        self.delay_s = delay_s
        self.started = False
        self.session = "test"
        self.latest_patient = {"front": Detection((1.0, 2.0, 5.0, 7.0), 0.9, 4), "side": None}

    def push(self, frame: Frame, *, received_ns: int) -> list:
        self.started = True
        self.frames += 1
        time.sleep(self.delay_s)
        return []

    def end(self, reason: str) -> EndOfStream:
        return EndOfStream("inference", reason, {"frames": self.frames})

    def reset(self) -> None:
        self.frames = 0


class FakeBatcher:
    """The batcher's interface over one FakePipeline (walkway main)."""

    def __init__(self, pipeline: FakePipeline) -> None:
        self.pipelines = {"main": pipeline}
        self.stats = BatchStats()

    def push(self, walkway: str, frame: Frame, *, received_ns: int) -> list:
        return self.pipelines[walkway].push(frame, received_ns=received_ns)

    def flush(self) -> list:
        return []


def _run(send, *, silence_s: float, hwm: int = 1000, delay_s: float = 0.0, timeout_s: float = 20.0,
         previews: PreviewThrottle | None = None):
    """Start serve() in a thread; ``send(pub)`` publishes; returns (messages on the scores socket, pipeline)."""
    ctx = zmq.Context()
    stop = StopFlag(handle_signals=False)
    pipeline = FakePipeline(delay_s)
    try:
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, hwm)
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub = sub_socket(ctx, [f"tcp://127.0.0.1:{port}"], hwm=hwm)
        scores = ctx.socket(zmq.PUB)
        scores.setsockopt(zmq.LINGER, 0)
        scores_port = scores.bind_to_random_port("tcp://127.0.0.1")
        out = sub_socket(ctx, [f"tcp://127.0.0.1:{scores_port}"], hwm=1000)  # 1000: ZeroMQ's default
        time.sleep(0.3)  # PUB/SUB join
        receiver = Receiver(sub)
        monitor = CameraMonitor(silence_s=silence_s, idle_ns=lambda: receiver.waited_ns)
        inputs = [WalkwayInput("main", receiver, monitor, previews)]
        thread = threading.Thread(target=serve, args=(FakeBatcher(pipeline), inputs, scores, stop),
                                  kwargs={"exit_on_end_of_stream": True, "poll_ms": 50})
        thread.start()
        send(pub)
        thread.join(timeout=timeout_s)
        ended_by_itself = not thread.is_alive()
        stop.set()
        thread.join(timeout=5)
        receiver = Receiver(out)
        got = []
        while batch := [m for m, _ in receiver.poll(200)]:
            got.extend(batch)
        return ended_by_itself, got, pipeline
    finally:
        stop.set()
        ctx.destroy(linger=0)


def _frame(view: str, seq: int, size: int = 8) -> list:
    return encode_frame(Frame(view, seq, 1_000 + seq, 2_000 + seq, np.zeros((size, size, 3), np.uint8)))


def test_ended_from_both_views_ends_the_stream_and_states_are_forwarded_once() -> None:
    def send(pub):
        for view in ("front", "side"):
            pub.send_multipart(encode_camera_state(CameraState(view, "connected", "", 0, 1, 2, COUNTERS)))
            for seq in range(3):
                pub.send_multipart(_frame(view, seq))
            pub.send_multipart(encode_camera_state(CameraState(view, "stalled", "no frame for 2.0 s", 0, 1, 2,
                                                               COUNTERS)))
            for _ in range(3):  # ended is repeated by capture: forwarded once
                pub.send_multipart(encode_camera_state(CameraState(view, "ended", "end of recording", 0, 1, 2,
                                                                   {**COUNTERS, "frames_sent": 3})))

    ended, got, pipeline = _run(send, silence_s=30.0)
    assert ended and pipeline.frames == 6
    states = [(m.view, m.state) for m in got if isinstance(m, CameraState)]
    assert states == [("front", "connected"), ("front", "stalled"), ("front", "ended"),
                      ("side", "connected"), ("side", "stalled"), ("side", "ended")]
    (eos,) = [m for m in got if isinstance(m, EndOfStream)]
    assert eos.stats["camera_stalled_front"] == 1 and eos.stats["camera_ended_side"] == 1
    assert eos.stats["capture_frames_sent_front"] == 3


def test_lost_ended_messages_end_the_stream_by_silence() -> None:
    """The known bug: a full receive queue dropped capture's end-of-stream and inference never ended.
    Here no ``ended`` is sent at all: heartbeats stop, and silence ends both views."""
    def send(pub):
        for seq in range(5):
            for view in ("front", "side"):
                pub.send_multipart(_frame(view, seq))
                pub.send_multipart(encode_heartbeat(Heartbeat(view, "connected", 1, 2, seq, COUNTERS)))
            time.sleep(0.02)

    t0 = time.monotonic()
    ended, got, _pipeline = _run(send, silence_s=0.5)
    assert ended and time.monotonic() - t0 < 15
    reasons = [m.reason for m in got if isinstance(m, CameraState) and m.state == "ended"]
    assert len(reasons) == 2 and all(r.startswith("capture silent for") for r in reasons)
    (eos,) = [m for m in got if isinstance(m, EndOfStream)]
    assert eos.reason == "end of stream from both views" and eos.stats["frames"] == 10
    # heartbeats are forwarded, so the aggregator's camera health stays current between state changes
    beats = [m for m in got if isinstance(m, Heartbeat)]
    assert sorted((b.view, b.last_seq) for b in beats) == sorted((v, q) for v in ("front", "side") for q in range(5))


def test_overloaded_receiver_still_ends() -> None:
    """A slow pipeline behind a tiny receive queue: frames and most ``ended`` repeats are dropped by ZeroMQ,
    yet the stream ends (by ``ended`` if one got through, else by silence)."""
    def send(pub):
        for seq in range(100):
            for view in ("front", "side"):
                pub.send_multipart(_frame(view, seq, size=256))
        for _ in range(3):
            for view in ("front", "side"):
                pub.send_multipart(encode_camera_state(CameraState(view, "ended", "end of recording", 0, 1, 2,
                                                                   COUNTERS)))
            time.sleep(0.1)

    ended, got, pipeline = _run(send, silence_s=1.0, hwm=4, delay_s=0.01)
    assert ended
    assert 0 < pipeline.frames < 200  # frames were dropped on the way: this is the overloaded case
    assert any(isinstance(m, EndOfStream) for m in got)


def test_monitor_ignores_views_never_heard() -> None:
    clock = [0]
    monitor = CameraMonitor(silence_s=1.0, idle_ns=lambda: clock[0])
    clock[0] = 10**10
    assert monitor.silent_views() == [] and not monitor.all_ended
    monitor.heard("front")
    clock[0] += 2 * 10**9
    (event,) = monitor.silent_views()
    assert event.view == "front" and event.state == "ended" and not monitor.all_ended
    assert monitor.silent_views() == []  # reported once


def test_a_busy_pipeline_is_not_taken_for_silent_captures() -> None:
    """Scoring a window can take seconds; messages wait unread meanwhile. Silence is counted on the
    receiver's idle time, so the views are not ended while the pipeline is busy."""
    def send(pub):
        for seq in range(6):
            for view in ("front", "side"):
                pub.send_multipart(_frame(view, seq))
        for view in ("front", "side"):
            pub.send_multipart(encode_camera_state(CameraState(view, "ended", "end of recording", 0, 1, 2,
                                                               COUNTERS)))

    ended, got, pipeline = _run(send, silence_s=0.3, delay_s=0.15)  # 12 frames x 0.15 s busy >> 0.3 s
    assert ended and pipeline.frames == 12
    reasons = [m.reason for m in got if isinstance(m, CameraState) and m.state == "ended"]
    assert reasons == ["end of recording", "end of recording"]


def test_lossless_receiver_reads_views_in_capture_time_order() -> None:
    """Front starts long before side: its frames wait (its PUSH blocks) until side catches up, instead of
    running ahead and being given up by the pairer."""
    from inference.process import LosslessReceiver

    ctx = zmq.Context()
    try:
        pushes, pulls = {}, {}
        for view in ("front", "side"):
            push = pushes[view] = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            port = push.bind_to_random_port("tcp://127.0.0.1")
            pulls[view] = pull_socket(ctx, f"tcp://127.0.0.1:{port}", hwm=1000)  # 1000: ZeroMQ's default
        monitor = CameraMonitor(silence_s=30.0)
        receiver = LosslessReceiver(pulls, monitor)
        for seq in range(10):
            pushes["front"].send_multipart(_frame("front", seq))
        got: list[tuple[str, int]] = []
        deadline = time.monotonic() + 5
        while len(got) < 1 and time.monotonic() < deadline:
            got += [(m.view, m.seq) for m, _ in receiver.poll(50) if isinstance(m, Frame)]
        for _ in range(10):  # side has not started: front is not read beyond its first frame
            got += [(m.view, m.seq) for m, _ in receiver.poll(20) if isinstance(m, Frame)]
        assert got == [("front", 0)]
        assert monitor.views["front"].last_heard_ns is not None  # waiting front messages count as heard
        for seq in range(10):
            pushes["side"].send_multipart(_frame("side", seq))
        deadline = time.monotonic() + 10
        while len(got) < 20 and time.monotonic() < deadline:
            got += [(m.view, m.seq) for m, _ in receiver.poll(50) if isinstance(m, Frame)]
    finally:
        ctx.destroy(linger=0)
    times = [1_000 + seq for _view, seq in got]
    assert len(got) == 20 and times == sorted(times)  # merged in capture-time order
    assert sorted(got) == sorted([(v, s) for v in ("front", "side") for s in range(10)])


def test_previews_carry_the_latest_patient_box_at_most_at_their_rate() -> None:
    """Frames 40 ms apart for 1 s at 2 Hz: 2 or 3 previews per view; front with the patient's box, side without."""
    def send(pub):
        for seq in range(25):
            for view in ("front", "side"):
                frame = Frame(view, seq, 1_000 + seq * 40_000_000, 2_000, np.zeros((8, 8, 3), np.uint8))
                pub.send_multipart(encode_frame(frame))
        for view in ("front", "side"):
            pub.send_multipart(encode_eos(EndOfStream(view)))

    _ended, got, _pipeline = _run(send, silence_s=30.0, previews=PreviewThrottle(2.0, 16))
    previews = [m for m in got if isinstance(m, Preview)]
    front = [p for p in previews if p.view == "front"]
    side = [p for p in previews if p.view == "side"]
    assert 2 <= len(front) <= 3 and len(side) == len(front)
    assert all(p.box_xyxy is not None and p.track_id == 4 for p in front)
    assert all(p.box_xyxy is None and p.track_id is None for p in side)
