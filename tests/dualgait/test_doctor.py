"""``dualgait doctor``: the facts it reports, its verdict and exit code, and that a problem is a line, not a crash."""

from __future__ import annotations

import json
import platform
import socket
from pathlib import Path
from typing import Any

import pytest

from dualgait.cli import main
from dualgait.preflight import planned_tcp_binds, port_is_free


def _doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["doctor", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _check(report: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    matches = [c for c in report["sections"][section] if c["name"] == name]
    assert len(matches) == 1, report["sections"][section]
    return matches[0]


def _demo_ports_free() -> bool:
    from dualgait.config import load_config

    return all(port_is_free(u.host, u.port) for u in planned_tcp_binds(load_config(), private_endpoints=True))


def test_json_facts(assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    monkeypatch.setenv("DUALGAIT_ASSETS", str(assets))
    monkeypatch.setenv("DUALGAIT_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = _doctor(capsys, "--json")
    report = json.loads(out)
    assert _check(report, "System", "python")["value"] == platform.python_version()
    assert _check(report, "Libraries", "torch")["value"] == torch.__version__
    folder = _check(report, "Assets", "folder")
    assert folder["ok"] is True and folder["value"] == str(assets.resolve())
    for name in ("front video", "side video", "detector weights"):
        assert _check(report, "Assets", name)["ok"] is True
    cache = _check(report, "Cache", "cache folder")
    assert cache["ok"] is True and cache["value"] == str((tmp_path / "cache").resolve())
    ports = [c["value"] for c in report["sections"]["Ports"]]
    live = [p for p in ports if p["port"] == 8765]
    assert len(live) == 1 and live[0]["key"] == "aggregator.http.port" and live[0]["demo"] is True
    # assets present and a demo model found or a writable cache to build it in: the demo can run
    expected = 0 if _demo_ports_free() else 1
    assert code == expected and report["exit_code"] == expected and report["ready"] is (expected == 0)
    if expected == 0:
        assert report["missing"] == [] and report["summary"].startswith("ready: the demo will run here")
    features = {c["name"]: c["ok"] for c in report["sections"]["Features"]}
    assert features["dualgait demo"] is (expected == 0)
    assert features["dualgait train"] is True


def test_missing_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-assets"
    monkeypatch.setenv("DUALGAIT_ASSETS", str(missing))
    monkeypatch.setenv("DUALGAIT_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = _doctor(capsys)
    assert code == 1
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("not ready:")
    for name in ("walk_front.mp4", "walk_side.mp4", "yolo11n_int8_openvino_model", str(missing)):
        assert name in verdict
    assert f"missing: {missing / 'videos' / 'walk_front.mp4'}" in out


def test_port_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DUALGAIT_CACHE_DIR", str(tmp_path / "cache"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        code, out, _ = _doctor(capsys, "--set", f"aggregator.http.port={port}")
    lines = [line for line in out.splitlines() if f"127.0.0.1:{port} " in line]
    assert len(lines) == 1, out
    assert "TAKEN" in lines[0] and "--set aggregator.http.port=PORT" in lines[0]
    assert code == 1 and f"port {port} (the live view)" in out.strip().splitlines()[-1]


def test_bad_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DUALGAIT_CACHE_DIR", str(tmp_path / "cache"))
    code, out, err = _doctor(capsys, "--set", "inference.nonsense=1")
    assert code == 1 and "error:" not in err  # a report, not the CLI's one-line user-mistake exit (2)
    config = out.split("\nConfig\n", 1)[1].split("\n\n", 1)[0]
    errors = [line for line in config.splitlines() if line.split(":", 1)[0].split()[-1] == "error"]
    assert len(errors) == 1 and "nonsense" in errors[0], config
    assert "inference.nonsense=1" in config
    assert "\nFeatures\n" in out  # the rest of the report still ran, on the defaults
    assert out.strip().splitlines()[-1].startswith("not ready: a valid config")


def test_failing_probe_is_a_line(assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    import training.demo_model

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setenv("DUALGAIT_ASSETS", str(assets))
    monkeypatch.setenv("DUALGAIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(training.demo_model, "find_demo_model", boom)
    code, out, _ = _doctor(capsys, "--json")
    report = json.loads(out)
    error = _check(report, "Demo model", "error")
    assert error["ok"] is False and error["detail"] == "RuntimeError: boom"
    assert code == 1 and "the demo model could not be checked" in report["summary"]
    assert _check(report, "Cache", "cache folder")["ok"] is True  # the later probes still ran
