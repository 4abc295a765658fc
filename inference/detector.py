"""Person detection and tracking per view: one Ultralytics YOLO model for both views, one tracker per view.

:class:`YoloDetector` runs the model once per sample on both views' frames together (a batch of two:
one call, one preprocessing pass; on a GPU one kernel launch per layer for both views) and feeds each
view's boxes to that view's own ByteTrack instance (Ultralytics' ``BYTETracker``), so track ids never
mix across views. Which person is the patient is decided later, by :mod:`inference.patient`. The network itself
(:class:`YoloModel`) is shared by every walkway an inference process serves, so their frames can go through it
in one batch (:mod:`inference.walkways`).

The tracker sees only the sampled frames (8 per second by default), so its buffer of lost tracks is set
in samples (``track_buffer_samples``), not camera frames.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inference.config import DetectorConfig
from inference.errors import DetectorError
from inference.tiling import compose, plan_tiles, split_boxes


@dataclass(frozen=True, slots=True)
class Detection:
    box_xyxy: tuple[float, float, float, float]  # pixels in the frame (the tracker's, Kalman-smoothed)
    conf: float
    track_id: int | None
    # the detector's own box of this sighting (the tracker's smooths the aspect ratio away): None when the box
    # was not detected on this sample (interpolated) or the detector gives none
    detected_xyxy: tuple[float, float, float, float] | None = None


class Detector(Protocol):
    """What the pipeline needs: people with track ids in each view's image, and a reset between walks."""

    def track(self, images: Mapping[str, np.ndarray], *, full_size: bool = False) -> dict[str, list[Detection]]:
        """``full_size``: each frame alone at the detector's full input size (no tiling), e.g. while a lock is
        being decided."""
        ...

    def reset(self) -> None: ...


class ViewTracker(Protocol):
    """One view's tracker (e.g. true boxes in training); :class:`PerViewDetector` combines them."""

    def track(self, image: np.ndarray) -> list[Detection]: ...
    def reset(self) -> None: ...


class PerViewDetector:
    """A :class:`Detector` made of one independent :class:`ViewTracker` per view (no batching)."""

    def __init__(self, trackers: Mapping[str, ViewTracker]) -> None:
        self.trackers = dict(trackers)

    def track(self, images: Mapping[str, np.ndarray], *, full_size: bool = False) -> dict[str, list[Detection]]:
        return {view: self.trackers[view].track(image) for view, image in images.items()}

    def reset(self) -> None:
        for tracker in self.trackers.values():
            tracker.reset()


def configure_ultralytics_env(config_dir: str | os.PathLike[str]) -> None:
    """Keep Ultralytics offline and quiet; must run before ``ultralytics`` is imported."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "0")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))


def _load_problem(exc: BaseException) -> str:
    """One line from a loader's exception: OpenVINO's say where the check failed first and what failed last."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return "no model file found there" if isinstance(exc, StopIteration) else type(exc).__name__
    line = lines[-1] if lines[0].startswith("Exception from src/") else lines[0]
    return line if len(line) <= 200 else line[:197] + "..."


