"""``dualgait bench capture``: capture -> inference-receive latency and CPU per capture process, per transport.

For each transport (raw over ipc, JPEG over TCP, ...) a worker process (``python -m bench.capture --worker
JOB``) starts two real capture processes (front and side) replaying two generated videos (the
configured recordings scaled to ``--width`` x ``--height`` at ``--fps``) from one shared start instant,
and receives both views the way inference does (SUB, ``inference.receive_hwm_frames``, validated and
decoded messages). Latency of a frame: host CLOCK_MONOTONIC when the decoded frame is in hand minus its
capture stamp (replay stamps a frame with the instant it is due). CPU of a capture process: its
utime + stime from /proc between its first frame and its end, over that wall time (1.0 = one core).
Results: ``<output>/bench_capture.json`` and ``bench_capture.md``; ratios are against raw-ipc of the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from core.configtools import ConfigError

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig

__all__ = ["TRANSPORTS", "add_bench_capture_args", "run_bench_capture"]

log = logging.getLogger(__name__)

TRANSPORTS: dict[str, tuple[str, str]] = {  # id -> (encoding, endpoint kind)
    "raw-ipc": ("raw", "ipc"), "jpeg-tcp": ("jpeg", "tcp"), "raw-tcp": ("raw", "tcp"), "jpeg-ipc": ("jpeg", "ipc"),
}
BASELINE = "raw-ipc"
_RESULT_MARK = "DUALGAIT-BENCH-CAPTURE "
_REPO_ROOT = Path(__file__).resolve().parents[1]


def add_bench_capture_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transports", default="raw-ipc,jpeg-tcp", help=f"comma list of ({', '.join(TRANSPORTS)})")
    parser.add_argument("--width", type=int, default=1280, help="frame width in px")
    parser.add_argument("--height", type=int, default=720, help="frame height in px")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of both streams")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each stream")
    parser.add_argument("--jpeg-quality", type=int, default=None, help="JPEG quality (default: capture.jpeg_quality)")
    parser.add_argument("--output", default="bench-output", help="folder for bench_capture.json and .md")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="wall-clock limit per transport")


# --------------------------------------------------------------------------- inputs


def make_stream_video(src: str | Path, dst: Path, *, width_px: int, height_px: int, fps: float,
                      seconds: float) -> Path:
    """``src`` scaled to width x height, looped to ``seconds`` at ``fps`` (MJPG AVI, cheap to decode)."""
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise ConfigError(f"cannot open video {src}")
    frames = max(1, round(seconds * fps))
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width_px, height_px))
    written = 0
    while written < frames:
        ok, image = cap.read()
        if not ok:
            if written == 0:
                raise ConfigError(f"video has no decodable frames: {src}")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        writer.write(cv2.resize(image, (width_px, height_px), interpolation=cv2.INTER_LINEAR))
        written += 1
    writer.release()
    cap.release()
    return dst


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_s(pid: int) -> float | None:
    """utime + stime of a live process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


# --------------------------------------------------------------------------- worker (one transport)


