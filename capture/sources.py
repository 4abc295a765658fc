"""Frame sources behind one protocol: recorded file, USB camera, IP camera (RTSP/HTTP), synthetic walker.

A source is opened, read frame by frame and closed; it knows nothing of sockets, pacing or reconnection
(``capture.reader`` does those). ``live`` sources are cameras: losing one means reconnecting, and a
frame's capture time is the host clock when it was read. A file's frames carry their container
timestamps (pts, any frame rate, variable too) and are paced by the reader; a file's rotation metadata is
applied (a portrait phone video comes out upright). Every source downscales frames whose longer side exceeds
``max_side_px`` right after decoding (docs/capture.md, "Recordings as they come").
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np

from capture.config import MAX_SIDE_PX_DEFAULT

log = logging.getLogger(__name__)

# FFmpeg inside OpenCV prints its own complaints to stderr, several lines per damaged frame ("[h264 @ 0x...] Invalid
# NAL unit size"); a damaged file is reported by a SourceError in one line instead. Read by OpenCV when it first
# opens a video; set OPENCV_FFMPEG_LOGLEVEL yourself (e.g. 16, errors) to see FFmpeg's messages.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL

# A file whose decoding ends this many frames before the count in its container is truncated or corrupt
# (the count is exact for MP4/MOV/AVI; estimated from the duration for some other containers, hence the margin).
TRUNCATED_MIN_FRAMES, TRUNCATED_MIN_FRACTION = 3, 0.02

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")


class SourceError(RuntimeError):
    """A source cannot be opened or read (a user-facing, one-line message)."""


def fitted_size(width_px: int, height_px: int, max_side_px: int | None) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, so that the longer side is at most ``max_side_px``."""
    longest = max(width_px, height_px)
    if max_side_px is None or longest <= max_side_px:
        return width_px, height_px
    scale = max_side_px / longest
    return max(1, round(width_px * scale)), max(1, round(height_px * scale))


def fit_within(image: np.ndarray, max_side_px: int | None) -> np.ndarray:
    """``image`` downscaled (area interpolation, aspect kept) when its longer side exceeds ``max_side_px``."""
    height, width = image.shape[:2]
    size = fitted_size(width, height, max_side_px)
    if size == (width, height):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


# Display rotation (ORIENTATION_META, degrees clockwise) -> the cv2.rotate code that shows the frame upright;
# used only when the backend does not rotate by itself (OpenCV's FFmpeg backend does: CAP_PROP_ORIENTATION_AUTO)
_ROTATE_CODES = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(slots=True)
class DecodedFrame:
    index: int  # per opening of the source
    pts_ns: int  # presentation time from the container, from its first frame (index / fps when it has none)
    pts_from_container: bool
    image: np.ndarray  # (H, W, 3) uint8 BGR, upright, longer side at most the source's max_side_px
    read_mono_ns: int = 0  # host CLOCK_MONOTONIC right after the frame was read


class Source(Protocol):
    live: bool
    description: str

    def open(self) -> None:
        """Open (or reopen) the source; raises SourceError."""
        ...

    def read(self) -> DecodedFrame | None:
        """The next frame; None when the source has no more (end of file, stream closed); SourceError on failure."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: Literal["file", "usb", "stream", "synthetic"]
    target: str  # file path, URL, device index, or asd|normal
    seed: int = 0


def parse_source(text: str) -> SourceSpec:
    """``path`` | ``usb:N`` | ``N`` | ``rtsp://`` / ``http(s)://`` URL | ``synthetic:asd|normal[:SEED]``."""
    text = text.strip()
    if not text:
        raise SourceError("empty source (expected a file, usb:N, an rtsp:// or http:// URL, or synthetic:asd)")
    if text.isdigit() or text.startswith("usb:"):
        index = text.removeprefix("usb:")
        if not index.isdigit():
            raise SourceError(f"bad USB camera {text!r} (expected usb:N with N a device index)")
        return SourceSpec("usb", index)
    if text.startswith("synthetic:"):
        parts = text.split(":")
        seed_ok = len(parts) == 2 or (len(parts) == 3 and parts[2].isdigit())
        if not seed_ok or parts[1] not in ("asd", "normal"):
            raise SourceError(f"bad synthetic source {text!r} (expected synthetic:asd|normal[:SEED])")
        return SourceSpec("synthetic", parts[1], int(parts[2]) if len(parts) == 3 else 0)
    if "://" in text:
        url = urlsplit(text)
        if url.scheme.lower() not in STREAM_SCHEMES or not url.hostname:
            raise SourceError(f"bad camera URL {text!r} (expected rtsp://host/... or http(s)://host/...)")
        return SourceSpec("stream", text)
    return SourceSpec("file", text)


