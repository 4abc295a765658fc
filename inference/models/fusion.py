"""Dual-view ASD classifiers built on slow_r50: single-view, early, late, slow and gated fusion.

Every model takes the clips of the views it uses, in the order of its ``views`` attribute, each
``(B, 3, T, H, W)`` float32 normalised with :data:`KINETICS_MEAN` / :data:`KINETICS_STD`, and returns
``(B, K)`` probabilities whose columns are named by its ``output_names`` (always ``p_asd`` first;
the positive class is ASD). ``logit(*clips)`` returns the ``(B,)`` logit of ``p_asd`` for training.

Variant names follow the paper's text. The paper's own code names two of them differently:

=============  =========================================================  ======================
variant        what it does                                               paper's code calls it
=============  =========================================================  ======================
single_front   one backbone on the front view                             (single view)
single_side    one backbone on the side view                              (single view)
early          views stacked on channels, one backbone with a 6-ch stem   early
late           two backbones, the two views' probabilities averaged       (none; "slow" averages
                                                                          logits, not probabilities)
slow           two backbones, pooled features concatenated, one head      late
gated          two backbones, a gate scores each view per window; the     (beyond the paper)
               fused logit is the gate-weighted mean of the view logits
=============  =========================================================  ======================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from inference.models.slow_r50 import SlowR50, create_slow_r50
from inference.variants import VARIANTS, Variant

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "VARIANTS",
    "EarlyFusion",
    "FusionModel",
    "GatedFusion",
    "LateFusion",
    "SingleView",
    "SlowFusion",
    "Variant",
    "create_late_fusion",
    "create_model",
    "load_backbone_state",
    "load_pretrained_backbones",
]

# Per-channel (RGB) mean/std of the PyTorchVideo Kinetics slow_r50 training recipe, for inputs in [0, 1].
KINETICS_MEAN: tuple[float, float, float] = (0.45, 0.45, 0.45)
KINETICS_STD: tuple[float, float, float] = (0.225, 0.225, 0.225)

# Kinetics classifier weights; they do not fit a 1-class head and are never loaded into one.
_PROJ_PREFIX = "blocks.5.proj."
_STEM_WEIGHT = "blocks.0.conv.weight"
_NUM_BATCHES_TRACKED = "num_batches_tracked"


class FusionModel(nn.Module):
    """Base of every variant: ``views``, ``output_names`` and the pretrained backbones it holds."""

    variant: str = ""
    views: tuple[str, ...] = ("front", "side")
    output_names: tuple[str, ...] = ("p_asd",)

    def backbones(self) -> dict[str, SlowR50]:
        """Backbones by attribute name, for loading pretrained weights."""
        return {name: m for name, m in self.named_children() if isinstance(m, SlowR50)}

    def logit(self, *clips: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, *clips: Tensor) -> Tensor:
        return torch.sigmoid(self.logit(*clips)).unsqueeze(1)  # (B, 1)


class SingleView(FusionModel):
    """One slow_r50 on one view (the paper's single-view baselines)."""

    def __init__(self, *, view: Literal["front", "side"], dropout_rate: float, width: int = 64) -> None:
        super().__init__()
        self.variant = f"single_{view}"
        self.views = (view,)
        self.backbone = create_slow_r50(model_num_class=1, dropout_rate=dropout_rate, stem_dim_out=width)

    def logit(self, *clips: Tensor) -> Tensor:
        (clip,) = clips  # (B, 3, T, H, W)
        return self.backbone(clip).squeeze(1)  # (B,)


class EarlyFusion(FusionModel):
    """Front and side stacked on channels into one slow_r50 with a 6-channel stem."""

    variant = "early"

    def __init__(self, *, dropout_rate: float, width: int = 64) -> None:
        super().__init__()
        self.backbone = create_slow_r50(input_channel=6, model_num_class=1, dropout_rate=dropout_rate,
                                        stem_dim_out=width)

    def logit(self, *clips: Tensor) -> Tensor:
        front, side = clips  # (B, 3, T, H, W) each; same T, H, W
        return self.backbone(torch.cat((front, side), dim=1)).squeeze(1)  # (B, 6, T, H, W) -> (B,)


class LateFusion(FusionModel):
    """Two backbones whose per-view probabilities are averaged (the paper's late fusion).

    Columns: ``p_asd = (p_front + p_side) / 2``, ``p_front``, ``p_side``.
    """

    variant = "late"
    output_names = ("p_asd", "p_front", "p_side")

    def __init__(self, *, dropout_rate: float, width: int = 64) -> None:
        super().__init__()
        self.front = create_slow_r50(model_num_class=1, dropout_rate=dropout_rate, stem_dim_out=width)
        self.side = create_slow_r50(model_num_class=1, dropout_rate=dropout_rate, stem_dim_out=width)

    def view_probabilities(self, front: Tensor, side: Tensor) -> tuple[Tensor, Tensor]:
        # (B, 3, T, H, W) each -> (B, 1) each; the two views may differ in T/H/W but not in B
        return torch.sigmoid(self.front(front)), torch.sigmoid(self.side(side))

    def logit(self, *clips: Tensor) -> Tensor:
        p_front, p_side = self.view_probabilities(*clips)
        return torch.logit((p_front + p_side).squeeze(1) / 2, eps=1e-6)  # (B,)

    def forward(self, *clips: Tensor) -> Tensor:
        p_front, p_side = self.view_probabilities(*clips)
        return torch.cat(((p_front + p_side) / 2, p_front, p_side), dim=1)  # (B, 3)


class SlowFusion(FusionModel):
    """Two backbones; their pooled features are concatenated before one classifier."""

    variant = "slow"

    def __init__(self, *, dropout_rate: float, width: int = 64) -> None:
        super().__init__()
        self.front = create_slow_r50(model_num_class=0, dropout_rate=dropout_rate, stem_dim_out=width)
        self.side = create_slow_r50(model_num_class=0, dropout_rate=dropout_rate, stem_dim_out=width)
        self.dropout = nn.Dropout(dropout_rate)
        self.classifier = nn.Linear(2 * self.front.feature_dim, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def logit(self, *clips: Tensor) -> Tensor:
        front, side = clips
        features = torch.cat((self.front(front), self.side(side)), dim=1)  # (B, 4096)
        return self.classifier(self.dropout(features)).squeeze(1)  # (B,)


class GatedFusion(FusionModel):
    """Two backbones and a gate that weighs the views per window (beyond the paper).

    A shared classifier scores each view's pooled features (``p_front``, ``p_side``); a small gate
    network sees both feature vectors and outputs softmax weights ``w_front + w_side = 1``. The
    fused logit is ``w_front * logit_front + w_side * logit_side``, so the weights say how much each
    view contributed to this window's score. Columns: ``p_asd, p_front, p_side, w_front, w_side``.
    """

    variant = "gated"
    output_names = ("p_asd", "p_front", "p_side", "w_front", "w_side")

    def __init__(self, *, dropout_rate: float, width: int = 64, gate_hidden: int = 256) -> None:
        super().__init__()
        self.front = create_slow_r50(model_num_class=0, dropout_rate=dropout_rate, stem_dim_out=width)
        self.side = create_slow_r50(model_num_class=0, dropout_rate=dropout_rate, stem_dim_out=width)
        dim = self.front.feature_dim
        self.dropout = nn.Dropout(dropout_rate)
        self.classifier = nn.Linear(dim, 1)
        self.gate = nn.Sequential(nn.Linear(2 * dim, gate_hidden), nn.ReLU(), nn.Linear(gate_hidden, 2))
        for layer in (self.classifier, self.gate[0], self.gate[2]):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def _parts(self, front: Tensor, side: Tensor) -> tuple[Tensor, Tensor]:
        f_front, f_side = self.front(front), self.side(side)  # (B, 2048) each
        weights = torch.softmax(self.gate(torch.cat((f_front, f_side), dim=1)), dim=1)  # (B, 2)
        view_logits = torch.cat(
            (self.classifier(self.dropout(f_front)), self.classifier(self.dropout(f_side))), dim=1
        )  # (B, 2)
        return view_logits, weights

    def logit(self, *clips: Tensor) -> Tensor:
        view_logits, weights = self._parts(*clips)
        return (view_logits * weights).sum(dim=1)  # (B,)

    def forward(self, *clips: Tensor) -> Tensor:
        view_logits, weights = self._parts(*clips)
        p_asd = torch.sigmoid((view_logits * weights).sum(dim=1, keepdim=True))  # (B, 1)
        return torch.cat((p_asd, torch.sigmoid(view_logits), weights), dim=1)  # (B, 5)


def create_model(*, variant: str, dropout_rate: float = 0.5, width: int = 64) -> FusionModel:
    """Build a variant with randomly initialised weights (see :func:`load_pretrained_backbones`).

    ``width`` is the backbones' ``stem_dim_out``: 64 is slow_r50 (and loads Kinetics weights);
    smaller widths make small models, e.g. the synthetic demo model.
    """
    match variant:
        case "single_front":
            return SingleView(view="front", dropout_rate=dropout_rate, width=width)
        case "single_side":
            return SingleView(view="side", dropout_rate=dropout_rate, width=width)
        case "early":
            return EarlyFusion(dropout_rate=dropout_rate, width=width)
        case "late":
            return LateFusion(dropout_rate=dropout_rate, width=width)
        case "slow":
            return SlowFusion(dropout_rate=dropout_rate, width=width)
        case "gated":
            return GatedFusion(dropout_rate=dropout_rate, width=width)
    raise ValueError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")


def create_late_fusion(*, dropout_rate: float = 0.5) -> LateFusion:
    """Build a :class:`LateFusion` with randomly initialised backbones."""
    return LateFusion(dropout_rate=dropout_rate)


def load_backbone_state(backbone: nn.Module, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Load a Kinetics slow_r50 state dict into a (1-class or head-less) backbone; return the skipped keys.

    Every key is matched strictly (name and shape) except ``blocks.5.proj.*`` (the classifier),
    which is skipped on both sides: the checkpoint's 400-class proj is dropped and the backbone
    keeps its own freshly initialised proj. A 3-channel stem is loaded into a 6-channel stem (early
    fusion) by repeating it over both views and halving it, so that two identical views give the
    pretrained response. As with ``load_state_dict(strict=True)``, BatchNorm ``num_batches_tracked``
    buffers may be absent. Pass the state dict itself, e.g. ``torch.load(path)["model_state"]``.

    Raises:
        ValueError: naming the first missing, unexpected or mis-shaped key. Nothing is loaded then.
    """
    expected = backbone.state_dict()
    skipped = [k for k in state_dict if k.startswith(_PROJ_PREFIX)]
    to_load = {k: v for k, v in state_dict.items() if not k.startswith(_PROJ_PREFIX)}
    stem = to_load.get(_STEM_WEIGHT)
    if stem is not None and _STEM_WEIGHT in expected:
        want = expected[_STEM_WEIGHT].shape  # (64, C_in, 1, 7, 7)
        if stem.shape[1] == 3 and want[1] == 6 and stem.shape[0] == want[0]:
            to_load[_STEM_WEIGHT] = torch.cat((stem, stem), dim=1) / 2  # (64, 6, 1, 7, 7)

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


def load_pretrained_backbones(model: FusionModel, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Initialise every backbone of ``model`` from one Kinetics slow_r50 state dict.

    Returns the names of the backbones loaded. Fusion layers (classifier, gate) keep their init.
    """
    names = []
    for name, backbone in model.backbones().items():
        load_backbone_state(backbone, state_dict)
        names.append(name)
    return names
