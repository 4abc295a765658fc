"""TorchEngine.infer_clips (uint8 crops preprocessed on the engine's device) equals infer(preprocess(...))."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from inference.engines import preprocess
from inference.engines.torch_engine import TorchEngine


def _clips(n: int = 4, px: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (8, px, px, 3), dtype=np.uint8) for _ in range(n)]


def test_infer_clips_matches_host_preprocessing_on_cpu(spread_single_front) -> None:
    model, _x, _reference = spread_single_front
    engine = TorchEngine(model, device="cpu", precision="fp32")
    for clip in _clips():
        on_device = engine.infer_clips([clip])
        on_host = engine.infer([preprocess(clip)])
        assert on_device.shape == (1, 1)
        assert np.abs(on_device - on_host).max() < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_infer_clips_on_cuda_uses_pinned_staging_and_matches_cpu(spread_single_front) -> None:
    model, _x, _reference = spread_single_front
    cpu = TorchEngine(copy.deepcopy(model), device="cpu", precision="fp32")
    gpu = TorchEngine(copy.deepcopy(model), device="cuda", precision="fp16", cuda_graphs=True)
    for clip in _clips():
        out, reference = gpu.infer_clips([clip]), cpu.infer([preprocess(clip)])
        assert np.abs(out - reference).max() <= 0.01
    staging = next(iter(gpu._staging.values()))
    assert staging.is_pinned() and staging.dtype == torch.uint8 and len(gpu._staging) == 1
