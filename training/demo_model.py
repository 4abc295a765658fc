"""The demo model: a small late-fusion model trained on synthetic walkers, built once and cached.

``dualgait demo`` uses it by default so that its scores mean something *within the simulation*: a
synthetic walker with spinal-deformity-like traits should score high and a normal one low. It is
never committed to the repository: the first demo builds it (simulate -> the live preprocessing ->
train, with progress bars, about 20 minutes on 2 CPU cores) into the cache, and later runs reuse it.
It knows nothing about real patients.

``python -m training.demo_model [--check N]`` builds it the same way (or finds it in the cache) and, with
``--check``, scores N fresh synthetic walkers of each class that it never saw, through the live
pipeline's own code: the check behind the numbers in docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dualgait.config import DualgaitConfig, with_overrides

__all__ = ["DEMO_RECIPE", "DemoRecipe", "WalkerScore", "check_demo_model", "demo_model_path", "ensure_demo_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoRecipe:
    """Everything that determines the demo model (its hash names the cache folder)."""

    subjects: int = 150
    seed: int = 7
    size_px: int = 320
    seconds: float = 6.0
    # ASD walkers show traits in both views: the demo shows what a fused model makes of a clear case
    trait_views: tuple[str, ...] = ("both",)
    variant: str = "late"
    width: int = 8
    input_px: int = 64
    # training windows every 0.5 s (twice the live rate): more, overlapping windows per walk
    window_stride_s: float = 0.5
    epochs_max: int = 15
    patience: int = 5
    lr: float = 5e-4  # from scratch and tiny: faster than the paper's 1e-4 for fine-tuning
    batch_size: int = 16
    val_fraction: float = 0.2
    augment: bool = True
    version: int = 3  # bump when the simulator or the training changes what this recipe produces

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
    print(f"dualgait: building the demo model once (synthetic walkers, {recipe.subjects} subjects; about 20 minutes "
          "on 2 cores); "
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
                                workers=min(2, os.cpu_count() or 1),  # same output for any worker count
                                progress=(lambda _s: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    rows = read_manifest(manifest)
    cfg = with_overrides(cfg, {"inference": {"crop": {"input_px": recipe.input_px},
                                             "window": {"stride_s": recipe.window_stride_s}}})
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


# --------------------------------------------------------------------------- check on unseen walkers


@dataclass(frozen=True, slots=True)
class WalkerScore:
    """One unseen synthetic walker scored by a model: what the demo's summary line would say."""

    participant_id: str
    asd: bool
    traits: str
    valid_windows: int
    windows: int
    cumulative_p_asd: float | None  # mean p_asd over valid windows (the aggregator's cumulative score)


def check_demo_model(cfg: DualgaitConfig, weights: str | Path, *, walkers_per_class: int, out_dir: str | Path,
                     seconds: float = DEMO_RECIPE.seconds, size_px: int = DEMO_RECIPE.size_px,
                     seed: int = 91_000) -> list[WalkerScore]:
    """Score fresh walkers (ASD with traits in both views, and normal) with the live pipeline's code.

    The walkers are rendered like ``dualgait demo --walker`` (the training walks' length and size: the
    side camera frames the whole walk, so a longer walk shows a smaller walker; seeds away from the
    training set) and go through :func:`inference.calibration.recording_clips` (pairing, 8 Hz sampling, YOLO
    tracker, crop, window rules, live stride) and the live model runner, in one process.
    """
    from inference.calibration import recording_clips
    from inference.detector import YoloDetector
    from inference.engines.factory import create_runner
    from inference.models import load_checkpoint
    from training.manifest import read_manifest
    from training.synthetic.dataset import generate_dataset
    from training.synthetic.subjects import make_subject

    spec = load_checkpoint(weights).spec
    cfg = with_overrides(cfg, {"inference": {"crop": {"input_px": spec.input_px},
                                             "model": {"weights": str(weights), "precision": "fp32"}}})
    specs = [make_subject(f"check-{'asd' if asd else 'normal'}-{i}", asd=asd, trait_view="both" if asd else None,
                          seed=seed + 2 * i + int(asd))
             for asd in (True, False) for i in range(walkers_per_class)]
    rows = read_manifest(generate_dataset(out_dir, subjects=specs, seed=seed, seconds=seconds, size_px=size_px,
                                          workers=min(2, os.cpu_count() or 1)))
    runner = create_runner(cfg.inference.model, input_px=spec.input_px, frames=spec.frames)
    # one tracker per view for every walker (loading one costs about 0.4 s); each walk's pipeline resets it
    detector = YoloDetector(cfg.inference.detector)
    scores = []
    for row in rows:
        clips = recording_clips(cfg, str(row.front), str(row.side), max_windows=10**6, detector=detector)
        p = [runner.predict(c)["p_asd"] for c in clips]
        # windows the live path would publish: one per stride over the walk (valid or not)
        total = int(seconds // cfg.inference.window.stride_s)
        scores.append(WalkerScore(row.participant_id, row.is_asd, ";".join(row.traits), len(p), total,
                                  sum(p) / len(p) if p else None))
    return scores


def main(argv: list[str] | None = None) -> int:
    """``python -m training.demo_model [--check N]``: build (or find) the demo model; optionally check it."""
    from dualgait.config import load_config
    from inference.detector import configure_ultralytics_env

    configure_ultralytics_env(Path(tempfile.gettempdir()) / "dualgait-ultralytics")  # offline and quiet, as the CLI
    parser = argparse.ArgumentParser(prog="python -m training.demo_model", description=main.__doc__)
    parser.add_argument("--config", help="YAML config (default: built-in)")
    parser.add_argument("--check", type=int, default=0, metavar="N",
                        help="also score N unseen synthetic walkers of each class and print the table")
    parser.add_argument("--check-dir", default=None, help="where to render the check walkers (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_config(args.config, [])
    path = ensure_demo_model(cfg)
    print(f"demo model: {path}")
    if args.check > 0:
        with tempfile.TemporaryDirectory(prefix="dualgait-check-") as tmp:
            scores = check_demo_model(cfg, path, walkers_per_class=args.check, out_dir=args.check_dir or tmp)
        print("| walker | traits | valid windows | cumulative p_asd |\n| --- | --- | --- | --- |")
        for s in scores:
            value = "n/a" if s.cumulative_p_asd is None else f"{s.cumulative_p_asd:.3f}"
            print(f"| {s.participant_id} | {s.traits or 'none'} | {s.valid_windows}/{s.windows} | {value} |")
        for asd in (True, False):
            values = [s.cumulative_p_asd for s in scores if s.asd == asd and s.cumulative_p_asd is not None]
            if values:
                print(f"{'ASD' if asd else 'normal'} walkers: mean cumulative p_asd {sum(values) / len(values):.3f}, "
                      f"range {min(values):.3f}-{max(values):.3f} (model trained on simulated walkers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
