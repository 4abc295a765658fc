"""Arguments of ``dualgait train`` (kept free of torch so that building the CLI stays fast)."""

from __future__ import annotations

import argparse
from typing import Any

from inference.variants import VARIANTS
from training.config import TrainingConfig

__all__ = ["add_train_args", "resolve_training_config"]


def add_train_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``dualgait train``; unset ones keep the config's ``training`` section."""
    parser.add_argument("--manifest", required=True, help="CSV manifest of front/side recordings (docs/training.md)")
    parser.add_argument("--output", required=True, metavar="DIR", help="run folder: checkpoints, metrics, pictures")
    parser.add_argument("--variant", choices=VARIANTS, help="model variant (default: training.variant, late)")
    parser.add_argument("--folds", type=int, help="K of the participant-wise K-fold cross-validation (default 5)")
    parser.add_argument("--epochs-max", type=int, help="most epochs per fold (default 50)")
    parser.add_argument("--patience", type=int, help="early stopping: epochs without a lower val loss (default 5)")
    parser.add_argument("--input-px", type=int, help="model input size in pixels (default 224)")
    parser.add_argument("--width", type=int, help="backbone width, 64 = slow_r50 (default 64)")
    parser.add_argument("--batch-size", type=int, help="windows per batch (per process under torchrun)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 1e-4)")
    parser.add_argument("--seed", type=int, help="seed of folds, initialisation and shuffling (default 0)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: training.device (auto)")
    parser.add_argument("--pretrained", help="Kinetics-400 slow_r50 file (SLOW_8x8_R50.pyth) to initialise backbones")
    parser.add_argument("--cache-dir", help="preprocessed windows (default: training.cache_dir)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="mixed precision")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="appearance augmentation of training clips (default: training.augment, on)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in DIR: skip finished folds, resume the unfinished one from last.pt")
    return parser


_ARG_KEYS = {"variant": "variant", "folds": "folds", "epochs_max": "epochs_max", "patience": "patience",
             "input_px": "input_px", "width": "width", "batch_size": "batch_size", "lr": "lr", "seed": "seed",
             "device": "device", "pretrained": "pretrained", "cache_dir": "cache_dir", "amp": "amp",
             "augment": "augment"}


def resolve_training_config(args: argparse.Namespace, cfg: Any) -> TrainingConfig:
    """``cfg.training`` with the command-line values that were given (validated: ConfigError)."""
    from core.configtools import with_overrides

    overrides = {key: getattr(args, name) for name, key in _ARG_KEYS.items() if getattr(args, name, None) is not None}
    return with_overrides(cfg, {"training": overrides}).training if overrides else cfg.training
