"""``dualgait bench detector``: the detector's cost per second of video, and its boxes against 640 px per frame.

On the shared front/side pair and on synthetic walkers, every sample (8 per second, both views) goes through
the detector in each setting, interleaved sample by sample so that all settings meet the same machine load:

- ``per_frame``: each view's frame alone at ``imgsz_px`` (640), every sample: the settings before tiling, and
  the reference boxes;
- ``tiled``: both views tiled on one 640 px canvas (:mod:`inference.tiling`), one call per sample;
- ``tiled_interval``: ``tiled`` on every other sample, the boxes in between interpolated in time as the pipeline
  does (``detector.interval_samples: 1``; always a window's last sample detected); its cost is the tiled calls it
  makes;
- ``per_frame_interval``: the same interpolation over the 640 px boxes, for comparison.

The naive loop of ``bench e2e`` (the paper's way) runs the tracker on every camera frame of each view: its cost
is given from the same run's ``per_frame`` calls, times the camera frames per second.

The patient's box in a view is the largest person box (the scenes have one walker; a walkway's patient is the
person the lock follows, and it is the largest). IoU is taken per sample and view against ``per_frame``; a
sample where the reference has the patient and the setting has none counts as IoU 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import resource
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from core.configtools import ConfigError

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
SETTINGS = ("per_frame", "tiled", "tiled_interval", "per_frame_interval")
WALKER_FPS = 25.0


def add_bench_detector_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="JSON file (the markdown goes beside it, .md)")
    parser.add_argument("--front", help="front video (default: capture.front)")
    parser.add_argument("--side", help="side video (default: capture.side)")
    parser.add_argument("--walkers", type=int, default=10, help="synthetic walkers (0: the shared pair only)")
    parser.add_argument("--walker-seconds", type=float, default=4.0, help="length of each synthetic walk")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic walkers")


def iou(a: Box, b: Box) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def largest_box(boxes: Any, *, min_height_px: float) -> Box | None:
    """The largest person box at least ``min_height_px`` high (Ultralytics ``Boxes`` or (N, 4) xyxy)."""
    xyxy = np.asarray(getattr(boxes, "xyxy", boxes), dtype=np.float64).reshape(-1, 4)
    xyxy = xyxy[(xyxy[:, 3] - xyxy[:, 1]) >= min_height_px]
    if not len(xyxy):
        return None
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    return tuple(float(v) for v in xyxy[int(np.argmax(area))])  # type: ignore[return-value]


def interpolate(boxes: list[Box | None], *, frames_per_window: int) -> list[Box | None]:
    """Boxes of every other sample (those with ``(k - (frames - 1)) % 2 == 0`` kept) and the ones between
    interpolated from their neighbours, as the pipeline does with ``interval_samples: 1``; next to only one
    detected neighbour, its box is held."""
    detected = [(k - (frames_per_window - 1)) % 2 == 0 for k in range(len(boxes))]
    out: list[Box | None] = []
    for k, box in enumerate(boxes):
        if detected[k]:
            out.append(box)
            continue
        before = boxes[k - 1] if k >= 1 else None
        after = boxes[k + 1] if k + 1 < len(boxes) else None
        if before is not None and after is not None:
            out.append(tuple((b0 + b1) / 2 for b0, b1 in zip(before, after, strict=True)))  # type: ignore[arg-type]
        else:
            out.append(after if after is not None else before)
    return out


Scene = tuple[list[dict[str, np.ndarray]], dict[str, list[Box | None]] | None]  # samples, true boxes per view
T = TypeVar("T")


def _at_sample_times(items: Iterable[T], fps: float, step_s: float) -> Iterator[T]:
    """The camera frames (or anything per frame) at or just after each sample time, as the pipeline samples."""
    next_t_s = 0.0
    for index, item in enumerate(items):
        if index / fps + 1e-9 >= next_t_s:
            yield item
            next_t_s += step_s


def _video_fps(path: str) -> float:
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        return cap.get(cv2.CAP_PROP_FPS) or 25.0
    finally:
        cap.release()


def _rendered_walkers(n: int, *, seconds: float, seed: int
                      ) -> Iterator[tuple[str, list[tuple[dict[str, np.ndarray], dict[str, Box | None]]]]]:
    """Each synthetic walker's camera frames with the simulator's true boxes, rendered once."""
    from capture.synthetic import DEMO_WALK_SIZE_PX, render_frames, sample_subjects

    for spec in sample_subjects(n, seed=seed):
        yield spec.participant_id, [(dict(images), dict(boxes)) for _, images, boxes in
                                    render_frames(spec, size_px=DEMO_WALK_SIZE_PX, seconds=seconds, fps=WALKER_FPS)]


def _iou_stats(pairs: list[tuple[Box, Box | None]]) -> dict[str, Any]:
    values = [iou(ref, box) if box is not None else 0.0 for ref, box in pairs]
    if not values:
        return {"mean": None, "min": None, "p10": None, "n": 0}
    return {"mean": round(float(np.mean(values)), 4), "min": round(float(np.min(values)), 4),
            "p10": round(float(np.percentile(values, 10)), 4), "n": len(values)}


class StandInModel:
    """Stands in for the classifier where the question is the detector or the lock, not the score: every window
    gets p_asd 0.5 at no cost."""

    untrained = True
    synthetic = False

    def __init__(self, description: str = "none (stand-in)", *, views: tuple[str, ...] = ("front", "side")) -> None:
        self.description = description
        self.views = views

    def predict(self, clips: Any) -> dict[str, float]:
        return {"p_asd": 0.5}


class _CountingDetector:
    """The pipeline's detector, counting the calls made at full size (while a lock is decided)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.full_size_calls = 0

    def track(self, images: Any, *, full_size: bool = False) -> Any:
        self.full_size_calls += full_size
        return self.inner.track(images, full_size=full_size)

    def reset(self) -> None:
        self.inner.reset()


