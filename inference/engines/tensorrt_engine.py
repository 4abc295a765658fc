"""TensorRT engine (CUDA, fp16 or fp32): the ONNX export built into a plan, cached per GPU, TensorRT and shape.

Written against TensorRT 10.x's Python API. Device buffers are torch CUDA tensors and the work is
queued on torch's current stream, so no other CUDA binding is needed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.engines.base import EngineError
from inference.engines.cache import EngineCache
from inference.engines.onnx_export import OUTPUT_NAME

__all__ = ["PLAN_NAME", "TensorRTEngine", "build_plan", "build_tensorrt_engine", "cuda_device_info",
           "require_tensorrt", "tensorrt_cache_key"]

log = logging.getLogger(__name__)

PLAN_NAME = "model.plan"
PRECISIONS = ("fp16", "fp32")
# kernels are tuned for one window: a GPU that keeps up sees small batches even across walkways
# (inference.walkways); every batch in 1..max_batch runs
OPT_BATCH = 1
WORKSPACE_BYTES = 4 << 30  # upper bound on TensorRT's scratch memory while building
WARMUP_RUNS = 3
NOT_INSTALLED = ("TensorRT is not installed: it comes from NVIDIA's package index (pip install 'tensorrt>=10,<11' "
                 "on a CUDA host); use engine torch with device cuda meanwhile")

_shared: dict[str, Any] = {}  # one TensorRT logger per process, as TensorRT expects


def _tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError(NOT_INSTALLED) from None
    except OSError as exc:  # the wheel is there but its CUDA libraries do not load
        raise EngineError(f"TensorRT is installed but does not load: {str(exc).splitlines()[0][:200]}") from None
    return trt


def _require_cuda() -> None:
    if not torch.cuda.is_available():
        raise EngineError("the tensorrt engine needs a CUDA GPU and torch sees none here")


def require_tensorrt() -> None:
    """The one-line EngineError when TensorRT or a CUDA GPU is missing; cheap, so callers can check before exporting."""
    _tensorrt()
    _require_cuda()


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise EngineError(f"the tensorrt engine runs {' or '.join(PRECISIONS)}, not {precision}")


def cuda_device_info() -> dict[str, str]:
    """GPU name, compute capability ("9.0") and TensorRT version: what a plan is only valid for."""
    trt = _tensorrt()  # first: without TensorRT, say so before looking for a GPU
    _require_cuda()
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}", "tensorrt": trt.__version__}


def tensorrt_cache_key(*, onnx_digest: str, precision: str, max_batch: int, frames: int, input_px: int,
                       device_info: Mapping[str, str] | None = None) -> dict[str, object]:
    """Everything a plan depends on; ``device_info`` defaults to :func:`cuda_device_info`."""
    info = dict(device_info) if device_info is not None else cuda_device_info()
    return {"onnx": onnx_digest, "gpu": info["gpu"], "compute_capability": info["compute_capability"],
            "tensorrt": info["tensorrt"], "precision": precision,
            "batch_min_opt_max": [1, min(OPT_BATCH, max_batch), max_batch], "frames": frames, "input_px": input_px}


def _logger(trt: Any) -> Any:
    """TensorRT's messages into ``logging``; keeps the latest build's first error for a one-line EngineError."""
    if "logger" not in _shared:
        severity = trt.ILogger.Severity

        class _Logger(trt.ILogger):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.first_error: str | None = None

            def log(self, level: Any, msg: str) -> None:
                if level in (severity.INTERNAL_ERROR, severity.ERROR):
                    self.first_error = self.first_error or (msg.strip().splitlines() or ["?"])[0][:300]
                    log.error("TensorRT: %s", msg)
                elif level == severity.WARNING:
                    log.warning("TensorRT: %s", msg)
                elif level == severity.INFO:
                    log.debug("TensorRT: %s", msg)

        _shared["logger"] = _Logger()
    return _shared["logger"]


def _progress_monitor(trt: Any) -> Any:
    """An IProgressMonitor that logs top-level build phases at INFO (nested ones at DEBUG)."""

    class _Monitor(trt.IProgressMonitor):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()  # TensorRT may call from several threads
            self._phases: dict[str, tuple[float, int, bool]] = {}  # name -> (start, steps, top level)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with self._lock:
                self._phases[phase_name] = (time.perf_counter(), num_steps, parent_phase is None)
            level = logging.INFO if parent_phase is None else logging.DEBUG
            log.log(level, "TensorRT build: %s (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                _, steps, top = self._phases.get(phase_name, (0.0, 0, False))
            log.log(logging.INFO if top else logging.DEBUG, "TensorRT build: %s %d/%d", phase_name, step + 1, steps)
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                start, _, top = self._phases.pop(phase_name, (time.perf_counter(), 0, False))
            log.log(logging.INFO if top else logging.DEBUG, "TensorRT build: %s done in %.1f s", phase_name,
                    time.perf_counter() - start)

    return _Monitor()


def build_plan(onnx_path: str | Path, plan_path: str | Path, *, views: tuple[str, ...], precision: str,
               max_batch: int, frames: int, input_px: int, workspace_bytes: int = WORKSPACE_BYTES) -> Path:
    """Parse the ONNX file and build a serialized plan into ``plan_path``, logging progress.

    One optimisation profile per input (each named after its view): ``(B, 3, frames, input_px,
    input_px)`` with B from 1 (opt OPT_BATCH) to ``max_batch``.
    """
    _check_precision(precision)
    trt = _tensorrt()
    _require_cuda()
    logger = _logger(trt)
    logger.first_error = None
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        first = str(parser.get_error(0)).strip().splitlines()[0][:300] if parser.num_errors else "no error given"
        raise EngineError(f"TensorRT cannot parse {Path(onnx_path).name}: {first}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise EngineError(f"TensorRT {trt.__version__} has no BuilderFlag.FP16 (removed in 11); this engine "
                              "is written for TensorRT 10.x: pip install 'tensorrt>=10,<11', or use precision fp32")
        config.set_flag(trt.BuilderFlag.FP16)  # fp32 I/O, fp16 kernels where TensorRT finds them faster
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        if name not in views:
            raise EngineError(f"the ONNX file has an input {name!r}, not one of the views {', '.join(views)}")
        clip = (3, frames, input_px, input_px)
        profile.set_shape(name, (1, *clip), (min(OPT_BATCH, max_batch), *clip), (max_batch, *clip))
    config.add_optimization_profile(profile)
    monitor = _progress_monitor(trt)
    config.progress_monitor = monitor  # must outlive the build: held by this frame
    log.info("building a TensorRT %s plan for batch 1..%d (minutes on first use; cached afterwards)",
             precision, max_batch)
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError(f"TensorRT build failed: {logger.first_error or 'no reason given (see the log)'}")
    plan_path = Path(plan_path)
    plan_path.write_bytes(plan)  # IHostMemory is a buffer
    log.info("built the TensorRT plan in %.0f s (%.0f MB)", time.perf_counter() - t0, plan_path.stat().st_size / 1e6)
    return plan_path


def _cached_plan(onnx_path: str | Path, *, cache: EngineCache, onnx_digest: str, views: tuple[str, ...],
                 precision: str, max_batch: int, frames: int, input_px: int) -> tuple[Path, bool]:
    _check_precision(precision)
    key = tensorrt_cache_key(onnx_digest=onnx_digest, precision=precision, max_batch=max_batch, frames=frames,
                             input_px=input_px)

    def build(folder: Path) -> None:
        build_plan(onnx_path, folder / PLAN_NAME, views=views, precision=precision, max_batch=max_batch,
                   frames=frames, input_px=input_px)

    folder, built = cache.get_or_build("tensorrt", key, build)
    return folder / PLAN_NAME, built


def build_tensorrt_engine(onnx_path: str | Path, *, cache: EngineCache, onnx_digest: str, views: tuple[str, ...],
                          precision: str = "fp16", max_batch: int, frames: int, input_px: int) -> Path:
    """The cached plan for this ONNX file on this GPU, built (with progress logged) on a miss."""
    plan, built = _cached_plan(onnx_path, cache=cache, onnx_digest=onnx_digest, views=views, precision=precision,
                               max_batch=max_batch, frames=frames, input_px=input_px)
    log.info("TensorRT plan %s: %s", plan, "built" if built else "already cached")
    return plan


class TensorRTEngine:
    """A deserialized plan with one execution context; ``infer`` is not thread-safe."""

    def __init__(self, onnx_path: str | Path, *, views: tuple[str, ...], output_names: tuple[str, ...],
                 precision: str = "fp16", max_batch: int, frames: int, input_px: int, cache: EngineCache,
                 onnx_digest: str) -> None:
        _check_precision(precision)
        trt = _tensorrt()
        _require_cuda()
        self.views = views
        self.output_names = output_names
        self.precision = precision
        self.name = f"tensorrt-{precision}"
        self.max_batch, self._clip = max_batch, (3, frames, input_px, input_px)
        self.static_shapes = True  # any 1..max_batch runs, but a few bucket sizes keep shape changes few
        t0 = time.perf_counter()
        self.plan_path, self.built = _cached_plan(onnx_path, cache=cache, onnx_digest=onnx_digest, views=views,
                                                  precision=precision, max_batch=max_batch, frames=frames,
                                                  input_px=input_px)
        self.artifacts = [self.plan_path]
        self._device = torch.device("cuda", torch.cuda.current_device())
        self._runtime = trt.Runtime(_logger(trt))  # kept: the engine must not outlive it
        self._engine = self._runtime.deserialize_cuda_engine(self.plan_path.read_bytes())
        if self._engine is None:
            raise EngineError(f"TensorRT cannot load {self.plan_path} (damaged?); delete its folder to rebuild it")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = {n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
        if inputs != set(views) or OUTPUT_NAME not in names:
            raise EngineError(f"TensorRT plan {self.plan_path} has tensors {names}, expected {list(views)} and "
                              f"{OUTPUT_NAME!r}")
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16}
        self._dtypes = {n: dtypes[self._engine.get_tensor_dtype(n)] for n in names}
        self._context = self._engine.create_execution_context()
        gpu = torch.cuda.get_device_name(self._device)
        self.description = f"TensorRT {trt.__version__} {gpu} {precision}, batch 1..{max_batch}"
        for _ in range(WARMUP_RUNS):  # first runs pick kernels and allocate; keep them out of the measured path
            self.infer([np.zeros((1, *self._clip), dtype=np.float32)] * len(views))
        log.info("%s ready in %.1f s (%s)", self.name, time.perf_counter() - t0,
                 "plan built" if self.built else "cached plan")

    @torch.inference_mode()
    def infer(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        if len(inputs) != len(self.views):
            raise ValueError(f"expected {len(self.views)} inputs ({', '.join(self.views)}), got {len(inputs)}")
        batch = inputs[0].shape[0]
        if not 1 <= batch <= self.max_batch:
            raise ValueError(f"batch {batch} is outside this TensorRT plan's 1..{self.max_batch}")
        held = []  # device buffers must live until the stream has run
        for view, a in zip(self.views, inputs, strict=True):
            if tuple(a.shape) != (batch, *self._clip):
                raise ValueError(f"input {view}: expected {(batch, *self._clip)}, got {tuple(a.shape)}")
            x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self._device)  # (B, 3, T, H, W)
            x = x.to(self._dtypes[view]).contiguous()
            self._context.set_input_shape(view, tuple(x.shape))
            self._context.set_tensor_address(view, x.data_ptr())
            held.append(x)
        out_shape = tuple(self._context.get_tensor_shape(OUTPUT_NAME))  # (B, K)
        out = torch.empty(out_shape, dtype=self._dtypes[OUTPUT_NAME], device=self._device)
        self._context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
        if not self._context.execute_async_v3(torch.cuda.current_stream(self._device).cuda_stream):
            raise EngineError("TensorRT execution failed (see the log)")
        return out.float().cpu().numpy()  # .cpu() waits for the stream
