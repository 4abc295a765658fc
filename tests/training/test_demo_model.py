"""The demo model is built once from synthetic walkers, cached, labelled synthetic, and loads for inference."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualgait.config import load_config
from inference.engines.factory import create_runner
from inference.models import load_checkpoint
from training.demo_model import DemoRecipe, check_demo_model, demo_model_path, ensure_demo_model

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