class YoloModel:
    """The loaded Ultralytics YOLO network (any format it loads: OpenVINO, .pt, ONNX, TensorRT .engine).

    Stateless between calls: one instance can serve every walkway's :class:`YoloDetector` (their trackers are
    their own), so one inference process loads the detector once and can batch frames of several walkways.
    """

    def __init__(self, cfg: DetectorConfig) -> None:
        weights = Path(cfg.weights)
        if not weights.exists():
            raise DetectorError(f"detector weights not found: {weights} (set inference.detector.weights)")
        self.cfg = cfg
        try:
            from ultralytics import YOLO

            self._model = YOLO(str(weights), task="detect")
            # exported formats (OpenVINO, ONNX, TensorRT) are only read on the first prediction: make it here, so
            # a truncated or incomplete export is a DetectorError now, not an exception in the middle of a run
            blank = np.zeros((cfg.imgsz_px * 9 // 16, cfg.imgsz_px, 3), dtype=np.uint8)  # 16:9, batched as track()
            self.predict([blank] * (2 if cfg.batch_views or cfg.tiles_per_call > 1 else 1))
        except Exception as exc:  # Ultralytics and the runtimes raise many types for unreadable weights
            raise DetectorError(f"cannot load detector weights {weights}: {_load_problem(exc)}") from None

    def _call(self, images: list[np.ndarray]) -> list[Any]:
        cfg = self.cfg
        extra = {"half": True} if cfg.half else {}  # passing half=False makes Ultralytics warn on every call
        return self._model.predict(images, classes=[cfg.person_class], conf=cfg.conf, iou=cfg.iou,
                                   imgsz=cfg.imgsz_px, device=cfg.device, verbose=False, **extra)

    def _run(self, images: list[np.ndarray]) -> list[Any]:
        results = self._call(images) if self.cfg.batch_views else [self._call([image])[0] for image in images]
        return [result.boxes.cpu().numpy() for result in results]

    def predict(self, images: list[np.ndarray], *, full_size: bool = False) -> list[Any]:
        """(H, W, 3) BGR images -> their person boxes (Ultralytics ``Boxes`` on the CPU, one per image).

        With ``tiles_per_call`` > 1 (and not ``full_size``) the images are tiled ``tiles_per_call`` to a canvas of
        ``imgsz_px`` (:mod:`inference.tiling`) and the boxes mapped back; the canvases (else the images) go in one
        model call with ``batch_views``, else one call each."""
        tiles = 1 if full_size else self.cfg.tiles_per_call
        if tiles < 2 or len(images) < 2:
            return self._run(images)
        from ultralytics.engine.results import Boxes

        plan = plan_tiles([image.shape[:2] for image in images], canvas_px=self.cfg.imgsz_px, tiles_per_canvas=tiles)
        found = [boxes.data for boxes in self._run(compose(images, plan))]  # per canvas (N, 6) x1 y1 x2 y2 conf cls
        return [Boxes(boxes, image.shape[:2]) for boxes, image in zip(split_boxes(found, plan), images, strict=True)]


def _detected(found: np.ndarray, index: float) -> tuple[float, float, float, float] | None:
    k = int(index)
    if not 0 <= k < len(found):
        return None
    x0, y0, x1, y1 = (float(v) for v in found[k][:4])
    return x0, y0, x1, y1


class YoloDetector:
    """A :class:`YoloModel` + one ByteTrack (or BoT-SORT without ReID) per view.

    ``model``: share an already loaded network (one per process, whatever the number of walkways).
    """

    def __init__(self, cfg: DetectorConfig, *, views: tuple[str, ...] = ("front", "side"),
                 model: YoloModel | None = None) -> None:
        self._cfg = cfg
        self.views = views
        self.model = model if model is not None else YoloModel(cfg)
        self.reset()

    def _new_tracker(self):
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        args = IterableSimpleNamespace(**YAML.load(check_yaml(self._cfg.tracker)))
        args.track_buffer = self._cfg.track_buffer_samples
        kinds = {"bytetrack": BYTETracker, "botsort": BOTSORT}
        if args.tracker_type not in kinds or getattr(args, "with_reid", False):
            raise DetectorError(f"tracker {self._cfg.tracker}: only bytetrack and botsort without ReID are supported")
        return kinds[args.tracker_type](args=args)

    def reset(self) -> None:
        """Forget every track (a new walk or stream): fresh ids, no Kalman state from the last walk."""
        self._trackers = {view: self._new_tracker() for view in self.views}

    def track(self, images: Mapping[str, np.ndarray], *, full_size: bool = False) -> dict[str, list[Detection]]:
        """view -> (H, W, 3) BGR image; returns view -> people with track ids."""
        views = list(images)
        boxes = self.model.predict([images[v] for v in views], full_size=full_size)
        return self.assign(images, dict(zip(views, boxes, strict=True)))

    def assign(self, images: Mapping[str, np.ndarray], boxes: Mapping[str, Any]) -> dict[str, list[Detection]]:
        """Feed each view's detected boxes (from :meth:`YoloModel.predict`) to that view's tracker."""
        out: dict[str, list[Detection]] = {}
        for view, image in images.items():
            tracks = self._trackers[view].update(boxes[view], image)  # (N, 8) x1 y1 x2 y2 id score cls idx
            found = boxes[view].xyxy  # (M, 4): t[7] indexes the detection a track was updated from
            out[view] = [Detection((float(t[0]), float(t[1]), float(t[2]), float(t[3])), float(t[5]), int(t[4]),
                                   _detected(found, t[7])) for t in tracks]
        return out


class YoloViewTracker:
    """One view with its own :class:`YoloDetector` (for mixing with true boxes per view, in training)."""

    def __init__(self, cfg: DetectorConfig) -> None:
        self._detector = YoloDetector(cfg, views=("view",))

    def track(self, image: np.ndarray) -> list[Detection]:
        return self._detector.track({"view": image})["view"]

    def reset(self) -> None:
        self._detector.reset()
