"""Tests for the slow_r50 backbone (PyTorchVideo-compatible) and the dual-view late-fusion model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inference.models import (
    KINETICS_MEAN,
    KINETICS_STD,
    LateFusion,
    SlowR50,
    count_parameters,
    create_late_fusion,
    create_slow_r50,
    load_backbone_state,
)

# Exact parameter count of PyTorchVideo's slow_r50 (Kinetics-400 head); model zoo: "32.45M".
# Derivation: torchvision's 2D ResNet-50 has 25,557,032 parameters, of which the 1000-class fc is
# 2048*1000 + 1000 = 2,049,000, leaving a 23,508,032 trunk. slow_r50 is that trunk with conv_a of
# res4/res5 inflated from 1x1 to 3x1x1 (3x the weights):
#   res4 conv_a: 512*256 + 5*1024*256  = 1,441,792;  res5 conv_a: 1024*512 + 2*2048*512 = 2,621,440
#   extra = 2 * (1,441,792 + 2,621,440) = 8,126,464
# plus the Kinetics head 2048*400 + 400 = 819,600:
#   23,508,032 + 8,126,464 + 819,600 = 32,454,096.
# Cross-checked against pytorchvideo 0.1.5 create_resnet(...) as used by hub.slow_r50.
SLOW_R50_KINETICS_PARAMS = 32_454_096
# Per blocks.i: stem, res2, res3, res4, res5, head (sums to the figure above).
SLOW_R50_BLOCK_PARAMS = (9_536, 215_808, 1_219_584, 9_981_952, 20_207_616, 819_600)
# 53 conv weights + 53 BatchNorms * 5 entries (weight, bias, running_mean, running_var,
# num_batches_tracked) + proj weight/bias.
SLOW_R50_STATE_KEYS = 53 + 53 * 5 + 2


def _analytic_slow_r50_params(num_classes: int) -> int:
    """Parameter count computed from the architecture description alone."""

    def bn(c: int) -> int:
        return 2 * c

    total = 3 * 64 * 7 * 7 + bn(64)  # stem
    dim_in, dim_out = 64, 256
    for depth, kt in zip((3, 4, 6, 3), (1, 1, 3, 3), strict=True):
        inner = dim_out // 4
        for i in range(depth):
            c_in = dim_in if i == 0 else dim_out
            total += c_in * inner * kt + bn(inner)  # conv_a, norm_a
            total += inner * inner * 9 + bn(inner)  # conv_b, norm_b
            total += inner * dim_out + bn(dim_out)  # conv_c, norm_c
            if i == 0:
                total += c_in * dim_out + bn(dim_out)  # branch1_conv, branch1_norm
        dim_in, dim_out = dim_out, dim_out * 2
    return total + dim_in * num_classes + num_classes  # proj


@pytest.fixture(scope="module")
def kinetics_r50() -> SlowR50:
    torch.manual_seed(0)
    return create_slow_r50().eval()


@pytest.fixture(scope="module")
def fusion() -> LateFusion:
    torch.manual_seed(1)
    return create_late_fusion().eval()


def test_parameter_count_matches_pytorchvideo(kinetics_r50: SlowR50) -> None:
    assert count_parameters(kinetics_r50) == SLOW_R50_KINETICS_PARAMS
    assert _analytic_slow_r50_params(400) == SLOW_R50_KINETICS_PARAMS
    assert tuple(count_parameters(b) for b in kinetics_r50.blocks) == SLOW_R50_BLOCK_PARAMS


def test_parameter_count_one_class_and_fusion(fusion: LateFusion) -> None:
    one_class = SLOW_R50_KINETICS_PARAMS - (2048 * 400 + 400) + (2048 + 1)
    assert one_class == 31_636_545 == _analytic_slow_r50_params(1)
    assert count_parameters(fusion.front) == one_class
    assert count_parameters(fusion.side) == one_class
    assert count_parameters(fusion) == 2 * one_class == 63_273_090


def test_state_dict_keys_and_shapes(kinetics_r50: SlowR50) -> None:
    sd = kinetics_r50.state_dict()
    expected = {
        "blocks.0.conv.weight": (64, 3, 1, 7, 7),
        "blocks.0.norm.running_var": (64,),
        "blocks.1.res_blocks.0.branch1_conv.weight": (256, 64, 1, 1, 1),
        "blocks.1.res_blocks.0.branch1_norm.weight": (256,),
        "blocks.1.res_blocks.2.branch2.conv_b.weight": (64, 64, 1, 3, 3),
        "blocks.2.res_blocks.3.branch2.conv_a.weight": (128, 512, 1, 1, 1),
        "blocks.3.res_blocks.0.branch2.conv_a.weight": (256, 512, 3, 1, 1),
        "blocks.3.res_blocks.5.branch2.norm_c.num_batches_tracked": (),
        "blocks.4.res_blocks.0.branch1_conv.weight": (2048, 1024, 1, 1, 1),
        "blocks.4.res_blocks.2.branch2.conv_c.weight": (2048, 512, 1, 1, 1),
        "blocks.5.proj.weight": (400, 2048),
        "blocks.5.proj.bias": (400,),
    }
    for key, shape in expected.items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key
    assert len(sd) == SLOW_R50_STATE_KEYS == 320
    # Projection shortcuts only in the first block of each stage.
    assert sum(k.endswith("branch1_conv.weight") for k in sd) == 4
    assert "blocks.1.res_blocks.1.branch1_conv.weight" not in sd
    # The head pool and output pool carry no state.
    assert {k for k in sd if k.startswith("blocks.5.")} == {"blocks.5.proj.weight", "blocks.5.proj.bias"}


def test_strides_and_padding_follow_pytorchvideo(kinetics_r50: SlowR50) -> None:
    stem = kinetics_r50.blocks[0]
    assert stem.conv.stride == (1, 2, 2) and stem.conv.padding == (0, 3, 3)
    assert stem.pool.kernel_size == (1, 3, 3) and stem.pool.stride == (1, 2, 2)
    for stage_idx, stride, kt in ((1, 1, 1), (2, 2, 1), (3, 2, 3), (4, 2, 3)):
        first = kinetics_r50.blocks[stage_idx].res_blocks[0]
        assert first.branch2.conv_b.stride == (1, stride, stride)
        assert first.branch1_conv.stride == (1, stride, stride)
        assert first.branch2.conv_a.stride == (1, 1, 1)
        assert first.branch2.conv_a.padding == (kt // 2, 0, 0)
        second = kinetics_r50.blocks[stage_idx].res_blocks[1]
        assert second.branch2.conv_b.stride == (1, 1, 1)
        assert second.branch1_conv is None
    bn = kinetics_r50.blocks[2].res_blocks[0].branch2.norm_b
    assert bn.eps == 1e-5 and bn.momentum == 0.1


@torch.no_grad()
def test_backbone_output_shapes(kinetics_r50: SlowR50) -> None:
    torch.manual_seed(2)
    x = torch.randn(1, 3, 8, 64, 64)
    logits = kinetics_r50(x)
    feats = kinetics_r50.forward_features(x)
    assert logits.shape == (1, 400)
    assert feats.shape == (1, 2048)
    assert torch.isfinite(logits).all()
    # forward == proj(forward_features) in eval mode (dropout off, linear head commutes with pooling).
    torch.testing.assert_close(logits, kinetics_r50.blocks[5].proj(feats), rtol=1e-4, atol=1e-5)
    # Any T and non-square frames are accepted (adaptive head pool).
    assert kinetics_r50(torch.randn(1, 3, 4, 64, 96)).shape == (1, 400)


@torch.no_grad()
def test_adaptive_head_pool_equals_original_at_8x7x7(kinetics_r50: SlowR50) -> None:
    # PyTorchVideo's head uses AvgPool3d((8, 7, 7), stride 1): identical for a T=8, 224x224 res5 map.
    torch.manual_seed(3)
    res5 = torch.randn(2, 2048, 8, 7, 7)
    head = kinetics_r50.blocks[5]
    original = nn.AvgPool3d(kernel_size=(8, 7, 7), stride=(1, 1, 1))(res5)
    expected = head.proj(original.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3).flatten(1)
    torch.testing.assert_close(head(res5), expected, rtol=1e-5, atol=1e-6)


@torch.no_grad()
def test_late_fusion_outputs(fusion: LateFusion) -> None:
    torch.manual_seed(4)
    front = torch.randn(1, 3, 8, 64, 64)
    side = torch.randn(1, 3, 8, 64, 64)
    out = fusion(front, side)
    assert out.shape == (1, 3)
    assert ((out >= 0) & (out <= 1)).all()
    p_asd, p_front, p_side = out[:, 0], out[:, 1], out[:, 2]
    assert torch.allclose(p_asd, (p_front + p_side) / 2, atol=1e-6, rtol=0)
    torch.testing.assert_close(p_front, torch.sigmoid(fusion.front(front))[:, 0])
    torch.testing.assert_close(p_side, torch.sigmoid(fusion.side(side))[:, 0])
    assert fusion.front is not fusion.side


def test_kinetics_normalisation_constants() -> None:
    assert KINETICS_MEAN == (0.45, 0.45, 0.45)
    assert KINETICS_STD == (0.225, 0.225, 0.225)


def test_load_backbone_state_skips_only_proj(kinetics_r50: SlowR50, fusion: LateFusion) -> None:
    source = {k: v.clone() for k, v in kinetics_r50.state_dict().items()}
    torch.manual_seed(5)
    for value in source.values():
        if value.is_floating_point():
            value.normal_()  # make every loaded tensor distinguishable from the target's init
    target = create_slow_r50(model_num_class=1)
    proj_before = target.blocks[5].proj.weight.detach().clone()

    skipped = load_backbone_state(target, source)

    assert sorted(skipped) == ["blocks.5.proj.bias", "blocks.5.proj.weight"]
    loaded = target.state_dict()
    for key, value in source.items():
        if not key.startswith("blocks.5.proj."):
            assert torch.equal(loaded[key], value), key
    assert torch.equal(target.blocks[5].proj.weight, proj_before)
    assert target.blocks[5].proj.weight.shape == (1, 2048)

    # The same works for the fusion model's backbones; num_batches_tracked may be absent.
    without_counters = {k: v for k, v in source.items() if not k.endswith("num_batches_tracked")}
    assert load_backbone_state(fusion.side, without_counters) == skipped


def test_load_backbone_state_rejects_bad_state(kinetics_r50: SlowR50) -> None:
    good = kinetics_r50.state_dict()
    target = create_slow_r50(model_num_class=1)
    conv_before = target.blocks[0].conv.weight.detach().clone()

    bad_key = "blocks.3.res_blocks.0.branch2.conv_a.weight"
    corrupted = dict(good)
    corrupted[bad_key] = torch.zeros(256, 512, 1, 1, 1)  # 2D-style kernel instead of 3x1x1
    with pytest.raises(ValueError, match=r"blocks\.3\.res_blocks\.0\.branch2\.conv_a\.weight") as err:
        load_backbone_state(target, corrupted)
    assert "\n" not in str(err.value)
    assert "(256, 512, 3, 1, 1)" in str(err.value)
    # Validation happens before anything is copied.
    assert torch.equal(target.blocks[0].conv.weight, conv_before)

    missing = {k: v for k, v in good.items() if k != "blocks.2.res_blocks.1.branch2.norm_b.running_mean"}
    with pytest.raises(
        ValueError, match=r"missing key 'blocks\.2\.res_blocks\.1\.branch2\.norm_b\.running_mean'"
    ):
        load_backbone_state(target, missing)

    extra = dict(good)
    extra["blocks.1.res_blocks.1.branch1_conv.weight"] = torch.zeros(256, 256, 1, 1, 1)
    with pytest.raises(ValueError, match=r"unexpected key 'blocks\.1\.res_blocks\.1\.branch1_conv\.weight'"):
        load_backbone_state(target, extra)