def _pipeline_run(cfg: DualgaitConfig, network: Any, frames: Iterator[dict[str, np.ndarray]], fps: float
                  ) -> dict[str, Any]:
    """The configured pipeline (lock acquisition at full size included) over a scene's camera frames: its detector
    time per second of video, from the windows' own detect timings."""
    from core.messages import Frame
    from inference.detector import YoloDetector
    from inference.pipeline import InferencePipeline

    detector = _CountingDetector(YoloDetector(cfg.inference.detector, model=network))
    pipe = InferencePipeline(cfg.inference, detector=detector, engine=StandInModel("none (detector bench)"),
                             clock_ns=lambda: 0)
    detect_ms, windows, valid, n = 0.0, 0, 0, -1
    for n, images in enumerate(frames):
        t_ns = round(n / fps * 1e9)
        for view in ("front", "side"):
            for score in pipe.push(Frame(view, n, t_ns, t_ns, images[view], source_ts_ns=t_ns), received_ns=t_ns):
                detect_ms += score.timings_ms["detect"]
                windows += 1
                valid += score.valid
    return {"seconds": (n + 1) / fps, "detect_ms": round(detect_ms, 1),
            "ms_per_s_video": round(detect_ms / max(1e-9, (n + 1) / fps), 1), "samples": int(pipe.stats["samples"]),
            "samples_detected": int(pipe.stats["samples_detected"]), "full_size_calls": detector.full_size_calls,
            "windows": windows, "windows_valid": valid}


def _pair_frames(front: str, side: str) -> Iterator[dict[str, np.ndarray]]:
    import cv2

    caps = {view: cv2.VideoCapture(path) for view, path in (("front", front), ("side", side))}
    try:
        while True:
            frames = {view: cap.read() for view, cap in caps.items()}
            if not all(ok for ok, _ in frames.values()):
                return
            yield {view: image for view, (_, image) in frames.items()}
    finally:
        for cap in caps.values():
            cap.release()


def _measure_scene(scene: Scene, models: dict[str, Any], *, min_height_frac: float,
                   frames_per_window: int) -> dict[str, Any]:
    samples, truth = scene
    views = list(samples[0])
    boxes: dict[str, dict[str, list[Box | None]]] = {s: {v: [] for v in views} for s in ("per_frame", "tiled")}
    call_s = {"per_frame": [], "tiled": []}
    for sample in samples:
        images = [sample[v] for v in views]
        for setting, model in models.items():
            t0 = time.perf_counter()
            found = model.predict(images)
            call_s[setting].append(time.perf_counter() - t0)
            for view, image, people in zip(views, images, found, strict=True):
                boxes[setting][view].append(largest_box(people, min_height_px=min_height_frac * image.shape[0]))
    for base in ("tiled", "per_frame"):
        boxes[f"{base}_interval"] = {view: interpolate(boxes[base][view], frames_per_window=frames_per_window)
                                     for view in views}
    out: dict[str, Any] = {"samples": len(samples), "call_s": call_s, "iou": {}, "iou_truth": {}}
    for setting in SETTINGS:
        out["iou"][setting] = _iou_stats([(ref, box) for view in views for ref, box in
                                          zip(boxes["per_frame"][view], boxes[setting][view], strict=True)
                                          if ref is not None])
        if truth is not None:  # the simulator's own box of the walker (a sanity check of the reference)
            out["iou_truth"][setting] = _iou_stats([(ref, box) for view in views for ref, box in
                                                    zip(truth[view], boxes[setting][view], strict=True)
                                                    if ref is not None])
    return out


