"""Shared by the tests that put scenes or recordings through the real detector."""

from __future__ import annotations

from pathlib import Path

from dualgait.config import DualgaitConfig, load_config


def offline_config(assets: Path, overrides: list[str] | None = None) -> DualgaitConfig:
    """The default config with the shared detector export, run as fast as the machine allows (no load shedding):
    for the tests that put scenes or recordings through the real detector."""
    cfg = load_config(None, overrides or [])
    cfg.inference.detector.weights = str(assets / "weights" / "yolo11n_int8_openvino_model")
    cfg.inference.overload.enabled = False
    return cfg
