"""Configuration of the inference process: detector, crop, windows and model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from core.messages.preview import MAX_PREVIEW_SIDE_PX
from inference.overload import OverloadConfig
from inference.variants import Variant, default_variant


@dataclass(slots=True)
class DetectorConfig:
    """Ultralytics YOLO person tracker, one instance per view."""

    weights: str = "${DUALGAIT_ASSETS:-../shared/assets}/weights/yolo11n_int8_openvino_model"
    imgsz_px: int = 640
    conf: float = 0.25
    iou: float = 0.7
    tracker: str = "bytetrack.yaml"
    # lost tracks are kept this many samples (the tracker sees the sampled frames only: 16 = 2 s at 8 Hz)
    track_buffer_samples: int = 16
    person_class: int = 0
    device: str = "cpu"
    half: bool = False  # fp16 on CUDA
    # both views' frames in one model call per sample (off: one call per view)
    batch_views: bool = True
    # frames tiled on one detector input (inference.tiling): 2 puts a sample's two views on one 640 px canvas,
    # one call instead of two (the shared export has a fixed batch of 1); 1: each frame alone at imgsz_px
    tiles_per_call: int = 2
    # samples skipped between detector runs (DeepStream's "interval"): 1 detects every other sample (always
    # a window's last) and interpolates the patient's box in between; 0 detects every sample; null: 1 where the
    # window stride allows it (an even number of samples), else 0
    interval_samples: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.tiles_per_call <= 9:
            raise ValueError("tiles_per_call must be in 1..9")
        if self.track_buffer_samples < 1:
            raise ValueError("track_buffer_samples must be >= 1")
        if self.interval_samples is not None and not 0 <= self.interval_samples <= 3:
            raise ValueError("interval_samples must be in 0..3 or null")


@dataclass(slots=True)
class PatientConfig:
    """Which tracked person is the patient (rules in :mod:`inference.patient`)."""

    # walkway regions, fractions of the frame [x0, y0, x1, y1]: the box's bottom centre (feet) must lie inside
    walkway_front: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0, 1.0])
    walkway_side: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0, 1.0])
    min_height_frac: float = 0.1  # box height / frame height
    # regions where nobody is the patient (a mirror, a doorway, a poster), frame fractions [[x0, y0, x1, y1], ...]:
    # a person whose box centre lies inside one is never locked
    exclude_front: list[list[float]] = field(default_factory=list)
    exclude_side: list[list[float]] = field(default_factory=list)
    # a box within this fraction of the frame's size of its top, left or right edge is cut off (head or body
    # outside); at the bottom edge only when it is also squat (box height / width < min_body_aspect: legs cut)
    edge_margin_frac: float = 0.01
    min_body_aspect: float = 1.3
    # a window whose patient is cut off in more than this fraction of its samples in a view is not scored
    max_truncated_frac: float = 0.25
    # in the first takeover_s of a lock, a person whose evidence (height x full body) beats the locked one's by
    # takeover_ratio in takeover_samples samples running takes the lock (0: a lock is never taken over)
    takeover_s: float = 3.0
    takeover_ratio: float = 1.3
    takeover_samples: int = 3
    require_motion: bool = True  # lock only a person who moves (not a standing member of staff)
    min_motion_per_s: float = 0.3  # thumbnail change + displacement in box heights, per second
    motion_window_s: float = 0.75
    lost_after_s: float = 1.0  # a locked patient unseen this long is released
    walk_gap_s: float = 3.0  # no patient in either view this long: the walk is over, trackers reset
    max_start_offset_s: float = 3.0  # the two views must lock their patient within this of each other
    # identity continuity (inference.identity): the locked track's clothes colours at each detected sample are
    # compared with its earlier sightings; a distance above identity_max_distance (0..1, Bhattacharyya) means the
    # tracker handed the id to someone else: the window is invalid (identity_changed) and the lock re-decides
    identity_check: bool = True
    identity_max_distance: float = 0.35
    # the two views' patients must wear the same colours: their identity references further apart than this are
    # two different people (views_disagree); null: not checked (needs identity_check)
    cross_view_max_distance: float | None = 0.5
    # more eligible people than this in a view (median over a window's detected samples): a crowd, not scored
    max_people: int = 3
    # one side camera alone (single-view mode): the patient's box width / height must vary at least this much
    # (max / min over a window) as the legs swing apart and together; less: no stride seen from the side (a front
    # or back view, or no walking), no_side_stride, not scored. Measured: side views of walking 1.44-2.46 per
    # window, front and back views 1.01-1.22 (docs/inference.md). null: not checked
    min_side_stride_ratio: float | None = 1.25

    def __post_init__(self) -> None:
        for name in ("walkway_front", "walkway_side"):
            region = getattr(self, name)
            if len(region) != 4 or not (0 <= region[0] < region[2] <= 1 and 0 <= region[1] < region[3] <= 1):
                raise ValueError(f"{name} must be [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        if not 0 <= self.min_height_frac < 1:
            raise ValueError("min_height_frac must be in [0, 1)")
        for name in ("exclude_front", "exclude_side"):
            for region in getattr(self, name):
                if len(region) != 4 or not (0 <= region[0] < region[2] <= 1 and 0 <= region[1] < region[3] <= 1):
                    raise ValueError(f"each {name} region must be [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and "
                                     f"0 <= y0 < y1 <= 1, got {region}")
        if not 0 <= self.edge_margin_frac < 0.5:
            raise ValueError("edge_margin_frac must be in [0, 0.5)")
        if not 0 <= self.max_truncated_frac <= 1:
            raise ValueError("max_truncated_frac must be in [0, 1]")
        if self.min_body_aspect < 0 or self.takeover_s < 0:
            raise ValueError("min_body_aspect and takeover_s must be >= 0")
        if self.takeover_ratio < 1 or self.takeover_samples < 1:
            raise ValueError("takeover_ratio must be >= 1 and takeover_samples >= 1")
        for name in ("motion_window_s", "lost_after_s", "walk_gap_s", "max_start_offset_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.min_motion_per_s < 0:
            raise ValueError("min_motion_per_s must be >= 0")
        if not 0 < self.identity_max_distance <= 1:
            raise ValueError("identity_max_distance must be in (0, 1]")
        if self.cross_view_max_distance is not None and not 0 < self.cross_view_max_distance <= 1:
            raise ValueError("cross_view_max_distance must be in (0, 1] or null")
        if self.max_people < 1:
            raise ValueError("max_people must be >= 1")
        if self.min_side_stride_ratio is not None and not 1.0 <= self.min_side_stride_ratio <= 3.0:
            raise ValueError("min_side_stride_ratio must be in [1, 3] or null")

    def walkway(self, view: str) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = self.walkway_front if view == "front" else self.walkway_side
        return (x0, y0, x1, y1)

    def excluded(self, view: str) -> tuple[tuple[float, float, float, float], ...]:
        regions = self.exclude_front if view == "front" else self.exclude_side
        return tuple((r[0], r[1], r[2], r[3]) for r in regions)


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
    # a frame received longer than this after its capture is stale (the window is not scored); null: no limit.
    # Not applied to lossless replay (capture.lossless), which inference paces: frames wait there by design
    max_frame_age_s: float | None = 2.0

    def __post_init__(self) -> None:
        if self.frames < 1 or self.duration_s <= 0:
            raise ValueError("frames must be >= 1 and duration_s > 0")
        step_s = self.duration_s / self.frames
        steps = self.stride_s / step_s
        if self.stride_s <= 0 or abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"stride_s must be a positive multiple of duration_s/frames ({step_s:g} s)")
        if not 1 <= self.min_visible_frames <= self.frames:
            raise ValueError("min_visible_frames must be in 1..frames")
        if self.max_frame_age_s is not None and self.max_frame_age_s <= 0:
            raise ValueError("max_frame_age_s must be > 0 or null")

    @property
    def step_s(self) -> float:
        return self.duration_s / self.frames

    @property
    def stride_samples(self) -> int:
        return round(self.stride_s / self.step_s)


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

    # null: the checkpoint's variant, or without one "late" (single_front / single_side for one camera)
    variant: Variant | None = None
    weights: str | None = None
    # auto: the fastest this machine has, chosen at start and logged (inference.engines.auto): TensorRT fp16 or
    # torch fp16 on an NVIDIA GPU, else OpenVINO int8 on an x86 CPU (calibrated once, cached), else torch. An
    # explicit engine, device or precision always wins
    engine: Literal["auto", "torch", "openvino", "onnxruntime", "tensorrt"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = "auto"
    # built engines (ONNX, OpenVINO IR, TensorRT plans) are cached here (inference.engines.cache)
    cache_dir: str = "${DUALGAIT_CACHE_DIR:-~/.cache/dualgait}"
    # largest batch the exported engines accept (ONNX dynamic axis, TensorRT profile)
    max_batch: int = 8
    # torch on CUDA: replay the forward pass from a CUDA graph
    cuda_graphs: bool = True
    seed: int = 0
    # intra-op threads (0: one per core)
    threads: int = 0

    def __post_init__(self) -> None:
        # what is explicit must fit together; "auto" parts are resolved at start (inference.engines.auto)
        devices = ENGINE_PRECISIONS.get(self.engine)
        if devices is not None and self.device != "auto" and self.device not in devices:
            raise ValueError(f"engine {self.engine} runs on {' or '.join(devices)}, not {self.device}")
        if self.precision != "auto":
            allowed = ([devices[self.device]] if devices is not None and self.device != "auto" else
                       list(devices.values()) if devices is not None else
                       [p for d in ENGINE_PRECISIONS.values() for p in d.values()])
            if not any(self.precision in group for group in allowed):
                where = f"engine {self.engine}" + ("" if self.device == "auto" else f" on {self.device}")
                runs = list(dict.fromkeys(p for group in allowed for p in group))
                raise ValueError(f"{where} runs {', '.join(runs)}, not {self.precision}")
        if not 1 <= self.max_batch <= 256:
            raise ValueError("max_batch must be in 1..256")

    def for_views(self, views: tuple[str, ...]) -> ModelConfig:
        """This config for cameras ``views``: without weights or variant, the untrained model is the variant that
        takes those views (``late`` for both, ``single_side`` for the side one alone)."""
        if self.weights is not None or self.variant is not None:
            return self
        return replace(self, variant=default_variant(views))


@dataclass(slots=True)
class PreviewConfig:
    """``inference.preview``: camera previews published on the scores socket for the aggregator's live view."""

    enabled: bool = True
    rate_hz: float = 2.0        # per view
    width_px: int = 320         # preview width; the height keeps the frame's aspect ratio
    jpeg_quality: int = 70
    crops: bool = True          # also the last window's model input per view (the live view's crops panel)

    def __post_init__(self) -> None:
        if self.rate_hz <= 0:
            raise ValueError("preview rate_hz must be > 0")
        if not 16 <= self.width_px <= MAX_PREVIEW_SIDE_PX:
            raise ValueError(f"preview width_px must be in 16..{MAX_PREVIEW_SIDE_PX}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("preview jpeg_quality must be in 1..100")


@dataclass(slots=True)
class InferenceConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    patient: PatientConfig = field(default_factory=PatientConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    overload: OverloadConfig = field(default_factory=OverloadConfig)
    receive_hwm_frames: int = 200
    exit_on_end_of_stream: bool = False
    # several walkways (config 'walkways'): gather their detector and model calls into batches (one call for
    # every walkway waiting); off: each walkway's calls run as soon as they are due, one per walkway. Batching
    # pays where a batch runs in parallel (a GPU, a dynamic-batch export); with a fixed batch-1 detector
    # export (the shared OpenVINO YOLO11n) it only makes windows wait for their batch (docs/inference.md)
    batch_walkways: bool = True
    # a view whose capture (heard before) sends nothing, not even a heartbeat, for this long has ended
    view_silence_s: float = 5.0
    # annotated video per view and a contact sheet of the model input per window (inference.annotate), written
    # here (one subfolder per stream, and per walkway when there are several; --save-video DIR); null: none
    save_video_dir: str | None = None

    def __post_init__(self) -> None:
        if self.detector.interval_samples is None:  # resolved here, where the window stride is known
            self.detector.interval_samples = 1 if self.window.stride_samples % 2 == 0 else 0
        every = self.detector.interval_samples + 1
        if self.window.stride_samples % every:
            raise ValueError(f"window stride ({self.window.stride_samples} samples) must be a multiple of "
                             f"detector.interval_samples + 1 ({every}) so that every window ends on a detection")
        if self.receive_hwm_frames < 1:
            raise ValueError("receive_hwm_frames must be >= 1")
        if self.view_silence_s <= 0:
            raise ValueError(f"view_silence_s must be > 0, got {self.view_silence_s}")
        if self.save_video_dir is not None and not self.save_video_dir.strip():
            raise ValueError("save_video_dir must be a folder or null, not empty")
