"""ModelRunner.predict_batch: one engine call for many windows gives what one call per window gives.

Also: the bucket sizes, padding to them (padded rows never reach the result and change no real
row), chunking above max_batch, and warm-up of every bucket. Models are width-reduced late fusion
at 64 px with trained-like statistics (make_realistic), so windows give visibly different outputs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.config import ModelConfig
from inference.engines import ModelRunner, batch_buckets, preprocess, preprocess_batch
from inference.engines.factory import LoadedModel, build_engine
from inference.engines.parity import make_realistic
from inference.engines.torch_engine import TorchEngine
from inference.models.checkpoint import ModelSpec

PX, FRAMES = 64, 8
SPEC = ModelSpec(variant="late", input_px=PX, frames=FRAMES, width=16)


def _windows(n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """n windows, view -> (T, H, W, 3) uint8 BGR, differing in brightness and contrast."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        level, spread = 40 + 170 * i / max(n - 1, 1), 20 + 10 * (i % 4)
        out.append({v: np.clip(rng.normal(level, spread, (FRAMES, PX, PX, 3)), 0, 255).astype(np.uint8)
                    for v in ("front", "side")})
    return out


@pytest.fixture(scope="module")
def late_small() -> LoadedModel:
    torch.manual_seed(0)
    model = SPEC.build().eval()
    make_realistic(model, [[preprocess(w[v]) for v in model.views] for w in _windows(6, seed=1)])
    return LoadedModel(model, SPEC, untrained=True, source="test")


