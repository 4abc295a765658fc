"""A fold's state between epochs: early stopping, the best checkpoint, and the resume file (``last.pt``).

Used by :func:`training.train.train_fold`. ``last.pt`` holds tensors and plain types only (model,
optimizer, scaler, epoch, early-stopping state, RNG states) and the run's signature, so a resume with other
settings, manifest or folds is refused in one line.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.configtools import ConfigError
from inference.models import ModelSpec, save_checkpoint
from training.config import TrainingConfig
from training.engine import LogitModel
from training.folds import Fold
from training.runtime import rng_state, set_rng_state

__all__ = ["STATE_FORMAT", "STATE_VERSION", "EarlyStopping", "load_state", "resume_from", "save_best", "save_last"]

log = logging.getLogger("training.train")  # its lines belong to the fold being trained

STATE_FORMAT = "dualgait-train-state"
STATE_VERSION = 1


def load_state(path: Path, signature: str) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, foreign pickle refused by weights_only, ...
        raise ConfigError(f"cannot resume from {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                          " (delete it to restart this fold)") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
        raise ConfigError(f"cannot resume from {path}: not a dualgait training state (version {STATE_VERSION})")
    if state.get("signature") != signature:
        raise ConfigError(f"cannot resume from {path}: it belongs to a run with other settings, manifest or folds "
                          "(use the same settings, or a new --output)")
    return state


@dataclass
class EarlyStopping:
    """Where a fold stands: epochs run, the best validation loss so far, its epoch and metrics, the history."""

    epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the last improvement
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)

    def running(self, tcfg: TrainingConfig) -> bool:
        return self.epoch < tcfg.epochs_max and not self.stopped(tcfg)

    def stopped(self, tcfg: TrainingConfig) -> bool:
        return self.bad_epochs >= tcfg.patience

    def update(self, ev: Mapping[str, Any]) -> bool:
        """Record this epoch's validation; True when its loss is the best so far."""
        improved = ev["loss"] < self.best_loss  # (a NaN loss is no improvement)
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = ev["loss"], self.epoch, 0
            self.best = {"window": ev["window"], "participant": ev["participant"], "predictions": {
                "probs": ev["probs"], "labels": ev["labels"], "participants": ev["participants"]}}
        else:
            self.bad_epochs += 1
        return improved


def resume_from(state: Mapping[str, Any], logit_model: LogitModel, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler | None, fold: Fold) -> EarlyStopping:
    """Model, optimizer, scaler and RNG states from a last.pt; returns where the fold stood."""
    logit_model.model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    stop = EarlyStopping(int(state["epoch"]), float(state["best_loss"]), int(state["best_epoch"]),
                          int(state["bad_epochs"]), list(state["history"]), dict(state["best"]))
    log.info("fold %d: resumed after epoch %d (best epoch %d, val loss %.4f)", fold.index, stop.epoch,
             stop.best_epoch, stop.best_loss)
    return stop


def save_best(best_path: Path, logit_model: LogitModel, spec: ModelSpec, meta: Mapping[str, Any] | None,
               fold: Fold, epoch: int, ev: Mapping[str, Any]) -> None:
    save_checkpoint(best_path, logit_model.model, spec, meta={
        **dict(meta or {}), "fold": fold.index, "epoch": epoch, "val_loss": ev["loss"],
        "val_metrics": ev["window"], "val_participant_metrics": ev["participant"],
        "val_participants": list(fold.val), "train_participants": list(fold.train),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def save_last(last_path: Path, signature: str, stop: EarlyStopping, logit_model: LogitModel,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """The resume state after this epoch, written atomically (tmp file, then rename)."""
    last_path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": STATE_FORMAT, "version": STATE_VERSION, "signature": signature, "epoch": stop.epoch,
             "model": {k: v.detach().cpu() for k, v in logit_model.model.state_dict().items()},
             "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict() if scaler else None,
             "best_loss": stop.best_loss, "best_epoch": stop.best_epoch, "bad_epochs": stop.bad_epochs,
             "history": stop.history, "best": stop.best, "rng": rng_state()}
    tmp = last_path.with_name(last_path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(last_path)
