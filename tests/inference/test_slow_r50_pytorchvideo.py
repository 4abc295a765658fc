"""Equivalence of our slow_r50 with PyTorchVideo's own ``pytorchvideo.models.hub.slow_r50``.

Skipped when PyTorchVideo is not installed (it is not a project dependency). To run it:
``pip install -c constraints.txt pytorchvideo==0.1.5`` (pulls fvcore, iopath, av, yacs, ...;
needs torchvision, which the project already has).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from inference.models import SlowR50, count_parameters, create_slow_r50

pytest.importorskip("pytorchvideo")

with warnings.catch_warnings():
    # fvcore.nn (imported by pytorchvideo.models) calls torch.jit.script at import time.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    from pytorchvideo.models.hub import slow_r50 as pv_slow_r50

NUM_CLASSES = (400, 1)


def _make_pair(num_classes: int) -> tuple[nn.Module, SlowR50]:
    """PyTorchVideo's slow_r50 with non-trivial, calibrated weights, and ours loaded from it (strict)."""
    torch.manual_seed(100 + num_classes)
    reference = pv_slow_r50(pretrained=False, model_num_class=num_classes)
    with torch.no_grad():
        # The default init (gamma 0 on each final BN, running mean 0 / var 1, proj std 0.01) makes the
        # eval-mode output almost independent of the input. Instead: random BN affine parameters,
        # running statistics measured on one batch (cumulative average), and a unit-scale head, so
        # that every branch matters and the logits are O(1) and input-dependent.
        for module in reference.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
                module.reset_running_stats()
                module.momentum = None
            elif isinstance(module, nn.Linear):
                module.weight.normal_(0.0, module.in_features**-0.5)
                module.bias.normal_(0.0, 0.1)
        reference.train()(torch.randn(2, 3, 8, 224, 224))
        for module in reference.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.momentum = 0.1
    ours = create_slow_r50(model_num_class=num_classes)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference.eval(), ours.eval()


@pytest.fixture(scope="module", params=NUM_CLASSES, ids=lambda k: f"classes{k}")
def pair(request: pytest.FixtureRequest) -> tuple[nn.Module, SlowR50]:
    return _make_pair(request.param)


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
def test_state_dict_keys_and_shapes_match(num_classes: int) -> None:
    torch.manual_seed(0)
    reference = pv_slow_r50(pretrained=False, model_num_class=num_classes).state_dict()
    ours = create_slow_r50(model_num_class=num_classes).state_dict()
    assert list(ours) == list(reference)  # same keys, same order
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    assert {k: v.dtype for k, v in ours.items()} == {k: v.dtype for k, v in reference.items()}
    assert tuple(ours["blocks.5.proj.weight"].shape) == (num_classes, 2048)


def test_parameter_count_and_head_pool_deviation() -> None:
    reference = pv_slow_r50(pretrained=False)
    assert count_parameters(create_slow_r50()) == count_parameters(reference) == 32_454_096
    # The only deliberate difference: PyTorchVideo's fixed-size head pool vs our adaptive one.
    assert isinstance(reference.blocks[5].pool, nn.AvgPool3d)
    assert tuple(reference.blocks[5].pool.kernel_size) == (8, 7, 7)


@torch.no_grad()
def test_same_outputs_for_same_weights(pair: tuple[nn.Module, SlowR50]) -> None:
    reference, ours = pair
    torch.manual_seed(7)
    x = torch.randn(2, 3, 8, 224, 224)

    expected = reference(x)
    actual = ours(x)
    num_classes = ours.blocks[5].proj.out_features
    assert actual.shape == expected.shape == (2, num_classes)
    assert torch.isfinite(expected).all()
    # Not a degenerate comparison: the logits depend on the input well above the tolerance.
    assert (expected[0] - expected[1]).abs().max() > 1e-2
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)

    # forward_features is PyTorchVideo's trunk followed by the (8, 7, 7) head pool.
    trunk = x
    for block in reference.blocks[:-1]:
        trunk = block(trunk)
    assert trunk.shape == (2, 2048, 8, 7, 7)
    expected_features = reference.blocks[5].pool(trunk).flatten(1)
    torch.testing.assert_close(ours.forward_features(x), expected_features, rtol=0, atol=1e-5)
