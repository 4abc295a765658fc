"""The demo model: a small late-fusion model trained on synthetic walkers, built once and cached.

``dualgait demo`` uses it by default so that its scores mean something *within the simulation*: a
synthetic walker with spinal-deformity-like traits should score high and a normal one low. It knows
nothing about real patients.

Building it (simulate -> the live preprocessing -> train) takes about 25 minutes on 2 CPU cores, so the
package ships it: ``training/packaged/demo_model.pt`` (about 4 MB, the one exception to "no weights in the
repository") with ``demo_model.json``, which records the recipe it was built from, its key and the file's
sha256. It is used only while its recorded recipe key equals :data:`DEMO_RECIPE`'s; after a recipe change
the demo builds the new model once into the cache (``inference.model.cache_dir``/demo-model/<key>/), and
``tests/training/test_demo_model.py`` fails until the shipped copy is rebuilt with
``python -m training.demo_model --package``.

``python -m training.demo_model [--rebuild] [--package] [--check N]`` finds (or builds) it; ``--rebuild``
builds it from scratch even when a copy exists, ``--package`` writes the shipped copy, and ``--check``
scores N fresh synthetic walkers of each class that it never saw, through the live pipeline's own code:
the check behind the numbers in docs/training.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capture.synthetic.demo_walker import DEMO_WALK_SECONDS, DEMO_WALK_SIZE_PX
from core.configtools import with_overrides

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

__all__ = ["DEMO_RECIPE", "DEMO_RECIPES", "PACKAGED_DIR", "SIDE_DEMO_RECIPE", "DemoRecipe", "WalkerScore",
           "check_demo_model", "demo_model_path", "demo_recipe_for", "ensure_demo_model", "find_demo_model",
           "packaged_demo_model", "write_packaged_demo_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoRecipe:
    """Everything that determines the demo model (its hash names the cache folder)."""

    subjects: int = 150
    seed: int = 7
    size_px: int = DEMO_WALK_SIZE_PX  # the demo walker's (dualgait demo --walker) length and size
    seconds: float = DEMO_WALK_SECONDS
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
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


DEMO_RECIPE = DemoRecipe()
# the single-view demo model (one side camera, the most common gait set-up): the same walkers and training, the
# side view's backbone only (the paper's single-view baseline)
SIDE_DEMO_RECIPE = DemoRecipe(variant="single_side")
DEMO_RECIPES: dict[str, DemoRecipe] = {"late": DEMO_RECIPE, "single_side": SIDE_DEMO_RECIPE}


def demo_recipe_for(views: tuple[str, ...]) -> DemoRecipe:
    """The demo model for the cameras present: both views -> late fusion, the side view alone -> single_side."""
    if tuple(views) == ("side",):
        return SIDE_DEMO_RECIPE
    if set(views) == {"front", "side"}:
        return DEMO_RECIPE
    raise ValueError(f"no demo model for the {' + '.join(views)} view alone: the demo models are late fusion "
                     "(front + side) and single_side; give a model with --set inference.model.weights=...")


PACKAGED_DIR = Path(__file__).resolve().parent / "packaged"


def _packaged_names(recipe: DemoRecipe) -> tuple[str, str]:
    """The shipped copy's model and info file names: demo_model.pt/.json for late fusion, else per variant."""
    stem = "demo_model" if recipe.variant == "late" else f"demo_model_{recipe.variant}"
    return f"{stem}.pt", f"{stem}.json"


def demo_model_path(cache_dir: str | Path, recipe: DemoRecipe = DEMO_RECIPE) -> Path:
    """Where the cache keeps the demo model of ``recipe`` (built there when the shipped copy does not fit)."""
    return Path(cache_dir).expanduser() / "demo-model" / recipe.key() / "best.pt"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_info(packaged_dir: Path = PACKAGED_DIR, recipe: DemoRecipe = DEMO_RECIPE) -> dict[str, Any] | None:
    """What the shipped copy's ``demo_model*.json`` says (recipe, key, sha256, validation), None when absent."""
    try:
        return json.loads((packaged_dir / _packaged_names(recipe)[1]).read_text())
    except (OSError, ValueError):
        return None


def packaged_demo_model(recipe: DemoRecipe = DEMO_RECIPE, packaged_dir: Path = PACKAGED_DIR) -> Path | None:
    """The shipped demo model when it was built from ``recipe`` (its recorded key matches), else None."""
    info = packaged_info(packaged_dir, recipe)
    path = packaged_dir / _packaged_names(recipe)[0]
    if info is None or info.get("key") != recipe.key() or not path.is_file():
        return None
    return path


def find_demo_model(cfg: DualgaitConfig, recipe: DemoRecipe = DEMO_RECIPE) -> tuple[Path, str] | None:
    """``(path, "packaged" | "cache")`` of a demo model built from ``recipe``, or None when it must be built."""
    packaged = packaged_demo_model(recipe)
    if packaged is not None:
        return packaged, "packaged"
    cached = demo_model_path(cfg.inference.model.cache_dir, recipe)
    return (cached, "cache") if cached.is_file() else None


