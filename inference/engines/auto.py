"""``inference.model.engine: auto``: the fastest engine this machine has, chosen once at start.

The order (fastest first; the figures are in docs/benchmarks.md):

1. TensorRT fp16 on an NVIDIA GPU, when the ``tensorrt`` package is installed;
2. PyTorch fp16 on CUDA (with CUDA graphs), when torch sees a GPU;
3. OpenVINO int8 on an x86 CPU (Intel or AMD), when ``openvino`` is installed: calibrated once on a recording's
   crops and cached (``offline.clips.ensure_int8_engine``); where no calibration can be made (no recording),
   OpenVINO fp32;
4. PyTorch on the CPU: bf16 where the CPU has native bf16 instructions, else fp32.

``device: auto`` and ``precision: auto`` resolve the same way for an engine the user named: an explicit engine,
device or precision always wins. :func:`resolve_engine` returns a concrete :class:`ModelConfig` and the one
line that says what was chosen and why, which the processes log.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import platform

from inference.config import ENGINE_PRECISIONS, ModelConfig

__all__ = ["MachineFacts", "machine_facts", "resolve_engine"]

_X86 = ("x86_64", "amd64", "i686", "x86")


@dataclasses.dataclass(frozen=True, slots=True)
class MachineFacts:
    cuda: bool
    tensorrt: bool
    openvino: bool
    x86: bool
    native_bf16: bool


def _native_bf16() -> bool:
    import torch

    try:  # private torch probes: guarded, they move between releases
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and bool(
            torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:
        return False


def machine_facts() -> MachineFacts:
    import torch

    return MachineFacts(
        cuda=bool(torch.cuda.is_available()),
        tensorrt=importlib.util.find_spec("tensorrt") is not None,
        openvino=importlib.util.find_spec("openvino") is not None,
        x86=platform.machine().lower() in _X86,
        native_bf16=_native_bf16(),
    )


def _best_precision(engine: str, device: str, facts: MachineFacts) -> str:
    if engine == "torch":
        return "fp16" if device == "cuda" else ("bf16" if facts.native_bf16 else "fp32")
    if engine == "openvino":
        return "int8"
    if engine == "tensorrt":
        return "fp16"
    return "fp32"


def resolve_engine(cfg: ModelConfig, facts: MachineFacts | None = None) -> tuple[ModelConfig, str]:
    """``cfg`` with ``auto`` engine, device and precision replaced by this machine's fastest; and why, in a line."""
    if "auto" not in (cfg.engine, cfg.device, cfg.precision):
        return cfg, f"{cfg.engine} {cfg.precision} on {cfg.device} (as configured)"
    facts = facts or machine_facts()
    engine, device = cfg.engine, cfg.device
    cuda_ok = device != "cpu" and facts.cuda
    if engine == "auto":
        if cuda_ok and facts.tensorrt:
            engine, why = "tensorrt", "an NVIDIA GPU and TensorRT"
        elif cuda_ok:
            engine, why = "torch", "an NVIDIA GPU" + ("" if facts.tensorrt else " (TensorRT not installed)")
        elif device != "cuda" and facts.openvino and facts.x86:
            engine, why = "openvino", "an x86 CPU and OpenVINO" + (" (no CUDA GPU)" if not facts.cuda else "")
        else:
            engine = "torch"
            why = "no CUDA GPU, " + ("not an x86 CPU" if not facts.x86 else "OpenVINO not installed")
    else:
        why = "engine as configured"
    if device == "auto":
        devices = ENGINE_PRECISIONS[engine]
        device = "cuda" if "cuda" in devices and (facts.cuda or "cpu" not in devices) else "cpu"
    precision = cfg.precision
    if precision == "auto":
        precision = _best_precision(engine, device, facts)
        if engine == "torch" and device == "cpu":
            why += "; CPU " + ("with" if facts.native_bf16 else "without") + " native bf16"
    resolved = dataclasses.replace(cfg, engine=engine, device=device, precision=precision)  # validated here
    return resolved, f"{engine} {precision} on {device} (auto: {why})"
