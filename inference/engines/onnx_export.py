"""Export a fusion model to ONNX with a dynamic batch axis (the input to OpenVINO, ONNX Runtime and TensorRT)."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import torch

from inference.engines.base import EngineError
from inference.models.fusion import FusionModel

__all__ = ["ONNX_OPSET", "OUTPUT_NAME", "export_onnx"]

log = logging.getLogger(__name__)

ONNX_OPSET = 18
OUTPUT_NAME = "probabilities"


def export_onnx(model: FusionModel, path: str | Path, *, input_px: int, frames: int, max_batch: int = 16) -> Path:
    """Write ``model`` (fp32) to ``path`` as one self-contained ONNX file.

    Inputs are named after the views (``front``, ``side``), each ``(batch, 3, frames, input_px,
    input_px)`` float32 with ``batch`` dynamic in ``1..max_batch``; the output ``probabilities`` is
    ``(batch, K)``.
    """
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise EngineError("ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    # example batch 2: a batch of 1 would let the exporter specialise the batch axis to 1
    example = tuple(torch.zeros(2, 3, frames, input_px, input_px) for _ in model.views)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    dynamic_shapes = {"clips": tuple({0: batch} for _ in model.views)}  # forward(*clips)
    t0 = time.perf_counter()
    # the exporter's graph optimiser logs every folded initializer at INFO
    for name in ("onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, example, input_names=list(model.views), output_names=[OUTPUT_NAME],
                dynamic_shapes=dynamic_shapes, opset_version=ONNX_OPSET, dynamo=True, verbose=False,
            )
            program.save(str(path), external_data=False)
    except Exception as exc:  # the exporter raises many types; keep the first line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EngineError(f"ONNX export of {model.variant} failed: {first}") from None
    log.info("exported %s to %s in %.1f s (%.0f MB)", model.variant, path, time.perf_counter() - t0,
             path.stat().st_size / 1e6)
    return path
