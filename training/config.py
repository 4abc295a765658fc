"""Configuration of offline training (the ``training:`` section of the dualgait config).

Kept free of torch so that reading a config stays cheap. The defaults follow the paper's protocol:
participant-wise, class-stratified 5-fold cross-validation, Adam at lr 1e-4, at most 50 epochs,
early stopping on the validation loss with patience 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from inference.variants import Variant


@dataclass(slots=True)
class TrainingConfig:
    """Cross-validated training of one model variant from a manifest of recorded front/side pairs."""

    folds: int = 5
    epochs_max: int = 50
    # stop a fold after this many epochs without a lower validation loss
    patience: int = 5
    # Adam
    lr: float = 1e-4
    batch_size: int = 8
    num_workers: int = 0
    seed: int = 0
    variant: Variant = "late"
    # backbone width (slow_r50 stem_dim_out): 64 is slow_r50 (and loads Kinetics weights)
    width: int = 64
    # model input (the crop is resized to this); the live pipeline must then use the same crop.input_px
    input_px: int = 224
    # T: the windows are cut by the live code, so this is inference.window.frames (null: taken from it when the
    # whole config is read; a value that differs is a config error)
    frames: int | None = None
    dropout_rate: float = 0.5
    # a Kinetics-400 slow_r50 file (PyTorchVideo SLOW_8x8_R50.pyth) to initialise the backbones; null: random
    pretrained: str | None = None
    # preprocessed windows (.npz per recording pair)
    cache_dir: str = "${DUALGAIT_CACHE_DIR:-~/.cache/dualgait}/training"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # mixed precision: fp16 autocast + grad scaling on cuda, bf16 autocast on cpu
    amp: bool = False
    # appearance augmentation of training clips (training.augment; not in the paper): without it small
    # data sets are learned by walker identity instead of posture
    augment: bool = True

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError("folds must be >= 2")
        if self.epochs_max < 1 or self.patience < 1:
            raise ValueError("epochs_max and patience must be >= 1")
        if not self.lr > 0:
            raise ValueError("lr must be > 0")
        if self.batch_size < 1 or self.num_workers < 0:
            raise ValueError("batch_size must be >= 1 and num_workers >= 0")
        if self.input_px < 32 or (self.frames is not None and self.frames < 1) or self.width < 4:
            raise ValueError("input_px must be >= 32, frames >= 1 and width >= 4")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError("dropout_rate must be in [0, 1)")
