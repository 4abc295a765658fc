"""Offline training with the paper's protocol: participant-wise, class-stratified K-fold cross-validation.

torchvision-references style: :func:`add_train_args` (the argument parser), :func:`run_train` (main),
:func:`train_one_epoch`, :func:`evaluate`. For each fold a fresh model of ``training.variant`` is
trained with Adam (lr 1e-4) on ``BCEWithLogits(model.logit(*clips), label)`` (ASD = 1) for at most
``epochs_max`` epochs, stopping early when the validation loss has not improved for ``patience``
epochs. Files in the run folder DIR (only rank 0 writes)::

    DIR/run.json                 settings, manifest, folds (participants per fold), environment
    DIR/train.log                the log
    DIR/fold{k}/best.pt          dualgait checkpoint of the epoch with the lowest validation loss
                                 (inference.models.save_checkpoint: spec + weights + provenance meta)
    DIR/fold{k}/last.pt          resume state after the last finished epoch (model, optimizer, epoch,
                                 early-stopping state, RNG states; tensors and plain types only)
    DIR/fold{k}/result.json      the fold's history and validation metrics at its best epoch
    DIR/metrics.json, DIR/table.md, DIR/*.png, DIR/fold{k}/*.png   see training.report

``--resume`` skips finished folds and continues an unfinished one from its ``last.pt``.

Several GPUs (one process per GPU, on one or more hosts)::

    torchrun --nproc_per_node=4 -m dualgait.cli train --manifest M --output DIR
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d \\
             --rdzv_endpoint=HOST:29400 -m dualgait.cli train --manifest M --output DIR

When ``WORLD_SIZE`` > 1 every process joins ``torch.distributed`` (NCCL on CUDA, Gloo on CPU), the
model is wrapped in ``DistributedDataParallel`` (BatchNorm synchronised on CUDA), each process trains
on its ``DistributedSampler`` share (``batch_size`` is per process), validation predictions are
gathered so every process takes the same early-stopping decision, and only rank 0 preprocesses,
writes checkpoints and reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from core.configtools import ConfigError
from inference.models import (
    ModelSpec,
)
from training.args import add_train_args, resolve_training_config
from training.config import TrainingConfig
from training.data import RecordingWindows, WindowDataset
from training.engine import (
    LogitModel,
    build_model,
    evaluate,
    load_pretrained,
    train_one_epoch,
)
from training.fold_state import EarlyStopping, load_state, resume_from, save_best, save_last
from training.folds import Fold, make_folds, participant_labels
from training.runtime import (
    DistContext,
    amp_settings,
    seed_everything,
    setup_distributed,
)

log = logging.getLogger(__name__)

__all__ = [
    "DistContext",
    "add_train_args",
    "evaluate",
    "is_synthetic",
    "resolve_training_config",
    "run_cross_validation",
    "run_train",
    "seed_everything",
    "train_fold",
    "train_one_epoch",
]

# --------------------------------------------------------------------------- one fold


def _loaders(train_ds: WindowDataset, val_ds: WindowDataset, tcfg: TrainingConfig, ctx: DistContext,
             fold: int) -> tuple[DataLoader, DataLoader, DistributedSampler | None, torch.Generator]:
    pin = ctx.device.type == "cuda"
    generator = torch.Generator()
    sampler = None
    if ctx.distributed:
        sampler = DistributedSampler(train_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                     seed=tcfg.seed + fold)
        val_part: Any = Subset(val_ds, list(range(ctx.rank, len(val_ds), ctx.world_size)))
    else:
        val_part = val_ds
    train_loader = DataLoader(train_ds, batch_size=tcfg.batch_size, shuffle=sampler is None, sampler=sampler,
                              num_workers=tcfg.num_workers, pin_memory=pin, generator=generator, drop_last=False,
                              persistent_workers=tcfg.num_workers > 0)
    val_loader = DataLoader(val_part, batch_size=tcfg.batch_size, shuffle=False, num_workers=tcfg.num_workers,
                            pin_memory=pin, persistent_workers=tcfg.num_workers > 0)
    return train_loader, val_loader, sampler, generator


def _history_row(epoch: int, train_loss: float, ev: Mapping[str, Any], lr: float, seconds: float) -> dict[str, Any]:
    w = ev["window"]
    return {"epoch": epoch, "train_loss": train_loss, "val_loss": ev["loss"], "val_accuracy": w["accuracy"],
            "val_precision": w["precision"], "val_recall": w["recall"], "val_f1": w["f1"],
            "val_participant_accuracy": ev["participant"]["accuracy"], "lr": lr, "seconds": round(seconds, 2)}


def _from_main(ctx: DistContext, fn: Any) -> Any:
    """``fn()`` on rank 0, its value broadcast to every process (files may exist on rank 0's host only)."""
    value = fn() if ctx.is_main else None
    if ctx.distributed:
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        value = box[0]
    return value


def _finished_fold(fold: Fold, tcfg: TrainingConfig, result_path: Path, ctx: DistContext, *, signature: str,
                   resume: bool) -> dict[str, Any] | None:
    """With ``resume``: the fold's result.json when this run finished the fold earlier, else None."""
    done = _from_main(ctx, lambda: json.loads(result_path.read_text(encoding="utf-8"))
                      if resume and result_path.is_file() else None)
    if done is not None:
        finished = done.get("stopped_early") or done.get("epochs_run", 0) >= tcfg.epochs_max
        if done.get("signature") == signature and finished:
            log.info("fold %d: finished earlier (best epoch %s), skipped", fold.index, done.get("best_epoch"))
            return done
    return None


def _fold_datasets(recordings: Sequence[RecordingWindows], views: Any, fold: Fold,
                   tcfg: TrainingConfig) -> tuple[WindowDataset, WindowDataset]:
    train_ds = WindowDataset(recordings, views=views, participants=fold.train, augment=tcfg.augment)
    val_ds = WindowDataset(recordings, views=views, participants=fold.val)
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise ConfigError(f"fold {fold.index} has {len(train_ds)} training and {len(val_ds)} validation windows; "
                          "every fold needs both")
    log.info("fold %d: %d train windows (%d participants), %d validation windows (%d participants)", fold.index,
             len(train_ds), len(fold.train), len(val_ds), len(fold.val))
    return train_ds, val_ds


def _optimization(model: nn.Module, tcfg: TrainingConfig, ctx: DistContext) -> tuple[
        LogitModel, torch.optim.Optimizer, nn.Module, torch.dtype | None, torch.amp.GradScaler | None]:
    """The model on its device (BatchNorm synchronised across CUDA processes), Adam, the loss, AMP settings."""
    logit_model = LogitModel(model).to(ctx.device)
    if ctx.distributed and ctx.device.type == "cuda":
        logit_model = nn.SyncBatchNorm.convert_sync_batchnorm(logit_model)
    optimizer = torch.optim.Adam(logit_model.parameters(), lr=tcfg.lr)
    amp_dtype, scaler = amp_settings(ctx.device, tcfg.amp)
    return logit_model, optimizer, nn.BCEWithLogitsLoss(), amp_dtype, scaler


def _distributed(logit_model: LogitModel, ctx: DistContext) -> nn.Module:
    """What the training step calls: the model itself, or DistributedDataParallel around it."""
    if not ctx.distributed:
        return logit_model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(logit_model, device_ids=ids)


def _log_epoch(fold: Fold, tcfg: TrainingConfig, stop: EarlyStopping, train_loss: float, ev: Mapping[str, Any],
               improved: bool, seconds: float) -> None:
    w = ev["window"]
    log.info("fold %d epoch %d: train loss %.4f, val loss %.4f, acc %.3f, prec %.3f, rec %.3f, F1 %.3f%s "
             "(%.1f s)", fold.index, stop.epoch, train_loss, ev["loss"], w["accuracy"], w["precision"], w["recall"],
             w["f1"], " *best*" if improved else f" ({stop.bad_epochs}/{tcfg.patience} without improvement)",
             seconds)


def _fold_result(fold: Fold, tcfg: TrainingConfig, stop: EarlyStopping, *, signature: str, train_windows: int,
                 val_windows: int, best_path: Path) -> dict[str, Any]:
    stopped_early = stop.stopped(tcfg)
    if stopped_early:
        log.info("fold %d: stopped early after epoch %d; best epoch %d (val loss %.4f)", fold.index, stop.epoch,
                 stop.best_epoch, stop.best_loss)
    best = stop.best
    return {"fold": fold.index, "signature": signature, "best_epoch": stop.best_epoch,
            "best_val_loss": stop.best_loss, "epochs_run": stop.epoch, "stopped_early": stopped_early,
            "window": best.get("window"), "participant": best.get("participant"),
            "train_participants": len(fold.train), "val_participants": len(fold.val), "train_windows": train_windows,
            "val_windows": val_windows, "checkpoint": str(best_path), "history": stop.history,
            "predictions": best.get("predictions")}


def train_fold(fold: Fold, recordings: Sequence[RecordingWindows], tcfg: TrainingConfig, out_dir: str | Path, *,
               ctx: DistContext | None = None, signature: str = "", meta: Mapping[str, Any] | None = None,
               resume: bool = False, kinetics: Mapping[str, Tensor] | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Train and validate one fold with early stopping; returns the fold's result (also DIR/fold{k}/result.json).

    ``meta`` goes into the best checkpoint's provenance (with fold, epoch and validation metrics).
    """
    ctx = ctx or DistContext(torch.device("cpu"))
    progress = progress and ctx.is_main
    fold_dir = Path(out_dir) / f"fold{fold.index}"
    result_path, last_path, best_path = fold_dir / "result.json", fold_dir / "last.pt", fold_dir / "best.pt"
    done = _finished_fold(fold, tcfg, result_path, ctx, signature=signature, resume=resume)
    if done is not None:
        return done

    seed_everything(tcfg.seed + fold.index)
    model = build_model(tcfg, kinetics)
    spec = ModelSpec(variant=tcfg.variant, dropout_rate=tcfg.dropout_rate, input_px=tcfg.input_px,
                     frames=tcfg.frames, width=tcfg.width)
    train_ds, val_ds = _fold_datasets(recordings, model.views, fold, tcfg)
    logit_model, optimizer, criterion, amp_dtype, scaler = _optimization(model, tcfg, ctx)
    state = _from_main(ctx, lambda: load_state(last_path, signature) if resume and last_path.is_file() else None)
    stop = EarlyStopping() if state is None else resume_from(state, logit_model, optimizer, scaler, fold)
    train_model = _distributed(logit_model, ctx)
    train_loader, val_loader, sampler, generator = _loaders(train_ds, val_ds, tcfg, ctx, fold.index)

    while stop.running(tcfg):
        stop.epoch += 1
        epoch, t0 = stop.epoch, time.perf_counter()
        generator.manual_seed(tcfg.seed * 1_000_003 + fold.index * 1009 + epoch)  # same order on resume
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_loss = train_one_epoch(train_model, criterion, optimizer, train_loader, ctx.device, epoch,
                                     scaler=scaler, amp_dtype=amp_dtype, progress=progress, ctx=ctx)
        ev = evaluate(logit_model, criterion, val_loader, ctx.device, amp_dtype=amp_dtype, progress=progress,
                      ctx=ctx, desc=f"epoch {epoch} validate")
        stop.history.append(_history_row(epoch, train_loss, ev, optimizer.param_groups[0]["lr"],
                                         time.perf_counter() - t0))
        improved = stop.update(ev)
        if improved and ctx.is_main:
            save_best(best_path, logit_model, spec, meta, fold, epoch, ev)
        _log_epoch(fold, tcfg, stop, train_loss, ev, improved, time.perf_counter() - t0)
        if ctx.is_main:
            save_last(last_path, signature, stop, logit_model, optimizer, scaler)

    result = _fold_result(fold, tcfg, stop, signature=signature, train_windows=len(train_ds),
                          val_windows=len(val_ds), best_path=best_path)
    if ctx.is_main:
        fold_dir.mkdir(parents=True, exist_ok=True)
        result_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


# --------------------------------------------------------------------------- the run


def is_synthetic(rows: Sequence[Any]) -> bool:
    """A manifest is synthetic when every row's notes say so."""
    return bool(rows) and all("synthetic" in (row.notes or "").lower() for row in rows)


def run_signature(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_cross_validation(recordings: Sequence[RecordingWindows], tcfg: TrainingConfig, out_dir: str | Path, *,
                         ctx: DistContext | None = None, info: Mapping[str, Any] | None = None,
                         resume: bool = False, progress: bool = True,
                         kinetics: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
    """Folds over the participants with windows, one :func:`train_fold` each, then the report (rank 0).

    ``kinetics``: the Kinetics state dict of ``tcfg.pretrained`` when already loaded (else loaded here).
    """
    from training.report import write_report

    ctx = ctx or DistContext(torch.device("cpu"))
    out = Path(out_dir)
    info = dict(info or {})
    usable = [r for r in recordings if len(r)]
    labels = participant_labels((r.participant_id, r.label) for r in recordings)
    with_windows = {r.participant_id for r in usable}
    dropped = sorted(set(labels) - with_windows)
    if dropped:
        log.warning("%d participants have no usable window and are left out: %s", len(dropped), ", ".join(dropped))
    folds = make_folds({p: y for p, y in labels.items() if p in with_windows}, folds=tcfg.folds, seed=tcfg.seed)
    settings = {k: v for k, v in asdict(tcfg).items()
                if k not in ("epochs_max", "patience", "num_workers", "cache_dir", "device", "amp")}
    signature = run_signature({"settings": settings, "manifest_sha256": info.get("manifest_sha256"),
                               "folds": [f.val for f in folds]})
    if kinetics is None:
        kinetics = load_pretrained(tcfg)
    previous = _from_main(ctx, lambda: json.loads((out / "run.json").read_text(encoding="utf-8"))
                          if resume and (out / "run.json").is_file() else None)
    if previous is not None and previous.get("signature") != signature:
        raise ConfigError(f"cannot resume {out}: it holds a run with other settings, manifest or folds "
                          "(use the same settings, or a new --output)")
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        run = {"signature": signature, "training": asdict(tcfg), **info, "world_size": ctx.world_size,
               "device": str(ctx.device), "torch": torch.__version__, "host": platform.node(),
               "folds": [{"fold": f.index, "val": list(f.val), "train": list(f.train)} for f in folds],
               "left_out_participants": dropped}
        (out / "run.json").write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    meta = {"synthetic": bool(info.get("synthetic")), "manifest": info.get("manifest"),
            "manifest_sha256": info.get("manifest_sha256"), "folds": tcfg.folds, "seed": tcfg.seed, "lr": tcfg.lr,
            "batch_size": tcfg.batch_size, "world_size": ctx.world_size, "pretrained": tcfg.pretrained,
            "run_signature": signature, "trained_by": "dualgait train (training.train)"}
    results = [train_fold(fold, recordings, tcfg, out, ctx=ctx, signature=signature, meta=meta, resume=resume,
                          kinetics=kinetics, progress=progress) for fold in folds]
    report: dict[str, Any] = {}
    if ctx.is_main:
        report = write_report(out, variant=tcfg.variant, folds=results,
                              info={**info, "signature": signature, "training": asdict(tcfg)})
        summary = report["mean_std"]["window"]
        log.info("%s, %d folds: accuracy %.3f ± %.3f, precision %.3f ± %.3f, recall %.3f ± %.3f, F1 %.3f ± %.3f",
                 tcfg.variant, len(results), *(v for m in ("accuracy", "precision", "recall", "f1")
                                               for v in (summary[m]["mean"], summary[m]["std"])))
    return report


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_output(out: Path, resume: bool) -> None:
    previous = out.is_dir() and (any(out.glob("fold*/last.pt")) or (out / "metrics.json").exists()
                                 or (out / "run.json").exists())
    if previous and not resume:
        raise ConfigError(f"{out} already holds a training run; pass --resume to continue it, "
                          "or choose another --output")


def run_train(args: argparse.Namespace, cfg: Any) -> int:
    """``dualgait train``: manifest -> preprocessing (live code, cached) -> K folds -> report. Returns 0."""
    from training.data import load_windows, window_config
    from training.manifest import ManifestError, read_manifest

    tcfg = resolve_training_config(args, cfg)
    window_config(cfg, tcfg)  # T must match the live windows: fail before anything runs
    out = Path(args.output).expanduser().resolve()
    resume = bool(getattr(args, "resume", False))
    ctx = setup_distributed(tcfg.device)
    handler: logging.Handler | None = None
    try:
        if ctx.is_main:
            _check_output(out, resume)
            out.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(out / "train.log", encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
            logging.getLogger().addHandler(handler)
        try:
            rows = read_manifest(args.manifest)
        except ManifestError as exc:
            raise ConfigError(str(exc)) from None
        manifest = Path(args.manifest).resolve()
        synthetic = is_synthetic(rows)
        kinetics = load_pretrained(tcfg)  # a bad file fails now, not after the preprocessing
        log.info("manifest %s: %d recordings of %d participants%s; variant %s, %d folds, device %s%s", manifest,
                 len(rows), len({r.participant_id for r in rows}), " (synthetic)" if synthetic else "", tcfg.variant,
                 tcfg.folds, ctx.device, f", {ctx.world_size} processes" if ctx.distributed else "")
        recordings = load_windows(rows, cfg, tcfg) if ctx.is_main else []
        ctx.barrier()  # rank 0 has filled the cache; the others read it (or preprocess on another host)
        if not ctx.is_main:
            recordings = load_windows(rows, cfg, tcfg, progress=False)
        seed_everything(tcfg.seed)
        info = {"manifest": str(manifest), "manifest_sha256": _file_sha256(manifest), "synthetic": synthetic,
                "recordings": len(rows), "windows": sum(len(r) for r in recordings)}
        run_cross_validation(recordings, tcfg, out, ctx=ctx, info=info, resume=resume, kinetics=kinetics)
        if ctx.is_main:
            print(f"dualgait train: wrote {out / 'table.md'}, {out / 'metrics.json'} and fold*/best.pt; use a fold's "
                  f"model with --set inference.model.weights={out / 'fold1' / 'best.pt'} "
                  f"--set inference.crop.input_px={tcfg.input_px}", flush=True)
        return 0
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
        if ctx.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