def _cost(scenes: list[dict[str, Any]], *, samples_per_s: float, camera_fps: float, views: int) -> dict[str, Any]:
    """Detector ms per second of video per setting, from the calls' median time."""
    per_frame_ms = float(np.median([t for s in scenes for t in s["call_s"]["per_frame"]])) * 1e3
    tiled_ms = float(np.median([t for s in scenes for t in s["call_s"]["tiled"]])) * 1e3
    return {
        "per_frame": {"call_ms_p50": round(per_frame_ms, 2), "calls_per_s": samples_per_s,
                      "ms_per_s_video": round(per_frame_ms * samples_per_s, 1)},
        "tiled": {"call_ms_p50": round(tiled_ms, 2), "calls_per_s": samples_per_s,
                  "ms_per_s_video": round(tiled_ms * samples_per_s, 1)},
        "tiled_interval": {"call_ms_p50": round(tiled_ms, 2), "calls_per_s": samples_per_s / 2,
                           "ms_per_s_video": round(tiled_ms * samples_per_s / 2, 1)},
        "per_frame_interval": {"call_ms_p50": round(per_frame_ms, 2), "calls_per_s": samples_per_s / 2,
                               "ms_per_s_video": round(per_frame_ms * samples_per_s / 2, 1)},
        # both views' every camera frame, one view per call (640 px): the calls of per_frame, views apart
        "naive": {"call_ms_p50": round(per_frame_ms / views, 2), "calls_per_s": camera_fps * views,
                  "ms_per_s_video": round(per_frame_ms / views * camera_fps * views, 1)},
    }


LABELS = {
    "naive": "naive loop: every camera frame, each view alone at 640 px",
    "per_frame": "before: every sample, each view alone at 640 px (reference boxes)",
    "per_frame_interval": "each view alone at 640 px, every other sample interpolated",
    "tiled": "both views tiled on one 640 px canvas, every sample",
    "tiled_interval": "both views tiled, every other sample interpolated (default)",
}


def _fmt(row: dict[str, Any] | None, key: str) -> str:
    return "—" if row is None or row.get(key) is None else f"{row[key]:.3f}"


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    machine = meta["machine"]
    cost, iou_all = report["cost"], report["iou"]
    lines = [f"# dualgait bench detector ({meta['date']})", "",
             f"Machine: {machine.get('cpu', '?')}, {machine.get('cores_available', '?')} cores, load "
             f"{machine.get('load_avg_1m_at_start')} at start. Detector: `{meta['weights']}`, {meta['imgsz_px']} px. "
             f"Scenes: the shared pair ({meta['pair_seconds']:.1f} s) and {meta['walkers']} synthetic walkers "
             f"({meta['walker_seconds']:g} s each); {meta['samples_per_s']:g} samples/s, both views. Peak RSS "
             f"{report['peak_rss_mb']:.0f} MB.", "",
             "| setting | call ms p50 | calls/s | detector ms per s of video | vs before | mean IoU vs 640 px "
             "(pair / walkers) | min IoU (pair / walkers) |", "|---|---|---|---|---|---|---|"]
    before = cost["per_frame"]["ms_per_s_video"]
    for setting in ("naive", "per_frame", "per_frame_interval", "tiled", "tiled_interval"):
        c = cost[setting]
        pair, walkers = iou_all.get(setting, {}).get("pair"), iou_all.get(setting, {}).get("walkers")
        lines.append(f"| {LABELS[setting]} | {c['call_ms_p50']} | {c['calls_per_s']:g} | {c['ms_per_s_video']} | "
                     f"{before / c['ms_per_s_video']:.2f}x | {_fmt(pair, 'mean')} / {_fmt(walkers, 'mean')} | "
                     f"{_fmt(pair, 'min')} / {_fmt(walkers, 'min')} |")
    pipe = report["pipeline"]
    p = pipe["pair"]
    lines += ["", f"The pipeline as configured (`{meta['config']}`), lock acquisition included (it detects every "
              f"sample at full size while someone is seen but not yet locked): {p['ms_per_s_video']} ms of detector "
              f"per second of video on the shared pair ({p['samples_detected']} of {p['samples']} samples detected, "
              f"{p['full_size_calls']} at full size; {p['windows_valid']}/{p['windows']} windows valid), "
              f"{pipe['walkers_ms_per_s_video']} ms on the walkers ("
              + ", ".join(f"{r['windows_valid']}/{r['windows']}" for r in pipe["walkers"]) + " valid)."]
    lines += ["", "Per walker, mean IoU of the default setting against 640 px: " + ", ".join(
        f"{name} {scene['iou']['tiled_interval']['mean']}" for name, scene in report["walkers"].items()) + "."]
    if report.get("iou_truth_walkers"):
        lines += ["", "Against the simulator's true box of the walker (mean IoU, all walkers): " + ", ".join(
            f"{s} {_fmt(report['iou_truth_walkers'][s], 'mean')}" for s in SETTINGS) + "."]
    return "\n".join(lines)


