"""``dualgait bench walkways``: how many walkways one inference process keeps in real time, batched or not.

For each walkway count N (``--walkways 1,2,4,8``), N walkways replay the same recorded pair (decoded once into
memory; walkway k's capture clock is shifted by k/N of a sample period, as unsynchronised cameras would be)
through one process's pipelines, as fast as the machine allows, twice in the same run:

- ``one at a time`` (the baseline): each walkway's pipeline calls the detector and the model for itself
  (:meth:`InferencePipeline.push`), one call per walkway-sample and per window;
- ``batched``: :class:`inference.walkways.WalkwayBatcher`, flushed at the end of each receive burst.

Both run in real time on a virtual clock: the clock follows the wall clock while the process computes and
skips the waiting, so a receive burst is every frame captured by then (what queued while the last burst was
processed). Only compute is timed: a machine that keeps up sees small bursts, one that falls behind sees its
bursts and batches grow, as the live process would. Reported per N: walkway-seconds scored per second of
compute (N walkways keep real time when it is >= N), the ratio batched / one at a time, end-to-end latency on
the virtual clock (first and last second of the replay: growth is lag), the detector's and the model's time
per walkway-second, mean burst and batch sizes, and whether both modes gave the same windows and scores. The
stale-frame check is off (as in lossless replay): every window is scored, so an overloaded run does the same
work as one that keeps up. JSON to ``--output``, markdown beside it (``.md``).
"""

from __future__ import annotations

import argparse
import collections
import logging
import resource
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.configtools import ConfigError, with_overrides
from core.messages import Frame

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)

def add_bench_walkways_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="JSON file (the markdown goes beside it, .md)")
    parser.add_argument("--front", help="front video (default: capture.front)")
    parser.add_argument("--side", help="side video (default: capture.side)")
    parser.add_argument("--walkways", default="1,2,4,8", help="comma-separated walkway counts")
    parser.add_argument("--duration-s", type=float, default=6.0, help="seconds of the pair each walkway replays")


class _Timed:
    """Wraps a callable and adds up the wall time spent in it."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.s = 0.0
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.s += time.perf_counter() - t0
            self.calls += 1


def _load_frames(front: str, side: str, duration_s: float) -> list[Frame]:
    from offline.score import decoded_pair

    limit_ns = round(duration_s * 1e9)
    frames = []
    for frame in decoded_pair(front, side):
        if frame.capture_mono_ns >= limit_ns:
            break
        frames.append(frame)
    if not frames:
        raise ConfigError(f"no frames decoded from {front} / {side}")
    return frames


def _streams(frames: list[Frame], n: int, step_ns: int) -> list[tuple[str, Frame]]:
    """N walkways' frames (shared images), walkway k shifted by k/N of a sample step, in capture-time order."""
    base_ns = 10**12  # a timeline far from zero, as a monotonic clock is
    out = []
    for k in range(n):
        shift_ns = base_ns + k * step_ns // n
        out += [(f"w{k}", replace(f, capture_mono_ns=f.capture_mono_ns + shift_ns,
                                  capture_wall_ns=f.capture_wall_ns + shift_ns)) for f in frames]
    out.sort(key=lambda item: item[1].capture_mono_ns)
    return out


def _pipelines(cfg: DualgaitConfig, n: int, network: Any, runner: Any, clock: Any) -> dict[str, Any]:
    from inference.detector import YoloDetector
    from inference.pipeline import InferencePipeline

    # no stale check: an overloaded run would skip the model on its stale windows and look cheaper than it is
    icfg = replace(cfg.inference, window=replace(cfg.inference.window, max_frame_age_s=None))
    return {f"w{k}": InferencePipeline(icfg, detector=YoloDetector(icfg.detector, model=network), engine=runner,
                                       clock_ns=clock, walkway=f"w{k}") for k in range(n)}


class _VirtualClock:
    """Real time with the waiting left out: the replay's clock runs with the wall clock while the process
    works, and jumps ahead when it would wait for the next frame. Compute is measured, idle time is not spent."""

    def __init__(self, start_ns: int) -> None:
        self._start_ns = start_ns
        self._wall0_ns = time.perf_counter_ns()
        self.skipped_ns = 0

    def __call__(self) -> int:
        return self._start_ns + time.perf_counter_ns() - self._wall0_ns + self.skipped_ns

    def wait_until(self, t_ns: int) -> None:
        now = self()
        if t_ns > now:
            self.skipped_ns += t_ns - now


