"""The demo model: built from synthetic walkers, shipped in the package while it matches its recipe, labelled
synthetic, and loads for inference."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from dualgait.config import load_config
from inference.engines.factory import create_runner
from inference.models import load_checkpoint
from training.demo_model import (
    DEMO_RECIPE,
    DEMO_RECIPES,
    PACKAGED_DIR,
    SIDE_DEMO_RECIPE,
    DemoRecipe,
    check_demo_model,
    demo_model_path,
    demo_recipe_for,
    ensure_demo_model,
    find_demo_model,
    packaged_demo_model,
    packaged_info,
    write_packaged_demo_model,
)

TINY = DemoRecipe(subjects=6, seconds=2.5, size_px=256, width=4, input_px=32, epochs_max=2, patience=1,
                  batch_size=4, val_fraction=0.5)


@pytest.mark.e2e
def test_demo_model_is_built_once_and_labelled_synthetic(tmp_path: Path, assets: Path) -> None:
    cfg = load_config(None, [f"inference.model.cache_dir={tmp_path}",
                             f"inference.detector.weights={assets / 'weights' / 'yolo11n_int8_openvino_model'}"])
    path = ensure_demo_model(cfg, recipe=TINY, progress=False)
    assert path == demo_model_path(tmp_path, TINY) and path.is_file()
    assert (path.parent / "recipe.json").is_file()
    assert not list(path.parent.parent.glob(".build-*"))  # the work folder is gone
    ckpt = load_checkpoint(path)
    assert ckpt.meta["synthetic"] is True
    assert (ckpt.spec.variant, ckpt.spec.width, ckpt.spec.input_px) == ("late", 4, 32)
    mtime = path.stat().st_mtime_ns
    assert ensure_demo_model(cfg, recipe=TINY, progress=False) == path and path.stat().st_mtime_ns == mtime
    runner = create_runner(load_config(None, [f"inference.model.weights={path}", "inference.model.precision=fp32"])
                           .inference.model, input_px=32, frames=8)
    assert runner.synthetic and not runner.untrained
    assert "trained on simulated walkers" in runner.description
    assert DemoRecipe().key() != TINY.key()

    # the check on unseen walkers runs the live pipeline's code on one walker of each class
    scores = check_demo_model(cfg, path, walkers_per_class=1, out_dir=tmp_path / "check", seconds=2.5)
    assert [(s.participant_id, s.asd) for s in scores] == [("check-asd-0", True), ("check-normal-0", False)]
    assert scores[0].traits and not scores[1].traits
    for s in scores:
        assert s.windows == 2 and 0 <= s.valid_windows <= s.windows
        assert s.cumulative_p_asd is None or 0.0 <= s.cumulative_p_asd <= 1.0
    assert any(s.valid_windows for s in scores)


# --------------------------------------------------------------------------- the shipped copy


@pytest.mark.parametrize("variant", sorted(DEMO_RECIPES))
def test_shipped_demo_model_matches_its_recipe(variant: str) -> None:
    """Fails when a demo recipe changes (or the file does) and the shipped checkpoint was not rebuilt from it: the
    late-fusion one (two cameras) and the single_side one (one side camera)."""
    recipe = DEMO_RECIPES[variant]
    name = "demo_model.pt" if variant == "late" else f"demo_model_{variant}.pt"
    info = packaged_info(recipe=recipe)
    command = f"python -m training.demo_model --variant {variant} --package"
    assert info is not None, f"no shipped demo model: build it with {command}"
    rebuild = f"the recipe changed: rebuild the shipped copy with {command}"
    assert info["key"] == recipe.key(), rebuild
    assert info["recipe"] == json.loads(json.dumps(asdict(recipe))), rebuild
    path = PACKAGED_DIR / name
    assert path.stat().st_size == info["bytes"] <= 5 * 1024 * 1024
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"]
    ckpt = load_checkpoint(path)
    assert json.dumps(ckpt.meta["recipe"], sort_keys=True) == json.dumps(asdict(recipe), sort_keys=True)
    assert ckpt.meta["synthetic"] is True and ckpt.meta["trained_by"] == "training.demo_model"
    assert (ckpt.spec.variant, ckpt.spec.width, ckpt.spec.input_px) == (recipe.variant, recipe.width,
                                                                        recipe.input_px)
    assert packaged_demo_model(recipe) == path
    assert packaged_demo_model(TINY) is None  # another recipe is never served the shipped weights


def test_demo_uses_the_shipped_copy_and_builds_nothing(tmp_path: Path) -> None:
    cfg = load_config(None, [f"inference.model.cache_dir={tmp_path / 'cache'}"])
    assert find_demo_model(cfg) == (PACKAGED_DIR / "demo_model.pt", "packaged")
    assert ensure_demo_model(cfg, progress=False) == PACKAGED_DIR / "demo_model.pt"
    side = demo_recipe_for(("side",))
    assert side == SIDE_DEMO_RECIPE and demo_recipe_for(("front", "side")) == DEMO_RECIPE
    # found first: a missing shipped copy fails here at once instead of building one for a quarter of an hour
    assert find_demo_model(cfg, side) == (PACKAGED_DIR / "demo_model_single_side.pt", "packaged")
    assert ensure_demo_model(cfg, recipe=side, progress=False) == PACKAGED_DIR / "demo_model_single_side.pt"
    assert not (tmp_path / "cache").exists()
    assert find_demo_model(cfg, TINY) is None  # a recipe with no copy anywhere: it would be built
    with pytest.raises(ValueError, match="no demo model for the front view alone"):
        demo_recipe_for(("front",))


def test_package_refuses_a_model_of_another_recipe(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not built from this recipe"):
        write_packaged_demo_model(PACKAGED_DIR / "demo_model.pt", TINY, packaged_dir=tmp_path)


@pytest.mark.e2e
def test_shipped_demo_model_tells_unseen_walkers_apart(tmp_path: Path, assets: Path) -> None:
    """What docs/training.md shows it can tell apart, on one unseen walker of each class (live pipeline code)."""
    cfg = load_config(None, [f"inference.detector.weights={assets / 'weights' / 'yolo11n_int8_openvino_model'}"])
    asd, normal = check_demo_model(cfg, PACKAGED_DIR / "demo_model.pt", walkers_per_class=1, out_dir=tmp_path)
    assert asd.asd and not normal.asd
    assert asd.valid_windows >= 4 and normal.valid_windows >= 4
    assert asd.cumulative_p_asd > 0.8 and normal.cumulative_p_asd < 0.3
