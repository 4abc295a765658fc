"""Slow-only 3D ResNet-50 ("slow_r50") backbone, structurally identical to PyTorchVideo's.

This is a self-contained re-implementation of ``pytorchvideo.models.hub.slow_r50``
(``create_resnet(model_depth=50, stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(8, 7, 7))``)
without the PyTorchVideo dependency. Module names, parameter/buffer names and shapes match
PyTorchVideo one-to-one, so the state dict of the Kinetics-400 checkpoint ``SLOW_8x8_R50.pyth``
(``checkpoint["model_state"]``) loads into ``create_slow_r50()`` with ``strict=True``.

Layout (input ``(B, 3, T, H, W)``; shapes below for T=8, H=W=224)::

    blocks.0  stem    conv 1x7x7 /2, BN, ReLU, maxpool 1x3x3 /2     -> (B,   64, 8, 56, 56)
    blocks.1  res2    3 bottlenecks, conv_a 1x1x1, stride 1        -> (B,  256, 8, 56, 56)
    blocks.2  res3    4 bottlenecks, conv_a 1x1x1, stride 2        -> (B,  512, 8, 28, 28)
    blocks.3  res4    6 bottlenecks, conv_a 3x1x1, stride 2        -> (B, 1024, 8, 14, 14)
    blocks.4  res5    3 bottlenecks, conv_a 3x1x1, stride 2        -> (B, 2048, 8,  7,  7)
    blocks.5  head    pool, dropout, proj (Linear), output_pool    -> (B, num_class)

The one deliberate deviation from PyTorchVideo is the head pool, see :class:`ResNetBasicHead`.
"""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

__all__ = [
    "BottleneckBlock",
    "ResBlock",
    "ResNetBasicHead",
    "ResNetBasicStem",
    "ResStage",
    "SlowR50",
    "count_parameters",
    "create_slow_r50",
]

# Blocks per stage for ResNet-50.
_STAGE_DEPTHS: tuple[int, int, int, int] = (3, 4, 6, 3)
# Temporal kernel of conv_a per stage: the "slow" pathway only uses temporal convs in res4/res5.
_STAGE_CONV_A_KERNELS: tuple[tuple[int, int, int], ...] = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1))
# Spatial stride per stage (applied in conv_b and branch1_conv of the first block).
_STAGE_SPATIAL_STRIDES: tuple[int, int, int, int] = (1, 2, 2, 2)
_STEM_DIM_OUT = 64
_BOTTLENECK_EXPANSION = 4
_NORM_EPS = 1e-5


class ResNetBasicStem(nn.Module):
    """Stem: conv -> norm -> activation -> pool (PyTorchVideo ``ResNetBasicStem``)."""

    def __init__(self, *, in_channels: int, out_channels: int, norm_momentum: float) -> None:
        super().__init__()
        self.conv = nn.Conv3d(
            in_channels, out_channels, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False
        )
        self.norm = nn.BatchNorm3d(out_channels, eps=_NORM_EPS, momentum=norm_momentum)
        self.activation = nn.ReLU()
        self.pool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        # (B, C_in, T, H, W) -> conv /2 -> (B, 64, T, H/2, W/2) -> pool /2 -> (B, 64, T, H/4, W/4)
        return self.pool(self.activation(self.norm(self.conv(x))))


