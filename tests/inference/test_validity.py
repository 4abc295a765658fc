"""Window rules of :mod:`inference.validity` that need no pipeline: the side-stride check of single-view mode."""

from __future__ import annotations

import numpy as np
import pytest

from inference.config import PatientConfig, WindowConfig
from inference.detector import Detection
from inference.patient import PatientLock, WalkMonitor
from inference.samples import ProcessedSample
from inference.validity import check_window


def _window(aspects: list[float | None], views: tuple[str, ...] = ("side",), **patient) -> tuple[str, str] | None:
    """A window of 8 samples whose patient's detected box has these width / height ratios (None: interpolated)."""
    cfg = PatientConfig(**patient)
    samples = []
    for k, aspect in enumerate(aspects):
        s = ProcessedSample(k, detected=aspect is not None)
        for view in views:
            detected = None if aspect is None else (100.0, 50.0, 100.0 + 300.0 * aspect, 350.0)
            s.patient[view] = Detection((100.0, 50.0, 200.0, 350.0), 0.9, 1, detected)  # the tracker's box: steady
            s.crops[view] = np.zeros((8, 8, 3), np.uint8)
        samples.append(s)
    locks = {view: PatientLock(cfg, walkway=cfg.walkway(view), view=view) for view in views}
    return check_window(samples, WindowConfig(), locks=locks, walks=WalkMonitor(cfg, views), pair_tolerance_ns=None)


def test_one_side_camera_needs_a_stride_seen_from_the_side() -> None:
    """Seen from the side the legs swinging change the box's aspect 1.4-2.5x in a second; from the front or back, or
    standing, 1.0-1.2x: that window is no_side_stride. Only the detector's boxes count (the tracker's are smoothed),
    and only with the side camera alone."""
    walking = [0.30, 0.45, 0.38, 0.28, 0.31, 0.47, 0.36, 0.29]  # 1.68x
    from_behind = [0.33, 0.35, 0.34, 0.32, 0.33, 0.36, 0.34, 0.33]  # 1.13x
    assert _window(walking) is None
    code, reason = _window(from_behind)
    assert code == "no_side_stride"
    assert "varies 1.12x over the window (a side view of walking: >= 1.25x)" in reason
    assert _window(from_behind, min_side_stride_ratio=None) is None  # off
    assert _window(from_behind, views=("front", "side")) is None  # two cameras: not this rule
    # interpolated samples have no detected box: the detected ones decide (here they are the walking extremes)
    assert _window([0.30, None, 0.45, None, 0.28, None, 0.47, None]) is None
    assert _window([None] * 7 + [0.3]) is None  # one detected box tells nothing: not refused on it


def test_min_side_stride_ratio_is_checked() -> None:
    with pytest.raises(ValueError, match="min_side_stride_ratio"):
        PatientConfig(min_side_stride_ratio=0.5)
