"""``dualgait score FRONT SIDE`` (or ``--side FILE`` / ``--front FILE`` alone): offline scoring of a recorded pair,
or of one camera's recording with a single-view model, with the live code path.

Prints the aggregator's per-second lines and summary, and writes ``windows.jsonl`` and ``summary.json``
to ``--output`` when given; ``--save-video DIR``: what was scored, ``DIR/front.mp4``, ``DIR/side.mp4`` (annotated
sampled frames) and ``DIR/windows/window_NNNN.png`` (each window's model input), see :mod:`inference.annotate`.
The model is the configured one; without weights it is the synthetic demo model for the views given (late fusion
for a pair, ``single_side`` for a side file alone; shipped, or built once and cached, like ``dualgait demo``), or
random weights with ``--untrained``. The model's views must be the recording's (one line otherwise).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.configtools import with_overrides
from core.messages import by_view
from dualgait.config import DualgaitConfig

if TYPE_CHECKING:
    from aggregator.scoring import ScoreAggregator
    from offline.score import OfflineResult

log = logging.getLogger(__name__)


def add_score_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("front", nargs="?", help="front-view video")
    parser.add_argument("side", nargs="?", help="side-view video")
    parser.add_argument("--front", dest="front_only", metavar="FILE",
                        help="the front view's video (alone: single-view mode, a single_front model)")
    parser.add_argument("--side", dest="side_only", metavar="FILE",
                        help="the side view's video (alone: single-view mode, a single_side model)")
    parser.add_argument("--output", help="folder for windows.jsonl and summary.json")
    parser.add_argument("--untrained", action="store_true",
                        help="random model weights when no weights are configured (scores are meaningless)")
    parser.add_argument("--quiet", action="store_true", help="no per-window lines, only the summary")
    add_save_video_arg(parser)


def add_save_video_arg(parser: argparse.ArgumentParser) -> None:
    """``--save-video DIR`` (score, run, demo): sets ``inference.save_video_dir``."""
    parser.add_argument("--save-video", metavar="DIR",
                        help="write an annotated video per view (people, the locked patient, windows and their "
                             "scores) and a contact sheet of each window's model input to DIR")


def save_video_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` assignments of ``--save-video DIR`` (none without it)."""
    folder = getattr(args, "save_video", None)
    return [f"inference.save_video_dir={json.dumps(folder)}"] if folder else []


def check_save_video_dir(cfg: DualgaitConfig) -> None:
    """The folder of ``inference.save_video_dir`` (when set) can be written, else one line naming the fix."""
    if cfg.inference.save_video_dir is not None:
        from core.folders import check_writable_dir

        check_writable_dir(cfg.inference.save_video_dir, what="video folder",
                           fix="choose another with --save-video DIR")