class BottleneckBlock(nn.Module):
    """Bottleneck branch: conv_a (Tx1x1) -> conv_b (1x3x3, spatial stride) -> conv_c (1x1x1).

    Each conv is followed by BatchNorm; ReLU after norm_a and norm_b only (the ReLU after the
    residual sum lives in :class:`ResBlock`).
    """

    def __init__(
        self,
        *,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        conv_a_kernel: tuple[int, int, int],
        spatial_stride: int,
        norm_momentum: float,
    ) -> None:
        super().__init__()
        self.conv_a = nn.Conv3d(
            dim_in,
            dim_inner,
            kernel_size=conv_a_kernel,
            stride=(1, 1, 1),
            padding=tuple(k // 2 for k in conv_a_kernel),
            bias=False,
        )
        self.norm_a = nn.BatchNorm3d(dim_inner, eps=_NORM_EPS, momentum=norm_momentum)
        self.act_a = nn.ReLU()
        self.conv_b = nn.Conv3d(
            dim_inner,
            dim_inner,
            kernel_size=(1, 3, 3),
            stride=(1, spatial_stride, spatial_stride),
            padding=(0, 1, 1),
            bias=False,
        )
        self.norm_b = nn.BatchNorm3d(dim_inner, eps=_NORM_EPS, momentum=norm_momentum)
        self.act_b = nn.ReLU()
        self.conv_c = nn.Conv3d(dim_inner, dim_out, kernel_size=(1, 1, 1), bias=False)
        self.norm_c = nn.BatchNorm3d(dim_out, eps=_NORM_EPS, momentum=norm_momentum)
        # Marks the last BN of the branch so _init_weights zero-initialises its gamma (as PyTorchVideo).
        self.norm_c.block_final_bn = True

    def forward(self, x: Tensor) -> Tensor:
        # (B, dim_in, T, H, W) -> (B, dim_inner, T, H, W)
        x = self.act_a(self.norm_a(self.conv_a(x)))
        # -> (B, dim_inner, T, H/s, W/s)
        x = self.act_b(self.norm_b(self.conv_b(x)))
        # -> (B, dim_out, T, H/s, W/s)
        return self.norm_c(self.conv_c(x))


class ResBlock(nn.Module):
    """Residual block: ``activation(branch1(x) + branch2(x))``.

    ``branch1_conv``/``branch1_norm`` (1x1x1 projection shortcut) exist only when the channel count
    or the spatial resolution changes, i.e. in the first block of each stage; otherwise the
    shortcut is the identity and the attributes are ``None`` (so they produce no state-dict keys).
    """

    def __init__(
        self,
        *,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        conv_a_kernel: tuple[int, int, int],
        spatial_stride: int,
        norm_momentum: float,
    ) -> None:
        super().__init__()
        self.branch1_conv: nn.Conv3d | None = None
        self.branch1_norm: nn.BatchNorm3d | None = None
        if dim_in != dim_out or spatial_stride != 1:
            self.branch1_conv = nn.Conv3d(
                dim_in,
                dim_out,
                kernel_size=(1, 1, 1),
                stride=(1, spatial_stride, spatial_stride),
                bias=False,
            )
            self.branch1_norm = nn.BatchNorm3d(dim_out, eps=_NORM_EPS, momentum=norm_momentum)
        self.branch2 = BottleneckBlock(
            dim_in=dim_in,
            dim_inner=dim_inner,
            dim_out=dim_out,
            conv_a_kernel=conv_a_kernel,
            spatial_stride=spatial_stride,
            norm_momentum=norm_momentum,
        )
        self.activation = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        # (B, dim_in, T, H, W) -> (B, dim_out, T, H/s, W/s)
        shortcut = x
        if self.branch1_conv is not None and self.branch1_norm is not None:
            shortcut = self.branch1_norm(self.branch1_conv(x))
        return self.activation(shortcut + self.branch2(x))


class ResStage(nn.Module):
    """A sequence of :class:`ResBlock` held in ``res_blocks`` (PyTorchVideo ``ResStage``)."""

    def __init__(
        self,
        *,
        depth: int,
        dim_in: int,
        dim_inner: int,
        dim_out: int,
        conv_a_kernel: tuple[int, int, int],
        spatial_stride: int,
        norm_momentum: float,
    ) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(
            ResBlock(
                dim_in=dim_in if i == 0 else dim_out,
                dim_inner=dim_inner,
                dim_out=dim_out,
                conv_a_kernel=conv_a_kernel,
                # Only the first block of a stage downsamples.
                spatial_stride=spatial_stride if i == 0 else 1,
                norm_momentum=norm_momentum,
            )
            for i in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class ResNetBasicHead(nn.Module):
    """Classification head: pool -> dropout -> proj (per position) -> output_pool -> flatten.

    Deviation from PyTorchVideo: slow_r50 uses ``nn.AvgPool3d(kernel=(8, 7, 7), stride=1)`` as
    ``pool``, which only collapses the res5 map to 1x1x1 for T=8, 224x224 input (larger inputs give
    a map of sliding-window averages, smaller ones fail). Here ``pool`` is ``nn.AdaptiveAvgPool3d(1)``:
    it has no parameters, so the state-dict keys are unchanged, it is numerically identical to the
    original for T=8 at 224x224, and it accepts any T and any spatial size (e.g. 512x512).
    """

    def __init__(self, *, in_features: int, num_classes: int, dropout_rate: float) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout_rate)
        # num_classes 0: no classifier (a feature extractor for fusion models): (B, in_features) out
        self.proj: nn.Module = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()
        self.output_pool = nn.AdaptiveAvgPool3d(1)

    def forward(self, x: Tensor) -> Tensor:
        # (B, 2048, T', H', W') -> (B, 2048, 1, 1, 1)
        x = self.dropout(self.pool(x))
        # (B, C, T, H, W) -> (B, T, H, W, C) -> proj -> (B, T, H, W, K) -> (B, K, T, H, W)
        x = self.proj(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        # (B, K, 1, 1, 1) -> (B, K)
        return self.output_pool(x).flatten(1)


class SlowR50(nn.Module):
    """Slow-only ResNet-50; ``blocks`` = [stem, res2, res3, res4, res5, head] (PyTorchVideo ``Net``)."""

    def __init__(
        self,
        *,
        input_channel: int,
        model_num_class: int,
        dropout_rate: float,
        norm_momentum: float,
        stem_dim_out: int = _STEM_DIM_OUT,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            ResNetBasicStem(
                in_channels=input_channel, out_channels=stem_dim_out, norm_momentum=norm_momentum
            )
        ]
        dim_in = stem_dim_out
        dim_out = stem_dim_out * _BOTTLENECK_EXPANSION  # 256, then 512, 1024, 2048 (for stem_dim_out 64)
        for depth, conv_a_kernel, stride in zip(
            _STAGE_DEPTHS, _STAGE_CONV_A_KERNELS, _STAGE_SPATIAL_STRIDES, strict=True
        ):
            blocks.append(
                ResStage(
                    depth=depth,
                    dim_in=dim_in,
                    dim_inner=dim_out // _BOTTLENECK_EXPANSION,
                    dim_out=dim_out,
                    conv_a_kernel=conv_a_kernel,
                    spatial_stride=stride,
                    norm_momentum=norm_momentum,
                )
            )
            dim_in, dim_out = dim_out, dim_out * 2
        blocks.append(
            ResNetBasicHead(in_features=dim_in, num_classes=model_num_class, dropout_rate=dropout_rate)
        )
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim: int = dim_in  # 2048
        _init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """Globally pooled res5 features: (B, C, T, H, W) -> (B, 2048)."""
        for block in self.blocks[:-1]:
            x = block(x)
        # (B, 2048, T, H/32, W/32) -> (B, 2048, 1, 1, 1) -> (B, 2048)
        head = cast(ResNetBasicHead, self.blocks[-1])
        return head.pool(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits: (B, C, T, H, W) -> (B, num_class)."""
        for block in self.blocks:
            x = block(x)
        return x


def _init_weights(model: nn.Module, fc_init_std: float = 0.01) -> None:
    """ResNet-style init as PyTorchVideo's ``init_net_weights(style="resnet")``.

    Conv: kaiming normal (fan_out, ReLU), as fvcore's ``c2_msra_fill``; BatchNorm: beta 0 and gamma 1,
    except gamma 0 for the last BN of each bottleneck; Linear: N(0, fc_init_std), bias 0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.constant_(m.weight, 0.0 if getattr(m, "block_final_bn", False) else 1.0)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=fc_init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def create_slow_r50(
    *,
    input_channel: int = 3,
    model_num_class: int = 400,
    dropout_rate: float = 0.5,
    norm_momentum: float = 0.1,
    stem_dim_out: int = _STEM_DIM_OUT,
) -> SlowR50:
    """Build a slow_r50 whose state-dict keys match PyTorchVideo's ``slow_r50`` exactly.

    With the defaults, ``SLOW_8x8_R50.pyth``'s ``model_state`` loads with ``strict=True``.
    ``model_num_class=0`` builds it without the classifier: ``forward`` then returns the pooled
    ``(B, 2048)`` features and the state dict has no ``blocks.5.proj.*`` keys.
    ``stem_dim_out`` (PyTorchVideo's name) sets the width: 64 is slow_r50; smaller values give a
    narrower network of the same depth (every stage scales with it; features are ``32 * stem_dim_out``),
    for small demo models. Only 64 loads Kinetics weights.
    """
    if stem_dim_out < 4:
        raise ValueError("stem_dim_out must be >= 4")
    if model_num_class < 0 or input_channel < 1:
        raise ValueError("model_num_class must be >= 0 and input_channel >= 1")
    return SlowR50(
        input_channel=input_channel,
        model_num_class=model_num_class,
        dropout_rate=dropout_rate,
        norm_momentum=norm_momentum,
        stem_dim_out=stem_dim_out,
    )


def count_parameters(module: nn.Module) -> int:
    """Total number of parameter elements (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())
