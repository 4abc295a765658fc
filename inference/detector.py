"""Per-view person tracking with Ultralytics YOLO, and the choice of the patient among the people seen."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.config import DetectorConfig
from inference.errors import DetectorError


@dataclass(frozen=True, slots=True)
class Detection:
    box_xyxy: tuple[float, float, float, float]  # pixels in the frame
    conf: float
    track_id: int | None


def choose_patient(detections: list[Detection], locked_id: int | None) -> Detection | None:
    """The locked track if it is still seen, else the largest person box (the one nearest the camera)."""
    if not detections:
        return None
    if locked_id is not None:
        for det in detections:
            if det.track_id == locked_id:
                return det
    return max(detections, key=lambda d: (d.box_xyxy[2] - d.box_xyxy[0]) * (d.box_xyxy[3] - d.box_xyxy[1]))


def configure_ultralytics_env(config_dir: str | os.PathLike[str]) -> None:
    """Keep Ultralytics offline and quiet; must run before ``ultralytics`` is imported."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "0")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))


class PatientTracker:
    """One view's tracker: ``update(image)`` -> the patient's Detection or None.

    Each view has its own YOLO instance, because Ultralytics keeps the tracker state on the predictor.
    """

    def __init__(self, cfg: DetectorConfig) -> None:
        weights = Path(cfg.weights)
        if not weights.exists():
            raise DetectorError(f"detector weights not found: {weights} (set inference.detector.weights)")
        try:
            from ultralytics import YOLO

            self._model = YOLO(str(weights), task="detect")
        except Exception as exc:  # Ultralytics raises many types for unreadable weights
            raise DetectorError(f"cannot load detector weights {weights}: {exc}") from None
        self._cfg = cfg
        self._locked_id: int | None = None

    def update(self, image: np.ndarray) -> tuple[Detection | None, int]:
        """Track people in ``image`` (H, W, 3) BGR; returns (patient or None, number of people seen)."""
        cfg = self._cfg
        result = self._model.track(image, persist=True, tracker=cfg.tracker, classes=[cfg.person_class],
                                   conf=cfg.conf, iou=cfg.iou, imgsz=cfg.imgsz_px, device=cfg.device,
                                   verbose=False)[0]
        boxes = result.boxes
        xyxy = boxes.xyxy.cpu().numpy() if len(boxes) else np.zeros((0, 4))
        conf = boxes.conf.cpu().numpy() if len(boxes) else np.zeros(0)
        ids = boxes.id.int().cpu().tolist() if boxes.id is not None else [None] * len(boxes)
        people = [Detection(tuple(float(v) for v in xyxy[i]), float(conf[i]), ids[i]) for i in range(len(boxes))]
        patient = choose_patient(people, self._locked_id)
        if patient is not None and patient.track_id is not None:
            self._locked_id = patient.track_id
        return patient, len(people)

    def reset(self) -> None:
        """Forget tracks (between walks/streams)."""
        self._locked_id = None
        predictor = getattr(self._model, "predictor", None)
        for tracker in getattr(predictor, "trackers", None) or []:
            tracker.reset()
