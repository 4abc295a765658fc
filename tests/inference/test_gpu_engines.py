"""GPU engines against CPU fp32 torch: TorchEngine cuda fp16 (+ CUDA graph) and ONNX Runtime CUDA.

Skipped where torch sees no CUDA GPU. Parity: max |Δp| <= 0.01 and the same decision at 0.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

TOLERANCE = 0.01


def _assert_parity(out: np.ndarray, reference: np.ndarray) -> None:
    assert out.shape == reference.shape and out.dtype == np.float32
    assert np.abs(out - reference).max() <= TOLERANCE
    assert np.array_equal(out > 0.5, reference > 0.5)


def test_torch_cuda_fp16_cuda_graph_parity(spread_single_front) -> None:
    import copy

    from inference.engines.torch_engine import TorchEngine

    model, x, reference = spread_single_front
    engine = TorchEngine(copy.deepcopy(model), device="cuda", precision="fp16", cuda_graphs=True, graph_batch=1)
    assert engine.name == "torch-cuda-fp16"
    _assert_parity(engine.infer([x]), reference)  # batch 8: eager fp16

    # batch 1 replays the graph; two different windows in a row must give two different, correct rows
    first, last = engine.infer([x[:1]]), engine.infer([x[-1:]])
    assert engine._graph is not None
    graph = engine._graph
    assert not np.allclose(first, last)
    _assert_parity(first, reference[:1])
    _assert_parity(last, reference[-1:])
    rows = np.concatenate([engine.infer([x[i:i + 1]]) for i in range(len(x))])
    assert engine._graph is graph  # replayed, not captured again
    _assert_parity(rows, reference)


def test_onnxruntime_cuda_parity(tmp_path: Path, spread_single_front) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime here has no CUDAExecutionProvider ({', '.join(ort.get_available_providers())})")
    from inference.config import ModelConfig
    from inference.engines.factory import LoadedModel, build_engine
    from inference.models.checkpoint import ModelSpec

    model, x, reference = spread_single_front
    loaded = LoadedModel(model, ModelSpec(variant="single_front", input_px=64, frames=8), untrained=True,
                         source="test")
    cfg = ModelConfig(engine="onnxruntime", device="cuda", precision="fp32", cache_dir=str(tmp_path), max_batch=8)
    engine = build_engine(loaded, cfg)
    assert engine.name == "onnxruntime-cuda-fp32"
    _assert_parity(engine.infer([x]), reference)
    _assert_parity(np.concatenate([engine.infer([x[i:i + 1]]) for i in range(len(x))]), reference)
