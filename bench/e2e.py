"""``dualgait bench e2e``: end-to-end latency and throughput of the live pipeline against a naive baseline.

Two modes, both run in one command with the naive baseline (:mod:`bench.naive`) beside them:

- ``realtime``: the real processes (two captures replaying the pair in a loop at real speed, inference,
  aggregator) over ipc sockets for ``--duration-s``; the bench subscribes to the scores like any
  consumer. Reported: per-stage timings of every window (p50/p90/p95/p99/p99.9/max/std), end-to-end
  latency, lag over time (per 30 s, and its slope), windows received against expected, frames lost.
  The naive loop runs paced like cameras for ``--baseline-duration-s``; its lag is reported the same way.
- ``offline``: ``dualgait score``'s code path over the pair, as fast as possible, against the naive loop
  unpaced over the same pair; reported as recording seconds per wall second and their ratio.

Writes ``--output`` (JSON) and the same name with ``.md`` (markdown tables). Model weights do not change
speed: without configured weights the model is randomly initialised (labelled untrained).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.stats import describe, lag_over_time, lag_table, stage_stats, stats_table
from core.configtools import ConfigError, with_overrides

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)

STAGES = ("receive", "pair", "detect", "crop", "wait", "model", "publish")
TARGET_P95_MS = 300.0
TARGET_OFFLINE_RATIO = 3.0  # the pipeline's offline speed against the naive loop's
TARGET_OFFLINE_SPEED_X = 3.0  # the pipeline's offline speed against real time

# the settings before issue 17 (the "before" arms): torch bf16, each view alone at 640 px on every sample, no
# overload shedding. Lock acquisition at full size and the stale-sample shedding are code, not settings: in both.
BEFORE_OVERRIDES: dict[str, Any] = {"inference": {
    "detector": {"tiles_per_call": 1, "interval_samples": 0},
    "model": {"engine": "torch", "device": "cpu", "precision": "bf16"},
    "overload": {"enabled": False},
}}


def add_bench_e2e_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="JSON file (the markdown goes beside it, .md)")
    parser.add_argument("--front", help="front video (default: capture.front)")
    parser.add_argument("--side", help="side video (default: capture.side)")
    parser.add_argument("--modes", default="realtime,offline", help="comma-separated: realtime, offline")
    parser.add_argument("--duration-s", type=float, default=300.0, help="realtime: length of the looped replay")
    parser.add_argument("--baseline-duration-s", type=float, default=60.0,
                        help="realtime: length of the naive baseline's paced run")
    parser.add_argument("--offline-passes", type=int, default=2, help="offline: passes over the pair")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    parser.add_argument("--no-before", action="store_true",
                        help="skip the 'before' arms (the settings before tiling, interval and engine auto)")
    parser.add_argument("--walkways", type=int, default=1,
                        help="realtime: walkways replaying the pair at once, two capture processes each, all served "
                             "by one inference process (docs/inference.md)")


# --------------------------------------------------------------------------- realtime


def _realtime(cfg: DualgaitConfig, front: str, side: str, duration_s: float, walkways: int = 1) -> dict[str, Any]:
    import zmq

    from bench.harness import PipelineProcess, looped_replay_overrides
    from bench.soak import pipeline_children, rss_mb
    from core.configtools import merge
    from core.messages import EndOfStream, WindowScore
    from core.transport import Receiver, sub_socket

    with tempfile.TemporaryDirectory(prefix="dualgait-bench-") as tmp:
        overrides = looped_replay_overrides(Path(tmp), duration_s)
        extra = [{"id": f"w{k}", "front": front, "side": side, "front_endpoint": f"ipc://{tmp}/w{k}-front.sock",
                  "side_endpoint": f"ipc://{tmp}/w{k}-side.sock"} for k in range(1, walkways)]
        rcfg = with_overrides(cfg, merge(overrides, {"capture": {"front": front, "side": side}, "walkways": extra}))
        run = PipelineProcess(rcfg, timeout_s=duration_s + 600, name="bench-pipeline")
        ctx = zmq.Context()
        scores: list[WindowScore] = []
        ends: dict[str, EndOfStream] = {}  # walkway -> inference's end of its stream
        peak_rss: dict[str, float] = {}  # process role -> MB
        try:
            receiver = Receiver(sub_socket(ctx, [overrides["endpoints"]["scores"]], hwm=100_000))
            t0 = time.monotonic()
            run.start()
            next_rss_s = 0.0
            while run.is_alive() and len(ends) < walkways:
                if time.monotonic() >= next_rss_s:  # peak RSS of every process, sampled once a second
                    next_rss_s = time.monotonic() + 1.0
                    for role, pid in pipeline_children(run.pid).items():
                        mb = rss_mb(pid)
                        if mb is not None:
                            peak_rss[role] = max(peak_rss.get(role, 0.0), mb)
                for message, _received_ns in receiver.poll(200):
                    if isinstance(message, WindowScore):
                        scores.append(message)
                    elif isinstance(message, EndOfStream) and message.source == "inference":
                        ends[message.walkway] = message
            run.join(60)
            wall_s = time.monotonic() - t0
        finally:
            run.stop()  # already ended, unless this bench was interrupted
            ctx.destroy(linger=0)
    if run.error is not None and not scores:
        raise ConfigError(f"realtime run failed: {run.error}")
    t_first = min((s.t_end_mono_ns for s in scores), default=0)
    stride_s = cfg.inference.window.stride_s
    stats: dict[str, float] = {}  # summed over walkways
    for end in ends.values():
        for key, value in end.stats.items():
            stats[key] = stats.get(key, 0) + value
    reasons: dict[str, int] = {}
    for s in scores:
        if s.reason_code:
            reasons[s.reason_code] = reasons.get(s.reason_code, 0) + 1
    return {
        "duration_s": duration_s, "wall_s": round(wall_s, 1), "pipeline_exit": run.exit_code,
        "pipeline_error": run.error,
        "walkways": walkways,
        "windows": len(scores), "windows_expected": (int(duration_s // stride_s) - 1) * walkways,
        "windows_valid": sum(s.valid for s in scores), "invalid_by_reason": reasons,
        "invalid_examples": [f"window {s.window}: {s.reason}" for s in scores if not s.valid][:5],
        "latency_ms": describe(s.latency_ms for s in scores),
        "stages_ms": stage_stats([s.timings_ms for s in scores], STAGES),
        "lag": lag_over_time([((s.t_end_mono_ns - t_first) / 1e9, s.latency_ms) for s in scores]),
        "frames_received": {v: stats.get(f"frames_{v}") for v in ("front", "side")},
        "frames_lost_in_transit": {v: stats.get(f"seq_gaps_{v}") for v in ("front", "side")},
        "frames_unpaired": {v: stats.get(f"unpaired_{v}") for v in ("front", "side")},
        "frames_dropped_late": {v: stats.get(f"frames_dropped_late_{v}") for v in ("front", "side")},
        "overload": {k: stats.get(k) for k in ("overload_level_max", "overload_steps_down", "windows_shed")},
        "peak_rss_mb": {role: round(mb, 1) for role, mb in sorted(peak_rss.items())},
        "model": scores[0].model if scores else None,
        **({"per_walkway": _per_walkway(scores)} if walkways > 1 else {}),
    }


def _per_walkway(scores: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for walkway in sorted({s.walkway for s in scores}):
        mine = [s for s in scores if s.walkway == walkway]
        latency = describe(s.latency_ms for s in mine)
        out[walkway] = {"windows": len(mine), "windows_valid": sum(s.valid for s in mine),
                        "latency_p50_ms": latency["p50"], "latency_p95_ms": latency["p95"]}
    return out


def _naive_realtime(cfg: DualgaitConfig, front: str, side: str, duration_s: float) -> dict[str, Any]:
    from bench.naive import run_naive

    windows = list(run_naive(cfg, front, side, pace=True, max_duration_s=duration_s, loop=True))
    return {
        "duration_s": duration_s, "windows": len(windows), "windows_expected": int(duration_s) - 1,
        "latency_ms": describe(w.latency_ms for w in windows),
        "stages_ms": stage_stats([w.timings_ms for w in windows], ("detect", "crop", "model")),
        "lag": lag_over_time([(w.t_s - windows[0].t_s, w.latency_ms) for w in windows] if windows else []),
    }


# --------------------------------------------------------------------------- offline


def _offline(cfg: DualgaitConfig, front: str, side: str, passes: int) -> dict[str, Any]:
    from inference.process import build_pipeline
    from offline.score import ReplayClock, score_pair

    clock = ReplayClock()
    pipeline = build_pipeline(cfg, clock_ns=clock)
    scores, recording_s, wall_s = [], 0.0, 0.0
    for _ in range(passes):
        pipeline.reset()
        result = score_pair(pipeline, front, side, clock=clock)
        scores += result.scores
        recording_s += result.recording_s
        wall_s += result.wall_s
    import resource

    return {"passes": passes, "recording_s": round(recording_s, 2), "wall_s": round(wall_s, 2),
            "speed_x_real_time": round(recording_s / wall_s, 3), "windows": len(scores),
            "windows_valid": sum(s.valid for s in scores),
            "stages_ms": stage_stats([s.timings_ms for s in scores], STAGES), "model": pipeline.engine.description,
            # this bench process's peak so far (the offline arms run in it one after the other)
            "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _naive_offline(cfg: DualgaitConfig, front: str, side: str) -> dict[str, Any]:
    from bench.naive import run_naive

    t0 = time.perf_counter()
    windows = list(run_naive(cfg, front, side, pace=False))
    wall_s = time.perf_counter() - t0
    recording_s = windows[-1].t_s + 1 / 25 if windows else 0.0
    return {"passes": 1, "recording_s": round(recording_s, 2), "wall_s": round(wall_s, 2),
            "speed_x_real_time": round(recording_s / wall_s, 3) if wall_s else None, "windows": len(windows),
            "windows_valid": sum(w.valid for w in windows),
            "stages_ms": stage_stats([w.timings_ms for w in windows], ("detect", "crop", "model"))}


# --------------------------------------------------------------------------- report


def _targets(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rt = results.get("realtime")
    if rt:
        lag = rt["lag"]
        p95 = rt["latency_ms"]["p95"]
        growth = (lag["last_p50_ms"] - lag["first_p50_ms"]) if lag["buckets"] else None
        out["realtime_p95_latency_ms"] = {"value": p95, "target": f"<= {TARGET_P95_MS:g}",
                                          "met": p95 is not None and p95 <= TARGET_P95_MS}
        complete = rt["windows"] >= 0.95 * rt["windows_expected"]
        flat = growth is not None and growth < 100.0
        out["realtime_keeps_up"] = {"value": f"{rt['windows']}/{rt['windows_expected']} windows, lag p50 "
                                             f"{lag['first_p50_ms']} -> {lag['last_p50_ms']} ms "
                                             f"(slope {lag['slope_ms_per_min']} ms/min)",
                                    "target": ">= 95% of windows, lag p50 grows < 100 ms", "met": complete and flat}
        receive = rt["stages_ms"].get("receive", {}).get("p99")
        out["realtime_receive_lag_p99_ms"] = {"value": receive, "target": "< 1000 (one window)",
                                              "met": receive is not None and receive < 1000}
    off, naive = results.get("offline"), results.get("naive_offline")
    if off:
        speed = off["speed_x_real_time"]
        out["offline_speed_x_real_time"] = {"value": speed, "target": f">= {TARGET_OFFLINE_SPEED_X:g}",
                                            "met": speed >= TARGET_OFFLINE_SPEED_X}
    if off and naive and naive.get("speed_x_real_time"):
        ratio = off["speed_x_real_time"] / naive["speed_x_real_time"]
        out["offline_vs_naive"] = {"value": round(ratio, 2), "target": f">= {TARGET_OFFLINE_RATIO:g}x",
                                   "met": ratio >= TARGET_OFFLINE_RATIO}
    return out


def render(report: dict[str, Any]) -> str:
    meta, results = report["meta"], report["results"]
    machine = meta["machine"]
    lines = [f"# dualgait bench e2e ({meta['date']})", "",
             f"Machine: {machine.get('cpu', '?')}, {machine.get('cores_available', '?')} cores (load "
             f"{machine.get('load_avg_1m_at_start')} at start); GPU: {machine.get('gpu') or 'none'}. "
             f"Profile: `{meta['config']}`. Model: {meta['model']}.", ""]
    if report["targets"]:
        lines += ["| target | measured | goal | met |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['value']} | {v['target']} | {'yes' if v['met'] else 'NO'} |"
                  for k, v in report["targets"].items()]
        lines.append("")
    for name, title in (("realtime", "Real time: processes, looped replay"),
                        ("realtime_before", "Real time: the settings before (torch bf16, 640 px per view, every "
                                            "sample, no overload shedding)"),
                        ("offline_before", "As fast as possible: the settings before"),
                        ("naive_realtime", "Real time: naive baseline (one process, YOLO every frame, eager fp32)"),
                        ("offline", "As fast as possible: `dualgait score` path"),
                        ("naive_offline", "As fast as possible: naive baseline")):
        run = results.get(name)
        if not run:
            continue
        lines += [f"## {title}", ""]
        facts = {k: v for k, v in run.items() if not isinstance(v, dict | list) or k in ("invalid_by_reason",
                 "frames_lost_in_transit", "frames_unpaired", "frames_received", "per_walkway")}
        lines += [", ".join(f"{k} {json.dumps(v)}" for k, v in facts.items() if k not in ("model",)), ""]
        lines += [f"- {example}" for example in run.get("invalid_examples", [])]
        lines += [""] if run.get("invalid_examples") else []
        table = dict(run["stages_ms"])
        if "latency_ms" in run:
            table["end to end"] = run["latency_ms"]
        lines += [stats_table(table), ""]
        if run.get("lag", {}).get("buckets"):
            lines += [f"Lag over time (slope {run['lag']['slope_ms_per_min']} ms/min):", "", lag_table(run["lag"]), ""]
    return "\n".join(lines)


def run_bench_e2e(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    from datetime import UTC, datetime

    from bench.report import machine_info, recorded_pair, write_report
    from offline.clips import ensure_int8_engine

    front, side = recorded_pair(args.front, args.side, cfg)
    if not 1 <= args.walkways <= 64:
        raise ConfigError(f"--walkways must be in 1..64, got {args.walkways}")
    modes = {m.strip() for m in args.modes.split(",") if m.strip()}
    if not modes or not modes <= {"realtime", "offline"}:
        raise ConfigError(f"--modes takes realtime and/or offline, got {args.modes!r}")
    ensure_int8_engine(cfg, front, side)
    before = None if args.no_before else with_overrides(cfg, BEFORE_OVERRIDES)
    results: dict[str, Any] = {}
    if "offline" in modes:
        log.info("offline: %d passes over the pair, as fast as possible", args.offline_passes)
        results["offline"] = _offline(cfg, front, side, args.offline_passes)
        if before is not None:
            log.info("offline: the settings before (torch bf16, 640 px per view, every sample)")
            results["offline_before"] = _offline(before, front, side, args.offline_passes)
        if not args.no_baseline:
            log.info("offline: naive baseline")
            results["naive_offline"] = _naive_offline(cfg, front, side)
    if "realtime" in modes:
        log.info("realtime: %.0f s of looped replay through the processes", args.duration_s)
        results["realtime"] = _realtime(cfg, front, side, args.duration_s, args.walkways)
        if before is not None:
            log.info("realtime: the settings before, %.0f s", args.duration_s)
            results["realtime_before"] = _realtime(before, front, side, args.duration_s, args.walkways)
        if not args.no_baseline:
            log.info("realtime: naive baseline for %.0f s", args.baseline_duration_s)
            results["naive_realtime"] = _naive_realtime(cfg, front, side, args.baseline_duration_s)
    model = next((r["model"] for r in results.values() if r.get("model")), "?")
    report = {"meta": {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info(),
                       "config": args.config or "defaults", "overrides": args.overrides, "model": model,
                       "front": front, "side": side},
              "results": results}
    report["targets"] = _targets(results)
    write_report(args.output, report, render(report))
    return 0
