"""``dualgait bench model``: one small real bench (subprocess workers) and the argument checks."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

from bench.model import ENGINE_IDS, add_bench_model_args, run_bench_model
from bench.report import TABLE_HEADER
from core.configtools import ConfigError
from dualgait.config import load_config
from inference.config import ModelConfig

ENGINES = ("torch-cpu-fp32", "torch-cpu-bf16", "tensorrt-fp16")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_model_args(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("bench")
    args = _args("--variants", "single_front", "--engines", ",".join(ENGINES), "--sizes", "64",
                 "--repeats", "2", "--warmup", "1", "--output", str(out), "--timeout-s", "300")
    return run_bench_model(args, load_config()), out


def _rows(out: Path) -> dict[str, dict]:
    data = json.loads((out / "bench_model.json").read_text())
    return {r["engine"]: r for r in data["results"]}


def test_bench_writes_a_row_per_configuration(bench: tuple[int, Path]) -> None:
    code, out = bench
    assert code == 0
    data = json.loads((out / "bench_model.json").read_text())
    assert [(r["variant"], r["engine"], r["input_px"], r["batch"]) for r in data["results"]] == [
        ("single_front", e, 64, 1) for e in ENGINES]
    machine = data["machine"]
    for key in ("cpu", "cores_available", "ram_gb", "gpu", "os", "python", "torch", "openvino", "date"):
        assert machine[key] is not None, key
    assert "random" in data["weights"]


def test_fp32_baseline(bench: tuple[int, Path]) -> None:
    row = _rows(bench[1])["torch-cpu-fp32"]
    assert row["status"] == "ok", row["reason"]
    assert row["latency_ms"]["p50"] > 0
    assert row["latency_ms"]["min"] <= row["latency_ms"]["p50"] <= row["latency_ms"]["p95"]
    assert row["speedup"] == 1.0
    assert row["max_abs_dp"] == 0.0
    assert row["windows_per_s"] == pytest.approx(1000.0 / row["latency_ms"]["mean"], rel=1e-3)
    assert row["peak_rss_mb"] > 50
    assert row["cpu_share"] > 0
    assert "PyTorch" in row["description"]


def test_bf16_parity(bench: tuple[int, Path]) -> None:
    row = _rows(bench[1])["torch-cpu-bf16"]
    assert row["status"] == "ok", row["reason"]
    assert row["max_abs_dp"] is not None and row["max_abs_dp"] < 0.05
    assert row["speedup"] is not None and row["speedup"] > 0


def test_tensorrt_skipped_here(bench: tuple[int, Path]) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    row = _rows(bench[1])["tensorrt-fp16"]
    assert row["status"] == "skipped"
    assert "TensorRT" in row["reason"]
    assert row["latency_ms"] is None and row["speedup"] is None


def test_markdown_report(bench: tuple[int, Path]) -> None:
    text = (bench[1] / "bench_model.md").read_text()
    assert "| " + " | ".join(TABLE_HEADER) + " |" in text
    for engine in ENGINES:
        assert f"| {engine} |" in text
    assert "random" in text and "timing only" in text


@pytest.mark.parametrize("argv", [
    ("--engines", "torch-cpu-fp32,torch-tpu-fp8"),
    ("--variants", "mid"),
    ("--sizes", "224,big"),
    ("--sizes", "16"),
    ("--batch", "0"),
])
def test_bad_arguments_are_config_errors(argv: tuple[str, ...], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        run_bench_model(_args(*argv, "--output", str(tmp_path)), load_config())
    assert "\n" not in str(info.value)


def test_unknown_engine_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"torch-tpu-fp8.*torch-cpu-fp32"):
        run_bench_model(_args("--engines", "torch-tpu-fp8", "--output", str(tmp_path)), load_config())
    assert not (tmp_path / "bench_model.json").exists()


def test_engine_ids_are_valid_model_configs() -> None:
    for engine, device, precision in ENGINE_IDS.values():
        ModelConfig(engine=engine, device=device, precision=precision)  # type: ignore[arg-type]
