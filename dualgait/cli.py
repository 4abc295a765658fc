"""``dualgait`` command line: demo, doctor, run, capture, infer, aggregate, session, export, bench, simulate, train."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.configtools import ConfigError

log = logging.getLogger("dualgait")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (see configs/default.yaml); defaults when omitted")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable), e.g. --set capture.speed=2")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


@dataclass(frozen=True)
class Command:
    """One sub-command: its parser gets the flags of ``add_args(parser)``, running it calls ``run(args[, cfg])``.

    ``add_args`` and ``run`` name functions, ``"package.module:function"`` or a bare name in this module;
    a module is imported only when needed: the flags' one when the parser is built, the run function's
    when the command runs (so ``dualgait --help`` does not import torch).
    """

    name: str
    help: str
    add_args: str | None  # None: the common flags only
    run: str
    config: bool = True  # run(args, cfg) with the loaded config; else run(args)
    common: bool = True  # --config, --set, --log-level on this parser (else add_args places them)

    def add_to(self, sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
        parser = sub.add_parser(self.name, help=self.help)
        if self.common:
            _common(parser)
        if self.add_args is not None:
            _function(self.add_args)(parser)
        return parser

    def __call__(self, args: argparse.Namespace) -> int:
        run = _function(self.run)
        return run(args, _load(args)) if self.config else run(args)


def _function(ref: str) -> Callable:
    module, _, name = ref.rpartition(":")
    return getattr(importlib.import_module(module), name) if module else globals()[name]


def _add_demo_args(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--front", help="front-view video (default: the shared walk_front.mp4)")
    demo.add_argument("--side", help="side-view video (default: the shared walk_side.mp4)")
    demo.add_argument("--output", default="demo-output", help="folder for windows.jsonl and summary.json")
    demo.add_argument("--speed", type=float, help="replay speed factor (1 = real time)")
    demo.add_argument("--walker", choices=["asd", "normal"],
                      help="replay a freshly rendered synthetic walker (with or without ASD-like traits) "
                           "instead of the recording")
    demo.add_argument("--untrained", action="store_true",
                      help="random model weights instead of the synthetic demo model (scores are meaningless)")
    demo.add_argument("--one-camera", choices=["side", "front"],
                      help="single-view mode: only this view's camera (the other is not started) and a single-view "
                           "model (the single_side demo model for side)")
    _add_run_args(demo)


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    from dualgait.score import add_save_video_arg

    add_save_video_arg(parser)


def _components(value: str) -> tuple[str, ...]:
    from dualgait.supervisor import COMPONENTS

    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown component {', '.join(unknown) or '(none)'}: give a comma-separated "
                                         f"list of {', '.join(COMPONENTS)}")
    return names


def _add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    from dualgait.supervisor import COMPONENTS

    _add_run_args(parser)
    parser.add_argument("--only", type=_components, default=COMPONENTS, metavar="COMPONENTS",
                        help=f"start only these (comma-separated, from {', '.join(COMPONENTS)}): e.g. --only "
                             "capture,inference on each inference host and --only aggregator on the host of the "
                             "aggregator (docs/aggregator.md, 'Many inference hosts'); default: all")


def _add_capture_args(cap: argparse.ArgumentParser) -> None:
    cap.add_argument("--view", required=True, choices=["front", "side"])
    cap.add_argument("--source", help="overrides capture.<view>: a video file, usb:N, rtsp:// or http:// URL, "
                     "synthetic:asd|normal[:SEED]")
    cap.add_argument("--start-at", type=float, metavar="UNIX_S",
                     help="shared start instant, wall clock seconds (both views get the same value)")


def _add_infer_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ready-file", help="touched once the process is ready (for supervisors)")


def _add_aggregate_args(parser: argparse.ArgumentParser) -> None:
    _add_infer_args(parser)
    parser.add_argument("--output", help="folder for windows.jsonl and summary.json")


def _add_session_args(parser: argparse.ArgumentParser) -> None:
    from dualgait.session_commands import add_session_args

    add_session_args(parser, _common)  # the common flags go on each of its subcommands


def _add_bench_args(bench: argparse.ArgumentParser) -> None:
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    for command in BENCH_COMMANDS.values():
        command.add_to(bench_sub)


# ``dualgait bench KIND``: bench.KIND's add_bench_KIND_args(parser) and run_bench_KIND(args, cfg)
BENCH_COMMANDS = {c.name: c for c in (
    Command(name, text, f"bench.{name}:add_bench_{name}_args", f"bench.{name}:run_bench_{name}")
    for name, text in (
        ("model", "model latency: variant x engine x input size"),
        ("capture", "capture -> inference-receive latency and capture CPU per transport (raw over ipc, JPEG over "
                    "TCP)"),
        ("e2e", "end-to-end latency (real time, processes) and throughput (offline) against a naive baseline"),
        ("soak", "long looped real-time run under the supervisor: RSS of every process and lag over time"),
        ("walkways", "walkways one inference process keeps in real time: detector and model batched across "
                     "walkways vs one call per walkway"),
        ("detector", "detector cost per second of video and its boxes against 640 px per frame: tiled views, "
                     "every other sample"),
        ("robustness", "the patient lock and window checks per scene: mirror, second person, crossing, leaving "
                       "and returning, cut-off body, crowd"),
        ("store", "session store write latency per backend (SQLite, PostgreSQL): p50/p99 of one window's commit"),
    ))}

# every sub-command, in the order of ``dualgait --help``
COMMANDS = {c.name: c for c in (
    Command("demo", "whole pipeline on a recorded front/side pair, live scores, then exit",
            "_add_demo_args", "cmd_demo", config=False),
    Command("doctor", "what this machine has, what the pipeline will use, which features work",
            "dualgait.doctor:add_doctor_args", "dualgait.doctor:run_doctor", config=False),
    Command("score", "score a recorded front/side pair offline, as fast as possible",
            "dualgait.score:add_score_args", "dualgait.score:run_score"),
    Command("run", "start all four processes from the config (--only: some of them) and supervise them",
            "_add_pipeline_args", "cmd_run", config=False),
    Command("capture", "one capture process: a camera, stream, recording or synthetic walker",
            "_add_capture_args", "cmd_capture", config=False),
    Command("export", "build an engine (ONNX, OpenVINO, TensorRT) ahead of time and check it",
            "dualgait.engine_export:add_export_args", "dualgait.engine_export:run_export"),
    Command("bench", "benchmarks that write JSON + a markdown table", "_add_bench_args", "cmd_bench",
            config=False, common=False),
    Command("simulate", "render synthetic front/side walker videos and a manifest",
            "training.synthetic.cli:add_simulate_args", "training.synthetic.cli:run_simulate", config=False),
    Command("train", "cross-validated training on a manifest of recorded pairs (paper protocol)",
            "training.args:add_train_args", "training.train:run_train"),
    Command("session", "walk sessions: list, export (CSV, JSON, PNG), end the open one",
            "_add_session_args", "cmd_session", config=False, common=False),
    Command("keys", "CURVE key pairs and the allow-list of clients (docs/security.md)",
            "dualgait.keys:add_keys_args", "dualgait.keys:run_keys", config=False, common=False),
    Command("infer", "the inference process", "_add_infer_args", "cmd_infer", config=False),
    Command("aggregate", "the aggregator process", "_add_aggregate_args", "cmd_aggregate", config=False),
)}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dualgait", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_to(sub)
    return parser


def _load(args: argparse.Namespace, extra: list[str] | None = None):
    from dualgait.config import load_config

    return load_config(args.config, [*args.overrides, *(extra or [])])


def cmd_demo(args: argparse.Namespace) -> int:
    from core.configtools import with_overrides
    from core.folders import check_writable_dir
    from dualgait.launcher import LaunchError, run_pipeline
    from dualgait.preflight import check_assets, check_ports, planned_tcp_binds
    from dualgait.score import check_save_video_dir, save_video_overrides

    cfg = _load(args, save_video_overrides(args))
    out_dir = check_writable_dir(args.output, what="output folder", fix="choose another with --output DIR")
    check_save_video_dir(cfg)
    capture = {}
    if args.front:
        capture["front"] = args.front
    if args.side:
        capture["side"] = args.side
    if args.speed is not None:
        capture["speed"] = args.speed
    if args.one_camera is not None:  # single-view mode: the other view has no camera
        capture["front" if args.one_camera == "side" else "side"] = None
    cfg = with_overrides(cfg, {
        "capture": capture,
        "inference": {"exit_on_end_of_stream": True},
        "aggregator": {"output_dir": str(out_dir), "exit_on_end_of_stream": True},
        "supervisor": {"restart": False},  # a demo fails fast: a crash ends it with the reason
    })
    # user mistakes and a busy machine first, before loading models and starting processes
    videos = {} if args.walker else {f"{view} video": cfg.capture.source(view) for view in cfg.views}
    check_assets(videos, cfg.inference.detector.weights,
                 video_fix="give another with --{view} FILE or --set capture.{view}=FILE")
    check_ports(planned_tcp_binds(cfg, private_endpoints=True))
    if args.walker:
        from capture.synthetic.demo_walker import render_demo_walker

        walker = render_demo_walker(out_dir / "walker", asd=args.walker == "asd")
        cfg = with_overrides(cfg, {"capture": {view: str(path) for view, path in zip(("front", "side"), walker,
                                                                                    strict=True) if view in cfg.views}})
    from capture.sources import FileSource

    durations = []
    for view in cfg.views:
        src = FileSource(cfg.capture.source(view))
        durations.append(src.duration_s)
        src.close()
    from dualgait.score import prepare_engine, resolve_model

    cfg = resolve_model(cfg, untrained=args.untrained)
    prepare_engine(cfg)
    for name in ("windows.jsonl", "summary.json"):
        (out_dir / name).unlink(missing_ok=True)
    replay_s = max(durations) / cfg.capture.speed
    cameras = " + ".join(str(cfg.capture.source(view)) for view in cfg.views)
    one = f", {cfg.views[0]} camera only (single-view mode)" if len(cfg.views) == 1 else ""
    print(f"dualgait demo: {cameras} ({replay_s:.1f} s of replay{one})", flush=True)
    t0 = time.monotonic()
    code = run_pipeline(cfg, timeout_s=replay_s + 600, private_endpoints=True, log_level=args.log_level)
    wall_s = time.monotonic() - t0
    summary_path = out_dir / "summary.json"
    if code != 0 or not summary_path.exists():
        raise LaunchError(f"demo did not finish (exit {code}); see the log above")
    summary = json.loads(summary_path.read_text())
    summary["demo_wall_s"] = round(wall_s, 2)
    summary["recording_s"] = round(max(durations), 2)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"demo finished in {wall_s:.1f} s for {max(durations):.1f} s of recording; "
          f"wrote {out_dir / 'windows.jsonl'} and {summary_path}", flush=True)
    if cfg.inference.save_video_dir is not None:
        print(f"annotated videos and window contact sheets: {cfg.inference.save_video_dir}/<stream>/", flush=True)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from dualgait.launcher import run_pipeline
    from dualgait.preflight import check_ports, planned_tcp_binds
    from dualgait.score import check_save_video_dir, save_video_overrides
    from inference.engines.cache import check_cache_dir

    cfg = _load(args, save_video_overrides(args))
    only = tuple(args.only)
    check_ports(planned_tcp_binds(cfg, components=(*only, "supervisor")))
    if "inference" in only:
        check_save_video_dir(cfg)
        if cfg.inference.model.engine != "torch":  # exported engines are built into the cache
            check_cache_dir(cfg.inference.model.cache_dir)
        from dualgait.score import prepare_engine

        prepare_engine(cfg)
    return run_pipeline(cfg, log_level=args.log_level, components=only)


def cmd_capture(args: argparse.Namespace) -> int:
    from capture.process import run_capture

    extra = [f"capture.{args.view}={json.dumps(args.source)}"] if args.source else []
    return run_capture(_load(args, extra), args.view, start_at_unix_s=args.start_at)


def cmd_infer(args: argparse.Namespace) -> int:
    from inference.process import run_inference

    return run_inference(_load(args), ready_file=args.ready_file)


def cmd_aggregate(args: argparse.Namespace) -> int:
    from aggregator.process import run_aggregator

    extra = [f"aggregator.output_dir={json.dumps(args.output)}"] if args.output else []
    return run_aggregator(_load(args, extra), ready_file=args.ready_file)


def cmd_session(args: argparse.Namespace) -> int:
    from dualgait.session_commands import run_session_command

    return run_session_command(args, _load(args).aggregator)


def cmd_bench(args: argparse.Namespace) -> int:
    return BENCH_COMMANDS[args.bench](args)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input or environment: reported in one line, no traceback."""
    from capture.sources import SourceError
    from dualgait.launcher import LaunchError
    from inference.engines.base import EngineError
    from inference.errors import DetectorError, ModelLoadError

    return (ConfigError, SourceError, DetectorError, ModelLoadError, EngineError, LaunchError, OSError)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format=f"%(asctime)s {args.command:9s} %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    from inference.detector import configure_ultralytics_env

    configure_ultralytics_env(Path(tempfile.gettempdir()) / "dualgait-ultralytics")
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except _user_errors() as exc:
        print(f"dualgait {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