def _run_mode(cfg: DualgaitConfig, stream: list[tuple[str, Frame]], n: int, network: Any, runner: Any,
              *, batched: bool) -> dict[str, Any]:
    """Replay ``stream`` in (virtual) real time: each receive burst is every frame captured by now, i.e. what
    queued while the previous burst was processed. A machine that keeps up gets small bursts; one that falls
    behind gets large ones, and then batching has work to gather."""
    from bench.stats import describe
    from inference.walkways import WalkwayBatcher

    clock = _VirtualClock(stream[0][1].capture_mono_ns)
    pipes = _pipelines(cfg, n, network, runner, clock)
    batcher = WalkwayBatcher(pipes, engine=runner) if batched else None
    # every window reaches the engine through predict_batch (one window each when not batched)
    detect, model = _Timed(network.predict), _Timed(runner.predict_batch)
    network.predict, runner.predict_batch = detect, model  # instance attributes: removed below
    scores, latencies, bursts = [], [], []
    try:
        t0 = time.perf_counter()
        i = 0
        while i < len(stream):
            clock.wait_until(stream[i][1].capture_mono_ns)
            received_ns = clock()
            end = i
            while end < len(stream) and stream[end][1].capture_mono_ns <= received_ns:
                end += 1
            bursts.append(end - i)
            done = []
            for walkway, frame in stream[i:end]:
                if batcher is not None:
                    done += batcher.push(walkway, frame, received_ns=received_ns)
                else:
                    done += pipes[walkway].push(frame, received_ns=received_ns)
            if batcher is not None:
                done += batcher.flush()  # the end of the receive burst
            for score in done:
                pipes[score.walkway].stamp_latency(score)
                latencies.append((score.t_end_mono_ns, score.latency_ms))
            scores += done
            i = end
        busy_s = time.perf_counter() - t0
    finally:
        del network.predict, runner.predict_batch
    walkway_s = len(stream) / 50.0  # 2 views x 25 fps: seconds of video over all walkways
    latencies.sort()
    last_s = [ms for t, ms in latencies if t >= latencies[-1][0] - 1e9] if latencies else []
    first_s = [ms for t, ms in latencies if t <= latencies[0][0] + 1e9] if latencies else []
    out = {
        "busy_s": round(busy_s, 3), "walkway_seconds": round(walkway_s, 2),
        # compute throughput: N walkways keep real time when this is >= N
        "walkway_s_per_s": round(walkway_s / busy_s, 3), "keeps_real_time": walkway_s / busy_s >= n,
        "latency_ms": describe(ms for _, ms in latencies),
        "lag_first_s_ms": round(sum(first_s) / len(first_s), 1) if first_s else None,
        "lag_last_s_ms": round(sum(last_s) / len(last_s), 1) if last_s else None,
        "mean_burst_frames": round(sum(bursts) / len(bursts), 2) if bursts else 0.0,
        "detector_s_per_walkway_s": round(detect.s / walkway_s, 3), "detector_calls": detect.calls,
        "model_s_per_walkway_s": round(model.s / walkway_s, 3), "model_calls": model.calls,
        "windows": len(scores), "windows_valid": sum(s.valid for s in scores),
        "invalid_by_reason": dict(collections.Counter(s.reason_code for s in scores if not s.valid)),
    }
    if batcher is not None:
        batching = batcher.stats.as_dict()
        sizes = batching["detect_batch_sizes"]
        out["mean_detect_batch"] = round(sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values())), 2)
        sizes = batching["model_batch_sizes"]
        out["mean_model_batch"] = round(sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values())), 2)
        out["batching"] = batching
    out["_scores"] = {(s.walkway, s.window): s.p_asd for s in scores}
    return out


