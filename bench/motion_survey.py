"""Measure people's motion in your own videos, to set ``inference.patient.min_motion_per_s``.

    python -m bench.motion_survey VIDEO [VIDEO ...] [--config FILE] [--set KEY=VALUE]

Runs the live detector and tracker on each video's frames at the pipeline's sample rate (8 Hz by default)
and prints, per track, its height in the frame and its motion per second (p10 / median / p90) as the
patient lock measures it. Walkers should sit well above the threshold, people who stand well below it.
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig


def survey(path: str, cfg, *, tracks: int = 8) -> list[str]:
    from inference.detector import YoloDetector
    from inference.patient import PatientLock

    detector = YoloDetector(cfg.inference.detector, views=("view",))
    lock = PatientLock(cfg.inference.patient, walkway=(0.0, 0.0, 1.0, 1.0))
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        return [f"{path}: cannot open"]
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(fps * cfg.inference.window.step_s))
    motion: dict[int, list[float]] = collections.defaultdict(list)
    height: dict[int, list[float]] = collections.defaultdict(list)
    index = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if index % step == 0:
            people = detector.track({"view": image})["view"]
            lock.update(round(index / fps * 1e9), people, image)
            for det in people:
                m = lock.motion_per_s(det.track_id)
                if m is not None:
                    motion[det.track_id].append(m)
                    height[det.track_id].append((det.box_xyxy[3] - det.box_xyxy[1]) / image.shape[0])
        index += 1
    cap.release()
    lines = [f"{path}: {index} frames, every {step} (threshold min_motion_per_s "
             f"{cfg.inference.patient.min_motion_per_s:g})"]
    for track_id, values in sorted(motion.items(), key=lambda kv: -len(kv[1]))[:tracks]:
        v = np.asarray(values)
        p10, p50, p90 = np.percentile(v, [10, 50, 90])
        lines.append(f"  track {track_id}: {len(v)} samples, height {np.mean(height[track_id]):.2f} of the frame, "
                     f"motion/s p10 {p10:.2f}  median {p50:.2f}  p90 {p90:.2f}")
    return lines


def main(argv: list[str] | None = None, *, load_config: Callable[[str | None, list[str]], DualgaitConfig]) -> int:
    """``load_config``: the app's (dualgait.config.load_config), handed over by the ``__main__`` entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.motion_survey", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--config")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    from core.configtools import ConfigError
    from inference.errors import DetectorError

    try:
        cfg = load_config(args.config, args.overrides)
        for path in args.videos:
            print("\n".join(survey(path, cfg)), flush=True)
    except (ConfigError, DetectorError) as exc:
        print(f"motion_survey: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # run as a program: an entry point of the app, which owns the whole config
    from dualgait.config import load_config

    sys.exit(main(load_config=load_config))
