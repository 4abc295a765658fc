"""One sample of a window as the pipeline processes it: its frame pair, people, patient and crop per view.

Shared by the pipeline's stages (:mod:`inference.pipeline`, :mod:`inference.patient_stage`) and the window
checks (:mod:`inference.validity`); plain data, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.detector import Detection

__all__ = ["ProcessedSample"]


@dataclass(slots=True)
class ProcessedSample:
    index: int
    missing: str | None = None  # why the sample has no frame pair: "too_few_frames: ..." or "skew: ..."
    stale: str | None = None  # why its frames are stale
    skipped: bool = False  # in no window (stride longer than the window): not detected
    detected: bool = False  # the detector ran on it (else, with detector.interval_samples, boxes are interpolated)
    seqs: dict[str, int] = field(default_factory=dict)
    t_mono_ns: int = 0
    t_wall_ns: int = 0
    last_capture_ns: int = 0  # the later capture time of the two views
    last_received_ns: int = 0  # receipt of the later of the two frames
    skew_ns: int = 0
    images: dict[str, np.ndarray] = field(default_factory=dict)  # kept until the view's crop is made
    people: dict[str, list[Detection]] = field(default_factory=dict)
    patient: dict[str, Detection] = field(default_factory=dict)
    crops: dict[str, np.ndarray] = field(default_factory=dict)  # view -> (input_px, input_px, 3) uint8
    cut_off: dict[str, str] = field(default_factory=dict)  # view -> the frame edge that cuts the patient off
    # view -> how the locked track changed person at this sample (inference.identity): its windows are invalid
    identity_jump: dict[str, str] = field(default_factory=dict)
    # view -> why the young lock may be on the wrong person at this sample (inference.patient): its windows are invalid
    contested: dict[str, str] = field(default_factory=dict)
    eligible: dict[str, int] = field(default_factory=dict)  # view -> people who could be the patient (detected only)
    detect_ms: float = 0.0
    crop_ms: float = 0.0
