"""The demo model: a small late-fusion model trained on synthetic walkers, built once and cached.

``dualgait demo`` uses it by default so that its scores mean something *within the simulation*: a
synthetic walker with spinal-deformity-like traits should score high and a normal one low. It is
never committed to the repository: the first demo builds it (simulate -> the live preprocessing ->
train, with progress bars, a few minutes on 2 CPU cores) into the cache, and later runs reuse it.
It knows nothing about real patients.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dualgait.config import DualgaitConfig, with_overrides

__all__ = ["DEMO_RECIPE", "DemoRecipe", "demo_model_path", "ensure_demo_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoRecipe:
    """Everything that determines the demo model (its hash names the cache folder)."""

    subjects: int = 40
    seed: int = 7
    size_px: int = 320
    seconds: float = 6.0
    # ASD walkers show traits in both views: the demo shows what a fused model makes of a clear case
    trait_views: tuple[str, ...] = ("both",)
    variant: str = "late"
    width: int = 8
    input_px: int = 112
    epochs_max: int = 30
    patience: int = 6
    lr: float = 5e-4  # from scratch and tiny: faster than the paper's 1e-4 for fine-tuning
    batch_size: int = 8
    val_fraction: float = 0.25
    augment: bool = True
    version: int = 2  # bump when the simulator or the training changes what this recipe produces

    def key(self) -> str:
        import hashlib

        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


DEMO_RECIPE = DemoRecipe()


def demo_model_path(cache_dir: str | Path, recipe: DemoRecipe = DEMO_RECIPE) -> Path:
    return Path(cache_dir).expanduser() / "demo-model" / recipe.key() / "best.pt"


def ensure_demo_model(cfg: DualgaitConfig, *, recipe: DemoRecipe = DEMO_RECIPE, progress: bool = True) -> Path:
    """The cached demo checkpoint, built first if missing. Returns its path."""
    path = demo_model_path(cfg.inference.model.cache_dir, recipe)
    if path.is_file():
        return path
    print(f"dualgait: building the demo model once (synthetic walkers, {recipe.subjects} subjects; a few minutes); "
          f"it is cached in {path.parent}", flush=True)
    t0 = time.perf_counter()
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=path.parent.parent))
    try:
        info = _build(cfg, recipe, work, progress=progress)
        (work / "model" / "recipe.json").write_text(json.dumps({"recipe": asdict(recipe), **info}, indent=1) + "\n")
        try:
            (work / "model").rename(path.parent)
        except OSError:  # built concurrently by another process
            if not path.is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"dualgait: demo model ready in {time.perf_counter() - t0:.0f} s: {path}", flush=True)
    return path


def _build(cfg: DualgaitConfig, recipe: DemoRecipe, work: Path, *, progress: bool) -> dict[str, Any]:
    import torch

    from training.data import load_windows
    from training.folds import Fold, make_folds, participant_labels
    from training.manifest import read_manifest
    from training.synthetic.dataset import generate_dataset
    from training.train import seed_everything, train_fold

    bar = _bar(recipe.subjects, "simulating walkers") if progress else None
    manifest = generate_dataset(work / "walkers", subjects=recipe.subjects, seed=recipe.seed, size_px=recipe.size_px,
                                seconds=recipe.seconds, trait_views=recipe.trait_views,
                                progress=(lambda _s: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    rows = read_manifest(manifest)
    cfg = with_overrides(cfg, {"inference": {"crop": {"input_px": recipe.input_px}}})
    tcfg = replace(cfg.training, variant=recipe.variant, width=recipe.width, input_px=recipe.input_px,
                   epochs_max=recipe.epochs_max, patience=recipe.patience, lr=recipe.lr,
                   batch_size=recipe.batch_size, seed=recipe.seed, device="cpu", pretrained=None,
                   augment=recipe.augment,
                   cache_dir=str(work / "windows"), folds=max(2, round(1 / recipe.val_fraction)))
    recordings = load_windows(rows, cfg, tcfg, progress=progress)
    labels = participant_labels((r.participant_id, r.label) for r in recordings if len(r))
    split = make_folds(labels, folds=tcfg.folds, seed=recipe.seed)[0]
    seed_everything(recipe.seed)
    threads = torch.get_num_threads()
    meta = {"synthetic": True, "trained_by": "training.demo_model", "recipe": asdict(recipe),
            "note": "trained on simulated walkers only; says nothing about real patients"}
    result = train_fold(Fold(index=1, train=split.train, val=split.val), recordings, tcfg, work, meta=meta,
                        progress=progress)
    torch.set_num_threads(threads)
    (work / "model").mkdir()
    shutil.move(str(work / "fold1" / "best.pt"), work / "model" / "best.pt")
    validation = {"best_epoch": result["best_epoch"], "val_loss": result["best_val_loss"],
                  "window_metrics": result["window"], "participant_metrics": result["participant"],
                  "val_participants": list(split.val)}
    log.info("demo model: best epoch %d, validation %s", result["best_epoch"], result["window"])
    return {"validation": validation, "windows": sum(len(r) for r in recordings), "participants": len(labels)}


def _bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="walker")
