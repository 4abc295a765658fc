"""One epoch of training and one evaluation pass (torchvision references' ``engine.py``), and the model.

:func:`train_one_epoch` and :func:`evaluate` work for every fusion variant through ``model.logit``; the
fold loop and the cross-validation that call them live in :mod:`training.train`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.configtools import ConfigError
from inference.models import (
    FusionModel,
    create_model,
    load_kinetics_state,
    load_pretrained_backbones,
)
from training.config import TrainingConfig
from training.metrics import binary_metrics
from training.runtime import (
    DistContext,
    autocast_for,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- model


class LogitModel(nn.Module):
    """``forward(*clips) = model.logit(*clips)``: what DistributedDataParallel wraps (it hooks ``forward``)."""

    def __init__(self, model: FusionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, *clips: Tensor) -> Tensor:
        return self.model.logit(*clips)


def build_model(tcfg: TrainingConfig, kinetics: Mapping[str, Tensor] | None = None) -> FusionModel:
    model = create_model(variant=tcfg.variant, dropout_rate=tcfg.dropout_rate, width=tcfg.width)
    if kinetics is not None:
        names = load_pretrained_backbones(model, kinetics)
        log.info("backbones %s initialised from %s", ", ".join(names), tcfg.pretrained)
    return model


def load_pretrained(tcfg: TrainingConfig) -> dict[str, Tensor] | None:
    if tcfg.pretrained is None:
        return None
    if tcfg.width != 64:
        raise ConfigError(f"pretrained Kinetics weights fit width 64 (slow_r50), not --width {tcfg.width}")
    path = Path(tcfg.pretrained).expanduser()
    if not path.is_file():
        raise ConfigError(f"pretrained Kinetics weights not found: {path} (training.pretrained / --pretrained)")
    state = load_kinetics_state(path)  # ModelLoadError (one line) for a file that is not a slow_r50 state
    try:  # fail before any preprocessing, with the first key that does not fit
        load_pretrained_backbones(create_model(variant=tcfg.variant, dropout_rate=0.0, width=64), state)
    except ValueError as exc:
        raise ConfigError(f"{tcfg.pretrained}: {exc}") from None
    return state


# --------------------------------------------------------------------------- one epoch


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def train_one_epoch(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer, loader: Iterable,
                    device: torch.device, epoch: int, *, scaler: torch.amp.GradScaler | None = None,
                    amp_dtype: torch.dtype | None = None, progress: bool = True,
                    ctx: DistContext | None = None) -> float:
    """One pass over ``loader``; ``model(*clips)`` returns logits (a :class:`LogitModel`, maybe DDP-wrapped).

    Returns the mean training loss per window (over every process when distributed).
    """
    from tqdm import tqdm

    model.train()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, windows
    bar = tqdm(loader, desc=f"epoch {epoch} train", unit="batch", leave=False, disable=not progress)
    for clips, labels, _participants in bar:
        clips = [c.to(device, non_blocking=True) for c in clips]
        labels = labels.to(device, non_blocking=True)
        with autocast_for(device, amp_dtype):
            logits = model(*clips)
        loss = criterion(logits.float(), labels)
        value = loss.item()
        if scaler is None and not math.isfinite(value):  # (the grad scaler skips non-finite fp16 steps itself)
            raise FloatingPointError(f"training loss is {value} at epoch {epoch}; try a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total += torch.tensor([value * labels.numel(), labels.numel()], dtype=torch.float64, device=device)
        bar.set_postfix(loss=f"{value:.4f}")
    if ctx is not None and ctx.distributed:
        torch.distributed.all_reduce(total)
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")


def participant_metrics(probs: Sequence[float], labels: Sequence[int], participants: Sequence[str]) -> dict[str, Any]:
    """Metrics per participant: the mean p_asd of its windows against its label, threshold 0.5."""
    by: dict[str, list[float]] = defaultdict(list)
    label_of: dict[str, int] = {}
    for p, y, who in zip(probs, labels, participants, strict=True):
        by[who].append(float(p))
        label_of[who] = int(y)
    ids = sorted(by)
    return binary_metrics([label_of[i] for i in ids], [int(np.mean(by[i]) >= 0.5) for i in ids])


@torch.inference_mode()
def evaluate(model: nn.Module, criterion: nn.Module, loader: Iterable, device: torch.device, *,
             amp_dtype: torch.dtype | None = None, progress: bool = True, ctx: DistContext | None = None,
             desc: str = "validate") -> dict[str, Any]:
    """Score every window of ``loader``; returns loss (mean per window), window and participant metrics,
    and the predictions (``probs``, ``labels``, ``participants``). Distributed: each process scores its
    share (not padded) and the predictions are gathered, so every process returns the same result."""
    from tqdm import tqdm

    model = _unwrap(model)  # DDP's forward syncs buffers: processes with uneven shares would wait forever
    model.eval()
    losses: list[float] = []
    probs: list[float] = []
    labels: list[int] = []
    participants: list[str] = []
    for clips, y, who in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress):
        clips = [c.to(device, non_blocking=True) for c in clips]
        y = y.to(device, non_blocking=True)
        with autocast_for(device, amp_dtype):
            logits = model(*clips)
        logits = logits.float()
        losses.extend(nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").tolist())
        probs.extend(torch.sigmoid(logits).tolist())
        labels.extend(int(v) for v in y.tolist())
        participants.extend(who)
    if ctx is not None and ctx.distributed:
        gathered: list[Any] = [None] * ctx.world_size
        torch.distributed.all_gather_object(gathered, (losses, probs, labels, participants))
        losses, probs, labels, participants = ([x for part in gathered for x in part[i]] for i in range(4))
    window = binary_metrics(labels, [int(p >= 0.5) for p in probs])
    return {"loss": float(np.mean(losses)) if losses else float("nan"), "window": window,
            "participant": participant_metrics(probs, labels, participants),
            "probs": probs, "labels": labels, "participants": participants}
