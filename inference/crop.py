"""The paper's patient crop, as one resize.

Paper: the patient's box is scaled so that its height is ``canvas_px`` (512) keeping the aspect ratio,
padded with black to ``canvas_px`` x ``canvas_px``, then (the paper's code) resized to the model input
(224). A box wider than tall is scaled to fit the width instead, so nothing is cut. The box is centred
on the canvas. Both resizes are folded into one: the box is resized once straight to its final size
inside an ``input_px`` square, which equals the two-step result up to interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class CropPlan:
    # source rectangle in the frame, clamped, integer pixels, x1/y1 exclusive
    src_x0: int
    src_y0: int
    src_x1: int
    src_y1: int
    # size and top-left of the resized box inside the output square
    dst_w: int
    dst_h: int
    dst_x: int
    dst_y: int
    out_px: int

    @property
    def scale(self) -> float:
        """Output pixels per source pixel (vertical)."""
        return self.dst_h / (self.src_y1 - self.src_y0)


def plan_crop(box_xyxy: tuple[float, float, float, float], *, frame_w_px: int, frame_h_px: int,
              canvas_px: int = 512, out_px: int = 224) -> CropPlan:
    """Geometry of the crop of ``box_xyxy`` (pixels, x1/y1 exclusive) from a frame of the given size."""
    x0 = max(0, math.floor(box_xyxy[0]))
    y0 = max(0, math.floor(box_xyxy[1]))
    x1 = min(frame_w_px, math.ceil(box_xyxy[2]))
    y1 = min(frame_h_px, math.ceil(box_xyxy[3]))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise ValueError(f"box {box_xyxy} has no area inside a {frame_w_px}x{frame_h_px} frame")
    box_w, box_h = x1 - x0, y1 - y0
    canvas_scale = min(canvas_px / box_h, canvas_px / box_w)  # height to canvas, unless too wide
    scale = canvas_scale * out_px / canvas_px
    dst_w = min(out_px, max(1, round(box_w * scale)))
    dst_h = min(out_px, max(1, round(box_h * scale)))
    return CropPlan(x0, y0, x1, y1, dst_w, dst_h, (out_px - dst_w) // 2, (out_px - dst_h) // 2, out_px)


def apply_crop(image: np.ndarray, plan: CropPlan) -> np.ndarray:
    """image (H, W, 3) uint8 -> (out_px, out_px, 3) uint8, black padded."""
    out = np.zeros((plan.out_px, plan.out_px, image.shape[2]), dtype=np.uint8)
    region = image[plan.src_y0:plan.src_y1, plan.src_x0:plan.src_x1]
    shrinking = plan.dst_h < region.shape[0]
    resized = cv2.resize(region, (plan.dst_w, plan.dst_h),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    out[plan.dst_y:plan.dst_y + plan.dst_h, plan.dst_x:plan.dst_x + plan.dst_w] = resized.reshape(
        plan.dst_h, plan.dst_w, -1)
    return out
