"""Shared fixtures: the test assets (../shared/assets or $DUALGAIT_ASSETS) and an offline Ultralytics."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # before anything imports ultralytics: never download, never auto-install, private settings folder
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "0")
    os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="dualgait-test-yolo-"))


@pytest.fixture(scope="session")
def assets() -> Path:
    """The shared test assets; a test that needs them fails under CI when they are missing."""
    path = Path(os.environ.get("DUALGAIT_ASSETS", REPO_ROOT.parent / "shared" / "assets")).resolve()
    needed = [path / "videos" / "walk_front.mp4", path / "videos" / "walk_side.mp4",
              path / "weights" / "yolo11n_int8_openvino_model" / "yolo11n.xml"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        message = f"test assets missing: {', '.join(missing)} (set DUALGAIT_ASSETS)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
