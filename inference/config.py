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


# the model variants of inference.models.fusion.VARIANTS (kept here so reading a config needs no torch)
Variant = Literal["single_front", "single_side", "early", "late", "slow", "gated"]
EngineKind = Literal["torch", "openvino", "onnxruntime", "tensorrt"]
Precision = Literal["fp32", "bf16", "fp16", "int8"]

# which precisions each engine runs, per device
ENGINE_PRECISIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "torch": {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "fp16")},
    "openvino": {"cpu": ("fp32", "bf16", "int8")},
    "onnxruntime": {"cpu": ("fp32",), "cuda": ("fp32",)},
    "tensorrt": {"cuda": ("fp16", "fp32")},
}


@dataclass(slots=True)
class ModelConfig:
    """Dual-view classifier and the engine that runs it.

    ``weights`` is a dualgait checkpoint; the model is rebuilt from it alone (variant, input size,
    frames). Null: random initialisation of ``variant`` (scores are meaningless).
    """

    # null: the checkpoint's variant, or "late" when there is no checkpoint
    variant: Variant | None = None
    weights: str | None = None
    engine: EngineKind = "torch"
    device: Literal["cpu", "cuda"] = "cpu"
    precision: Precision = "bf16"
    # built engines (ONNX, OpenVINO IR, TensorRT plans) are cached here
    cache_dir: str = "${DUALGAIT_CACHE_DIR:-~/.cache/dualgait}"
    # largest batch the exported engines accept (ONNX dynamic axis, TensorRT profile)
    max_batch: int = 8
    # torch on CUDA: replay the forward pass from a CUDA graph
    cuda_graphs: bool = True
    seed: int = 0
    # intra-op threads (0: one per core)
    threads: int = 0

    def __post_init__(self) -> None:
        devices = ENGINE_PRECISIONS[self.engine]
        if self.device not in devices:
            raise ValueError(f"engine {self.engine} runs on {' or '.join(devices)}, not {self.device}")
        if self.precision not in devices[self.device]:
            raise ValueError(f"engine {self.engine} on {self.device} runs {', '.join(devices[self.device])}, "
                             f"not {self.precision}")
        if not 1 <= self.max_batch <= 256:
            raise ValueError("max_batch must be in 1..256")


@dataclass(slots=True)
class InferenceConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    receive_hwm_frames: int = 200
    exit_on_end_of_stream: bool = False
    # a view whose capture (heard before) sends nothing, not even a heartbeat, for this long has ended
    view_silence_s: float = 5.0

    def __post_init__(self) -> None:
        if self.receive_hwm_frames < 1:
            raise ValueError("receive_hwm_frames must be >= 1")
        if self.view_silence_s <= 0:
            raise ValueError(f"view_silence_s must be > 0, got {self.view_silence_s}")
