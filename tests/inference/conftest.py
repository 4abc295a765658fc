"""Shared fixtures of the inference tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture
def spread_single_front():
    """(model, x, reference): single_front with its head rescaled, inputs, and CPU fp32 probabilities.

    A randomly initialised slow_r50 gives p ~= 0.498 for every input, which makes "same decision at
    0.5" meaningless; centring and scaling the 1-unit head (logit std ~2) fixes that without touching
    the backbone whose numerics are under test. Inputs (8, 3, 8, 64, 64) differ in offset and scale.
    """
    return _spread_model_and_inputs()


def _spread_model_and_inputs(batch: int = 8, input_px: int = 64, frames: int = 8):
    """single_front, random init, head rescaled so the fp32 probabilities fall on both sides of 0.5.

    (A randomly initialised slow_r50 gives p ~= 0.498 for every input; centring and scaling the
    1-unit head gives logits of std ~2 without touching the backbone whose numerics are tested.)
    """
    from inference.models import create_model

    torch.manual_seed(0)
    model = create_model(variant="single_front").eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, frames, input_px, input_px)).astype(np.float32)
    x *= np.linspace(0.2, 3.0, batch, dtype=np.float32).reshape(batch, 1, 1, 1, 1)
    x += np.linspace(-2.0, 2.0, batch, dtype=np.float32).reshape(batch, 1, 1, 1, 1)
    proj = model.backbone.blocks[5].proj
    with torch.inference_mode():
        logits = model.logit(torch.from_numpy(x))  # (B,)
    scale, centre = 2.0 / float(logits.std()), float(logits.mean())
    with torch.no_grad():
        proj.weight.mul_(scale)
        proj.bias.copy_(proj.bias * scale - scale * centre)
    with torch.inference_mode():
        reference = model(torch.from_numpy(x)).numpy()  # (B, 1) CPU fp32
    assert (reference > 0.5).any() and (reference < 0.5).any() and np.abs(reference - 0.5).min() > 0.02
    return model, x, reference
