"""Shared fixtures: the test assets (../shared/assets or $DUALGAIT_ASSETS) and an offline Ultralytics."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from pg_helpers import pg_schema_url, pg_url  # noqa: F401  (fixtures: a real PostgreSQL server for the store tests)

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


@pytest.fixture(scope="session")
def short_pair(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The first 3 s (75 frames) of the shared front/side pair, re-encoded: quick end-to-end runs."""
    import cv2

    out = tmp_path_factory.mktemp("short-pair")
    paths = []
    for view in ("front", "side"):
        cap = cv2.VideoCapture(str(assets / "videos" / f"walk_{view}.mp4"))
        fps = cap.get(cv2.CAP_PROP_FPS)
        path = out / f"short_{view}.mp4"
        writer = None
        for _ in range(75):
            ok, image = cap.read()
            assert ok
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (image.shape[1], image.shape[0]))
            writer.write(image)
        writer.release()
        cap.release()
        paths.append(str(path))
    return paths[0], paths[1]


@pytest.fixture(scope="session")
def yolo_network(assets: Path):
    """One network of the shared YOLO11n int8 export for every test that runs the real detector (the network is
    stateless between calls; each pipeline keeps its own trackers)."""
    from dualgait.config import load_config
    from inference.detector import YoloModel

    cfg = load_config(None)
    cfg.inference.detector.weights = str(assets / "weights" / "yolo11n_int8_openvino_model")
    return YoloModel(cfg.inference.detector)
