"""User mistakes get one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dualgait", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0]


def test_missing_video(tmp_path: Path) -> None:
    result = _run("demo", "--front", str(tmp_path / "nope.mp4"), "--output", str(tmp_path / "out"))
    _assert_one_line_error(result, "front video not found", "nope.mp4")


def test_unreadable_video(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("this is not a video")
    result = _run("capture", "--view", "front", "--source", str(bad), "--set", "endpoints.front=ipc:///nonexistent/x")
    _assert_one_line_error(result, "cannot open video", "bad.mp4")


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("inference:\n  window:\n    frams: 8\n", "inference.window.frams: unknown key"),
        ("capture:\n  speed: fast\n", "capture.speed: expected a number"),
        ("capture: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_config(tmp_path: Path, yaml_text: str, needle: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    _assert_one_line_error(_run("aggregate", "--config", str(config)), needle)


def test_missing_config_file(tmp_path: Path) -> None:
    _assert_one_line_error(_run("infer", "--config", str(tmp_path / "missing.yaml")), "config file not found")


def test_wrong_checkpoint(tmp_path: Path, assets: Path) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"\x00\x01 truncated")
    weights = assets / "weights" / "yolo11n_int8_openvino_model"
    result = _run("infer", "--set", f"inference.model.weights={ckpt}", "--set", f"inference.detector.weights={weights}")
    _assert_one_line_error(result, "cannot read checkpoint", "model.pt")


def test_missing_detector_weights(tmp_path: Path) -> None:
    result = _run("infer", "--set", f"inference.detector.weights={tmp_path / 'none'}")
    _assert_one_line_error(result, "detector weights not found")
