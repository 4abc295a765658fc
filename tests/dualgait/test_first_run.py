"""First-run problems end in one line that names the fix, exit code 2, no traceback, before any model loads.

Missing shared assets, a missing YOLO model, a cache folder that cannot be written, a port taken by another
program (live view, metrics, session updates; the frame endpoints of ``dualgait run``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_line_error, run_cli

from core.folders import FolderError, check_writable_dir
from dualgait.config import load_config
from dualgait.preflight import PreflightError, check_ports, planned_tcp_binds, port_is_free
from training.demo_model import DemoRecipe, ensure_demo_model


def _not_a_dir(tmp_path: Path) -> Path:
    """A folder no one can create, root included: its parent is a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker / "cache"


def test_missing_shared_assets_names_the_variable(tmp_path: Path) -> None:
    result = run_cli("demo", "--output", str(tmp_path / "out"), cwd=tmp_path,
                  env={"DUALGAIT_ASSETS": str(tmp_path / "no-such-assets")})
    one_line_error(result, "shared assets not found at", str(tmp_path / "no-such-assets"), "DUALGAIT_ASSETS")


def test_default_assets_folder_is_looked_for_beside_the_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DUALGAIT_ASSETS"}
    result = subprocess.run([sys.executable, "-m", "dualgait", "demo", "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)  # no DUALGAIT_ASSETS
    one_line_error(result, "shared assets not found at", str((tmp_path / ".." / "shared" / "assets").resolve()))


def test_missing_yolo_model(tmp_path: Path, assets: Path) -> None:
    partial = tmp_path / "assets"
    (partial / "videos").mkdir(parents=True)
    for name in ("walk_front.mp4", "walk_side.mp4"):
        (partial / "videos" / name).symlink_to(assets / "videos" / name)
    result = run_cli("demo", "--output", str(tmp_path / "out"), cwd=tmp_path, env={"DUALGAIT_ASSETS": str(partial)})
    one_line_error(result, "detector weights not found", "yolo11n_int8_openvino_model",
                    "--set inference.detector.weights=")


def test_cache_folder_that_cannot_be_written(tmp_path: Path, assets: Path) -> None:
    """An exported engine is built into the cache: refused up front, before the model loads."""
    result = run_cli("demo", "--output", str(tmp_path / "out"), "--set", "inference.model.engine=openvino",
                  "--set", "inference.model.precision=fp32", cwd=tmp_path,
                  env={"DUALGAIT_ASSETS": str(assets), "DUALGAIT_CACHE_DIR": str(_not_a_dir(tmp_path))})
    one_line_error(result, "cannot write the cache folder", "DUALGAIT_CACHE_DIR")


def test_demo_model_build_checks_the_cache_before_minutes_of_work(tmp_path: Path) -> None:
    cfg = load_config(None, [f"inference.model.cache_dir={_not_a_dir(tmp_path)}"])
    with pytest.raises(FolderError, match=r"cannot write the cache folder .*DUALGAIT_CACHE_DIR"):
        ensure_demo_model(cfg, recipe=DemoRecipe(subjects=2), progress=False)  # not shipped: it would be built


def test_output_folder_that_cannot_be_written(tmp_path: Path, assets: Path) -> None:
    result = run_cli("demo", "--output", str(_not_a_dir(tmp_path)), cwd=tmp_path, env={"DUALGAIT_ASSETS": str(assets)})
    one_line_error(result, "cannot write the output folder", "--output DIR")
    assert check_writable_dir(tmp_path / "new" / "folder", what="x", fix="y").is_dir()


def test_the_demo_binds_the_live_view_metrics_and_session_ports() -> None:
    uses = planned_tcp_binds(load_config(None, []), private_endpoints=True)
    assert [(u.port, u.key) for u in uses] == [(8765, "aggregator.http.port"), (9108, "aggregator.metrics.port"),
                                              (5704, "aggregator.publish_endpoint")]
    run = planned_tcp_binds(load_config(None, []))  # dualgait run binds the frame and score endpoints too
    assert {u.port for u in run} == {8765, 9108, 5704, 5701, 5702, 5703, 5705}


@pytest.mark.parametrize(("key", "value", "what"), [
    ("aggregator.http.port", "{port}", "the live view"),
    ("aggregator.metrics.port", "{port}", "the metrics"),
    ("aggregator.publish_endpoint", "tcp://127.0.0.1:{port}", "the session updates"),
])
def test_port_taken_by_another_program(tmp_path: Path, assets: Path, key: str, value: str, what: str) -> None:
    with socket.socket() as other:  # another program listening on the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        result = run_cli("demo", "--output", str(tmp_path / "out"), "--set", f"{key}={value.format(port=port)}",
                      cwd=tmp_path, env={"DUALGAIT_ASSETS": str(assets)})
    one_line_error(result, f"port {port} on 127.0.0.1 ({what}) is taken by another program", f"--set {key}=")
    assert not (tmp_path / "out" / "summary.json").exists()


def test_run_checks_its_frame_endpoints(tmp_path: Path, assets: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = run_cli("run", "--set", f"endpoints.front=tcp://127.0.0.1:{port}", "--set", "aggregator.http.port=0",
                      "--set", "aggregator.metrics.port=0", "--set", "aggregator.publish_endpoint=null",
                      "--set", "supervisor.event_endpoint=null", cwd=tmp_path, env={"DUALGAIT_ASSETS": str(assets)})
    one_line_error(result, f"port {port} on 127.0.0.1 (the front camera's frames)", "--set endpoints.front=")


def test_a_walkway_camera_port_taken_names_its_config_entry() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        walkway = {"id": "bay2", "front": "a.mp4", "side": "b.mp4", "front_endpoint": f"tcp://127.0.0.1:{port}",
                   "side_endpoint": "ipc:///tmp/bay2-side.sock"}
        cfg = load_config(None, [f"walkways={json.dumps([walkway])}"])
        uses = [u for u in planned_tcp_binds(cfg) if u.port == port]
        assert [(u.key, u.what) for u in uses] == [("walkways[bay2].front_endpoint",
                                                   "walkway bay2's front camera's frames")]
        with pytest.raises(PreflightError, match=rf"port {port} .* walkways\[bay2\]\.front_endpoint in the config"):
            check_ports(uses)
