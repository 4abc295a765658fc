"""``dualgait bench model``: latency, throughput, peak memory and fp32 parity of model variants on each engine.

Every (variant, engine, input size) runs in a process of its own (``python -m bench.model
--worker JOB``), so its peak RSS is that configuration's alone. Engines built from ONNX (OpenVINO,
ONNX Runtime, TensorRT) get two processes: one builds the engine into the bench's own cache (ONNX
export, int8 calibration and quantisation: ``build_s``), the next loads it from there and is timed,
so the peak RSS is the one a deployed engine has, not the exporter's. Weights are a seeded random
init: the numbers are for timing only. Results: ``<output>/bench_model.json`` and ``bench_model.md``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from bench import report
from core.configtools import ConfigError
from inference.config import Variant

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig

__all__ = ["ENGINE_IDS", "add_bench_model_args", "run_bench_model"]

log = logging.getLogger(__name__)

# engine id -> ModelConfig (engine, device, precision)
ENGINE_IDS: dict[str, tuple[str, str, str]] = {
    "torch-cpu-fp32": ("torch", "cpu", "fp32"),
    "torch-cpu-bf16": ("torch", "cpu", "bf16"),
    "torch-cuda-fp32": ("torch", "cuda", "fp32"),
    "torch-cuda-fp16": ("torch", "cuda", "fp16"),
    "openvino-fp32": ("openvino", "cpu", "fp32"),
    "openvino-bf16": ("openvino", "cpu", "bf16"),
    "openvino-int8": ("openvino", "cpu", "int8"),
    "onnxruntime-cpu-fp32": ("onnxruntime", "cpu", "fp32"),
    "onnxruntime-cuda-fp32": ("onnxruntime", "cuda", "fp32"),
    "tensorrt-fp16": ("tensorrt", "cuda", "fp16"),
    "tensorrt-fp32": ("tensorrt", "cuda", "fp32"),
}
DEFAULT_ENGINES = "torch-cpu-fp32,torch-cpu-bf16,openvino-fp32,openvino-bf16,openvino-int8,onnxruntime-cpu-fp32"
CALIBRATION_WINDOWS = 16
_RESULT_MARK = "DUALGAIT-BENCH-RESULT "
_REPO_ROOT = Path(__file__).resolve().parents[1]


def add_bench_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", default="late", help="comma list of model variants "
                        f"({', '.join(get_args(Variant))})")
    parser.add_argument("--engines", default=DEFAULT_ENGINES,
                        help=f"comma list of engine ids ({', '.join(ENGINE_IDS)})")
    parser.add_argument("--sizes", default="224,512", help="comma list of model input sizes in px (>= 32)")
    parser.add_argument("--batch", default="1", help="windows per engine call; a comma list (1,2,4,8) benches each")
    parser.add_argument("--compare-single", action="store_true",
                        help="also time ModelRunner.predict_batch of B windows against B predict calls of one "
                        "(uint8 crops in, preprocessing and bucket padding included), interleaved in one process")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (the first one compiles)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: one per available core)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    parser.add_argument("--output", default="bench-output", help="folder for bench_model.json, .md and logs/")
    parser.add_argument("--cache-dir", help="engine cache of the bench (default: <output>/engine-cache, so the "
                        "bench never touches the pipeline's cache)")
    parser.add_argument("--calibration-front", help="front-view video for int8 calibration (default: capture.front)")
    parser.add_argument("--calibration-side", help="side-view video for int8 calibration (default: capture.side)")
    parser.add_argument("--timeout-s", type=float, default=1800.0,
                        help="wall-clock limit per configuration, build included (then recorded as failed)")
    parser.add_argument("--no-parity", dest="parity", action="store_false",
                        help="skip the comparison with torch-cpu-fp32 (faster)")


def _names(text: str, what: str, valid: tuple[str, ...] | dict[str, Any]) -> list[str]:
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise ConfigError(f"--{what}: give at least one")
    for n in names:
        if n not in valid:
            raise ConfigError(f"--{what}: unknown {what[:-1]} {n!r}; choose from {', '.join(valid)}")
    return names


def _sizes(text: str) -> list[int]:
    try:
        sizes = list(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise ConfigError(f"--sizes: expected comma-separated integers, got {text!r}") from None
    if not sizes or any(s < 32 for s in sizes):
        raise ConfigError(f"--sizes: give input sizes of at least 32 px, got {text!r}")
    return sizes


def _batches(text: str) -> list[int]:
    try:
        batches = list(dict.fromkeys(int(s) for s in str(text).split(",") if s.strip()))
    except ValueError:
        raise ConfigError(f"--batch: expected comma-separated integers, got {text!r}") from None
    if not batches or any(not 1 <= b <= 256 for b in batches):
        raise ConfigError("--batch must be in 1..256")
    return batches


def _check_args(args: argparse.Namespace) -> None:
    if args.repeats < 1 or args.warmup < 0 or args.threads < 0:
        raise ConfigError("--repeats must be >= 1, --warmup and --threads >= 0")
    if args.timeout_s <= 0:
        raise ConfigError("--timeout-s must be > 0")


def _unavailable(engine: str, device: str, precision: str, calibration: tuple[str, str]) -> str | None:
    """Why this engine cannot run here, found cheaply (no process, no model); None when it may."""
    found = importlib.util.find_spec
    if engine == "tensorrt" and found("tensorrt") is None:
        return "TensorRT is not installed here (pip install tensorrt, from NVIDIA's index, on a CUDA host)"
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU here (torch sees none)"
    if engine != "torch" and (found("onnx") is None or found("onnxscript") is None):
        return "ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript"
    if engine == "openvino" and found("openvino") is None:
        return "the openvino engine needs the openvino package: pip install openvino"
    if engine == "onnxruntime":
        if found("onnxruntime") is None:
            return "the onnxruntime engine needs the onnxruntime package"
        import onnxruntime as ort

        provider = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}[device]
        if provider not in ort.get_available_providers():
            return f"onnxruntime here has no {provider} (installed: {', '.join(ort.get_available_providers())})"
    if precision == "int8":
        if found("nncf") is None:
            return "int8 quantisation needs the nncf package: pip install nncf"
        for view, path in zip(("front", "side"), calibration, strict=True):
            if not Path(path).is_file():
                return f"int8 calibration video not found: {path} (set --calibration-{view})"
    return None


def _row(variant: str, engine_id: str, size: int, batch: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"variant": variant, "engine": engine_id, "input_px": size, "batch": batch,
                           "status": "ok", "reason": None, "description": None, "build_s": None, "load_s": None,
                           "first_call_ms": None, "latency_ms": None, "windows_per_s": None, "speedup": None,
                           "peak_rss_mb": None, "cuda_peak_mb": None, "max_abs_dp": None}
    row.update(fields)
    return row


def _tail(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _spawn(job: dict[str, Any], *, log_path: Path, timeout_s: float) -> dict[str, Any]:
    """Run one worker process; its result dict, or a failed one naming why there is none."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "bench.model", "--worker", json.dumps(job)]
    with open(log_path, "w", encoding="utf-8") as err:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout_s, env=env,
                                  check=False)
        except subprocess.TimeoutExpired:
            return {"status": "failed", "reason": f"timed out after {timeout_s:g} s (log: {log_path})"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_MARK):
            return json.loads(line[len(_RESULT_MARK):])
    code = proc.returncode
    how = f"killed by signal {-code}" + (" (out of memory?)" if code == -9 else "") if code < 0 else f"exit {code}"
    tail = _tail(log_path)
    return {"status": "failed", "reason": f"worker {how}" + (f": {tail}" if tail else f" (log: {log_path})")}


