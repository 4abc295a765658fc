"""ZeroMQ plumbing shared by the process loops: sockets with linger=0, bounded queues, timed receives."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import zmq

from core.messages import Message, MessageError, decode

if TYPE_CHECKING:
    from core.security import Curve

log = logging.getLogger(__name__)


def ipc_endpoints(run_dir: Path) -> dict[str, str]:
    """Private ipc endpoints in a run folder (front, side, scores): no port clashes, nothing on the network."""
    return {name: f"ipc://{run_dir / name}.sock" for name in ("front", "side", "scores")}


def pub_socket(ctx: zmq.Context, endpoint: str, *, hwm: int, curve: Curve | None = None) -> zmq.Socket:
    """``curve``: this process's CURVE settings (core.security); a CURVE server where the endpoint needs it."""
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    try:
        if curve is not None:
            curve.server(ctx, sock, endpoint)
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close()
        raise OSError(f"cannot bind {endpoint}: {exc}") from None
    return sock


def _connect(sock: zmq.Socket, endpoints: list[str], curve: Curve | None) -> zmq.Socket:
    """Connect ``sock`` to each endpoint (a CURVE client where the endpoint needs it); closed on failure."""
    for endpoint in endpoints:
        try:
            if curve is not None:
                curve.client(sock, endpoint)
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            sock.close()
            raise OSError(f"cannot connect to {endpoint}: {exc}") from None
    return sock


def sub_socket(ctx: zmq.Context, endpoints: list[str], *, hwm: int, curve: Curve | None = None) -> zmq.Socket:
    """``curve``: a CURVE client towards each endpoint that needs it (core.security)."""
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    return _connect(sock, endpoints, curve)


def pull_socket(ctx: zmq.Context, endpoint: str, *, hwm: int, curve: Curve | None = None) -> zmq.Socket:
    """The receiving end of a lossless (PUSH/PULL) stream: the sender waits when ``hwm`` messages are queued."""
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, hwm)
    return _connect(sock, [endpoint], curve)


class Receiver:
    """Timed, validated receives: yields decoded messages, counts and drops malformed ones."""

    def __init__(self, sock: zmq.Socket) -> None:
        self.sock = sock
        self.poller = zmq.Poller()
        self.poller.register(sock, zmq.POLLIN)
        self.malformed = 0
        self.waited_ns = 0  # total time spent waiting for input: the process's idle clock
        self.last_message_bytes = 0  # wire size of the message yielded last (all parts)
        self._last_warning_s = 0.0

    def poll(self, timeout_ms: int, *, max_messages: int = 256) -> Iterator[tuple[Message, int]]:
        """Wait up to ``timeout_ms`` for input, then yield (message, receive time ns) for what is queued."""
        t0 = time.monotonic_ns()
        ready = self.poller.poll(timeout_ms)
        self.waited_ns += time.monotonic_ns() - t0
        if not ready:
            return
        for _ in range(max_messages):
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            received_ns = time.monotonic_ns()
            try:
                message = decode([p.buffer for p in parts])  # no copies: sizes are checked before any
            except MessageError as exc:
                self.malformed += 1
                now = time.monotonic()
                if now - self._last_warning_s > 5.0:  # rate-limited: a flood must not flood the log
                    log.warning("dropped malformed message (%d so far): %.300s", self.malformed, exc)  # bounded
                    self._last_warning_s = now
                continue
            self.last_message_bytes = sum(len(p) for p in parts)
            yield message, received_ns


class StopFlag:
    """Set by SIGINT/SIGTERM so process loops can finish cleanly.

    ``handle_signals=False``: only :meth:`set` stops (signal handlers can only be installed in the main
    thread, e.g. for a loop run in a thread by tests).
    """

    def __init__(self, *, handle_signals: bool = True) -> None:
        self._event = threading.Event()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()


def mark_ready(path: str | None) -> None:
    """Tell a supervisor this process is ready (it polls for the file)."""
    if path:
        Path(path).write_text(str(time.time()))
