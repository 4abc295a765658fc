"""Checkpoints carry their model spec; every broken file gets a one-line ModelLoadError naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inference.config import ModelConfig
from inference.engines.factory import load_model
from inference.errors import ModelLoadError
from inference.models import (
    ModelSpec,
    create_model,
    create_slow_r50,
    load_checkpoint,
    save_checkpoint,
    state_fingerprint,
)


@pytest.fixture(scope="module")
def early_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    spec = ModelSpec(variant="early", input_px=112, frames=8)
    model = spec.build()
    path = tmp_path_factory.mktemp("ckpt") / "early.pt"
    save_checkpoint(path, model, spec, meta={"synthetic": True, "epoch": 4})
    return path


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and len(text) < 400
    return text


def test_round_trip_rebuilds_the_model_from_the_file_alone(early_ckpt: Path) -> None:
    ckpt = load_checkpoint(early_ckpt)
    assert ckpt.spec == ModelSpec(variant="early", input_px=112, frames=8)
    assert ckpt.meta == {"synthetic": True, "epoch": 4}
    assert ckpt.model.variant == "early" and not ckpt.model.training
    torch.manual_seed(3)
    original = ModelSpec(variant="early").build()
    assert state_fingerprint(ckpt.model, ckpt.spec) == state_fingerprint(original, ckpt.spec)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(ckpt.model(x, x), original.eval()(x, x))


def test_load_model_follows_the_checkpoint_and_checks_the_pipeline_input(early_ckpt: Path) -> None:
    loaded = load_model(ModelConfig(weights=str(early_ckpt)), input_px=112, frames=8)
    assert loaded.spec.variant == "early" and not loaded.untrained and loaded.synthetic
    with pytest.raises(ModelLoadError, match=r"trained on 8 frames of 112 px but the pipeline makes 8 of 224 px") as e:
        load_model(ModelConfig(weights=str(early_ckpt)), input_px=224, frames=8)
    _one_line(e)
    with pytest.raises(ModelLoadError, match=r"holds a 'early' model but model.variant is 'late'"):
        load_model(ModelConfig(weights=str(early_ckpt), variant="late"), input_px=112, frames=8)


def test_untrained_model_is_seeded_and_labelled() -> None:
    a = load_model(ModelConfig(variant="single_side", seed=5), input_px=224, frames=8)
    b = load_model(ModelConfig(variant="single_side", seed=5), input_px=224, frames=8)
    assert a.untrained and a.source == "untrained, random init seed 5"
    assert a.fingerprint() == b.fingerprint()
    assert load_model(ModelConfig(), input_px=224, frames=8).spec.variant == "late"


def test_truncated_checkpoint(early_ckpt: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(early_ckpt.read_bytes()[: early_ckpt.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="cannot read checkpoint") as e:
        load_checkpoint(cut)
    assert "cut.pt" in _one_line(e)


@pytest.mark.parametrize(("payload", "message"), [
    ({"format": "other"}, "is not a dualgait checkpoint"),
    ({"model_state": {"blocks.0.conv.weight": torch.zeros(1)}}, "looks like a Kinetics slow_r50 file"),
    ({"format": "dualgait-checkpoint", "format_version": 9}, "format version 9"),
    ({"format": "dualgait-checkpoint", "format_version": 1, "spec": {"variant": "mid"}, "model": {}},
     "bad model spec: unknown model variant 'mid'"),
    ({"format": "dualgait-checkpoint", "format_version": 1, "spec": {"variant": "late", "colour": 1}, "model": {}},
     "bad model spec"),
    ({"format": "dualgait-checkpoint", "format_version": 1, "spec": {"variant": "late"}}, "carries no model weights"),
])
def test_wrong_checkpoint_contents(tmp_path: Path, payload: dict, message: str) -> None:
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    with pytest.raises(ModelLoadError, match=message) as e:
        load_checkpoint(path)
    _one_line(e)


def test_mismatched_weights_are_named(tmp_path: Path) -> None:
    """Weights of one variant under another's spec: the first missing/unexpected/mis-shaped key is named."""
    late = create_model(variant="late")
    path = tmp_path / "late-as-slow.pt"
    torch.save({"format": "dualgait-checkpoint", "format_version": 1, "spec": {"variant": "slow"},
                "model": late.state_dict(), "meta": {}}, path)
    with pytest.raises(ModelLoadError, match=r"\(slow\): missing weight 'classifier.weight'"):
        load_checkpoint(path)
    # a 6-channel stem where a 3-channel one belongs: a shape error naming the key
    single = create_model(variant="single_front")
    state = single.state_dict()
    state["backbone.blocks.0.conv.weight"] = torch.zeros(64, 6, 1, 7, 7)
    torch.save({"format": "dualgait-checkpoint", "format_version": 1, "spec": {"variant": "single_front"},
                "model": state, "meta": {}}, path)
    with pytest.raises(ModelLoadError, match=r"'backbone.blocks.0.conv.weight' has shape \(64, 6, 1, 7, 7\)"):
        load_checkpoint(path)


def test_missing_and_pickled_code_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    evil = tmp_path / "evil.pt"
    torch.save({"format": "dualgait-checkpoint", "obj": Path("x")}, evil)  # an arbitrary pickled class
    with pytest.raises(ModelLoadError, match="pickled code, which is refused"):
        load_checkpoint(evil)


def test_save_refuses_a_spec_that_does_not_describe_the_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model is 'early' but spec says 'late'"):
        save_checkpoint(tmp_path / "x.pt", create_model(variant="early"), ModelSpec(variant="late"))
    assert not (tmp_path / "x.pt").exists()


def test_kinetics_backbone_checkpoint_is_a_slow_r50_state(tmp_path: Path) -> None:
    from inference.models import load_kinetics_state

    r50 = create_slow_r50()
    path = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": r50.state_dict(), "epoch": 196}, path)
    state = load_kinetics_state(path)
    assert set(state) == set(r50.state_dict())
    torch.save({"weights": 1}, path)
    with pytest.raises(ModelLoadError, match="not a slow_r50 state dict"):
        load_kinetics_state(path)