def recordings(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(front, side) files of ``dualgait score``: ``FRONT SIDE``, or ``--front``/``--side`` (one alone: single-view
    mode); ConfigError in one line for any other mix."""
    from core.configtools import ConfigError

    flags = (args.front_only, args.side_only)
    if args.front is not None and any(flags):
        raise ConfigError("give the recordings either as FRONT SIDE or with --front/--side, not both ways")
    if any(flags):
        return flags
    if args.front is None or args.side is None:
        raise ConfigError("give two recordings (FRONT SIDE), or one camera's with --side FILE or --front FILE")
    return args.front, args.side


def resolve_model(cfg: DualgaitConfig, *, untrained: bool) -> DualgaitConfig:
    """The configured weights; else the synthetic demo model of the cameras' views (shipped, or built and cached)
    unless untrained.

    Checks first that the cache folder is writable when it will be written: an exported engine, or a demo
    model that must be built (one line naming the fix instead of a failure minutes later).
    """
    from inference.engines.cache import check_cache_dir

    if cfg.inference.model.engine != "torch":
        check_cache_dir(cfg.inference.model.cache_dir)
    if cfg.inference.model.weights is not None or untrained:
        return cfg
    from core.configtools import ConfigError
    from training.demo_model import demo_recipe_for, ensure_demo_model

    try:
        recipe = demo_recipe_for(cfg.views)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return with_overrides(cfg, {"inference": {"model": {"weights": str(ensure_demo_model(cfg, recipe=recipe))},
                                              "crop": {"input_px": recipe.input_px}}})


def check_model_views(cfg: DualgaitConfig) -> None:
    """The model (checkpoint, ``model.variant``, or the untrained default) takes the cameras' views, else one line
    (:class:`inference.errors.ModelViewsError`) before anything loads or starts."""
    from inference.errors import ModelViewsError
    from inference.variants import default_variant, variant_views

    model = cfg.inference.model
    variant = model.variant or default_variant(cfg.views)
    if model.weights is not None:
        from inference.models import checkpoint_spec

        variant = checkpoint_spec(model.weights).variant  # ModelLoadError (one line) when unreadable
    if set(variant_views(variant)) != set(cfg.views):
        raise ModelViewsError(variant_views(variant), cfg.views)


def calibration_pair(cfg: DualgaitConfig, front: str | None = None,
                     side: str | None = None) -> tuple[str | None, str | None] | None:
    """The recording an int8 model is calibrated on, (front, side) with None for a view without a camera: the
    given or configured files, else (live cameras) the shared front/side pair's files of those views; None when
    there is neither."""
    from dualgait.config import load_config

    views = cfg.views
    shared = load_config(None).capture  # the defaults: the shared pair
    for files in ({"front": front or cfg.capture.front, "side": side or cfg.capture.side},
                  {"front": shared.front, "side": shared.side}):
        if all(files[v] is not None and Path(files[v]).is_file() for v in views):
            return (files["front"] if "front" in views else None, files["side"] if "side" in views else None)
    return None


def prepare_engine(cfg: DualgaitConfig, front: str | None = None, side: str | None = None) -> None:
    """Before anything runs: the int8 model that ``engine: auto`` (or the config) asks for, calibrated once on
    :func:`calibration_pair`'s crops with a progress bar and cached; nothing for any other engine. Under auto a
    calibration that cannot be made is a warning (the processes then run OpenVINO fp32), also when the recording
    stops decoding before enough windows (a truncated file: scoring reports it); when the config asks for int8
    it is an error."""
    from capture.sources import SourceError
    from inference.engines.base import EngineError
    from offline.clips import ensure_int8_engine

    check_model_views(cfg)
    pair = calibration_pair(cfg, front, side)
    try:
        if pair is None:
            raise EngineError("no recording to calibrate the int8 model on (give capture.front/side files, or "
                              "the shared assets)")
        ensure_int8_engine(cfg, *pair)
    except (EngineError, SourceError) as exc:
        if cfg.inference.model.precision != "auto":
            raise
        # no file names in the log (a SourceError names the file): recordings are often named after the patient
        problem = "the recording stopped decoding before enough windows" if isinstance(exc, SourceError) else exc
        log.warning("int8 calibration not possible: %s; the model runs in fp32", problem)


def run_score(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    """Score the pair and write the output; a file that stops decoding mid-stream still gets the windows scored
    before it written (``summary.json`` with its ``error``), then the error is raised (one line, exit 2)."""
    from aggregator.scoring import ScoreAggregator
    from dualgait.preflight import check_assets
    from inference.process import build_pipeline
    from offline.score import ReplayClock, ScoringStopped, score_pair

    front, side = recordings(args)
    files = by_view(front, side)
    check_assets({f"{view} video": path for view, path in files.items()}, cfg.inference.detector.weights)
    # the cameras are the recordings given: one file alone is single-view mode; no load shedding offline (a file
    # waits for the pipeline, so the windows must not depend on how busy the machine is)
    cfg = with_overrides(cfg, {"capture": {"front": front, "side": side},
                               "inference": {"overload": {"enabled": False}}})
    if args.save_video:
        cfg = with_overrides(cfg, {"inference": {"save_video_dir": args.save_video}})
    check_save_video_dir(cfg)
    from capture.sources import FileSource

    for path in files.values():  # an unreadable video: SourceError now, not after building the model
        FileSource(path).close()
    cfg = resolve_model(cfg, untrained=args.untrained)
    prepare_engine(cfg, front, side)
    clock = ReplayClock()
    pipeline = build_pipeline(cfg, clock_ns=clock)
    recorders = {}
    if cfg.inference.save_video_dir is not None:
        from inference.annotate import attach_recorders

        recorders = attach_recorders({pipeline.walkway: pipeline}, cfg.inference.save_video_dir, per_stream=False)
    aggregator = ScoreAggregator()
    records: list[dict[str, Any]] = []

    def on_score(score) -> None:
        record, line = aggregator.update(score)
        records.append(record)
        if not args.quiet:
            print(line, flush=True)

    try:
        try:
            result = score_pair(pipeline, front, side, on_score=on_score, clock=clock,
                                max_side_px=cfg.capture.max_side_px)
        finally:
            for recorder in recorders.values():
                recorder.close()
    except ScoringStopped as stopped:
        _report(args, aggregator, records, stopped.result)
        raise
    _report(args, aggregator, records, result)
    for recorder in recorders.values():
        if recorder.error is not None:
            raise OSError(f"the annotated video stopped: {recorder.error}")
        print(f"wrote annotated videos and {len(records)} window contact sheets to {recorder.folder}", flush=True)
    return 0


def _report(args: argparse.Namespace, aggregator: ScoreAggregator, records: list[dict[str, Any]],
            result: OfflineResult) -> None:
    """Print the summary and write ``windows.jsonl`` + ``summary.json`` to ``--output`` (when given)."""
    from aggregator.scoring import summary_lines

    summary = aggregator.finish(result.eos)
    summary["offline"] = {"frames": result.frames, "recording_s": round(result.recording_s, 3),
                          "wall_s": round(result.wall_s, 3), "speed_x_real_time": round(result.speed, 2)}
    if result.error is not None:
        summary["error"] = result.error
    for line in summary_lines(summary):
        print(line, flush=True)
    before = " before a decoding error" if result.error is not None else ""
    print(f"scored {result.recording_s:.1f} s of recording in {result.wall_s:.1f} s "
          f"({result.speed:.1f}x real time){before}", flush=True)
    if args.output:
        _write_output(Path(args.output), records, summary)
        if result.error is not None:
            print(f"wrote the {len(records)} windows scored before the error to {args.output}", flush=True)


def _write_output(out_dir: Path, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "windows.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
