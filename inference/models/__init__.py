"""Video classification models: the slow_r50 backbone and the dual-view fusion model."""

from inference.models.fusion import (
    KINETICS_MEAN,
    KINETICS_STD,
    LateFusion,
    create_late_fusion,
    load_backbone_state,
)
from inference.models.slow_r50 import SlowR50, count_parameters, create_slow_r50

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "LateFusion",
    "SlowR50",
    "count_parameters",
    "create_late_fusion",
    "create_slow_r50",
    "load_backbone_state",
]