def ensure_demo_model(cfg: DualgaitConfig, *, recipe: DemoRecipe = DEMO_RECIPE, progress: bool = True,
                      rebuild: bool = False) -> Path:
    """The demo checkpoint of ``recipe``: the shipped copy, else the cached one, else built into the cache first.

    ``rebuild``: build it again (into the cache) even when a copy exists.
    """
    found = None if rebuild else find_demo_model(cfg, recipe)
    if found is not None:
        return found[0]
    from inference.engines.cache import check_cache_dir

    path = demo_model_path(check_cache_dir(cfg.inference.model.cache_dir), recipe)
    if rebuild and path.parent.exists():
        shutil.rmtree(path.parent)
    print(f"dualgait: building the demo model once (synthetic walkers, {recipe.subjects} subjects; about 25 minutes "
          "on 2 cores); "
          f"it is cached in {path.parent}", flush=True)
    t0 = time.perf_counter()
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=path.parent.parent))
    try:
        info = _build(cfg, recipe, work, progress=progress)
        info["build_s"] = round(time.perf_counter() - t0, 1)
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


def write_packaged_demo_model(built: Path, recipe: DemoRecipe = DEMO_RECIPE,
                              packaged_dir: Path = PACKAGED_DIR) -> Path:
    """Copy a demo model built from ``recipe`` (its ``best.pt``, beside its ``recipe.json``) to the shipped copy."""
    from inference.models import load_checkpoint

    meta = load_checkpoint(built).meta
    if json.dumps(meta.get("recipe"), sort_keys=True) != json.dumps(asdict(recipe), sort_keys=True):
        raise ValueError(f"{built} was not built from this recipe (key {recipe.key()})")
    built_info = json.loads((built.parent / "recipe.json").read_text())
    packaged_dir.mkdir(parents=True, exist_ok=True)
    model_name, info_name = _packaged_names(recipe)
    target = packaged_dir / model_name
    shutil.copyfile(built, target)
    info = {"key": recipe.key(), "recipe": asdict(recipe), "sha256": _sha256(target), "bytes": target.stat().st_size,
            "built_by": "python -m training.demo_model --package",
            **{k: v for k, v in built_info.items() if k != "recipe"}}
    (packaged_dir / info_name).write_text(json.dumps(info, indent=1) + "\n")
    return target


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
    training set) and go through :func:`offline.clips.recording_clips` (pairing, 8 Hz sampling, YOLO
    tracker, crop, window rules, live stride) and the live model runner, in one process.
    """
    from capture.synthetic.subjects import make_subject
    from inference.detector import YoloDetector
    from inference.engines.factory import create_runner
    from inference.models import checkpoint_spec
    from inference.variants import variant_views
    from offline.clips import recording_clips
    from training.manifest import read_manifest
    from training.synthetic.dataset import generate_dataset

    spec = checkpoint_spec(weights)
    views = variant_views(spec.variant)
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
        # the model's cameras: a single-view model's walker goes through the single-view pipeline
        front, side = (str(row.front) if "front" in views else None), (str(row.side) if "side" in views else None)
        clips = recording_clips(cfg, front, side, max_windows=10**6, detector=detector)
        p = [runner.predict(c)["p_asd"] for c in clips]
        # windows the live path would publish: one per stride over the walk (valid or not)
        total = int(seconds // cfg.inference.window.stride_s)
        scores.append(WalkerScore(row.participant_id, row.is_asd, ";".join(row.traits), len(p), total,
                                  sum(p) / len(p) if p else None))
    return scores


def main(argv: list[str] | None = None, *, load_config: Callable[[str | None, list[str]], DualgaitConfig]) -> int:
    """``python -m training.demo_model [--variant V] [--rebuild] [--package] [--check N]``: find or build a demo model.

    ``load_config``: the app's (dualgait.config.load_config), handed over by the ``__main__`` entry point.
    """
    from inference.detector import configure_ultralytics_env

    configure_ultralytics_env(Path(tempfile.gettempdir()) / "dualgait-ultralytics")  # offline and quiet, as the CLI
    parser = argparse.ArgumentParser(prog="python -m training.demo_model", description=main.__doc__)
    parser.add_argument("--config", help="YAML config (default: built-in)")
    parser.add_argument("--variant", choices=sorted(DEMO_RECIPES), default="late",
                        help="which demo model: late (front + side, the default) or single_side (one side camera)")
    parser.add_argument("--rebuild", action="store_true",
                        help="build it from scratch (about 25 minutes on 2 cores) even when a copy exists")
    parser.add_argument("--package", action="store_true",
                        help=f"write the built model to the package's shipped copy ({PACKAGED_DIR})")
    parser.add_argument("--check", type=int, default=0, metavar="N",
                        help="also score N unseen synthetic walkers of each class and print the table")
    parser.add_argument("--check-dir", default=None, help="where to render the check walkers (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_config(args.config, [])
    recipe = DEMO_RECIPES[args.variant]
    cached = demo_model_path(cfg.inference.model.cache_dir, recipe)
    if args.package and not args.rebuild and cached.is_file():  # the shipped copy comes from a build
        path = cached
    elif args.package:
        path = ensure_demo_model(cfg, recipe=recipe, rebuild=True)
    else:
        path = ensure_demo_model(cfg, recipe=recipe, rebuild=args.rebuild)
    print(f"demo model: {path}")
    if args.package:
        print(f"shipped copy written: {write_packaged_demo_model(path, recipe)}")
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


if __name__ == "__main__":  # run as a program: an entry point of the app, which owns the whole config
    from dualgait.config import load_config

    raise SystemExit(main(load_config=load_config))
