"""Receiver over real ZeroMQ sockets: malformed messages are counted and dropped, valid ones pass."""

from __future__ import annotations

import time

import numpy as np
import zmq

from core.messages import Frame, encode_frame
from core.transport import Receiver


def test_receiver_drops_malformed_and_keeps_valid() -> None:
    ctx = zmq.Context()
    try:
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://127.0.0.1:{port}")
        receiver = Receiver(sub)
        image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
        good = encode_frame(Frame("side", 7, 1, 2, image))
        bad = [b'{"v": 99, "type": "frame"}', b"x", b"not json at all", b""]
        got: list[Frame] = []
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:  # PUB/SUB joins late: resend until one arrives
            for part in bad[2:]:
                pub.send(part)
            pub.send_multipart(bad[:2])
            pub.send_multipart(good)
            got = [m for m, _ in receiver.poll(100)]
        # a round that arrives after its 100-ms poll comes with the next round: one or more copies
        assert got and all(isinstance(f, Frame) for f in got)
        for frame in got:
            assert frame.view == "side" and frame.seq == 7
            np.testing.assert_array_equal(frame.image, image)
        assert receiver.malformed >= 3
        assert list(receiver.poll(50)) == []  # nothing else is pending: a timed poll returns empty
    finally:
        ctx.destroy(linger=0)