def _bench_one(job: dict[str, Any], *, logs: Path, timeout_s: float) -> dict[str, Any]:
    variant, engine_id, size, batch = job["variant"], job["engine_id"], job["size"], job["batch"]
    engine, device, precision = ENGINE_IDS[engine_id]
    reason = _unavailable(engine, device, precision, tuple(job["calibration"]))  # type: ignore[arg-type]
    if reason:
        return _row(variant, engine_id, size, batch, status="skipped", reason=reason)
    stem = f"{variant}-{engine_id}-{size}px-b{batch}"
    t0 = time.monotonic()
    built: dict[str, Any] = {}
    if engine != "torch":
        built = _spawn({**job, "phase": "build"}, log_path=logs / f"{stem}.build.log", timeout_s=timeout_s)
        if built["status"] != "ok":
            return _row(variant, engine_id, size, batch, **built)
    left = timeout_s - (time.monotonic() - t0)
    if left <= 0:
        return _row(variant, engine_id, size, batch, status="failed", reason=f"timed out after {timeout_s:g} s")
    result = _spawn({**job, "phase": "run"}, log_path=logs / f"{stem}.log", timeout_s=left)
    if built:  # the build process's times replace the run's cache-hit load
        result.update({k: v for k, v in built.items() if k != "status"})
    return _row(variant, engine_id, size, batch, **result)