class _Spy:
    """An engine wrapper that records the batch size of every call."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.views, self.output_names, self.name = engine.views, engine.output_names, engine.name
        self.static_shapes = getattr(engine, "static_shapes", True)
        self.batches: list[int] = []

    def infer(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        self.batches.append(inputs[0].shape[0])
        return self.engine.infer(inputs)


def _runner(engine, **kwargs) -> ModelRunner:
    return ModelRunner(engine, spec=SPEC, untrained=True, **kwargs)


def _table(results: Sequence[Mapping[str, float]]) -> np.ndarray:
    return np.array([list(r.values()) for r in results])  # (N, K)


def test_batch_buckets() -> None:
    assert batch_buckets(1) == (1,)
    assert batch_buckets(2) == (1, 2)
    assert batch_buckets(8) == (1, 2, 4, 8)
    assert batch_buckets(12) == (1, 2, 4, 8, 12)
    assert batch_buckets(16) == (1, 2, 4, 8, 16)
    with pytest.raises(ValueError):
        batch_buckets(0)


def test_runner_buckets_follow_max_batch_and_the_engine(late_small: LoadedModel) -> None:
    engine = TorchEngine(late_small.model, precision="fp32")
    assert not engine.static_shapes  # eager CPU torch: no padding needed
    runner = _runner(engine, max_batch=12)
    assert runner.batch_buckets == (1, 2, 4, 8, 12) and not runner.pad
    assert [runner.bucket(n) for n in (1, 3, 5, 12)] == [1, 3, 5, 12]
    padded = _runner(engine, max_batch=12, pad=True)
    assert [padded.bucket(n) for n in (1, 2, 3, 5, 8, 9, 12)] == [1, 2, 4, 8, 8, 12, 12]
    with pytest.raises(ValueError):
        padded.bucket(13)


def test_torch_predict_batch_equals_one_call_per_window(late_small: LoadedModel) -> None:
    runner = _runner(TorchEngine(late_small.model, precision="fp32"), max_batch=8)
    windows = _windows(5)
    batched = runner.predict_batch(windows)
    one_by_one = [runner.predict(w) for w in windows]
    assert len(batched) == 5 and all(list(b) == ["p_asd", "p_front", "p_side"] for b in batched)
    got, want = _table(batched), _table(one_by_one)
    assert np.ptp(want[:, 0]) > 0.05  # windows give different outputs, so a mixed-up row would show
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    assert runner.predict_batch([]) == []


def test_preprocess_batch_pads_with_the_last_window() -> None:
    windows = [w["front"] for w in _windows(3)]
    x = preprocess_batch(windows, 4)  # (4, 3, T, H, W)
    assert x.shape == (4, 3, FRAMES, PX, PX) and x.dtype == np.float32
    for i, w in enumerate(windows):
        np.testing.assert_array_equal(x[i], preprocess(w)[0])
    np.testing.assert_array_equal(x[3], x[2])
    with pytest.raises(ValueError, match="cannot pad"):
        preprocess_batch(windows, 2)


@pytest.mark.parametrize("path", ["device", "host"])
def test_padding_rows_do_not_leak(late_small: LoadedModel, path: str) -> None:
    """3 windows padded to 4 give the same 3 results as 3 unpadded (uint8 device path and float host path)."""
    engine = TorchEngine(late_small.model, precision="fp32")
    spy = _Spy(engine)
    padded = _runner(engine if path == "device" else spy, max_batch=8, pad=True)
    plain = _runner(engine, max_batch=8, pad=False)
    windows = _windows(3)
    got = padded.predict_batch(windows)
    assert len(got) == 3
    if path == "host":
        assert spy.batches == [4]
    np.testing.assert_allclose(_table(got), _table(plain.predict_batch(windows)), rtol=0, atol=2e-6)
    np.testing.assert_allclose(_table(got), _table([plain.predict(w) for w in windows]), rtol=0, atol=2e-6)


def test_chunks_above_max_batch(late_small: LoadedModel) -> None:
    spy = _Spy(TorchEngine(late_small.model, precision="fp32"))
    runner = _runner(spy, max_batch=4, pad=True)
    windows = _windows(11)
    got = runner.predict_batch(windows)
    assert spy.batches == [4, 4, 4]  # 4 + 4 + 3 (padded to 4)
    spy.batches.clear()
    want = [runner.predict(w) for w in windows]
    assert spy.batches == [1] * 11
    np.testing.assert_allclose(_table(got), _table(want), rtol=0, atol=2e-6)
    spy.batches.clear()
    odd = _runner(spy, max_batch=3, pad=True)  # buckets (1, 2, 3)
    assert len(odd.predict_batch(windows[:7])) == 7 and spy.batches == [3, 3, 1]


def test_windows_of_different_shapes_in_one_batch_are_refused(late_small: LoadedModel) -> None:
    runner = _runner(TorchEngine(late_small.model, precision="fp32"))
    windows = _windows(2)
    windows[1] = {v: a[:, :32] for v, a in windows[1].items()}
    with pytest.raises(ValueError, match="different shapes"):
        runner.predict_batch(windows)


def test_warm_up_runs_every_bucket(late_small: LoadedModel) -> None:
    spy = _Spy(TorchEngine(late_small.model, precision="fp32"))
    _runner(spy, max_batch=8, pad=True).warm_up()
    assert spy.batches == [1, 1, 2, 4, 8]
    spy.batches.clear()
    _runner(spy, max_batch=8, pad=True).warm_up(runs=1, buckets=3)  # 3 windows run at 4
    assert spy.batches == [1, 2, 4]
    spy.batches.clear()
    _runner(spy, max_batch=8, pad=True).warm_up(buckets=1)
    assert spy.batches == [1, 1]


def test_openvino_fp32_predict_batch_equals_one_call_per_window(late_small: LoadedModel, tmp_path: Path) -> None:
    """OpenVINO pads to buckets (one compiled request per size) and gives what batch 1 gives."""
    loaded = LoadedModel(copy.deepcopy(late_small.model), SPEC, untrained=True, source="test")
    cfg = ModelConfig(variant="late", engine="openvino", precision="fp32", cache_dir=str(tmp_path), max_batch=4)
    engine = build_engine(loaded, cfg)
    assert engine.static_shapes
    runner = _runner(engine, max_batch=4)
    assert runner.pad and runner.batch_buckets == (1, 2, 4)
    windows = _windows(7)
    got = runner.predict_batch(windows)  # 4 + 3 padded to 4
    want = [runner.predict(w) for w in windows]
    assert sorted(shapes[0][0] for shapes in engine._requests) == [1, 4]  # type: ignore[attr-defined]
    np.testing.assert_allclose(_table(got), _table(want), rtol=0, atol=1e-5)
    reference = _runner(TorchEngine(late_small.model, precision="fp32"))
    np.testing.assert_allclose(_table(got), _table(reference.predict_batch(windows)), rtol=0, atol=1e-4)


def test_bench_compares_predict_batch_with_single_calls(late_small: LoadedModel) -> None:
    """`dualgait bench model --batch 1,2,4 --compare-single`: the comparison of one configuration."""
    from bench.model import _batches, _compare_single

    assert _batches("1, 2,4,2") == [1, 2, 4]
    runner = _runner(TorchEngine(late_small.model, precision="fp32"), max_batch=4, pad=True)
    result = _compare_single(runner, {"seed": 0, "size": PX, "batch": 3, "repeats": 1}, FRAMES, threads=1)
    assert result["bucket"] == 4 and result["max_abs_dp"] < 2e-6
    assert result["batched_windows_per_s"] > 0 and result["single_windows_per_s"] > 0 and result["gain"] > 0