def _worker(job: dict[str, Any]) -> dict[str, Any]:
    import yaml
    import zmq

    from core.messages import CameraState, Frame
    from core.transport import Receiver, sub_socket

    encoding, kind = TRANSPORTS[job["transport"]]
    with tempfile.TemporaryDirectory(prefix="dualgait-bench-capture-") as tmp:
        endpoints = ({v: f"ipc://{tmp}/{v}.sock" for v in ("front", "side")} if kind == "ipc"
                     else {v: f"tcp://127.0.0.1:{_free_tcp_port()}" for v in ("front", "side")})
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({"endpoints": endpoints, "capture": {
            "front": job["front"], "side": job["side"], "encoding": encoding, "jpeg_quality": job["jpeg_quality"],
            "heartbeat_s": 0.5}}))
        ctx = zmq.Context()
        receiver = Receiver(sub_socket(ctx, list(endpoints.values()), hwm=job["receive_hwm_frames"]))
        start_at = time.time() + job["start_delay_s"]
        procs = {view: subprocess.Popen([sys.executable, "-m", "dualgait", "capture", "--config", str(config),
                                         "--view", view, "--start-at", f"{start_at:.6f}", "--log-level", "WARNING"],
                                        cwd=_REPO_ROOT)
                 for view in ("front", "side")}
        latency_ms: list[float] = []
        received = dict.fromkeys(procs, 0)
        payload_bytes: list[int] = []
        cpu0: dict[str, tuple[float, float]] = {}
        cpu: dict[str, float | None] = dict.fromkeys(procs)
        counters: dict[str, dict[str, int]] = {}
        deadline = time.monotonic() + job["timeout_s"]
        try:
            while len(counters) < len(procs) and time.monotonic() < deadline:
                if all(p.poll() is not None for p in procs.values()) and not receiver.poller.poll(0):
                    break
                for message, _received_ns in receiver.poll(100):
                    now_ns = time.monotonic_ns()
                    if isinstance(message, Frame):
                        latency_ms.append((now_ns - message.capture_mono_ns) / 1e6)
                        received[message.view] += 1
                        if message.view not in cpu0:
                            cpu0[message.view] = (_cpu_s(procs[message.view].pid) or 0.0, time.monotonic())
                        payload_bytes.append(receiver.last_message_bytes)
                    elif isinstance(message, CameraState) and message.state == "ended" and message.view not in counters:
                        counters[message.view] = message.counters
                        end_cpu = _cpu_s(procs[message.view].pid)
                        if message.view in cpu0 and end_cpu is not None:
                            cpu_start, t_start = cpu0[message.view]
                            cpu[message.view] = round((end_cpu - cpu_start) / max(1e-9, time.monotonic() - t_start), 3)
            codes = {view: proc.wait(timeout=30) for view, proc in procs.items()}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            ctx.destroy(linger=0)
    expected = job["frames"] * len(procs)
    ok = all(c == 0 for c in codes.values()) and len(counters) == len(procs)
    return {
        "status": "ok" if ok else "failed",
        "reason": None if ok else f"exit codes {codes}, ended views {sorted(counters)}",
        "latency_ms": {"p50": _pct(latency_ms, 50), "p99": _pct(latency_ms, 99),
                       "max": round(max(latency_ms), 3) if latency_ms else None},
        "frames_expected": expected,
        "frames_received": sum(received.values()),
        "send_drops": sum(c.get("send_drops", 0) for c in counters.values()),
        "queue_drops": sum(c.get("queue_drops", 0) for c in counters.values()),
        "capture_cpu_share": cpu,  # CPU seconds per wall second of each capture process while it streamed
        "wire_bytes_per_frame": int(np.mean(payload_bytes)) if payload_bytes else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


# --------------------------------------------------------------------------- driver


def _markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    s = meta["settings"]
    head = ("transport", "p50 ms", "p99 ms", "max ms", f"p50 vs {BASELINE}", f"p99 vs {BASELINE}",
            "CPU front", "CPU side", f"CPU vs {BASELINE}", "KB/frame on the wire", "received / expected",
            "send drops", "status")
    lines = [
        "# dualgait capture benchmark", "",
        f"- date: {meta['date']}; CPU: {meta['cpu']}; cores: {meta['cores']}; load average at start "
        f"{meta['load_avg_1m_at_start']} (other work on the machine raises every number)",
        f"- two streams (front, side), {s['width']}x{s['height']} at {s['fps']:g} fps for {s['seconds']:g} s each, "
        f"JPEG quality {s['jpeg_quality']}; receiver: SUB with high-water mark {s['receive_hwm_frames']}, decoded "
        "frames (as inference receives them)",
        "- latency: decoded frame in hand minus its capture stamp (host monotonic clock), both views together",
        "- CPU: utime+stime of each capture process while it streamed, per wall second (1.0 = one core)",
        "", "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
    ]

    def num(v: float | None, fmt: str = "{:.1f}") -> str:
        return "—" if v is None else fmt.format(v)

    for r in rows:
        lat, cpu = r.get("latency_ms") or {}, r.get("capture_cpu_share") or {}
        lines.append("| " + " | ".join([
            r["transport"], num(lat.get("p50")), num(lat.get("p99")), num(lat.get("max")),
            num(r.get("p50_ratio"), "{:.2f}×"), num(r.get("p99_ratio"), "{:.2f}×"),
            num(cpu.get("front"), "{:.2f}"), num(cpu.get("side"), "{:.2f}"), num(r.get("cpu_ratio"), "{:.2f}×"),
            num(None if r.get("wire_bytes_per_frame") is None else r["wire_bytes_per_frame"] / 1024, "{:.0f}"),
            f"{r.get('frames_received', 0)} / {r.get('frames_expected', 0)}", str(r.get("send_drops", "—")),
            r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason')}",
        ]) + " |")
    return "\n".join(lines) + "\n"


def _ratios(rows: list[dict[str, Any]]) -> None:
    base = next((r for r in rows if r["transport"] == BASELINE and r["status"] == "ok"), None)
    for r in rows:
        r["p50_ratio"] = r["p99_ratio"] = r["cpu_ratio"] = None
        if base is None or r["status"] != "ok":
            continue
        for key in ("p50", "p99"):
            b, v = base["latency_ms"][key], r["latency_ms"][key]
            r[f"{key}_ratio"] = round(v / b, 3) if b and v is not None else None
        bc = [c for c in base["capture_cpu_share"].values() if c is not None]
        rc = [c for c in r["capture_cpu_share"].values() if c is not None]
        r["cpu_ratio"] = round(sum(rc) / sum(bc), 3) if bc and rc and sum(bc) > 0 else None


def run_bench_capture(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    unknown = [t for t in transports if t not in TRANSPORTS]
    if unknown or not transports:
        raise ConfigError(f"unknown transport {unknown[0] if unknown else '(none)'} (known: {', '.join(TRANSPORTS)})")
    if args.width < 16 or args.height < 16 or args.fps <= 0 or args.seconds <= 0:
        raise ConfigError("--width/--height must be >= 16, --fps and --seconds > 0")
    quality = cfg.capture.jpeg_quality if args.jpeg_quality is None else args.jpeg_quality
    if not 1 <= quality <= 100:
        raise ConfigError(f"--jpeg-quality must be in 1..100, got {quality}")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    from bench.report import machine_info

    machine = machine_info()
    settings = {"width": args.width, "height": args.height, "fps": args.fps, "seconds": args.seconds,
                "jpeg_quality": quality, "receive_hwm_frames": cfg.inference.receive_hwm_frames}
    meta = {"date": machine["date"], "cpu": machine["cpu"], "cores": machine["cores_available"],
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2), "settings": settings}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dualgait-bench-videos-") as tmp:
        videos = {view: str(make_stream_video(cfg.capture.source(view), Path(tmp) / f"{view}.avi", width_px=args.width,
                                              height_px=args.height, fps=args.fps, seconds=args.seconds))
                  for view in ("front", "side")}
        for transport in transports:
            job = {"transport": transport, **videos, "jpeg_quality": quality, "frames": round(args.seconds * args.fps),
                   "receive_hwm_frames": cfg.inference.receive_hwm_frames, "start_delay_s": 3.0,
                   "timeout_s": args.timeout_s}
            log.info("bench capture: %s ...", transport)
            cmd = [sys.executable, "-m", "bench.capture", "--worker", json.dumps(job)]
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=args.timeout_s + 60,
                                      cwd=_REPO_ROOT)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_RESULT_MARK)]
                row = (json.loads(lines[-1][len(_RESULT_MARK):]) if lines
                       else {"status": "failed", "reason": f"worker exited with {proc.returncode}"})
            except subprocess.TimeoutExpired:
                row = {"status": "failed", "reason": "worker timed out"}
            rows.append({"transport": transport, **row})
            summary = {k: rows[-1].get(k) for k in ("latency_ms", "capture_cpu_share", "status")}
            log.info("bench capture: %s: %s", transport, summary)
    _ratios(rows)
    (out / "bench_capture.json").write_text(json.dumps({**meta, "results": rows}, indent=2) + "\n")
    (out / "bench_capture.md").write_text(_markdown(meta, rows))
    print(_markdown(meta, rows), flush=True)  # CLI output
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capture")
    parser.add_argument("--worker", required=True, help="one transport's job (JSON), from dualgait bench capture")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = _worker(json.loads(args.worker))
    print(_RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
