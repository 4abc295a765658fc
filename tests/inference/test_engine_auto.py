"""engine/device/precision ``auto``: the fastest engine per machine, and an explicit choice always wins."""

from __future__ import annotations

import pytest

from inference.config import ModelConfig
from inference.engines.auto import MachineFacts, resolve_engine

CPU_X86 = MachineFacts(cuda=False, tensorrt=False, openvino=True, x86=True, native_bf16=False)
ARM = MachineFacts(cuda=False, tensorrt=False, openvino=False, x86=False, native_bf16=True)
GPU = MachineFacts(cuda=True, tensorrt=False, openvino=True, x86=True, native_bf16=False)
GPU_TRT = MachineFacts(cuda=True, tensorrt=True, openvino=True, x86=True, native_bf16=False)


def _pick(facts: MachineFacts, **kwargs) -> tuple[str, str, str]:
    cfg, why = resolve_engine(ModelConfig(**kwargs), facts)
    assert "auto" not in (cfg.engine, cfg.device, cfg.precision) and why
    return cfg.engine, cfg.device, cfg.precision


def test_auto_picks_the_fastest_engine_of_each_machine():
    assert _pick(CPU_X86) == ("openvino", "cpu", "int8")
    assert _pick(ARM) == ("torch", "cpu", "bf16")
    assert _pick(GPU) == ("torch", "cuda", "fp16")
    assert _pick(GPU_TRT) == ("tensorrt", "cuda", "fp16")
    assert _pick(MachineFacts(cuda=False, tensorrt=False, openvino=False, x86=True, native_bf16=False)) == (
        "torch", "cpu", "fp32")


def test_an_explicit_engine_device_or_precision_wins():
    assert _pick(GPU_TRT, device="cpu") == ("openvino", "cpu", "int8")
    assert _pick(CPU_X86, engine="torch") == ("torch", "cpu", "fp32")
    assert _pick(GPU, engine="torch", device="cpu") == ("torch", "cpu", "fp32")
    assert _pick(CPU_X86, precision="fp32") == ("openvino", "cpu", "fp32")
    assert _pick(GPU, engine="onnxruntime") == ("onnxruntime", "cuda", "fp32")
    cfg = ModelConfig(engine="torch", device="cpu", precision="bf16")
    assert resolve_engine(cfg, CPU_X86) == (cfg, "torch bf16 on cpu (as configured)")


def test_the_log_line_says_why():
    _cfg, why = resolve_engine(ModelConfig(), CPU_X86)
    assert why == "openvino int8 on cpu (auto: an x86 CPU and OpenVINO (no CUDA GPU))"
    _cfg, why = resolve_engine(ModelConfig(), GPU)
    assert "torch fp16 on cuda" in why and "TensorRT not installed" in why


def test_explicit_parts_that_do_not_fit_are_errors():
    with pytest.raises(ValueError, match="engine openvino runs on cpu, not cuda"):
        ModelConfig(engine="openvino", device="cuda")
    with pytest.raises(ValueError, match="engine tensorrt runs fp16, fp32, not int8"):
        ModelConfig(engine="tensorrt", precision="int8")
    with pytest.raises(ValueError, match="not int4"):
        ModelConfig(precision="int4")  # type: ignore[arg-type]


def test_auto_without_a_calibrated_int8_model_runs_openvino_fp32(tmp_path, monkeypatch, caplog):
    """`dualgait infer` alone on a fresh cache: auto picks int8, finds no calibration, warns and runs fp32; an
    explicit int8 stays an error naming the fix."""
    import logging

    from inference.engines import auto
    from inference.engines.base import EngineError
    from inference.engines.factory import create_runner

    monkeypatch.setattr(auto, "machine_facts", lambda: CPU_X86)
    cfg = ModelConfig(variant="single_side", cache_dir=str(tmp_path))
    with caplog.at_level(logging.INFO):
        runner = create_runner(cfg, input_px=32, frames=8)
    assert runner.engine.name == "openvino-fp32"
    assert "model engine: openvino int8 on cpu (auto:" in caplog.text
    assert "no int8 model calibrated for these weights yet" in caplog.text
    with pytest.raises(EngineError, match="dualgait export --format openvino --precision int8"):
        create_runner(ModelConfig(variant="single_side", cache_dir=str(tmp_path), precision="int8"),
                      input_px=32, frames=8)
