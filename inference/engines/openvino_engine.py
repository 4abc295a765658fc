"""OpenVINO CPU engine: fp32, bf16 (inference precision hint) or int8 (NNCF post-training quantisation)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from inference.engines.base import EngineError

__all__ = ["OpenVINOEngine", "quantize_int8"]

log = logging.getLogger(__name__)

_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def _openvino():
    try:
        import openvino as ov
    except ImportError:
        raise EngineError("the openvino engine needs the openvino package: pip install openvino") from None
    return ov


class OpenVINOEngine:
    """Compiled on the CPU once per batch size seen (static shapes run faster than dynamic ones).

    ``model_path`` is an ONNX file (fp32/bf16) or an OpenVINO IR ``.xml`` (e.g. the int8 model
    from :func:`quantize_int8`). ``precision`` bf16 asks the CPU plugin for bf16 inference, which it
    does natively on CPUs with AVX-512-BF16 or AMX and emulates (as fp32) elsewhere.
    """

    def __init__(self, model_path: str | Path, *, views: tuple[str, ...], output_names: tuple[str, ...],
                 precision: str = "fp32", threads: int = 0) -> None:
        if precision not in _HINTS:
            raise EngineError(f"openvino engine runs fp32, bf16 or int8, not {precision}")
        ov = _openvino()
        self._core = ov.Core()
        self.views = views
        self.output_names = output_names
        self.precision = precision
        self.name = f"openvino-{precision}"
        path = Path(model_path)
        self.artifacts = [path] + ([path.with_suffix(".bin")] if path.suffix == ".xml" else [])
        t0 = time.perf_counter()
        self._model = self._core.read_model(str(model_path))
        self._config: dict[str, object] = {
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads > 0:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._requests: dict[tuple[tuple[int, ...], ...], object] = {}  # input shapes -> compiled request
        self.static_shapes = True  # a compile per batch size: the runner pads to a few buckets
        self._read_s = time.perf_counter() - t0
        self.description = f"OpenVINO {ov.get_version().split('-')[0]} CPU {precision}"

    def _request(self, shapes: tuple[tuple[int, ...], ...]):
        request = self._requests.get(shapes)
        if request is None:
            t0 = time.perf_counter()
            model = self._model.clone()
            model.reshape({view: list(shape) for view, shape in zip(self.views, shapes, strict=True)})
            compiled = self._core.compile_model(model, "CPU", self._config)
            request = compiled.create_infer_request()
            self._requests[shapes] = request
            log.debug("compiled %s for %s in %.1f s", self.name, shapes, time.perf_counter() - t0)
        return request

    def infer(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        request = self._request(tuple(tuple(a.shape) for a in inputs))
        result = request.infer({view: np.ascontiguousarray(a, dtype=np.float32)  # type: ignore[attr-defined]
                                for view, a in zip(self.views, inputs, strict=True)})
        return np.array(result[0], dtype=np.float32)  # (B, K), copied out of the request's buffer


def quantize_int8(onnx_path: str | Path, xml_path: str | Path, *, views: tuple[str, ...],
                  calibration: Iterable[Sequence[np.ndarray]], subset_size: int = 300) -> Path:
    """Post-training int8 quantisation with NNCF; writes an OpenVINO IR (``.xml`` + ``.bin``).

    ``calibration`` yields real windows, one array per view ``(1, 3, T, H, W)`` float32 normalised,
    as the live pipeline produces them (quantisation ranges follow the data, so random noise is a
    poor calibration set). Activations and weights are int8; accuracy is checked against fp32 by
    the parity tests and ``dualgait export``.
    """
    ov = _openvino()
    try:
        import nncf
    except ImportError:
        raise EngineError("int8 quantisation needs the nncf package: pip install nncf") from None
    samples = [{view: np.ascontiguousarray(a, dtype=np.float32) for view, a in zip(views, window, strict=True)}
               for window in calibration]
    if not samples:
        raise EngineError("int8 quantisation needs at least one calibration window")
    model = ov.Core().read_model(str(onnx_path))
    model.reshape({view: list(a.shape) for view, a in samples[0].items()})
    t0 = time.perf_counter()
    quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=min(subset_size, len(samples)),
                              preset=nncf.QuantizationPreset.PERFORMANCE)
    xml_path = Path(xml_path)
    ov.save_model(quantized, str(xml_path), compress_to_fp16=False)
    log.info("quantised to int8 on %d calibration windows in %.1f s", len(samples), time.perf_counter() - t0)
    return xml_path
