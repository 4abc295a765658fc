"""Recordings as they come (issue 18): rotation metadata, frame rates other than 25, variable frame rate, sizes from
320x240 to 3840x2160 and the codecs H.264, H.265, MJPEG and VP9.

Each case re-encodes the first seconds of the shared front/side pair with PyAV (it bundles FFmpeg and its encoders),
both views the same way, and scores them through the offline path (``offline.score.score_pair``: the FileSource
decoder, pairing, the 8-Hz sampler, the real YOLO detector and the patient lock; the model is a stub). It asserts
that window k is made of the frames whose *written* pts are nearest k + j/8 s (j = 0..7), so window k covers
[k, k+1) s of the recording on the container's timeline, and that the patient is found, upright, in every window.
docs/capture.md ("Recordings as they come") tabulates the cases.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bench.detector import StandInModel
from capture.config import MAX_SIDE_PX_DEFAULT, CaptureConfig
from capture.sources import FileSource, StreamSource, fitted_size
from dualgait.config import DualgaitConfig
from tests.detector_helpers import offline_config

av = pytest.importorskip("av", reason="PyAV (the test extra) writes the test recordings")

SOURCE_FPS = 25.0  # the shared pair
STEP_S = 0.125  # 8 samples per 1-s window


@dataclass(frozen=True)
class Case:
    codec: str = "libx264"
    suffix: str = ".mp4"
    fps: float = 25.0  # nominal rate (the encoder's; a VFR clip's frames have their own pts)
    layout: str = "square"  # square (628x628) | small (320x240) | uhd (3840x2160) | portrait (360x640, stored 640x360)
    seconds: float = 3.0
    vfr: bool = False
    rotation_deg: int = 0  # display rotation, clockwise, as phones tag it ("rotate: 90")
    options: tuple[tuple[str, str], ...] = (("preset", "ultrafast"),)
    pix_fmt: str = "yuv420p"


CASES = {
    "h264": Case(),
    "h265": Case(codec="libx265", options=(("preset", "ultrafast"), ("x265-params", "log-level=none"))),
    "mjpeg": Case(codec="mjpeg", suffix=".avi", options=(), pix_fmt="yuvj420p"),
    "vp9": Case(codec="libvpx-vp9", suffix=".webm", options=(("deadline", "realtime"), ("cpu-used", "8"))),
    "24fps": Case(fps=24.0),
    "50fps": Case(fps=50.0),
    "60fps": Case(fps=60.0),
    "vfr": Case(vfr=True),
    "320x240": Case(layout="small"),
    "3840x2160": Case(layout="uhd", seconds=2.0),  # 2 s: encoding 4K is the slow part
    "portrait_rotate_90": Case(layout="portrait", rotation_deg=90),
}
# the frames handed to the pipeline (width, height): upright, longer side at most capture.max_side_px (1280)
DELIVERED = {"square": (628, 628), "small": (320, 240), "uhd": (1280, 720), "portrait": (360, 640)}


def vfr_times(seconds: float) -> list[float]:
    """Variable frame rate: 1 s at 60 fps, 1 s at 15 fps, then 30 fps with +/- 13 ms of jitter (an index / average
    fps clock would put frames up to ~0.3 s away from their pts)."""
    times, t, i = [], 0.0, 0
    while t < seconds - 1e-9:
        times.append(t)
        t += 1 / 60 if t < 1 - 1e-9 else 1 / 15 if t < 2 - 1e-9 else (0.020 if i % 2 else 0.0467)
        i += 1
    return times


def frame_times(case: Case) -> list[float]:
    if case.vfr:
        return vfr_times(case.seconds)
    return [i / case.fps for i in range(round(case.seconds * case.fps))]


def layout(image: np.ndarray, kind: str) -> np.ndarray:
    """The shared pair's 628x628 frame as the case's picture (as stored: a portrait one lies on its side)."""
    if kind == "square":
        return image
    if kind == "small":
        return cv2.copyMakeBorder(cv2.resize(image, (240, 240), interpolation=cv2.INTER_AREA), 0, 0, 40, 40,
                                  cv2.BORDER_CONSTANT)
    if kind == "uhd":  # 16:9 here, scaled to 3840x2160 by encode() while converting to YUV (the cheap way)
        return cv2.copyMakeBorder(image, 0, 0, 244, 244, cv2.BORDER_CONSTANT)
    assert kind == "portrait"  # 360x640 upright (9:16, the walk in the middle), stored rotated 90 degrees back
    upright = cv2.copyMakeBorder(cv2.resize(image, (360, 360), interpolation=cv2.INTER_AREA), 140, 140, 0, 0,
                                 cv2.BORDER_CONSTANT)
    return cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)


def encode(path: Path, images: Iterable[np.ndarray], times_s: list[float], case: Case,
           size: tuple[int, int] | None = None) -> Path:
    """Write ``images`` (BGR) at ``times_s`` (pts) with PyAV, scaled to ``size`` (width, height) when given."""
    images = iter(images)
    head = next(images)
    width, height = size or (head.shape[1], head.shape[0])
    exact = case.vfr or case.suffix == ".mp4"
    time_base = Fraction(1, 90000) if exact else Fraction(1, round(case.fps))
    with av.open(str(path), "w") as out:
        stream = out.add_stream(case.codec, rate=Fraction(case.fps).limit_denominator(1001),
                                options=dict(case.options))
        stream.width, stream.height = width, height
        stream.pix_fmt = case.pix_fmt
        stream.codec_context.time_base = time_base
        if case.rotation_deg:
            stream.set_display_rotation(-case.rotation_deg)  # FFmpeg's display matrix turns counter-clockwise
        for image, t in zip(itertools.chain([head], images), times_s, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(width=width, height=height,
                                                                               format=case.pix_fmt)
            frame.pts, frame.time_base = round(t / time_base), time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def pair_frames(assets: Path) -> dict[str, list[np.ndarray]]:
    """The first 3 s of the shared pair (25 fps), decoded once."""
    frames: dict[str, list[np.ndarray]] = {}
    for view in ("front", "side"):
        cap = cv2.VideoCapture(str(assets / "videos" / f"walk_{view}.mp4"))
        frames[view] = [cap.read()[1] for _ in range(75)]
        cap.release()
        assert all(f is not None for f in frames[view])
    return frames


@pytest.fixture(scope="module")
def config(assets: Path) -> DualgaitConfig:
    return offline_config(assets, ["inference.crop.input_px=112"])


@pytest.fixture(scope="module")
def network(yolo_network):
    return yolo_network


def _score(config: DualgaitConfig, network, front: Path, side: Path):
    """Score the pair offline; also each frame handed over (view -> [(pts s, shape)]) and the patient's box and
    frame size per (view, sample)."""
    from inference.detector import YoloDetector
    from inference.pipeline import InferencePipeline
    from offline.score import ReplayClock, score_pair

    icfg = copy.deepcopy(config.inference)
    clock = ReplayClock()
    pipe = InferencePipeline(icfg, detector=YoloDetector(icfg.detector, model=network),
                             engine=StandInModel("none (recordings test)"), clock_ns=clock)
    boxes: dict[tuple[str, int], tuple[tuple[float, ...], tuple[int, ...]]] = {}
    set_patient = pipe.patients.set_patient

    def spy(sample, view, person) -> None:
        image = sample.images.get(view)
        if image is not None:
            boxes[(view, sample.index)] = (person.box_xyxy, image.shape)
        set_patient(sample, view, person)

    pipe.patients.set_patient = spy
    frames: dict[str, list[tuple[float, tuple[int, ...]]]] = {"front": [], "side": []}
    push = pipe.push

    def spy_push(frame, **kwargs):
        assert frame.seq == len(frames[frame.view])
        frames[frame.view].append((frame.capture_mono_ns / 1e9, frame.image.shape))
        return push(frame, **kwargs)

    pipe.push = spy_push
    result = score_pair(pipe, str(front), str(side), clock=clock, max_side_px=config.capture.max_side_px)
    return result, frames, boxes


@pytest.mark.parametrize("name", list(CASES))
def test_recording_windows_follow_container_time_and_find_the_patient(name: str, tmp_path: Path, pair_frames,
                                                                     config, network) -> None:
    case = CASES[name]
    times = frame_times(case)
    paths = {}
    for view, source in pair_frames.items():
        # the content at time t is the shared pair's frame nearest t: the walk keeps its real speed at any rate
        images = (layout(source[min(len(source) - 1, round(t * SOURCE_FPS))], case.layout) for t in times)
        paths[view] = encode(tmp_path / f"{name}_{view}{case.suffix}", images, times, case,
                             (3840, 2160) if case.layout == "uhd" else None)

    width, height = DELIVERED[case.layout]
    source = FileSource(paths["front"])
    source.close()
    assert (source.width_px, source.height_px, source.rotation_deg) == (width, height, case.rotation_deg)

    result, frames, boxes = _score(config, network, paths["front"], paths["side"])
    assert result.error is None and result.frames == 2 * len(times)
    # the decoder: every frame with the container's pts (not index / fps), upright, bounded in size
    for view in ("front", "side"):
        assert [t for t, _shape in frames[view]] == pytest.approx(times, abs=0.0011), (name, view)
        assert {shape for _t, shape in frames[view]} == {(height, width, 3)}

    # window k: sample j is the frame whose pts is nearest k + j/8 s, on the container's timeline
    n_windows = math.floor(times[-1] - 7 * STEP_S) + 1
    assert [s.window for s in result.scores] == list(range(n_windows)), name
    gaps = np.diff(times)
    for score in result.scores:
        k = score.window
        targets = [k + j * STEP_S for j in range(8)]
        for view in ("front", "side"):
            seqs = score.frames[view]
            assert len(seqs) == 8, (name, k, view)
            expected = [int(np.argmin(np.abs(np.asarray(times) - target))) for target in targets]
            picked = [times[s] for s in seqs]
            # the nearest frame (a tie between two frames may go either way)
            assert picked == pytest.approx([times[e] for e in expected], abs=float(gaps.max()) / 2 + 1e-3)
            assert all(k - 0.0626 <= t < k + 1 for t in picked), (name, k, view, picked)
        assert score.t_start_mono_ns / 1e9 == pytest.approx(k, abs=float(gaps.max()) / 2 + 1e-3)
        assert k + 7 * STEP_S - 0.0626 <= score.t_end_mono_ns / 1e9 < k + 1

    # the patient: found in both views once locked (the lock takes up to a window: it wants motion), upright,
    # within the delivered frame
    assert min(result.scores[-1].visible.values()) >= 6, [s.visible for s in result.scores]
    assert any(s.valid for s in result.scores), [s.reason for s in result.scores]
    assert {shape for _box, shape in boxes.values()} == {(height, width, 3)}
    for (x0, y0, x1, y1), _shape in boxes.values():
        assert 0 <= x0 < x1 <= width + 1 and 0 <= y0 < y1 <= height + 1
    aspects = [(y1 - y0) / (x1 - x0) for (x0, y0, x1, y1), _shape in boxes.values()]
    assert float(np.median(aspects)) > 1.5, name  # a walking person, not one lying on their side


# --------------------------------------------------------------------------- the pieces, without the detector


def _marked(width: int, height: int) -> np.ndarray:
    """A dark upright picture with a white top-left corner: where it ends up tells the rotation."""
    image = np.full((height, width, 3), 40, np.uint8)
    image[: height // 4, : width // 4] = 255
    return image


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_applied_when_the_backend_does_not(tmp_path: Path, monkeypatch, rotation: int) -> None:
    """OpenCV's FFmpeg backend rotates by itself; a backend that cannot (CAP_PROP_ORIENTATION_AUTO refused) gets
    its frames rotated by FileSource, with the same result."""
    upright = _marked(32, 64)
    undo = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}[rotation]
    stored = cv2.rotate(upright, undo)
    case = Case(rotation_deg=rotation)
    path = encode(tmp_path / "rotated.mp4", [stored] * 3, [0.0, 0.04, 0.08], case)

    def first(source: FileSource) -> np.ndarray:
        frame = source.read()
        source.close()
        assert frame is not None
        return frame.image

    auto = FileSource(path)
    assert (auto.width_px, auto.height_px, auto.rotation_deg) == (32, 64, rotation)
    image = first(auto)
    real = cv2.VideoCapture

    class NoAutoRotation:
        def __init__(self, *args: Any) -> None:
            self._cap = real(*args)
            self._cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)

        def set(self, prop: int, value: float) -> bool:
            return False if prop == cv2.CAP_PROP_ORIENTATION_AUTO else self._cap.set(prop, value)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", NoAutoRotation)
    manual = FileSource(path)
    assert (manual.width_px, manual.height_px) == (32, 64)
    for picture in (image, first(manual)):
        assert picture.shape == (64, 32, 3)
        assert picture[:8, :4].mean() > 200 and picture[-16:, -8:].mean() < 100  # the white corner top left


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_variable_frame_rate_without_a_frame_count_is_not_truncated(tmp_path: Path, suffix: str) -> None:
    """Matroska / WebM store no frame count: OpenCV estimates it from the duration and the nominal rate (25 fps
    here), more frames than a file mostly at 15 fps holds. That is no truncation (the pts reach the duration);
    the frames keep their container pts; the same file cut in half is still reported."""
    from capture.sources import SourceError

    times, t = [], 0.0
    while t < 4.0:
        times.append(t)
        t += 1 / 60 if t < 0.5 else 1 / 15
    case = CASES["h264"] if suffix == ".mkv" else CASES["vp9"]
    case = Case(codec=case.codec, suffix=suffix, vfr=True, options=case.options)
    path = encode(tmp_path / f"vfr{suffix}", (_marked(64, 48) for _ in times), times, case)
    source = FileSource(path)
    frames = list(source.frames())
    assert source.frame_count > len(frames) + 3  # the estimate
    assert [f.pts_ns / 1e9 for f in frames] == pytest.approx(times, abs=0.0011)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SourceError, match="truncated or corrupt"):
        list(FileSource(cut).frames())


def test_large_frames_are_downscaled_after_decoding(tmp_path: Path) -> None:
    """3840x2160 comes out 1280x720 by default, whole with capture.max_side_px null, at the configured size else."""
    big = _marked(3840, 2160)
    path = encode(tmp_path / "uhd.mp4", [big] * 2, [0.0, 0.04], Case())
    for max_side_px, size in ((MAX_SIDE_PX_DEFAULT, (1280, 720)), (None, (3840, 2160)), (640, (640, 360))):
        source = FileSource(path, max_side_px=max_side_px)
        frame = source.read()
        source.close()
        assert frame is not None and (source.width_px, source.height_px) == size
        assert frame.image.shape == (size[1], size[0], 3)
        assert frame.image[: size[1] // 8, : size[0] // 8].mean() > 200
    assert CaptureConfig().max_side_px == MAX_SIDE_PX_DEFAULT == 1280
    assert fitted_size(720, 1280, 1280) == (720, 1280) and fitted_size(1080, 1920, 1280) == (720, 1280)
    with pytest.raises(ValueError, match="max_side_px"):
        CaptureConfig(max_side_px=10)


def test_camera_frames_are_downscaled_too() -> None:
    """An IP camera sending 4K: its frames are bounded the same way (a fake capture stands in for the camera)."""

    class FourK:
        def __init__(self, *args: Any) -> None:
            pass

        def isOpened(self) -> bool:
            return True

        def read(self) -> tuple[bool, np.ndarray]:
            return True, np.zeros((2160, 3840, 3), np.uint8)

        def release(self) -> None:
            pass

    cam = StreamSource("rtsp://cam.local/stream", factory=FourK)
    cam.open()
    frame = cam.read()
    cam.close()
    assert frame is not None and frame.image.shape == (720, 1280, 3)
