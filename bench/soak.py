"""``dualgait bench soak``: the real pipeline for a long looped replay; is memory flat and is lag bounded?

The four processes run under the supervisor (``dualgait run``'s code path) over private ipc sockets, replaying
the pair in a loop at real speed for ``--duration-s``. Every ``--sample-s`` the resident memory (RSS, from
/proc) of each process is sampled; the bench subscribes to the window scores and the supervisor's process
events like any consumer. Reported: per process, RSS after warm-up (median of the first and of the last
minute), growth between them and the largest excursion above the first, in percent; latency over time
(per 30 s and its slope) from inference's own end-to-end latency; windows against expected; drops, gaps
and restarts. Writes ``--output`` (JSON) and the same name with ``.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.configtools import ConfigError, with_overrides

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)

TARGET_RSS_GROWTH_PCT = 10.0
MINUTE_S = 60.0


def add_bench_soak_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="JSON file (the markdown goes beside it, .md)")
    parser.add_argument("--duration-s", type=float, default=600.0, help="length of the looped replay")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="memory before this is not judged")
    parser.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    parser.add_argument("--front", help="front video (default: capture.front)")
    parser.add_argument("--side", help="side video (default: capture.side)")


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def pipeline_children(parent_pid: int | None = None) -> dict[str, int]:
    """The children of ``parent_pid`` (default: this process; any thread's) by pipeline role, from /proc."""
    out: dict[str, int] = {}
    try:
        tasks = list(Path(f"/proc/{parent_pid or os.getpid()}/task").iterdir())
    except FileNotFoundError:  # the parent has exited
        return out
    for task in tasks:
        try:
            pids = [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for pid in pids:
            try:
                args = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
            except (FileNotFoundError, ProcessLookupError):
                continue
            if "capture" in args and "--view" in args:
                role, n = f"capture-{args[args.index('--view') + 1]}", 2
                while role in out:  # several walkways: capture-front, capture-front-2, ...
                    role, n = f"capture-{args[args.index('--view') + 1]}-{n}", n + 1
                out[role] = pid
            elif "infer" in args:
                out["inference"] = pid
            elif "aggregate" in args:
                out["aggregator"] = pid
    return out


def rss_summary(samples: list[tuple[float, float]], warmup_s: float) -> dict[str, Any]:
    """(t_s, rss_mb) samples -> RSS after warm-up: first/last minute medians, growth and max excursion (%)."""
    after = [(t, v) for t, v in samples if t >= warmup_s]
    if len(after) < 2:
        return {"samples": len(samples), "first_mb": None, "last_mb": None, "max_mb": None, "growth_pct": None,
                "max_growth_pct": None}
    t0, t1 = after[0][0], after[-1][0]
    span = min(MINUTE_S, (t1 - t0) / 2)
    first = statistics.median(v for t, v in after if t <= t0 + span)
    last = statistics.median(v for t, v in after if t >= t1 - span)
    peak = max(v for _, v in after)
    return {"samples": len(samples), "first_mb": round(first, 1), "last_mb": round(last, 1),
            "max_mb": round(peak, 1), "growth_pct": round(100 * (last - first) / first, 2),
            "max_growth_pct": round(100 * (peak - first) / first, 2)}


def _soak(cfg: DualgaitConfig, duration_s: float, warmup_s: float, sample_s: float) -> dict[str, Any]:
    import zmq

    from bench.harness import PipelineProcess, looped_replay_overrides
    from bench.stats import describe, lag_over_time
    from core.configtools import merge
    from core.messages import EndOfStream, ProcessEvent, WindowScore
    from core.transport import Receiver, sub_socket

    with tempfile.TemporaryDirectory(prefix="dualgait-soak-") as tmp:
        overrides = looped_replay_overrides(Path(tmp), duration_s)
        endpoints = overrides["endpoints"]
        events_ep = f"ipc://{Path(tmp) / 'events'}.sock"
        rcfg = with_overrides(cfg, merge(overrides, {"supervisor": {"event_endpoint": events_ep}}))
        run = PipelineProcess(rcfg, timeout_s=duration_s + 600, name="soak-pipeline")
        ctx = zmq.Context()

        scores: list[WindowScore] = []
        events: list[ProcessEvent] = []
        eos: EndOfStream | None = None
        rss: dict[str, list[tuple[float, float]]] = {}
        loads: list[float] = []  # 1-min load average at each sample: was the machine shared?
        try:
            receiver = Receiver(sub_socket(ctx, [endpoints["scores"]], hwm=100_000))
            event_rx = Receiver(sub_socket(ctx, [events_ep], hwm=10_000))
            t_start = None
            run.start()
            next_sample = time.monotonic()
            while run.is_alive() and eos is None:
                for message, _ in receiver.poll(100):
                    if isinstance(message, WindowScore):
                        scores.append(message)
                    elif isinstance(message, EndOfStream) and message.source == "inference":
                        eos = message
                for message, _ in event_rx.poll(0):
                    if isinstance(message, ProcessEvent):
                        events.append(message)
                if time.monotonic() >= next_sample:
                    next_sample += sample_s
                    children = pipeline_children(run.pid)
                    loads.append(os.getloadavg()[0])
                    if t_start is None and any(n.startswith("capture") for n in children):
                        t_start = time.monotonic()  # the replay starts about now
                    t = 0.0 if t_start is None else time.monotonic() - t_start
                    for name, pid in children.items():
                        value = rss_mb(pid)
                        if value is not None and t_start is not None:
                            rss.setdefault(name, []).append((round(t, 1), round(value, 1)))
            run.join(60)
        finally:
            run.stop()  # already ended, unless this bench was interrupted
            ctx.destroy(linger=0)
    if run.error is not None and not scores:
        raise ConfigError(f"soak run failed: {run.error}")
    t_first = min((s.t_end_mono_ns for s in scores), default=0)
    stats = eos.stats if eos else {}
    return {
        "duration_s": duration_s, "warmup_s": warmup_s, "sample_s": sample_s,
        "pipeline_exit": run.exit_code, "pipeline_error": run.error,
        "windows": len(scores), "windows_expected": int(duration_s // cfg.inference.window.stride_s) - 1,
        "windows_valid": sum(s.valid for s in scores),
        "invalid_by_reason": {code: sum(s.reason_code == code for s in scores)
                              for code in sorted({s.reason_code for s in scores if s.reason_code})},
        "latency_ms": describe(s.latency_ms for s in scores),
        "lag": lag_over_time([((s.t_end_mono_ns - t_first) / 1e9, s.latency_ms) for s in scores], bucket_s=60.0),
        "rss": {name: rss_summary(samples, warmup_s) for name, samples in sorted(rss.items())},
        "rss_samples": {name: samples for name, samples in sorted(rss.items())},
        "load_avg_1m": {"min": round(min(loads), 2), "mean": round(statistics.fmean(loads), 2),
                        "max": round(max(loads), 2)} if loads else None,
        "restarts": sum(1 for e in events if e.event == "started" and e.restarts > 0),
        "crashes": [f"{e.process}: {e.reason}" for e in events if e.event == "crashed"],
        "capture_send_drops": {v: stats.get(f"capture_send_drops_{v}") for v in ("front", "side")},
        "seq_gaps": {v: stats.get(f"seq_gaps_{v}") for v in ("front", "side")},
        "model": scores[0].model if scores else None,
    }


def render(report: dict[str, Any]) -> str:
    from bench.stats import lag_table, stats_table

    meta, run = report["meta"], report["result"]
    machine = meta["machine"]
    lag = run["lag"]
    lines = [f"# dualgait bench soak ({meta['date']})", "",
             f"Machine: {machine.get('cpu', '?')}, {machine.get('cores_available', '?')} cores (load "
             f"{machine.get('load_avg_1m_at_start')} at start). Profile: `{meta['config']}`. Model: {meta['model']}. "
             f"{run['duration_s']:g} s of looped real-time replay, RSS every {run['sample_s']:g} s, judged after "
             f"{run['warmup_s']:g} s of warm-up.", "",
             "| process | RSS first min (MB) | RSS last min (MB) | growth | max (MB) | max above first |",
             "|---|---|---|---|---|---|"]
    for name, r in run["rss"].items():
        lines.append(f"| {name} | {r['first_mb']} | {r['last_mb']} | {r['growth_pct']} % | {r['max_mb']} | "
                     f"{r['max_growth_pct']} % |")
    lines += ["", f"Windows {run['windows']}/{run['windows_expected']} ({run['windows_valid']} valid; invalid by "
              f"reason {json.dumps(run.get('invalid_by_reason'))}); restarts "
              f"{run['restarts']}; capture send drops {json.dumps(run['capture_send_drops'])}; seq gaps "
              f"{json.dumps(run['seq_gaps'])}; pipeline exit {run['pipeline_exit']}; 1-min load average during "
              f"the run {json.dumps(run['load_avg_1m'])}.", "",
              stats_table({"end to end": run["latency_ms"]}), ""]
    if lag["buckets"]:
        lines += [f"Lag over time (slope {lag['slope_ms_per_min']} ms/min):", "", lag_table(lag), ""]
    lines += [f"Targets: RSS growth within {TARGET_RSS_GROWTH_PCT:g} % for every process: "
              f"{'met' if report['targets']['rss_flat'] else 'NOT met'}; lag p50 grows < 100 ms: "
              f"{'met' if report['targets']['lag_bounded'] else 'NOT met'}."]
    return "\n".join(lines)


def run_bench_soak(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    from bench.report import machine_info, recorded_pair, write_report
    from offline.clips import ensure_int8_engine

    front, side = recorded_pair(args.front, args.side, cfg)
    if args.duration_s < 2 * args.warmup_s or args.sample_s <= 0:
        raise ConfigError("--duration-s must be at least twice --warmup-s, and --sample-s > 0")
    cfg = with_overrides(cfg, {"capture": {"front": front, "side": side}})
    ensure_int8_engine(cfg, front, side)
    machine = machine_info()
    log.info("soak: %.0f s of looped replay through the supervised processes", args.duration_s)
    result = _soak(cfg, args.duration_s, args.warmup_s, args.sample_s)
    lag = result["lag"]
    growths = [r["growth_pct"] for r in result["rss"].values()]
    targets = {
        "rss_flat": bool(growths) and all(g is not None and abs(g) <= TARGET_RSS_GROWTH_PCT for g in growths),
        "lag_bounded": len(lag["buckets"]) >= 2 and lag["last_p50_ms"] - lag["first_p50_ms"] < 100.0,
    }
    report = {"meta": {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine,
                       "config": args.config or "defaults", "overrides": args.overrides, "model": result["model"],
                       "front": front, "side": side},
              "result": result, "targets": targets}
    write_report(args.output, report, render(report))
    return 0
