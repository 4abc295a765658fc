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


def test_infer_clips_takes_a_batch_as_an_array_or_a_list_of_windows(spread_single_front) -> None:
    """Per view: (T, H, W, 3), (B, T, H, W, 3) or B x (T, H, W, 3); row i is window i's result alone."""
    model, _x, _reference = spread_single_front
    engine = TorchEngine(model, device="cpu", precision="fp32")
    clips = _clips()
    one_by_one = np.concatenate([engine.infer_clips([clip]) for clip in clips])  # (4, 1)
    stacked = engine.infer_clips([np.stack(clips)])  # (4, T, H, W, 3) in
    listed = engine.infer_clips([clips])
    assert stacked.shape == listed.shape == (4, 1)
    assert np.abs(stacked - one_by_one).max() < 1e-6 and np.abs(listed - one_by_one).max() < 1e-6
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\) uint8"):
        engine.infer_clips([clips[0][0]])  # (H, W, 3): not a clip


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
