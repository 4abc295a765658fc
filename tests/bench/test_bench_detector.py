"""The detector bench's own arithmetic (bench.detector); the bench itself runs as ``dualgait bench detector``."""

from __future__ import annotations

import numpy as np
import pytest

from bench.detector import interpolate, iou, largest_box


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_largest_box_ignores_short_boxes():
    boxes = np.array([[0, 0, 50, 20], [0, 0, 10, 60], [0, 0, 20, 70]], np.float32)
    assert largest_box(boxes, min_height_px=30) == (0, 0, 20, 70)
    assert largest_box(boxes, min_height_px=100) is None


def test_interpolate_keeps_detected_samples_and_averages_between():
    boxes = [(float(k), 0.0, float(k) + 10, 10.0) for k in range(8)]
    boxes[2] = (100.0, 0.0, 110.0, 10.0)  # sample 2 is not detected with 8 frames (7, 5, 3, 1 are)
    out = interpolate(boxes, frames_per_window=8)
    assert out[1] == boxes[1] and out[7] == boxes[7]
    assert out[2] == pytest.approx((2.0, 0.0, 12.0, 10.0))
    assert out[0] == boxes[1]  # only a later neighbour: held


def test_interpolate_holds_one_side_when_the_other_is_missing():
    boxes = [None, (0.0, 0.0, 1.0, 1.0), None, None]
    out = interpolate(boxes, frames_per_window=8)
    assert out[0] == boxes[1] and out[2] == boxes[1] and out[3] is None
