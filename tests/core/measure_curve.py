"""Served vs refused, and what CURVE costs per raw frame: the numbers of docs/security.md ("Test results").

    .venv/bin/python tests/core/measure_curve.py [--seconds 3] [--runs 2]

Capture's FrameSender (XPUB) on tcp 127.0.0.1 sends raw 628x628 frames at 25 fps for ``--seconds`` to an
allow-listed SUB (and, with CURVE, to an unknown key, a plain client and a client with the wrong server key);
prints one JSON line per run, alternating CURVE off and on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from capture.process import FrameSender
from core.messages import Frame, encode_frame
from core.security import Curve, generate_key_pair
from core.transport import Receiver, sub_socket
from dualgait.config import load_config

FPS = 25


def _curve(keys: Path, front: str, on: bool, server_key: Path | None = None, *, bind: bool = False) -> Curve | None:
    overrides = [f"security.curve={'true' if on else 'false'}", f"security.keys_dir={keys}",
                 f"endpoints.front={front}", "aggregator.publish_endpoint=null"]
    if server_key is not None:
        overrides.append(f"security.server_keys={{front: {server_key}}}")
    cfg = load_config(None, overrides)
    return Curve.for_process(cfg, binds=("front",)) if bind else Curve.for_process(cfg, connects=("front",))


def run(tmp: Path, on: bool, seconds: float) -> dict:
    server_ctx, client_ctx = zmq.Context(), zmq.Context()
    server_curve = _curve(tmp / "server", "tcp://127.0.0.1:*", on, bind=True)
    sender = FrameSender(server_ctx, "tcp://127.0.0.1:*", lossless=False, hwm=64, curve=server_curve)
    endpoint = sender.sock.getsockopt_string(zmq.LAST_ENDPOINT)
    server_key = tmp / "server" / "host.key"
    clients = {"allowed": _curve(tmp / "client", endpoint, on, server_key)}
    if on:
        clients |= {"unknown_key": _curve(tmp / "stranger", endpoint, on, server_key),
                    "wrong_server_key": _curve(tmp / "client", endpoint, on), "no_curve": None}
    receivers = {name: Receiver(sub_socket(client_ctx, [endpoint], hwm=64, curve=c)) for name, c in clients.items()}
    time.sleep(0.5)  # subscriptions and handshakes
    image = np.random.default_rng(0).integers(0, 255, (628, 628, 3), dtype=np.uint8)
    got = dict.fromkeys(receivers, 0)
    latency_ms: list[float] = []
    sent, seq, end = 0, 0, time.monotonic() + seconds
    while time.monotonic() < end:
        t_frame = time.monotonic()
        seq += 1
        if sender.send_frame(encode_frame(Frame("front", seq, time.monotonic_ns(), time.time_ns(), image)), None):
            sent += 1
        sender.drain_subscriptions()
        while time.monotonic() < t_frame + 0.1 and got["allowed"] < sent:
            for message, received_ns in receivers["allowed"].poll(2):
                got["allowed"] += 1
                latency_ms.append((received_ns - message.capture_mono_ns) / 1e6)
        for name, receiver in receivers.items():
            if name != "allowed":
                got[name] += sum(1 for _ in receiver.poll(0))
        time.sleep(max(0.0, 1 / FPS - (time.monotonic() - t_frame)))
    result = {"curve": on, "sent": sent, "received": got,
              "refusals": dict(server_curve.refusals) if server_curve else {},
              "latency_ms_p50": round(float(np.percentile(latency_ms, 50)), 2),
              "latency_ms_p95": round(float(np.percentile(latency_ms, 95)), 2)}
    if server_curve is not None:
        server_curve.close()
    server_ctx.destroy(linger=0)
    client_ctx.destroy(linger=0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=2, help="pairs of runs (CURVE off, then on)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dualgait-curve-"))
    try:
        for name in ("server", "client", "stranger"):
            generate_key_pair(tmp / name, "host")
        (tmp / "server" / "allowed").mkdir()
        shutil.copy(tmp / "client" / "host.key", tmp / "server" / "allowed" / "client.key")
        for _ in range(args.runs):
            for on in (False, True):
                print(json.dumps(run(tmp, on, args.seconds)), flush=True)  # the script's output
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
