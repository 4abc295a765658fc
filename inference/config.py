"""Configuration of the inference process: detector, crop, windows and model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(slots=True)
class DetectorConfig:
    """Ultralytics YOLO person tracker, one instance per view."""

    weights: str = "${DUALGAIT_ASSETS:-../shared/assets}/weights/yolo11n_int8_openvino_model"
    imgsz_px: int = 640
    conf: float = 0.25
    iou: float = 0.7
    tracker: str = "bytetrack.yaml"
    person_class: int = 0
    device: str = "cpu"


@dataclass(slots=True)
class CropConfig:
    """The paper's crop: box scaled to ``canvas_px`` high (aspect kept), black-padded square, resized."""

    canvas_px: int = 512
    input_px: int = 224

    def __post_init__(self) -> None:
        if self.canvas_px < 16 or self.input_px < 16:
            raise ValueError("canvas_px and input_px must be >= 16")


@dataclass(slots=True)
class WindowConfig:
    """Windows of ``frames`` evenly spaced samples over ``duration_s``, one every ``stride_s``."""

    frames: int = 8
    duration_s: float = 1.0
    stride_s: float = 1.0
    # front/side capture times further apart than this are not a pair (null: half the frame period)
    pair_tolerance_s: float | None = None
    # a frame (and a sample target) still without a pair this long behind the newest frame of either
    # view is given up: a stopped camera yields invalid windows instead of silence
    max_pair_wait_s: float = 2.0
    # a window is scored only when the patient is found in both views in at least this many samples
    min_visible_frames: int = 8

    def __post_init__(self) -> None:
        if self.frames < 1 or self.duration_s <= 0:
            raise ValueError("frames must be >= 1 and duration_s > 0")
        step_s = self.duration_s / self.frames
        steps = self.stride_s / step_s
        if self.stride_s <= 0 or abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"stride_s must be a positive multiple of duration_s/frames ({step_s:g} s)")
        if not 1 <= self.min_visible_frames <= self.frames:
            raise ValueError("min_visible_frames must be in 1..frames")

    @property
    def step_s(self) -> float:
        return self.duration_s / self.frames

    @property
    def stride_samples(self) -> int:
        return round(self.stride_s / self.step_s)


@dataclass(slots=True)
class ModelConfig:
    """Dual-view classifier. ``weights`` null: random initialisation (scores are meaningless)."""

    variant: Literal["late"] = "late"
    weights: str | None = None
    precision: Literal["fp32", "bf16"] = "bf16"
    seed: int = 0
    # torch intra-op threads (0: one per core)
    threads: int = 0


@dataclass(slots=True)
class InferenceConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    receive_hwm_frames: int = 200
    exit_on_end_of_stream: bool = False