def run_bench_model(args: argparse.Namespace, cfg: DualgaitConfig) -> int:
    """Bench every (variant, engine, size); writes the report and prints its table. 1 if any run failed."""
    from core.configtools import to_mapping

    variants = _names(args.variants, "variants", get_args(Variant))
    engines = _names(args.engines, "engines", ENGINE_IDS)
    sizes = _sizes(args.sizes)
    batches = _batches(args.batch)
    _check_args(args)
    calibration = tuple(str(Path(p).expanduser().resolve()) for p in (args.calibration_front or cfg.capture.front,
                                                                      args.calibration_side or cfg.capture.side))
    out = Path(args.output).resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(args.cache_dir).expanduser().resolve() if args.cache_dir else out / "engine-cache"
    frames = cfg.inference.window.frames
    settings = {"variants": variants, "engines": engines, "sizes": sizes,
                "batch": batches[0] if len(batches) == 1 else ", ".join(map(str, batches)), "frames": frames,
                "repeats": args.repeats, "warmup": args.warmup, "threads": args.threads, "seed": args.seed,
                "parity": args.parity, "timeout_s": args.timeout_s, "cache_dir": str(cache_dir),
                "calibration": list(calibration), "calibration_windows": CALIBRATION_WINDOWS,
                "compare_single": args.compare_single}
    meta = {"machine": report.machine_info(), "settings": settings,
            "weights": f"random init, seed {args.seed} (untrained): timing only"}
    base_job = {"repeats": args.repeats, "warmup": args.warmup, "threads": args.threads,
                "compare_single": args.compare_single, "seed": args.seed, "parity": args.parity,
                "cache_dir": str(cache_dir),
                "calibration": list(calibration), "config": to_mapping(cfg),
                "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel())}
    plan = [(v, s, e, b) for v in variants for s in sizes for e in engines for b in batches]
    rows: list[dict[str, Any]] = []
    json_path, md_path = out / "bench_model.json", out / "bench_model.md"
    for i, (variant, size, engine_id, batch) in enumerate(plan, 1):
        log.info("[%d/%d] %s on %s at %d px, batch %d", i, len(plan), variant, engine_id, size, batch)
        job = {**base_job, "variant": variant, "engine_id": engine_id, "size": size, "batch": batch}
        row = _bench_one(job, logs=logs, timeout_s=args.timeout_s)
        rows.append(row)
        log.info("[%d/%d] %s on %s at %d px: %s", i, len(plan), variant, engine_id, size, report.summary_line(row))
        report.write_json(json_path, meta, rows)  # partial results survive an interrupted bench
    report.fill_speedups(rows)
    report.write_json(json_path, meta, rows)
    md_path.write_text(report.render_markdown(meta, rows))
    print(report.markdown_table(rows), flush=True)
    if args.compare_single:
        table = _batching_table(rows)
        print("\n" + table, flush=True)
        with md_path.open("a") as md:
            md.write("\n## predict_batch of B windows against B predict calls (same process, interleaved)\n\n"
                     + table + "\n")
    print(f"\nwrote {json_path} and {md_path}", flush=True)
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        log.warning("%d of %d configurations failed (logs in %s)", len(failed), len(rows), logs)
    return 1 if failed else 0


def _batching_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: windows/s of one predict_batch call of B windows against B predict calls of one."""
    lines = ["| variant | engine | input px | B | run at | predict_batch windows/s | B x predict windows/s | "
             "gain | max abs Δp batch vs single | CPU share |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r.get("batching")
        if r["status"] != "ok" or not c:
            continue
        lines.append(f"| {r['variant']} | {r['engine']} | {r['input_px']} | {r['batch']} | {c['bucket']} | "
                     f"{c['batched_windows_per_s']:.2f} | {c['single_windows_per_s']:.2f} | {c['gain']:.2f}x | "
                     f"{c['max_abs_dp']:.1e} | {c['cpu_share']:.2f} |")
    return "\n".join(lines)


def _compare_single(runner: Any, job: dict[str, Any], frames: int, threads: int) -> dict[str, Any]:
    """predict_batch of B uint8 windows against B predict calls, alternating, after one untimed call of each."""
    import numpy as np

    rng = np.random.default_rng(job["seed"])
    px, batch = job["size"], job["batch"]
    windows = [{v: rng.integers(0, 256, (frames, px, px, 3), dtype=np.uint8) for v in runner.views}
               for _ in range(batch)]  # B x view -> (T, H, W, 3) uint8 BGR
    batched = runner.predict_batch(windows)  # compiles / captures the bucket
    single = [runner.predict(w) for w in windows]
    dp = max(abs(b[k] - s[k]) for b, s in zip(batched, single, strict=True) for k in b)
    t_batched = t_single = 0.0
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    for _ in range(job["repeats"]):
        t = time.perf_counter()
        runner.predict_batch(windows)
        t_batched += time.perf_counter() - t
        t = time.perf_counter()
        for w in windows:
            runner.predict(w)
        t_single += time.perf_counter() - t
    cpu_share = (_cpu_s() - cpu0) / ((time.perf_counter() - wall0) * threads)
    n = batch * job["repeats"]
    return {"bucket": runner.bucket(min(batch, runner.max_batch)), "batched_windows_per_s": round(n / t_batched, 3),
            "single_windows_per_s": round(n / t_single, 3), "gain": round(t_single / t_batched, 3),
            "max_abs_dp": float(dp), "cpu_share": round(cpu_share, 2)}


# ---------------------------------------------------------------- worker (one configuration, own process)

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _inputs(job: dict[str, Any], frames: int, views: int) -> list[Any]:
    """Random normalised clips, the same for every engine of one size (seeded)."""
    import numpy as np

    from inference.models.fusion import KINETICS_MEAN, KINETICS_STD

    rng = np.random.default_rng(job["seed"])
    mean = np.asarray(KINETICS_MEAN, dtype=np.float32).reshape(3, 1, 1, 1)
    std = np.asarray(KINETICS_STD, dtype=np.float32).reshape(3, 1, 1, 1)
    shape = (job["batch"], 3, frames, job["size"], job["size"])
    return [((rng.random(shape, dtype=np.float32) - mean) / std).astype(np.float32) for _ in range(views)]


def _cache_entries(root: Path) -> set[Path]:
    return set(root.glob("*/*")) if root.is_dir() else set()


def _work(job: dict[str, Any], config_cls: type[DualgaitConfig]) -> dict[str, Any]:
    import numpy as np
    import torch

    from core.configtools import from_mapping, with_overrides
    from inference.engines.base import ModelRunner, set_torch_threads
    from inference.engines.factory import build_engine, load_model

    engine, device, precision = ENGINE_IDS[job["engine_id"]]
    cfg = from_mapping(config_cls, job["config"])
    size, frames = job["size"], cfg.inference.window.frames
    mcfg = replace(cfg.inference.model, variant=job["variant"], weights=None, engine=engine, device=device,
                   precision=precision, cache_dir=job["cache_dir"], threads=job["threads"], seed=job["seed"],
                   max_batch=max(cfg.inference.model.max_batch, job["batch"]))
    threads = set_torch_threads(job["threads"])
    base_rss = _peak_rss_mb()
    t0 = time.perf_counter()
    loaded = load_model(mcfg, input_px=size, frames=frames)
    views = loaded.model.views
    if job["phase"] == "build":
        out: dict[str, Any] = {"status": "ok"}
        calibration = None
        if precision == "int8":
            from offline.clips import recording_windows

            t1 = time.perf_counter()
            sized = with_overrides(cfg, {"inference": {"crop": {"input_px": size}}})
            front, side = job["calibration"]
            calibration = recording_windows(sized, front, side, max_windows=CALIBRATION_WINDOWS, views=views)
            set_torch_threads(job["threads"])  # the detector (Ultralytics) drops torch to one thread
            out.update(calibration_s=round(time.perf_counter() - t1, 2), calibration_windows=len(calibration))
            t0 += time.perf_counter() - t1
        before = _cache_entries(Path(job["cache_dir"]))
        build_engine(loaded, mcfg, calibration=calibration)
        built = _cache_entries(Path(job["cache_dir"])) - before
        out.update(build_s=round(time.perf_counter() - t0, 2), engine_cache="built" if built else "hit",
                   build_peak_rss_mb=round(_peak_rss_mb(), 1))
        return out
    eng = build_engine(loaded, mcfg)
    load_s = time.perf_counter() - t0
    spec = loaded.spec
    if engine != "torch":  # as in the pipeline, the torch weights go once the engine holds its own
        del loaded
        gc.collect()
    inputs = _inputs(job, frames, len(views))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    first_ms = None
    for i in range(job["warmup"]):
        t = time.perf_counter_ns()
        eng.infer(inputs)
        if i == 0:
            first_ms = (time.perf_counter_ns() - t) / 1e6
    latencies = []
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    for _ in range(job["repeats"]):
        t = time.perf_counter_ns()
        probs = eng.infer(inputs)
        latencies.append((time.perf_counter_ns() - t) / 1e6)
    # CPU seconds this process got per wall second per thread: well below 1 means other work took the cores
    cpu_share = (_cpu_s() - cpu0) / ((time.perf_counter() - wall0) * threads)
    peak_rss = _peak_rss_mb()
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" and engine == "torch" else None
    lat = np.asarray(latencies)
    mean = float(lat.mean())
    p50, p95 = (round(float(v), 3) for v in np.percentile(lat, [50, 95]))
    out = {"status": "ok", "description": eng.description, "build_s": round(load_s, 2), "load_s": round(load_s, 2),
           "first_call_ms": None if first_ms is None else round(first_ms, 2),
           "latency_ms": {"p50": p50, "p95": p95, "mean": round(mean, 3), "min": round(float(lat.min()), 3)},
           "windows_per_s": round(job["batch"] * 1000.0 / mean, 3), "peak_rss_mb": round(peak_rss, 1),
           "base_rss_mb": round(base_rss, 1), "cuda_peak_mb": None if cuda_peak is None else round(cuda_peak, 1),
           "p_range": [round(float(probs.min()), 4), round(float(probs.max()), 4)], "max_abs_dp": None,
           "cpu_share": round(cpu_share, 2), "load_avg_1m": round(os.getloadavg()[0], 2)}
    if job.get("compare_single"):
        runner = ModelRunner(eng, spec=spec, untrained=True, max_batch=mcfg.max_batch)
        out["batching"] = _compare_single(runner, job, frames, threads)
        log.info("predict_batch of %d: %.2f windows/s, %d x predict: %.2f windows/s (%.2fx)", job["batch"],
                 out["batching"]["batched_windows_per_s"], job["batch"], out["batching"]["single_windows_per_s"],
                 out["batching"]["gain"])
    if job["parity"]:
        if job["engine_id"] == report.BASELINE:
            out["max_abs_dp"] = 0.0  # this engine's output is the reference itself
        else:
            del eng
            gc.collect()
            fp32 = replace(mcfg, engine="torch", device="cpu", precision="fp32")
            ref = load_model(fp32, input_px=size, frames=frames)
            with torch.inference_mode():
                expected = ref.model.eval()(*(torch.from_numpy(a) for a in inputs)).float().numpy()
            out["max_abs_dp"] = float(np.max(np.abs(probs - expected)))
    return out


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _worker_main(argv: list[str], *, config_cls: type[DualgaitConfig]) -> int:
    """One job, in a process of its own; ``config_cls``: the app's config, handed over by ``__main__``."""
    parser = argparse.ArgumentParser(prog="python -m bench.model")
    parser.add_argument("--worker", required=True, metavar="JOB_JSON", help="one configuration (internal)")
    job = json.loads(parser.parse_args(argv).worker)
    logging.basicConfig(level=job.get("log_level", "INFO"), stream=sys.stderr,
                        format="%(asctime)s bench     %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    from inference.engines.base import EngineError
    from inference.errors import ModelLoadError

    try:
        result = _work(job, config_cls)
    except (EngineError, ModelLoadError, ImportError) as exc:  # cannot run here: not the bench's fault
        log.warning("%s %s: %s", job["engine_id"], job["phase"], exc)
        result = {"status": "skipped", "reason": _first_line(exc)}
    except Exception as exc:
        log.exception("%s %s failed", job["engine_id"], job["phase"])
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {_first_line(exc)}"}
    sys.stdout.write(_RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # a worker process: an entry point of the app, which owns the whole config
    from dualgait.config import DualgaitConfig

    sys.exit(_worker_main(sys.argv[1:], config_cls=DualgaitConfig))
