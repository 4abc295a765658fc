"""Sources: parsing the per-view source string, file replay (offset, loop), USB and stream cameras (fakes)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from capture_helpers import frame_value, write_clip

from capture.sources import CameraSource, FileSource, SourceError, SourceSpec, StreamSource, parse_source


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.avi", 20)


@pytest.mark.parametrize(("text", "spec"), [
    ("videos/walk.mp4", SourceSpec("file", "videos/walk.mp4")),
    ("usb:0", SourceSpec("usb", "0")),
    ("2", SourceSpec("usb", "2")),
    ("rtsp://cam.local:554/stream1", SourceSpec("stream", "rtsp://cam.local:554/stream1")),
    ("http://127.0.0.1:8080/stream.mjpg", SourceSpec("stream", "http://127.0.0.1:8080/stream.mjpg")),
    ("synthetic:asd", SourceSpec("synthetic", "asd", 0)),
    ("synthetic:normal:42", SourceSpec("synthetic", "normal", 42)),
])
def test_parse_source(text: str, spec: SourceSpec) -> None:
    assert parse_source(text) == spec


@pytest.mark.parametrize(("text", "match"), [
    ("", "empty source"), ("usb:cam", "bad USB camera"), ("ftp://host/x", "bad camera URL"),
    ("rtsp://", "bad camera URL"), ("synthetic:maybe", "bad synthetic"), ("synthetic:asd:x", "bad synthetic"),
])
def test_parse_source_rejects_with_one_line(text: str, match: str) -> None:
    with pytest.raises(SourceError, match=match) as info:
        parse_source(text)
    assert "\n" not in str(info.value)


def test_file_start_offset_skips_and_rebases_pts(clip: Path) -> None:
    source = FileSource(clip, start_offset_s=0.2)  # 25 fps: skip 5 frames
    first = source.read()
    assert first is not None and first.pts_ns == 0 and first.index == 0
    assert frame_value(first.image) == 20  # frame 5 of the clip
    rest = list(iter(source.read, None))
    source.close()
    assert len(rest) == 14


def test_file_loop_keeps_timeline_continuous(tmp_path: Path) -> None:
    source = FileSource(write_clip(tmp_path / "short.avi", 5), loop=True)
    frames = [source.read() for _ in range(12)]
    source.close()
    values = [frame_value(f.image) for f in frames]
    assert values == [0, 4, 8, 12, 16] * 2 + [0, 4]
    steps = {round((b.pts_ns - a.pts_ns) / 1e6) for a, b in itertools.pairwise(frames)}
    assert steps == {40}, steps  # 25 fps, across the loop boundary too


def test_file_errors(tmp_path: Path, clip: Path) -> None:
    with pytest.raises(SourceError, match="video not found"):
        FileSource(tmp_path / "missing.mp4")
    with pytest.raises(SourceError, match="past the end"):
        FileSource(clip, start_offset_s=5.0)


class FakeCapture:
    """Stands in for cv2.VideoCapture: records the calls, grants what it is told to."""

    def __init__(self, *args: Any, opened: bool = True, frames: int = 3, grant: dict[int, float] | None = None):
        self.args = args
        self.opened = opened
        self.frames = frames
        self.calls: list[tuple[str, int, float]] = []
        self.props: dict[int, float] = {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480,
                                        cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FOURCC: cv2.VideoWriter_fourcc(*"YUYV")}
        self.grant = grant
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        self.calls.append(("set", prop, value))
        if self.grant is None or prop in self.grant:
            self.props[prop] = value if self.grant is None else self.grant[prop]
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        return True, np.zeros((int(self.props[cv2.CAP_PROP_FRAME_HEIGHT]), int(self.props[cv2.CAP_PROP_FRAME_WIDTH]),
                               3), np.uint8)

    def release(self) -> None:
        self.released = True


def test_usb_camera_requests_settings_in_v4l2_order() -> None:
    made: list[FakeCapture] = []

    def factory(*args: Any) -> FakeCapture:
        made.append(FakeCapture(*args))
        return made[-1]

    cam = CameraSource(1, width_px=1280, height_px=720, fps=30.0, fourcc="MJPG", factory=factory)
    cam.open()
    cap = made[0]
    assert cap.args == (1, cv2.CAP_V4L2)
    assert [c[1] for c in cap.calls] == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                                         cv2.CAP_PROP_FPS]
    assert cam.granted == {"width_px": 1280, "height_px": 720, "fps": 30.0, "fourcc": "MJPG"}
    frames = [cam.read() for _ in range(3)]
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].image.shape == (720, 1280, 3)
    assert all(f.read_mono_ns > 0 and not f.pts_from_container for f in frames)
    with pytest.raises(SourceError, match="USB camera 1: no frame"):
        cam.read()  # unplugged: a read fails
    cam.close()
    assert cap.released


def test_usb_camera_reports_what_was_not_granted(caplog: pytest.LogCaptureFixture) -> None:
    grant = {cv2.CAP_PROP_FRAME_WIDTH: 640.0, cv2.CAP_PROP_FRAME_HEIGHT: 480.0}
    cam = CameraSource(0, width_px=1920, height_px=1080, factory=lambda *a: FakeCapture(*a, grant=grant))
    cam.open()
    assert cam.granted["width_px"] == 640
    assert "requested settings not granted" in caplog.text


def test_usb_camera_missing_is_a_source_error() -> None:
    cam = CameraSource(7, factory=lambda *a: FakeCapture(*a, opened=False))
    with pytest.raises(SourceError, match=r"cannot open USB camera 7 \(/dev/video7"):
        cam.open()


def test_stream_source_uses_ffmpeg_with_timeouts_and_hides_credentials() -> None:
    made: list[FakeCapture] = []
    url = "rtsp://user:secret@cam.local:554/live"
    cam = StreamSource(url, timeout_s=2.5, factory=lambda *a: made.append(FakeCapture(*a)) or made[-1])
    cam.open()
    assert made[0].args == (url, cv2.CAP_FFMPEG,
                            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 2500, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 2500])
    assert "secret" not in cam.description and cam.description == "rtsp://cam.local:554/live"
    bad = StreamSource("http://127.0.0.1:9/x", factory=lambda *a: FakeCapture(*a, opened=False))
    with pytest.raises(SourceError, match=r"cannot open http://127\.0\.0\.1:9/x"):
        bad.open()


def test_synthetic_walker_renders_both_views_reproducibly() -> None:
    from capture.sources import SyntheticSource

    def first_frames(view: str) -> tuple[int, np.ndarray]:
        source = SyntheticSource(view, asd=True, seed=3, seconds=1.0, size_px=96)
        source.open()
        frames = list(iter(source.read, None))
        source.close()
        return len(frames), frames[10].image

    n_front, front = first_frames("front")
    n_side, side = first_frames("side")
    _n, front_again = first_frames("front")
    assert n_front == n_side == 25 and front.shape == (96, 96, 3)
    np.testing.assert_array_equal(front, front_again)  # the two capture processes render the same walker
    assert not np.array_equal(front, side)
