"""Engine parity against PyTorch fp32 on real windows of the shared recording, caching, and the runner.

Tolerances (inference.engines.parity.TOLERANCES, max |dp| over windows and output columns):
fp32 1e-4, fp16 1e-2, bf16 3e-2, int8 6e-2; the decision at 0.5 must agree on every window.
The models are random but given trained-like statistics (make_realistic), so errors show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inference.config import ModelConfig
from inference.engines import EngineError, ModelRunner, preprocess
from inference.engines.factory import build_engine, load_model
from inference.engines.parity import TOLERANCES, compare_engines, make_realistic
from inference.engines.torch_engine import TorchEngine

VIEWS = ("front", "side")


@pytest.fixture(scope="module")
def windows(assets: Path) -> list[list[np.ndarray]]:
    """Six real windows (tracker + crop of the live path), one (1, 3, 8, 224, 224) array per view."""
    from dualgait.config import load_config
    from offline.clips import recording_windows

    cfg = load_config()
    threads = torch.get_num_threads()
    front, side = assets / "videos" / "walk_front.mp4", assets / "videos" / "walk_side.mp4"
    wins = recording_windows(cfg, str(front), str(side), max_windows=6, views=VIEWS)
    assert torch.get_num_threads() == threads  # recording_windows restores what Ultralytics changed
    assert len(wins) == 6
    return wins


def _for(views: tuple[str, ...], wins: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    return [[w[VIEWS.index(v)] for v in views] for w in wins]


@pytest.fixture(scope="module")
def single(windows, tmp_path_factory):
    """A single-view model per input size: 112 px (a quarter of 224's work, still the real windows' content) for
    the float engines; int8 at the live 224 px, where its tolerance was set (at 112 px its error is 0.065)."""
    made = {}

    def at(px: int):
        if px not in made:
            cfg = ModelConfig(variant="single_front", cache_dir=str(tmp_path_factory.mktemp(f"cache{px}")))
            loaded = load_model(cfg, input_px=px, frames=8)
            make_realistic(loaded.model, _for(loaded.model.views, _downsample(windows[:4], px)))
            made[px] = loaded, cfg
        return made[px]

    return at


@pytest.mark.parametrize(("engine", "precision"), [
    ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"), ("onnxruntime", "fp32"), ("openvino", "int8"),
])
def test_cpu_engine_parity_single_view(single, windows, engine: str, precision: str) -> None:
    px = 224 if precision == "int8" else 112
    loaded, base = single(px)
    wins = _for(loaded.model.views, _downsample(windows, px))
    cfg = ModelConfig(variant="single_front", engine=engine, precision=precision, cache_dir=base.cache_dir)
    candidate = build_engine(loaded, cfg, calibration=wins[:4] if precision == "int8" else None)
    reference = TorchEngine(loaded.model, precision="fp32")
    report = compare_engines(reference, candidate, wins, precision=precision)
    assert report.passed, report.line()
    assert report.tolerance == TOLERANCES[precision]
    ref = np.concatenate([reference.infer(w) for w in wins])[:, 0]
    assert ref.max() - ref.min() > 1e-3 and np.all(np.abs(ref - 0.5) > 0.1)  # outputs that can disagree


def _downsample(wins: list[list[np.ndarray]], px: int) -> list[list[np.ndarray]]:
    """(1, 3, T, 224, 224) -> (1, 3, T, px, px), area-averaged (keeps the test fast; still real content)."""
    if px == wins[0][0].shape[-1]:
        return wins
    return [[torch.nn.functional.interpolate(torch.from_numpy(a), size=(a.shape[2], px, px), mode="area").numpy()
             for a in w] for w in wins]


def test_late_fusion_parity_and_dynamic_batch(windows, tmp_path: Path) -> None:
    """Late fusion through ONNX: ONNX Runtime and OpenVINO fp32 match torch; batch 3 == three batches of 1."""
    windows = _downsample(windows, 112)
    cfg = ModelConfig(variant="late", engine="onnxruntime", precision="fp32", cache_dir=str(tmp_path))
    loaded = load_model(cfg, input_px=112, frames=8)
    make_realistic(loaded.model, windows[:4])
    reference = TorchEngine(loaded.model, precision="fp32")
    ort = build_engine(loaded, cfg)
    assert compare_engines(reference, ort, windows[:3], precision="fp32").passed
    ov = build_engine(loaded, ModelConfig(variant="late", engine="openvino", precision="fp32", cache_dir=str(tmp_path)))
    assert compare_engines(reference, ov, windows[:3], precision="fp32").passed
    batch = [np.concatenate([w[i] for w in windows[:3]]) for i in range(2)]  # (3, 3, 8, 112, 112) per view
    one_by_one = np.concatenate([ort.infer(w) for w in windows[:3]])
    np.testing.assert_allclose(ort.infer(batch), one_by_one, atol=1e-5)
    np.testing.assert_allclose(ov.infer(batch), one_by_one, atol=1e-4)
    out = ort.infer(windows[0])
    assert out.shape == (1, 3) and abs(out[0, 0] - out[0, 1:].mean()) < 1e-6  # p_asd = mean of the views


def test_onnx_and_int8_artifacts_are_cached(single, windows) -> None:
    loaded, base = single(224)
    root = Path(base.cache_dir)
    cfg = ModelConfig(variant="single_front", engine="openvino", precision="int8", cache_dir=base.cache_dir)
    build_engine(loaded, cfg, calibration=_for(("front",), windows[:4]))
    entries = {p.parent.parent.name: p.stat().st_mtime_ns for p in root.glob("*/*/key.json")}
    assert set(entries) >= {"onnx", "openvino-int8"}
    build_engine(loaded, cfg)  # no calibration needed: the int8 model is in the cache
    assert {p.parent.parent.name: p.stat().st_mtime_ns for p in root.glob("*/*/key.json")} == entries
    assert not list(root.glob("*/.build-*"))


def test_int8_without_a_cached_model_says_how_to_build_it(tmp_path: Path) -> None:
    cfg = ModelConfig(variant="single_side", engine="openvino", precision="int8", cache_dir=str(tmp_path))
    loaded = load_model(cfg, input_px=64, frames=8)
    with pytest.raises(EngineError, match="dualgait export --format openvino --precision int8"):
        build_engine(loaded, cfg)


def test_preprocess_flips_bgr_and_normalises() -> None:
    clip = np.zeros((8, 4, 4, 3), dtype=np.uint8)
    clip[..., 0] = 255  # blue in BGR
    x = preprocess(clip)
    assert x.shape == (1, 3, 8, 4, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 2], (1.0 - 0.45) / 0.225, rtol=1e-6)  # RGB channel 2 = blue
    np.testing.assert_allclose(x[0, 0], (0.0 - 0.45) / 0.225, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\) uint8"):
        preprocess(clip.astype(np.float32))


def test_runner_names_outputs_and_feeds_only_the_models_views() -> None:
    cfg = ModelConfig(variant="gated", engine="torch", precision="fp32")
    loaded = load_model(cfg, input_px=64, frames=8)
    runner = ModelRunner(build_engine(loaded, cfg), spec=loaded.spec, untrained=True, source=loaded.source)
    rng = np.random.default_rng(0)
    clips = {v: rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8) for v in VIEWS}
    out = runner.predict(clips)
    assert list(out) == ["p_asd", "p_front", "p_side", "w_front", "w_side"]
    assert abs(out["w_front"] + out["w_side"] - 1) < 1e-6
    assert runner.description == "gated fusion, 64px, T=8, torch-cpu-fp32 (untrained, random init seed 0)"
    side_only = load_model(ModelConfig(variant="single_side", precision="fp32"), input_px=64, frames=8)
    runner = ModelRunner(build_engine(side_only, ModelConfig(variant="single_side", engine="torch", precision="fp32")),
                         spec=side_only.spec, untrained=True)
    assert list(runner.predict({"side": clips["side"]})) == ["p_asd"]  # no front clip needed
