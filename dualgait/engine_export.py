"""``dualgait export``: build an engine for the configured model ahead of time, check it, say where it is.

Steps are logged as ``[i/n]`` so a long build (ONNX export, int8 calibration, a TensorRT plan) shows
progress. The artefact lands in the engine cache (``inference.model.cache_dir``), where the
inference process finds it; ``--output`` also copies it to a folder of your choice.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

from core.configtools import with_overrides
from dualgait.config import DualgaitConfig

__all__ = ["add_export_args", "run_export"]

log = logging.getLogger(__name__)

_FORMATS = {"onnx": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt"}


def add_export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=sorted(_FORMATS),
                        help="onnx (also checked with ONNX Runtime), openvino (CPU IR) or tensorrt (FP16 plan)")
    parser.add_argument("--precision", help="default: fp32 for onnx, bf16 for openvino, fp16 for tensorrt")
    parser.add_argument("--weights", help="dualgait checkpoint (default: inference.model.weights; none: random)")
    parser.add_argument("--variant", help="model variant when there is no checkpoint (default: late)")
    parser.add_argument("--front", help="front recording for int8 calibration and the parity check")
    parser.add_argument("--side", help="side recording for int8 calibration and the parity check")
    parser.add_argument("--windows", type=int, default=12, help="windows of the recording to calibrate/check on")
    parser.add_argument("--output", help="also copy the built artefacts into this folder")
    parser.add_argument("--rebuild", action="store_true", help="ignore (and replace) cached artefacts")
    parser.add_argument("--no-check", action="store_true", help="skip the parity check against PyTorch fp32")


def _model_overrides(args: argparse.Namespace) -> dict[str, object]:
    precision = args.precision or {"onnx": "fp32", "openvino": "bf16", "tensorrt": "fp16"}[args.format]
    model: dict[str, object] = {"engine": _FORMATS[args.format], "precision": precision,
                                "device": "cuda" if args.format == "tensorrt" else "cpu"}
    if args.weights:
        model["weights"] = args.weights
    if args.variant:
        model["variant"] = args.variant
    return model


def run_export(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    from inference.engines.factory import build_engine, load_model
    from inference.engines.parity import compare_engines
    from inference.engines.torch_engine import TorchEngine
    from offline.clips import recording_windows

    cfg = with_overrides(cfg, {"inference": {"model": _model_overrides(args)}})
    mcfg, icfg = cfg.inference.model, cfg.inference
    needs_windows = mcfg.precision == "int8" or not args.no_check
    steps = 3 + needs_windows
    step = iter(range(1, steps + 1))
    t0 = time.perf_counter()

    log.info("[%d/%d] loading the model", next(step), steps)
    loaded = load_model(mcfg, input_px=icfg.crop.input_px, frames=icfg.window.frames)
    log.info("       %s: %s", loaded.spec.variant, loaded.source)
    windows = None
    if needs_windows:
        front = args.front or cfg.capture.front
        side = args.side or cfg.capture.side
        log.info("[%d/%d] collecting %d windows of %s + %s (tracker + crop, as live)", next(step), steps,
                 args.windows, front, side)
        windows = recording_windows(cfg, front, side, max_windows=args.windows, views=loaded.model.views)
        if not windows:
            from inference.engines import EngineError

            raise EngineError(f"no valid window in {front} + {side}: the patient must be visible in both views")
    log.info("[%d/%d] building the %s %s engine (cache: %s)", next(step), steps, args.format, mcfg.precision,
             mcfg.cache_dir)
    calibration = windows[: max(1, len(windows) * 2 // 3)] if windows and mcfg.precision == "int8" else None
    engine = build_engine(loaded, mcfg, calibration=calibration, rebuild=args.rebuild)
    log.info("       %s", engine.description)

    result: dict[str, object] = {"format": args.format, "precision": mcfg.precision, "engine": engine.name,
                                 "variant": loaded.spec.variant, "model": loaded.source,
                                 "cache_dir": str(Path(mcfg.cache_dir).expanduser())}
    n = next(step)
    if args.no_check or windows is None:
        log.info("[%d/%d] parity check skipped (--no-check)", n, steps)
    else:
        check = windows[len(calibration):] if calibration else windows
        check = check or windows
        log.info("[%d/%d] parity against PyTorch fp32 on %d windows", n, steps, len(check))
        report = compare_engines(TorchEngine(loaded.model, precision="fp32"), engine, check,
                                 precision=mcfg.precision)
        print(report.line(), flush=True)
        if loaded.untrained:
            print("note: the model is untrained (random weights), so this parity says little about a trained one",
                  flush=True)
        result["parity"] = report.as_dict()
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        for path in _artifacts(engine):
            shutil.copy2(path, out / path.name)
        (out / "export.json").write_text(json.dumps(result, indent=2) + "\n")
        result["output"] = str(out)
    print(f"dualgait export: {engine.name} ready in {time.perf_counter() - t0:.1f} s"
          + (f"; copied to {args.output}" if args.output else f"; cached under {result['cache_dir']}"), flush=True)
    parity = result.get("parity")
    return 1 if isinstance(parity, dict) and not parity["passed"] else 0


def _artifacts(engine: object) -> list[Path]:
    """Files behind an engine, when it has any (the torch engine has none)."""
    paths = getattr(engine, "artifacts", None)
    return [Path(p) for p in paths] if paths else []
