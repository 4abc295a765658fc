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
    engine = TorchEngine(copy.deepcopy(model), device="cuda", precision="fp16", cuda_graphs=True)
    assert engine.name == "torch-cuda-fp16" and engine.static_shapes
    _assert_parity(engine.infer([x]), reference)  # batch 8: captured and replayed

    # batch 1 has a graph of its own; two different windows in a row must give two different, correct rows
    first, last = engine.infer([x[:1]]), engine.infer([x[-1:]])
    assert [shapes[0][0] for shapes in engine.graph_shapes] == [8, 1]
    graphs = dict(engine._graphs)
    assert not np.allclose(first, last)
    _assert_parity(first, reference[:1])
    _assert_parity(last, reference[-1:])
    rows = np.concatenate([engine.infer([x[i:i + 1]]) for i in range(len(x))])
    assert engine._graphs == graphs  # replayed, not captured again
    _assert_parity(rows, reference)


def test_cuda_graph_batches_match_eager_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Late fusion (two views, so two staging buffers) on CUDA fp32: the runner pads to buckets and
    replays one graph per bucket; every row equals the eager engine's and CPU fp32's."""
    import copy

    from inference.engines import ModelRunner, preprocess
    from inference.engines.parity import make_realistic
    from inference.engines.torch_engine import TorchEngine
    from inference.models.checkpoint import ModelSpec

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # fp32 convolutions, comparable to the CPU
    spec = ModelSpec(variant="late", input_px=64, frames=8, width=16)
    torch.manual_seed(0)
    model = spec.build().eval()
    rng = np.random.default_rng(0)
    windows = [{v: np.clip(rng.normal(30 + 25 * i, 20 + 5 * (i % 3), (8, 64, 64, 3)), 0, 255).astype(np.uint8)
                for v in model.views} for i in range(7)]
    make_realistic(model, [[preprocess(w[v]) for v in model.views] for w in windows])
    graphed = ModelRunner(TorchEngine(copy.deepcopy(model), device="cuda", precision="fp32", cuda_graphs=True),
                          spec=spec, untrained=True, max_batch=4)
    eager = ModelRunner(TorchEngine(copy.deepcopy(model), device="cuda", precision="fp32", cuda_graphs=False),
                        spec=spec, untrained=True, max_batch=4)
    cpu = ModelRunner(TorchEngine(copy.deepcopy(model), device="cpu", precision="fp32"), spec=spec, untrained=True,
                      max_batch=4)
    assert graphed.pad and not eager.pad and graphed.batch_buckets == (1, 2, 4)
    graphed.warm_up(runs=1)
    engine = graphed.engine
    assert [shapes[0][0] for shapes in engine.graph_shapes] == [1, 2, 4]  # type: ignore[attr-defined]

    def table(results):
        return np.array([list(r.values()) for r in results])  # (N, K)

    got = table(graphed.predict_batch(windows))  # 4 + 3 (padded to 4)
    want = table(eager.predict_batch(windows))  # 4 + 3, unpadded
    reference = table(cpu.predict_batch(windows))
    assert np.ptp(reference[:, 0]) > 0.05
    assert len(engine.graph_shapes) == 3  # type: ignore[attr-defined]  # nothing captured mid-stream
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-4)  # the fp32 parity tolerance
    singles = table([graphed.predict(w) for w in windows])
    np.testing.assert_allclose(singles, got, rtol=0, atol=1e-5)
    assert len(engine._staging) == 2 * 3  # type: ignore[attr-defined]  # (view, shape): per view and bucket


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