def _pooled(scenes: list[dict[str, Any]], setting: str, key: str = "iou") -> dict[str, Any]:
    rows = [s[key][setting] for s in scenes if s[key].get(setting, {}).get("n")]
    n = sum(r["n"] for r in rows)
    if not n:
        return {"mean": None, "min": None, "n": 0}
    return {"mean": round(sum(r["mean"] * r["n"] for r in rows) / n, 4), "min": min(r["min"] for r in rows), "n": n}


def run_bench_detector(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    from datetime import UTC, datetime

    from bench.report import machine_info, recorded_pair, write_report
    from inference.detector import YoloModel

    if args.walkers < 0 or args.walker_seconds < 1:
        raise ConfigError("--walkers must be >= 0 and --walker-seconds >= 1")
    front, side = recorded_pair(args.front, args.side, cfg)
    det = cfg.inference.detector
    models = {"per_frame": YoloModel(dataclasses.replace(det, tiles_per_call=1)),
              "tiled": YoloModel(dataclasses.replace(det, tiles_per_call=2))}
    step_s = cfg.inference.window.step_s
    frames = cfg.inference.window.frames
    min_h = cfg.inference.patient.min_height_frac
    fps = _video_fps(front)
    pair_samples = list(_at_sample_times(_pair_frames(front, side), fps, step_s))
    if not pair_samples:
        raise ConfigError(f"no frames could be read from {front} and {side}")
    log.info("shared pair: %d samples", len(pair_samples))
    pair = _measure_scene((pair_samples, None), models, min_height_frac=min_h, frames_per_window=frames)
    del pair_samples
    log.info("shared pair: the pipeline as configured")  # the pair again: too large to keep every frame in memory
    pipeline_pair = _pipeline_run(cfg, models["tiled"], _pair_frames(front, side), fps)
    walkers: dict[str, dict[str, Any]] = {}
    pipeline_walkers = []
    for name, rendered in _rendered_walkers(args.walkers, seconds=args.walker_seconds, seed=args.seed):
        picked = list(_at_sample_times(rendered, WALKER_FPS, step_s))
        log.info("walker %s: %d samples", name, len(picked))
        truth = {view: [boxes[view] for _, boxes in picked] for view in picked[0][1]}
        scene = ([images for images, _ in picked], truth)
        walkers[name] = _measure_scene(scene, models, min_height_frac=min_h, frames_per_window=frames)
        pipeline_walkers.append(_pipeline_run(cfg, models["tiled"], (images for images, _ in rendered), WALKER_FPS))
    scenes = [pair, *walkers.values()]
    report: dict[str, Any] = {
        "meta": {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info(),
                 "config": args.config or "defaults", "overrides": args.overrides, "weights": det.weights,
                 "imgsz_px": det.imgsz_px, "front": front, "side": side, "pair_seconds": pipeline_pair["seconds"],
                 "walkers": args.walkers, "walker_seconds": args.walker_seconds, "samples_per_s": 1 / step_s},
        "cost": _cost(scenes, samples_per_s=1 / step_s, camera_fps=fps, views=2),
        "iou": {s: {"pair": pair["iou"][s], "walkers": _pooled(list(walkers.values()), s) if walkers else None}
                for s in SETTINGS},
        "iou_truth_walkers": ({s: _pooled(list(walkers.values()), s, "iou_truth") for s in SETTINGS}
                              if walkers else None),
        "pipeline": {"pair": pipeline_pair, "walkers": pipeline_walkers,
                     "walkers_ms_per_s_video": round(sum(r["detect_ms"] for r in pipeline_walkers)
                                                     / max(1e-9, sum(r["seconds"] for r in pipeline_walkers)), 1)
                     if pipeline_walkers else None},
        "pair": {k: v for k, v in pair.items() if k != "call_s"},
        "walkers": {name: {k: v for k, v in s.items() if k != "call_s"} for name, s in walkers.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    write_report(args.output, report, render(report))
    return 0
