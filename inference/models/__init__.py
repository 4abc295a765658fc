"""Video classification models: the slow_r50 backbone, the fusion variants and their checkpoints."""

from inference.models.checkpoint import (
    Checkpoint,
    ModelSpec,
    checkpoint_spec,
    load_checkpoint,
    load_kinetics_state,
    save_checkpoint,
    state_fingerprint,
)
from inference.models.fusion import (
    KINETICS_MEAN,
    KINETICS_STD,
    VARIANTS,
    FusionModel,
    LateFusion,
    Variant,
    create_late_fusion,
    create_model,
    load_backbone_state,
    load_pretrained_backbones,
)
from inference.models.slow_r50 import SlowR50, count_parameters, create_slow_r50

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "VARIANTS",
    "Checkpoint",
    "FusionModel",
    "LateFusion",
    "ModelSpec",
    "SlowR50",
    "Variant",
    "checkpoint_spec",
    "count_parameters",
    "create_late_fusion",
    "create_model",
    "create_slow_r50",
    "load_backbone_state",
    "load_checkpoint",
    "load_kinetics_state",
    "load_pretrained_backbones",
    "save_checkpoint",
    "state_fingerprint",
]
