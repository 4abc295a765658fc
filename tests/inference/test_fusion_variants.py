"""Every fusion variant: inputs it takes, output columns and what they mean, pretrained initialisation."""

from __future__ import annotations

import pytest
import torch

from inference.config import Variant as ConfigVariant
from inference.models import VARIANTS, count_parameters, create_model, create_slow_r50, load_pretrained_backbones

X_SHAPE = (2, 3, 8, 64, 64)  # (B, 3, T, H, W): small, any size works (adaptive head pool)


def _inputs(model: torch.nn.Module, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(X_SHAPE, generator=gen) for _ in model.views]


def test_variants_are_written_once() -> None:
    """The model code, inference.model.variant and training.variant all take the one list of inference.variants."""
    from typing import get_args, get_type_hints

    from inference import variants
    from inference.config import ModelConfig
    from inference.models import fusion
    from training.config import TrainingConfig

    assert VARIANTS is fusion.VARIANTS is variants.VARIANTS == get_args(variants.Variant)
    assert ConfigVariant is fusion.Variant is variants.Variant
    assert get_type_hints(TrainingConfig)["variant"] is variants.Variant
    assert get_type_hints(ModelConfig)["variant"] == variants.Variant | None
    assert VARIANTS == ("single_front", "single_side", "early", "late", "slow", "gated")


@pytest.mark.parametrize(("variant", "views", "outputs", "params"), [
    ("single_front", ("front",), ("p_asd",), 31_636_545),
    ("single_side", ("side",), ("p_asd",), 31_636_545),
    ("early", ("front", "side"), ("p_asd",), 31_636_545 + 64 * 3 * 7 * 7),
    ("late", ("front", "side"), ("p_asd", "p_front", "p_side"), 2 * 31_636_545),
    ("slow", ("front", "side"), ("p_asd",), 2 * (31_636_545 - 2049) + 4097),
    ("gated", ("front", "side"), ("p_asd", "p_front", "p_side", "w_front", "w_side"),
     2 * (31_636_545 - 2049) + 2049 + 4096 * 256 + 256 + 256 * 2 + 2),
])
def test_variant_shapes_and_sizes(variant: str, views: tuple, outputs: tuple, params: int) -> None:
    model = create_model(variant=variant).eval()
    assert (model.variant, model.views, model.output_names) == (variant, views, outputs)
    assert count_parameters(model) == params
    with torch.no_grad():
        out = model(*_inputs(model))
        logit = model.logit(*_inputs(model))
    assert out.shape == (2, len(outputs)) and logit.shape == (2,)
    assert torch.all((out >= 0) & (out <= 1))
    assert torch.allclose(torch.sigmoid(logit), out[:, 0], atol=1e-5)


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown model variant 'mid'; choose one of single_front"):
        create_model(variant="mid")


def test_late_fusion_averages_view_probabilities() -> None:
    model = create_model(variant="late").eval()
    front, side = _inputs(model)
    with torch.no_grad():
        out = model(front, side)
        p_front = torch.sigmoid(model.front(front))[:, 0]
        p_side = torch.sigmoid(model.side(side))[:, 0]
    assert torch.allclose(out[:, 1], p_front) and torch.allclose(out[:, 2], p_side)
    assert torch.allclose(out[:, 0], (p_front + p_side) / 2)


def test_slow_fusion_concatenates_features_before_one_classifier() -> None:
    model = create_model(variant="slow").eval()
    front, side = _inputs(model)
    with torch.no_grad():
        features = torch.cat((model.front(front), model.side(side)), dim=1)  # (B, 4096)
        expected = torch.sigmoid(model.classifier(features))[:, 0]
        assert features.shape == (2, 4096)
        assert torch.allclose(model(front, side)[:, 0], expected, atol=1e-6)


def test_gated_fusion_weights_sum_to_one_and_mix_view_logits() -> None:
    model = create_model(variant="gated").eval()
    with torch.no_grad():
        model.gate[2].weight.normal_(std=0.5)  # make the gate decisive enough to test
        front, side = _inputs(model)
        out = model(front, side)
    p_front, p_side, w_front, w_side = out[:, 1], out[:, 2], out[:, 3], out[:, 4]
    assert torch.allclose(w_front + w_side, torch.ones(2), atol=1e-6)
    assert not torch.allclose(w_front, torch.full((2,), 0.5), atol=1e-3)
    fused = w_front * torch.logit(p_front) + w_side * torch.logit(p_side)
    assert torch.allclose(out[:, 0], torch.sigmoid(fused), atol=1e-5)


def test_early_fusion_stem_is_initialised_from_the_pretrained_stem() -> None:
    """[w, w] / 2 on identical views reproduces the 3-channel pretrained backbone exactly."""
    torch.manual_seed(0)
    pretrained = create_slow_r50(model_num_class=1)
    with torch.no_grad():
        for m in pretrained.modules():  # non-trivial residual branches
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.uniform_(0.5, 1.5)
    early = create_model(variant="early").eval()
    assert load_pretrained_backbones(early, pretrained.state_dict()) == ["backbone"]
    stem = early.backbone.blocks[0].conv.weight
    assert stem.shape == (64, 6, 1, 7, 7)
    assert torch.equal(stem[:, :3], stem[:, 3:])
    assert torch.allclose(stem[:, :3] * 2, pretrained.blocks[0].conv.weight)
    x = torch.randn(X_SHAPE)
    with torch.no_grad():
        pretrained.eval()
        a = pretrained.forward_features(x)
        b = early.backbone.forward_features(torch.cat((x, x), dim=1))
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pretrained_kinetics_state_reaches_every_backbone(variant: str) -> None:
    kinetics = create_slow_r50()  # 400 classes, as SLOW_8x8_R50.pyth
    model = create_model(variant=variant)
    loaded = load_pretrained_backbones(model, kinetics.state_dict())
    assert loaded == list(model.backbones())
    for backbone in model.backbones().values():
        w = backbone.blocks[4].res_blocks[2].branch2.conv_c.weight
        assert torch.equal(w, kinetics.blocks[4].res_blocks[2].branch2.conv_c.weight)
