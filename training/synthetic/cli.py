"""``dualgait simulate``: render a synthetic dual-view walking data set and its manifest."""

from __future__ import annotations

import argparse
import time

from capture.synthetic.subjects import parse_trait_views


def add_simulate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subjects", type=int, required=True, help="number of subjects (one walk each)")
    parser.add_argument("--output", required=True, help="folder for manifest.csv, subjects.json and videos/")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same data set")
    parser.add_argument("--size-px", type=int, default=320, help="frame width and height (square)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each walk")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate")
    parser.add_argument("--asd-fraction", type=float, default=0.5, help="share of ASD subjects (rounded)")
    parser.add_argument("--trait-views", default="front,side,both", metavar="front,side,both",
                        help="where ASD traits are seen, spread evenly over ASD subjects: front (lateral "
                             "sway/tilt only), side (trunk flexion/dropped head only), both "
                             "(front_only/side_only are accepted too)")
    parser.add_argument("--boxes", action="store_true",
                        help="also write true person boxes (boxes_front/boxes_side manifest columns)")
    parser.add_argument("--workers", type=int, default=1, help="render in this many processes")


def run_simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.configtools import ConfigError
    from training.synthetic.dataset import generate_dataset

    try:
        views = parse_trait_views(args.trait_views)
    except ValueError as exc:  # one line, exit 2, like the CLI's other input errors
        raise ConfigError(str(exc)) from None
    problems = [text for bad, text in (
        (args.subjects < 1, "--subjects must be >= 1"),
        (not 0.0 <= args.asd_fraction <= 1.0, "--asd-fraction must be in [0, 1]"),
        (args.size_px < 64 or args.size_px % 2, "--size-px must be even and >= 64"),
        (args.seconds <= 0 or args.fps <= 0, "--seconds and --fps must be > 0"),
        (args.workers < 1, "--workers must be >= 1"),
    ) if bad]
    if problems:
        raise ConfigError(problems[0])
    t0 = time.monotonic()
    with tqdm(total=args.subjects, unit="walk", desc="simulate") as bar:
        manifest = generate_dataset(
            args.output, subjects=args.subjects, seed=args.seed, asd_fraction=args.asd_fraction,
            trait_views=views, size_px=args.size_px, seconds=args.seconds, fps=args.fps,
            write_boxes=args.boxes, workers=args.workers, progress=lambda spec: bar.update(1))
    print(f"wrote {args.subjects} synthetic walks (front + side) in {time.monotonic() - t0:.1f} s: {manifest}",
          flush=True)
    print("NOTE: synthetic data; a model trained on it has no clinical meaning", flush=True)
    return 0
