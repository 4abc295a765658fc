"""Configuration of the capture processes (one per view); docs/capture.md explains every key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.messages import by_view

# Frames larger than this (longest side, pixels) are downscaled right after decoding, keeping their aspect: the
# detector letterboxes to 640 and the crop canvas is 512 (the model sees 224), so a longer side buys nothing
# downstream while it costs every stage (resize, transport, memory: 3840x2160 raw is 24.9 MB a frame, 1280x720 2.8).
MAX_SIDE_PX_DEFAULT = 1280


@dataclass(slots=True)
class CaptureConfig:
    """``front`` / ``side``: the source of each view, one string each (see :func:`capture.sources.parse_source`):

    - a video file path: replayed as a camera, frame i at ``start + pts_i / speed`` from one shared instant;
    - ``usb:N`` (or just ``N``): USB camera N, opened with the requested width/height/fps/fourcc;
    - ``rtsp://...``, ``http://...``, ``https://...``: an IP camera (RTSP, or HTTP MJPEG);
    - ``synthetic:asd`` / ``synthetic:normal`` (``:SEED`` optional): a rendered synthetic walker.

    One of them may be null: a single-camera walkway (most often a side camera alone), scored by a single-view
    model (``single_side`` / ``single_front``); :attr:`views` lists the cameras present.
    """

    front: str | None = "${DUALGAIT_ASSETS:-../shared/assets}/videos/walk_front.mp4"
    side: str | None = "${DUALGAIT_ASSETS:-../shared/assets}/videos/walk_side.mp4"
    # USB cameras: requested settings (null: the camera's default); the granted ones are logged
    width_px: int | None = None
    height_px: int | None = None
    fps: float | None = None
    fourcc: str | None = None  # e.g. MJPG, YUYV
    # every source: frames with a longer side than this are downscaled after decoding (aspect kept); null: never
    max_side_px: int | None = MAX_SIDE_PX_DEFAULT
    # replay of files (and synthetic walkers)
    speed: float = 1.0
    loop: bool = False
    start_offset_s: float = 0.0
    # stop after this long from the start instant (null: at the end of the source; with loop: never)
    max_duration_s: float | None = None
    # lossless: PUSH/PULL instead of PUB/SUB, replay paced by the consumer (benchmarks, offline scoring)
    lossless: bool = False
    # transport
    encoding: Literal["raw", "jpeg"] = "raw"
    jpeg_quality: int = 90
    send_hwm_frames: int = 64
    # delay between process start and the shared start instant when none is given on the command line
    start_delay_s: float = 1.0
    # live (PUB/SUB): after binding, wait up to this long for the first subscriber before reading the source, so
    # the first frames are not published to nobody (ZeroMQ's slow joiner); a replay keeps its shared timeline
    # (late frames go out at once, stamped when they were due). 0: do not wait
    subscriber_wait_s: float = 2.0
    # camera loss: reconnect with exponential backoff (+ up to 25 % random jitter), heartbeats meanwhile
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 10.0
    stall_timeout_s: float = 2.0
    open_timeout_s: float = 5.0
    heartbeat_s: float = 0.5
    # TEST ONLY fault injection: drop this fraction of frames, delay frames by up to jitter_ms
    inject_drop_rate: float = 0.0
    inject_jitter_ms: float = 0.0
    inject_seed: int = 0

    def __post_init__(self) -> None:
        if self.front is None and self.side is None:
            raise ValueError("front and side are both null: at least one camera is needed")
        if self.speed <= 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.send_hwm_frames < 1:
            raise ValueError("send_hwm_frames must be >= 1")
        for name in ("width_px", "height_px"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 8192:
                raise ValueError(f"{name} must be in 1..8192, got {value}")
        if self.max_side_px is not None and not 64 <= self.max_side_px <= 16384:
            raise ValueError(f"max_side_px must be in 64..16384 or null, got {self.max_side_px}")
        if self.fps is not None and not 0 < self.fps <= 1000:
            raise ValueError(f"fps must be in (0, 1000], got {self.fps}")
        if self.fourcc is not None and (len(self.fourcc) != 4 or not self.fourcc.isascii()):
            raise ValueError(f"fourcc must be 4 ASCII characters (e.g. MJPG), got {self.fourcc!r}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ValueError(f"max_duration_s must be > 0 or null, got {self.max_duration_s}")
        if self.subscriber_wait_s < 0:
            raise ValueError(f"subscriber_wait_s must be >= 0, got {self.subscriber_wait_s}")
        if self.start_offset_s < 0:
            raise ValueError(f"start_offset_s must be >= 0, got {self.start_offset_s}")
        if not 0 < self.reconnect_initial_s <= self.reconnect_max_s:
            raise ValueError("reconnect_initial_s must be > 0 and <= reconnect_max_s")
        for name in ("stall_timeout_s", "open_timeout_s", "heartbeat_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.inject_drop_rate < 1.0:
            raise ValueError(f"inject_drop_rate must be in [0, 1), got {self.inject_drop_rate}")
        if self.inject_jitter_ms < 0:
            raise ValueError(f"inject_jitter_ms must be >= 0, got {self.inject_jitter_ms}")

    @property
    def views(self) -> tuple[str, ...]:
        """The views with a camera, in protocol order: ``("front", "side")``, ``("front",)`` or ``("side",)``."""
        return tuple(by_view(self.front, self.side))

    def source(self, view: str) -> str:
        source = self.front if view == "front" else self.side
        if source is None:
            from core.configtools import ConfigError

            raise ConfigError(f"capture.{view} is null: this walkway has no {view} camera")
        return source
