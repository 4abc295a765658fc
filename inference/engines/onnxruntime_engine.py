"""ONNX Runtime engine (CPU, or CUDA where onnxruntime-gpu is installed), fp32."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inference.engines.base import EngineError

__all__ = ["OnnxRuntimeEngine"]

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRuntimeEngine:
    def __init__(self, onnx_path: str | Path, *, views: tuple[str, ...], output_names: tuple[str, ...],
                 device: str = "cpu", threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise EngineError("the onnxruntime engine needs the onnxruntime package") from None
        provider = _PROVIDERS.get(device)
        if provider is None:
            raise EngineError(f"onnxruntime engine: unknown device {device!r} (cpu or cuda)")
        available = ort.get_available_providers()
        if provider not in available:
            raise EngineError(f"onnxruntime here has no {provider} (it has {', '.join(available)})")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(onnx_path), options, providers=[provider])
        self.views = views
        self.output_names = output_names
        self.artifacts = [Path(onnx_path)]
        self.name = f"onnxruntime-{device}-fp32"
        # dynamic shapes are cheap on the CPU; the CUDA provider searches convolution algorithms per shape
        self.static_shapes = device == "cuda"
        self.description = f"ONNX Runtime {ort.__version__} {provider} fp32"

    def infer(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        feeds = {view: np.ascontiguousarray(a, dtype=np.float32) for view, a in zip(self.views, inputs, strict=True)}
        return np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)  # (B, K)