# --------------------------------------------------------------------------- recorded file


class FileSource:
    """Frames of a video file in order with their pts; ``start_offset_s`` skips the start, ``loop`` repeats.

    pts are the container's (CAP_PROP_POS_MSEC: any frame rate, variable too), relative to the first frame and
    to the start offset, and keep growing across loops, so pacing stays continuous. Frames come out upright (the
    container's rotation applied) and downscaled to ``max_side_px`` (None: full size). ``fps`` is the container's
    (average) rate, used only for the duration and where a frame has no pts.
    """

    live = False

    def __init__(self, path: str | Path, *, start_offset_s: float = 0.0, loop: bool = False,
                 max_side_px: int | None = MAX_SIDE_PX_DEFAULT) -> None:
        self.path = Path(path)
        self.description = f"file {self.path}"
        self.start_offset_ns = round(start_offset_s * 1e9)
        self.loop = loop
        self.max_side_px = max_side_px
        if not self.path.is_file():
            raise SourceError(f"video not found: {self.path}")
        self._cap: Any = None
        self._rotate: int | None = None  # cv2.rotate code when the backend does not apply the rotation itself
        self._open_capture()
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 0.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        # the size as decoded, upright
        self.decoded_width_px = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.decoded_height_px = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if self._rotate in (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE):
            self.decoded_width_px, self.decoded_height_px = self.decoded_height_px, self.decoded_width_px
        # the size of the frames handed out
        self.width_px, self.height_px = fitted_size(self.decoded_width_px, self.decoded_height_px, max_side_px)
        if self.fps <= 0 or self.width_px <= 0 or self.height_px <= 0:
            self.close()
            raise SourceError(f"not a readable video (no frame rate or size): {self.path}")
        if self.start_offset_ns >= self.duration_s * 1e9:
            self.close()
            raise SourceError(f"start offset {start_offset_s:g} s is past the end of {self.path} "
                              f"({self.duration_s:.1f} s)")
        self._index = 0  # frames read in this pass
        self._emitted = 0  # frames returned since open()
        self._loop_base_ns = 0  # pts of the first frame of this pass, on the continuous timeline
        self._last_pts_ns = 0
        self._pass_pts_ns = 0  # container pts of the last frame decoded in this pass

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def _open_capture(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise SourceError(f"cannot open video (unreadable or unknown format): {self.path}")
        self._index = 0
        # portrait phone videos store landscape pixels plus a display rotation: the backend applies it (the
        # default of OpenCV's FFmpeg backend, asked for explicitly), else it is applied here
        self.rotation_deg = round(self._cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360  # clockwise to show upright
        auto = self._cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1) and self._cap.get(cv2.CAP_PROP_ORIENTATION_AUTO) == 1
        self._rotate = None if auto else _ROTATE_CODES.get(self.rotation_deg)

    def open(self) -> None:
        if self._cap is None:
            self._open_capture()
            self._emitted = 0
            self._loop_base_ns = 0

    def _read_raw(self) -> tuple[np.ndarray, int, bool] | None:
        ok, image = self._cap.read()
        if not ok:
            return None
        pos_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        from_container = pos_ms > 0 or self._index == 0
        pts_ns = round(pos_ms * 1e6) if from_container else round(self._index * 1e9 / self.fps)
        self._index += 1
        self._pass_pts_ns = pts_ns
        return image, pts_ns, from_container

    def read(self) -> DecodedFrame | None:
        while True:
            raw = self._read_raw()
            if raw is None:
                if self._index == 0:
                    raise SourceError(f"video has no decodable frames: {self.path}")
                self._check_complete()
                if not self.loop:
                    return None
                period_ns = round(1e9 / self.fps)
                self._loop_base_ns = self._last_pts_ns + period_ns
                self._open_capture()
                continue
            image, pts_ns, from_container = raw
            if pts_ns < self.start_offset_ns:
                continue
            if self._rotate is not None:
                image = cv2.rotate(image, self._rotate)
            image = fit_within(image, self.max_side_px)
            pts_ns = self._loop_base_ns + pts_ns - self.start_offset_ns
            self._last_pts_ns = pts_ns
            frame = DecodedFrame(self._emitted, pts_ns, from_container, image, time.monotonic_ns())
            self._emitted += 1
            return frame

    def _check_complete(self) -> None:
        """At the end of a pass: SourceError when far fewer frames decoded than the container declares and their
        pts stop well before its duration. Both: where the container has no frame count (Matroska, WebM) OpenCV
        estimates it from the duration and the nominal rate, which a variable frame rate file need not reach."""
        missing = self.frame_count - self._index
        margin = max(TRUNCATED_MIN_FRAMES, TRUNCATED_MIN_FRACTION * self.frame_count)
        reached_s = self._pass_pts_ns / 1e9 + 1 / self.fps  # the end of the last frame (one nominal period)
        if missing > margin and self.duration_s - reached_s > margin / self.fps:
            raise SourceError(f"video is truncated or corrupt: decoding stopped after frame {self._index} of "
                              f"{self.frame_count} ({reached_s:.1f} of {self.duration_s:.1f} s): {self.path}")
        if missing > 0:
            log.debug("%s: %d of %d frames decoded (the container's count may be an estimate)", self.description,
                        self._index, self.frame_count)

    def frames(self) -> Iterator[DecodedFrame]:
        """Every frame from the current position to the end (forever with ``loop``)."""
        self.open()
        yield from iter(self.read, None)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# --------------------------------------------------------------------------- cameras

CaptureFactory = Callable[..., Any]  # cv2.VideoCapture or a test double with the same methods


class _OpenCVCamera:
    """Shared read loop of live OpenCV captures: host-stamped frames, read failure -> SourceError."""

    live = True
    description = "camera"

    def __init__(self, factory: CaptureFactory, max_side_px: int | None = MAX_SIDE_PX_DEFAULT) -> None:
        self._factory = factory
        self.max_side_px = max_side_px
        self._cap: Any = None
        self._index = 0
        self._t0_ns = 0

    def _open_cap(self) -> Any:
        raise NotImplementedError

    def open(self) -> None:
        self.close()
        self._cap = self._open_cap()
        self._index = 0
        self._t0_ns = time.monotonic_ns()

    def read(self) -> DecodedFrame | None:
        if self._cap is None:
            raise SourceError(f"{self.description}: not open")
        ok, image = self._cap.read()
        now_ns = time.monotonic_ns()
        if not ok or image is None:
            raise SourceError(f"{self.description}: no frame (disconnected or timed out)")
        frame = DecodedFrame(self._index, now_ns - self._t0_ns, False, fit_within(image, self.max_side_px), now_ns)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(_OpenCVCamera):
    """A USB (V4L2) camera by device index, with requested size, frame rate and pixel format.

    Written against OpenCV's API and tested with a fake capture only: not run on real hardware here.
    """

    def __init__(self, device: int, *, width_px: int | None = None, height_px: int | None = None,
                 fps: float | None = None, fourcc: str | None = None,
                 factory: CaptureFactory = cv2.VideoCapture, max_side_px: int | None = MAX_SIDE_PX_DEFAULT) -> None:
        super().__init__(factory, max_side_px)
        self.device = device
        self.description = f"USB camera {device}"
        self.requested = {"width_px": width_px, "height_px": height_px, "fps": fps, "fourcc": fourcc}
        self.granted: dict[str, Any] = {}

    def _open_cap(self) -> Any:
        cap = self._factory(self.device, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.description} (/dev/video{self.device} missing or busy)")
        req = self.requested
        # V4L2 negotiates the pixel format first, then the size, then the frame rate
        if req["fourcc"]:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*req["fourcc"]))
        if req["width_px"]:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, req["width_px"])
        if req["height_px"]:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, req["height_px"])
        if req["fps"]:
            cap.set(cv2.CAP_PROP_FPS, req["fps"])
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        self.granted = {"width_px": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                        "height_px": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                        "fps": float(cap.get(cv2.CAP_PROP_FPS)),
                        "fourcc": "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))}
        differ = {k: (req[k], self.granted[k]) for k in req if req[k] is not None and req[k] != self.granted[k]}
        if differ:
            log.warning("%s: requested settings not granted (requested, granted): %s", self.description, differ)
        log.info("%s: %s", self.description, self.granted)
        return cap


class StreamSource(_OpenCVCamera):
    """An IP camera: RTSP or HTTP (MJPEG) URL through OpenCV's FFmpeg backend, with open/read time-outs."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, factory: CaptureFactory = cv2.VideoCapture,
                 max_side_px: int | None = MAX_SIDE_PX_DEFAULT) -> None:
        super().__init__(factory, max_side_px)
        self.url = url
        parts = urlsplit(url)
        # never log credentials embedded in the URL
        self.description = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self.timeout_ms = round(timeout_s * 1000)

    def _open_cap(self) -> Any:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms]
        cap = self._factory(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.description} (unreachable, refused or not a video stream)")
        return cap


# --------------------------------------------------------------------------- synthetic walker


class SyntheticSource:
    """A rendered synthetic walker (ASD-like traits or none), replayed like a file; rendered once on first open.

    Both capture processes render the same walker from the same seed (rendering is deterministic).
    """

    live = False

    def __init__(self, view: str, *, asd: bool, seed: int = 0, seconds: float | None = None,
                 size_px: int | None = None, start_offset_s: float = 0.0, loop: bool = False,
                 max_side_px: int | None = MAX_SIDE_PX_DEFAULT) -> None:
        # seconds / size_px None: the demo walk's (capture.synthetic.demo_walker, the demo model's training walks)
        self.view, self.asd, self.seed = view, asd, seed
        self.seconds, self.size_px = seconds, size_px
        self.start_offset_s, self.loop, self.max_side_px = start_offset_s, loop, max_side_px
        self.description = f"synthetic {'asd' if asd else 'normal'} walker (seed {seed}, {view} view)"
        self._dir: Path | None = None
        self._file: FileSource | None = None

    def open(self) -> None:
        if self._file is not None:
            return
        from capture.synthetic.demo_walker import render_demo_walker

        self._dir = Path(tempfile.mkdtemp(prefix="dualgait-synthetic-"))
        front, side = render_demo_walker(self._dir, asd=self.asd, seed=self.seed, seconds=self.seconds,
                                         size_px=self.size_px)
        video = front if self.view == "front" else side
        self._file = FileSource(video, start_offset_s=self.start_offset_s, loop=self.loop,
                                max_side_px=self.max_side_px)

    def read(self) -> DecodedFrame | None:
        if self._file is None:
            raise SourceError(f"{self.description}: not open")
        return self._file.read()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def make_source(spec: SourceSpec, view: str, *, width_px: int | None = None, height_px: int | None = None,
                fps: float | None = None, fourcc: str | None = None, start_offset_s: float = 0.0,
                loop: bool = False, timeout_s: float = 5.0, max_side_px: int | None = MAX_SIDE_PX_DEFAULT) -> Source:
    """The source a spec names; a missing or unreadable file raises SourceError here, before any socket."""
    if spec.kind == "file":
        return FileSource(spec.target, start_offset_s=start_offset_s, loop=loop, max_side_px=max_side_px)
    if spec.kind == "usb":
        return CameraSource(int(spec.target), width_px=width_px, height_px=height_px, fps=fps, fourcc=fourcc,
                            max_side_px=max_side_px)
    if spec.kind == "stream":
        return StreamSource(spec.target, timeout_s=timeout_s, max_side_px=max_side_px)
    return SyntheticSource(view, asd=spec.target == "asd", seed=spec.seed, start_offset_s=start_offset_s, loop=loop,
                           max_side_px=max_side_px)
