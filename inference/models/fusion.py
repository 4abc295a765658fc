"""Dual-view late fusion of two slow_r50 backbones (front view + side view).

Each view gets its own 1-class slow_r50 (binary ASD-vs-control logit). "Late fusion" here means
the paper's definition: each view's probability ``sigmoid(logit)`` is computed independently and
the two probabilities are averaged. Inputs are clips normalised with the Kinetics statistics
below, laid out ``(B, 3, T, H, W)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from inference.models.slow_r50 import SlowR50, create_slow_r50

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "LateFusion",
    "create_late_fusion",
    "load_backbone_state",
]

# Per-channel (RGB) mean/std of the PyTorchVideo Kinetics slow_r50 training recipe, for inputs in [0, 1].
KINETICS_MEAN: tuple[float, float, float] = (0.45, 0.45, 0.45)
KINETICS_STD: tuple[float, float, float] = (0.225, 0.225, 0.225)

# Kinetics classifier weights; they do not fit a 1-class head and are never loaded into one.
_PROJ_PREFIX = "blocks.5.proj."
_NUM_BATCHES_TRACKED = "num_batches_tracked"


class LateFusion(nn.Module):
    """Two independent slow_r50 backbones whose per-view probabilities are averaged.

    ``forward(front, side)`` returns ``(B, 3)`` with columns ``[p_asd, p_front, p_side]`` where
    ``p_front = sigmoid(front(front_clip))``, ``p_side = sigmoid(side(side_clip))`` and
    ``p_asd = (p_front + p_side) / 2``; the positive class is ASD (adult spinal deformity).

    Naming note: this follows the paper's text ("late fusion" = averaging the two views'
    probabilities). The paper's own code uses different names: there, concatenating the two
    pooled feature vectors before a shared classifier is called "late", and averaging the two
    logits is called "slow".
    """

    def __init__(self, *, dropout_rate: float = 0.5) -> None:
        super().__init__()
        self.front: SlowR50 = create_slow_r50(model_num_class=1, dropout_rate=dropout_rate)
        self.side: SlowR50 = create_slow_r50(model_num_class=1, dropout_rate=dropout_rate)

    def forward(self, front: Tensor, side: Tensor) -> Tensor:
        # front, side: (B, 3, T, H, W); the two views may differ in T/H/W but not in B.
        p_front = torch.sigmoid(self.front(front))  # (B, 1)
        p_side = torch.sigmoid(self.side(side))  # (B, 1)
        p_asd = (p_front + p_side) / 2  # (B, 1)
        return torch.cat((p_asd, p_front, p_side), dim=1)  # (B, 3)


def create_late_fusion(*, dropout_rate: float = 0.5) -> LateFusion:
    """Build a :class:`LateFusion` with randomly initialised backbones."""
    return LateFusion(dropout_rate=dropout_rate)


def load_backbone_state(backbone: nn.Module, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Load a Kinetics slow_r50 state dict into a (1-class) backbone; return the skipped keys.

    Every key is matched strictly (name and shape) except ``blocks.5.proj.*`` (the classifier),
    which is skipped on both sides: the checkpoint's 400-class proj is dropped and the backbone
    keeps its own freshly initialised proj. As with ``load_state_dict(strict=True)`` on a plain
    dict, BatchNorm ``num_batches_tracked`` buffers may be absent from ``state_dict`` (they keep
    their current value). Pass the state dict itself, e.g. ``torch.load(path)["model_state"]``.

    Raises:
        ValueError: naming the first missing, unexpected or mis-shaped key. Nothing is loaded then.
    """
    expected = backbone.state_dict()
    skipped = [k for k in state_dict if k.startswith(_PROJ_PREFIX)]
    to_load = {k: v for k, v in state_dict.items() if not k.startswith(_PROJ_PREFIX)}

    for key in expected:
        if key.startswith(_PROJ_PREFIX) or key in to_load or key.endswith("." + _NUM_BATCHES_TRACKED):
            continue
        raise ValueError(f"backbone state: missing key {key!r}")
    for key in to_load:
        if key not in expected:
            raise ValueError(f"backbone state: unexpected key {key!r}")
    for key, value in to_load.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"backbone state: shape mismatch for {key!r}: "
                f"got {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )

    backbone.load_state_dict(to_load, strict=False)  # keys and shapes verified above
    return skipped