def _compare(a: dict[Any, float | None], b: dict[Any, float | None]) -> dict[str, Any]:
    same_windows = a.keys() == b.keys() and all((a[k] is None) == (b[k] is None) for k in a)
    diffs = [abs(a[k] - b[k]) for k in a if k in b and a[k] is not None and b[k] is not None]
    return {"same_windows": same_windows, "max_abs_p_asd_diff": float(max(diffs)) if diffs else 0.0}


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    machine = meta["machine"]
    lines = [f"# dualgait bench walkways ({meta['date']})", "",
             f"Machine: {machine.get('cpu', '?')}, {machine.get('cores_available', '?')} cores; GPU: "
             f"{machine.get('gpu') or 'none'}. Profile: `{meta['config']}`. Model: {meta['model']}. Each walkway "
             f"replays {meta['duration_s']:g} s of the pair, as fast as possible.", "",
             "| walkways | one at a time (walkway-s/s) | batched (walkway-s/s) | batched / one at a time | "
             "real time with batching | latency p95 ms (1x / batched) | lag first -> last s, batched (ms) | "
             "detector s per walkway-s (1x / batched) | model s per walkway-s (1x / batched) | "
             "mean burst frames / detector batch / model batch | valid windows (1x / batched) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["results"]:
        one, bat = row["one_at_a_time"], row["batched"]
        lines.append(
            f"| {row['walkways']} | {one['walkway_s_per_s']} | {bat['walkway_s_per_s']} | {row['ratio']}x | "
            f"{'yes' if bat['keeps_real_time'] else 'no'} | {one['latency_ms']['p95']} / {bat['latency_ms']['p95']} | "
            f"{bat['lag_first_s_ms']} -> {bat['lag_last_s_ms']} | {one['detector_s_per_walkway_s']} / "
            f"{bat['detector_s_per_walkway_s']} | {one['model_s_per_walkway_s']} / {bat['model_s_per_walkway_s']} | "
            f"{bat['mean_burst_frames']} / {bat.get('mean_detect_batch')} / {bat.get('mean_model_batch')} | "
            f"{one['windows_valid']}/{one['windows']} / {bat['windows_valid']}/{bat['windows']} |")
    lines += ["", f"Most walkways kept in real time (batched): {report['max_real_time_walkways']}. Peak RSS of the "
              f"process: {report.get('peak_rss_mb', '?')} MB. Batched against "
              "one at a time, per walkway count: " + ", ".join(
                  f"{r['walkways']}: {'same windows' if r['agreement']['same_windows'] else 'windows differ'}, max "
                  f"p_asd diff {r['agreement']['max_abs_p_asd_diff']:.2g}" for r in report["results"]) + "."]
    return "\n".join(lines)


def run_bench_walkways(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    from datetime import UTC, datetime

    from bench.report import machine_info, recorded_pair, write_report
    from inference.process import load_models
    from offline.clips import ensure_int8_engine

    front, side = recorded_pair(args.front, args.side, cfg)
    try:
        counts = sorted({int(c) for c in args.walkways.split(",") if c.strip()})
    except ValueError:
        raise ConfigError(f"--walkways takes comma-separated counts, got {args.walkways!r}") from None
    if not counts or counts[0] < 1 or counts[-1] > 64:
        raise ConfigError(f"--walkways counts must be in 1..64, got {args.walkways!r}")
    if args.duration_s < 2:
        raise ConfigError("--duration-s must be >= 2 (two windows)")
    ensure_int8_engine(cfg, front, side)
    # capacity, not graceful overload: a walkway that cannot keep up must show it, not shed its way through
    cfg = with_overrides(cfg, {"inference": {"overload": {"enabled": False}}})
    frames = _load_frames(front, side, args.duration_s)
    network, runner = load_models(cfg, batch=counts[-1])
    if not hasattr(runner, "predict_batch"):
        raise ConfigError("this model runner has no predict_batch")
    step_ns = round(cfg.inference.window.step_s * 1e9)
    results = []
    for n in counts:
        stream = _streams(frames, n, step_ns)
        log.info("%d walkway(s): one at a time", n)
        one = _run_mode(cfg, stream, n, network, runner, batched=False)
        log.info("%d walkway(s): batched", n)
        bat = _run_mode(cfg, stream, n, network, runner, batched=True)
        agreement = _compare(one.pop("_scores"), bat.pop("_scores"))
        results.append({"walkways": n, "one_at_a_time": one, "batched": bat, "agreement": agreement,
                        "ratio": round(bat["walkway_s_per_s"] / one["walkway_s_per_s"], 3)})
        log.info("%d walkway(s): %.2f -> %.2f walkway-s/s", n, one["walkway_s_per_s"], bat["walkway_s_per_s"])
    report = {"meta": {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info(),
                       "config": args.config or "defaults", "overrides": args.overrides,
                       "model": runner.description, "duration_s": args.duration_s, "front": front, "side": side,
                       "frames_per_walkway": len(frames)},
              "results": results,
              "max_real_time_walkways": max((r["walkways"] for r in results if r["batched"]["keeps_real_time"]),
                                            default=0),
              # the one process serving every walkway (this bench runs it in-process; no captures here)
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    write_report(args.output, report, render(report))
    return 0

