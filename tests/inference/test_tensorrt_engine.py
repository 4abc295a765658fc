"""TensorRT engine: the one-line error without TensorRT, the plan cache key, and (GPU + TensorRT) parity."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.engines.base import EngineError
from inference.engines.cache import EngineCache
from inference.engines.tensorrt_engine import NOT_INSTALLED, TensorRTEngine, tensorrt_cache_key

DEVICE = {"gpu": "NVIDIA H200", "compute_capability": "9.0", "tensorrt": "10.9.0.34"}
SHAPE = {"onnx_digest": "0123456789abcdef", "precision": "fp16", "max_batch": 8, "frames": 8, "input_px": 224}


def _tensorrt_imports() -> bool:
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return False
    return True


def _construct(tmp_path: Path, precision: str = "fp16") -> TensorRTEngine:
    return TensorRTEngine(tmp_path / "missing.onnx", views=("front",), output_names=("p_asd",), precision=precision,
                          max_batch=8, frames=8, input_px=64, cache=EngineCache(tmp_path / "cache"),
                          onnx_digest="0123456789abcdef")


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import tensorrt`` raises ImportError, and asking for a GPU fails the test."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)

    def no_gpu_question() -> bool:
        raise AssertionError("looked for a GPU before saying TensorRT is missing")

    monkeypatch.setattr(torch.cuda, "is_available", no_gpu_question)


@pytest.mark.usefixtures("no_tensorrt")
def test_missing_tensorrt_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        _construct(tmp_path)
    message = str(info.value)
    assert message == NOT_INSTALLED
    assert "TensorRT is not installed" in message and "engine torch" in message
    assert "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # raised `from None`
    assert not (tmp_path / "cache").exists()  # nothing built, nothing cached


@pytest.mark.usefixtures("no_tensorrt")
def test_default_device_info_needs_tensorrt() -> None:
    with pytest.raises(EngineError, match="TensorRT is not installed"):
        tensorrt_cache_key(**SHAPE)


def test_unsupported_precision_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="fp16 or fp32, not int8"):
        _construct(tmp_path, precision="int8")


@pytest.mark.usefixtures("no_tensorrt")
def test_cache_key_is_stable_and_needs_no_tensorrt_with_device_info() -> None:
    key = tensorrt_cache_key(**SHAPE, device_info=DEVICE)
    assert key == tensorrt_cache_key(**SHAPE, device_info=dict(DEVICE))
    assert EngineCache.digest(key) == EngineCache.digest(tensorrt_cache_key(**SHAPE, device_info=DEVICE))
    assert key["gpu"] == "NVIDIA H200" and key["compute_capability"] == "9.0" and key["tensorrt"] == "10.9.0.34"
    assert key["batch_min_opt_max"] == [1, 1, 8] and key["frames"] == 8 and key["input_px"] == 224


@pytest.mark.parametrize(("field", "value"), [
    ("gpu", "NVIDIA L4"), ("compute_capability", "8.9"), ("tensorrt", "10.13.0.35"),
])
def test_cache_key_changes_with_the_device(field: str, value: str) -> None:
    base = tensorrt_cache_key(**SHAPE, device_info=DEVICE)
    other = tensorrt_cache_key(**SHAPE, device_info={**DEVICE, field: value})
    assert other != base and EngineCache.digest(other) != EngineCache.digest(base)


@pytest.mark.parametrize(("field", "value"), [
    ("precision", "fp32"), ("max_batch", 16), ("input_px", 160), ("frames", 16), ("onnx_digest", "fedcba9876543210"),
])
def test_cache_key_changes_with_the_model_and_shape(field: str, value: object) -> None:
    base = tensorrt_cache_key(**SHAPE, device_info=DEVICE)
    other = tensorrt_cache_key(**{**SHAPE, field: value}, device_info=DEVICE)
    assert other != base and EngineCache.digest(other) != EngineCache.digest(base)


# ---------------------------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and _tensorrt_imports()), reason="needs a CUDA GPU and TensorRT")
class TestTensorRTOnGPU:
    def test_fp16_parity_with_torch_fp32_and_cached_plan(self, tmp_path: Path, spread_single_front) -> None:
        from inference.config import ModelConfig
        from inference.engines.factory import LoadedModel, build_engine
        from inference.models.checkpoint import ModelSpec

        model, x, reference = spread_single_front
        loaded = LoadedModel(model, ModelSpec(variant="single_front", input_px=64, frames=8), untrained=True,
                             source="test")
        cfg = ModelConfig(engine="tensorrt", device="cuda", precision="fp16", cache_dir=str(tmp_path), max_batch=8)
        engine = build_engine(loaded, cfg)
        assert engine.name == "tensorrt-fp16" and engine.views == ("front",)
        assert engine.built  # type: ignore[attr-defined]
        out = engine.infer([x])  # (8, 1)
        assert out.shape == reference.shape and out.dtype == np.float32
        assert np.abs(out - reference).max() <= 0.01
        assert np.array_equal(out > 0.5, reference > 0.5)
        single = np.concatenate([engine.infer([x[i:i + 1]]) for i in range(len(x))])  # batch 1, the opt shape
        assert np.abs(single - reference).max() <= 0.01

        plan = engine.plan_path  # type: ignore[attr-defined]
        mtime = plan.stat().st_mtime_ns
        again = build_engine(loaded, cfg)
        assert not again.built  # type: ignore[attr-defined]
        assert again.plan_path == plan and plan.stat().st_mtime_ns == mtime  # type: ignore[attr-defined]
        assert len(list((tmp_path / "tensorrt").iterdir())) == 1
        assert np.abs(again.infer([x]) - reference).max() <= 0.01
