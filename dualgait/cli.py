"""``dualgait`` command line: demo, doctor, run, capture, infer, aggregate, session, export, bench, simulate, train."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from core.configtools import ConfigError

log = logging.getLogger("dualgait")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (see configs/default.yaml); defaults when omitted")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable), e.g. --set capture.speed=2")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dualgait", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="whole pipeline on a recorded front/side pair, live scores, then exit")
    _common(demo)
    demo.add_argument("--front", help="front-view video (default: the shared walk_front.mp4)")
    demo.add_argument("--side", help="side-view video (default: the shared walk_side.mp4)")
    demo.add_argument("--output", default="demo-output", help="folder for windows.jsonl and summary.json")
    demo.add_argument("--speed", type=float, help="replay speed factor (1 = real time)")
    demo.add_argument("--walker", choices=["asd", "normal"],
                      help="replay a freshly rendered synthetic walker (with or without ASD-like traits) "
                           "instead of the recording")
    demo.add_argument("--untrained", action="store_true",
                      help="random model weights instead of the synthetic demo model (scores are meaningless)")

    doctor = sub.add_parser("doctor", help="what this machine has, what the pipeline will use, which features work")
    _common(doctor)
    from dualgait.doctor import add_doctor_args

    add_doctor_args(doctor)

    score = sub.add_parser("score", help="score a recorded front/side pair offline, as fast as possible")
    _common(score)
    from dualgait.score import add_score_args

    add_score_args(score)

    run = sub.add_parser("run", help="start all four processes from the config and supervise them")
    _common(run)

    cap = sub.add_parser("capture", help="one capture process: a camera, stream, recording or synthetic walker")
    _common(cap)
    cap.add_argument("--view", required=True, choices=["front", "side"])
    cap.add_argument("--source", help="overrides capture.<view>: a video file, usb:N, rtsp:// or http:// URL, "
                     "synthetic:asd|normal[:SEED]")
    cap.add_argument("--start-at", type=float, metavar="UNIX_S",
                     help="shared start instant, wall clock seconds (both views get the same value)")

    export = sub.add_parser("export", help="build an engine (ONNX, OpenVINO, TensorRT) ahead of time and check it")
    _common(export)
    from dualgait.engine_export import add_export_args

    add_export_args(export)

    bench = sub.add_parser("bench", help="benchmarks that write JSON + a markdown table")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    bench_model = bench_sub.add_parser("model", help="model latency: variant x engine x input size")
    _common(bench_model)
    from bench.model import add_bench_model_args

    add_bench_model_args(bench_model)
    bench_capture = bench_sub.add_parser("capture", help="capture -> inference-receive latency and capture CPU "
                                         "per transport (raw over ipc, JPEG over TCP)")
    _common(bench_capture)
    from bench.capture import add_bench_capture_args

    add_bench_capture_args(bench_capture)
    bench_e2e = bench_sub.add_parser("e2e", help="end-to-end latency (real time, processes) and throughput "
                                     "(offline) against a naive baseline")
    _common(bench_e2e)
    from bench.e2e import add_bench_e2e_args

    add_bench_e2e_args(bench_e2e)
    bench_soak = bench_sub.add_parser("soak", help="long looped real-time run under the supervisor: RSS of every "
                                      "process and lag over time")
    _common(bench_soak)
    from bench.soak import add_bench_soak_args

    add_bench_soak_args(bench_soak)
    bench_walkways = bench_sub.add_parser("walkways", help="walkways one inference process keeps in real time: "
                                          "detector and model batched across walkways vs one call per walkway")
    _common(bench_walkways)
    from bench.walkways import add_bench_walkways_args

    add_bench_walkways_args(bench_walkways)

    simulate = sub.add_parser("simulate", help="render synthetic front/side walker videos and a manifest")
    _common(simulate)
    from training.synthetic.cli import add_simulate_args

    add_simulate_args(simulate)

    train = sub.add_parser("train", help="cross-validated training on a manifest of recorded pairs (paper protocol)")
    _common(train)
    from training.args import add_train_args

    add_train_args(train)

    session = sub.add_parser("session", help="walk sessions: list, export (CSV, JSON, PNG), end the open one")
    from aggregator.commands import add_session_args

    add_session_args(session, _common)

    keys = sub.add_parser("keys", help="CURVE key pairs and the allow-list of clients (docs/security.md)")
    from dualgait.keys import add_keys_args

    add_keys_args(keys)

    for name, text in (("infer", "the inference process"), ("aggregate", "the aggregator process")):
        p = sub.add_parser(name, help=text)
        _common(p)
        p.add_argument("--ready-file", help="touched once the process is ready (for supervisors)")
        if name == "aggregate":
            p.add_argument("--output", help="folder for windows.jsonl and summary.json")
    return parser


def _load(args: argparse.Namespace, extra: list[str] | None = None):
    from dualgait.config import load_config

    return load_config(args.config, [*args.overrides, *(extra or [])])


def cmd_demo(args: argparse.Namespace) -> int:
    from core.configtools import with_overrides
    from dualgait.launcher import LaunchError, run_pipeline
    from dualgait.preflight import check_assets, check_ports, check_writable_dir, planned_tcp_binds

    cfg = _load(args)
    out_dir = check_writable_dir(args.output, what="output folder", fix="choose another with --output DIR")
    capture = {}
    if args.front:
        capture["front"] = args.front
    if args.side:
        capture["side"] = args.side
    if args.speed is not None:
        capture["speed"] = args.speed
    cfg = with_overrides(cfg, {
        "capture": capture,
        "inference": {"exit_on_end_of_stream": True},
        "aggregator": {"output_dir": str(out_dir), "exit_on_end_of_stream": True},
        "supervisor": {"restart": False},  # a demo fails fast: a crash ends it with the reason
    })
    # user mistakes and a busy machine first, before loading models and starting processes
    videos = {} if args.walker else {f"{view} video": cfg.capture.source(view) for view in ("front", "side")}
    check_assets(videos, cfg.inference.detector.weights,
                 video_fix="give another with --{view} FILE or --set capture.{view}=FILE")
    check_ports(planned_tcp_binds(cfg, private_endpoints=True))
    if args.walker:
        from capture.synthetic.demo_walker import render_demo_walker

        walker = render_demo_walker(out_dir / "walker", asd=args.walker == "asd")
        cfg = with_overrides(cfg, {"capture": dict(zip(("front", "side"), (str(path) for path in walker),
                                                       strict=True))})
    from capture.sources import FileSource

    durations = []
    for view in ("front", "side"):
        src = FileSource(cfg.capture.source(view))
        durations.append(src.duration_s)
        src.close()
    from dualgait.score import resolve_model

    cfg = resolve_model(cfg, untrained=args.untrained)
    for name in ("windows.jsonl", "summary.json"):
        (out_dir / name).unlink(missing_ok=True)
    replay_s = max(durations) / cfg.capture.speed
    print(f"dualgait demo: {cfg.capture.front} + {cfg.capture.side} ({replay_s:.1f} s of replay)", flush=True)
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
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from dualgait.doctor import run_doctor

    return run_doctor(args)


def cmd_score(args: argparse.Namespace) -> int:
    from dualgait.score import run_score

    return run_score(args, _load(args))


def cmd_run(args: argparse.Namespace) -> int:
    from dualgait.launcher import run_pipeline
    from dualgait.preflight import check_cache_dir, check_ports, planned_tcp_binds

    cfg = _load(args)
    check_ports(planned_tcp_binds(cfg))
    if cfg.inference.model.engine != "torch":  # exported engines are built into the cache
        check_cache_dir(cfg)
    return run_pipeline(cfg, log_level=args.log_level)


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
    from aggregator.commands import run_session_command

    return run_session_command(args, _load(args).aggregator)


def cmd_export(args: argparse.Namespace) -> int:
    from dualgait.engine_export import run_export

    return run_export(args, _load(args))


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench == "capture":
        from bench.capture import run_bench_capture

        return run_bench_capture(args, _load(args))
    if args.bench == "e2e":
        from bench.e2e import run_bench_e2e

        return run_bench_e2e(args, _load(args))
    if args.bench == "soak":
        from bench.soak import run_bench_soak

        return run_bench_soak(args, _load(args))
    if args.bench == "walkways":
        from bench.walkways import run_bench_walkways

        return run_bench_walkways(args, _load(args))
    from bench.model import run_bench_model

    return run_bench_model(args, _load(args))


def cmd_keys(args: argparse.Namespace) -> int:
    from dualgait.keys import run_keys

    return run_keys(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from training.synthetic.cli import run_simulate

    return run_simulate(args)


def cmd_train(args: argparse.Namespace) -> int:
    from training.train import run_train

    return run_train(args, _load(args))


COMMANDS = {"demo": cmd_demo, "doctor": cmd_doctor, "score": cmd_score, "run": cmd_run, "capture": cmd_capture,
            "infer": cmd_infer, "aggregate": cmd_aggregate, "session": cmd_session, "export": cmd_export,
            "bench": cmd_bench, "simulate": cmd_simulate, "train": cmd_train, "keys": cmd_keys}


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
