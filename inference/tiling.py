"""Several frames in one detector input: tile them on one square canvas, split the boxes back per frame.

The shared YOLO11n export takes a fixed 1x3x640x640 input (it cannot be reshaped or batched), so a call costs
the same whatever the frame: 640 px of a 628 px square frame, or 640 px of a small one. Tiling puts both views
of a sample (and, across walkways, the views of several samples) on one canvas of the detector's input size,
so one call detects them all, each frame at the largest scale its grid cell allows. Two square views side by
side get 320 px each; two 16:9 views stacked get 569 px each. The patient fills a clinic walkway's frame, so
half the resolution finds the same boxes (``dualgait bench detector`` measures the IoU against one call per
frame at 640 px).

Canvas layout: cells of a ``cols x rows`` grid; each frame is resized (aspect kept) into the top-left of its cell
and the rest is Ultralytics' letterbox grey, so the model sees what its own letterbox would give it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114  # Ultralytics' letterbox grey


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one frame went on its canvas: top-left ``x0_px, y0_px``, resized by ``scale``."""

    canvas: int
    x0_px: int
    y0_px: int
    scale: float
    frame_w_px: int
    frame_h_px: int


@dataclass(frozen=True, slots=True)
class TilePlan:
    canvases: int
    canvas_px: int
    placements: tuple[Placement, ...]  # one per frame, in input order


def best_grid(shapes_hw: list[tuple[int, int]], canvas_px: int) -> tuple[int, int, float]:
    """(cols, rows, smallest frame scale) of the grid that gives the least-scaled frame the largest scale."""
    n = len(shapes_hw)
    best: tuple[int, int, float] | None = None
    for cols, rows in itertools.product(range(1, n + 1), repeat=2):
        if cols * rows < n or (cols - 1) * rows >= n or cols * (rows - 1) >= n:
            continue  # too small, or a whole column/row would stay empty
        cell_w, cell_h = canvas_px // cols, canvas_px // rows
        scale = min(min(cell_w / w, cell_h / h) for h, w in shapes_hw)
        if best is None or scale > best[2]:
            best = (cols, rows, scale)
    assert best is not None
    return best


def plan_tiles(shapes_hw: list[tuple[int, int]], *, canvas_px: int, tiles_per_canvas: int) -> TilePlan:
    """Frames of these (H, W) sizes on ``ceil(n / tiles_per_canvas)`` canvases of ``canvas_px`` square."""
    if tiles_per_canvas < 1:
        raise ValueError("tiles_per_canvas must be >= 1")
    placements: list[Placement] = []
    groups = [shapes_hw[i:i + tiles_per_canvas] for i in range(0, len(shapes_hw), tiles_per_canvas)]
    for canvas, group in enumerate(groups):
        cols, rows, _ = best_grid(group, canvas_px)
        cell_w, cell_h = canvas_px // cols, canvas_px // rows
        for k, (h, w) in enumerate(group):
            scale = min(cell_w / w, cell_h / h)
            placements.append(Placement(canvas, (k % cols) * cell_w, (k // cols) * cell_h, scale, w, h))
    return TilePlan(len(groups), canvas_px, tuple(placements))


def compose(images: list[np.ndarray], plan: TilePlan) -> list[np.ndarray]:
    """(H, W, 3) uint8 frames -> the plan's (canvas_px, canvas_px, 3) uint8 canvases."""
    size = plan.canvas_px
    canvases = [np.full((size, size, 3), PAD_VALUE, dtype=np.uint8) for _ in range(plan.canvases)]
    for image, p in zip(images, plan.placements, strict=True):
        w_px = max(1, round(p.frame_w_px * p.scale))
        h_px = max(1, round(p.frame_h_px * p.scale))
        resized = cv2.resize(image, (w_px, h_px), interpolation=cv2.INTER_AREA if p.scale < 1 else cv2.INTER_LINEAR)
        canvases[p.canvas][p.y0_px:p.y0_px + h_px, p.x0_px:p.x0_px + w_px] = resized
    return canvases


def split_boxes(canvas_boxes: list[np.ndarray], plan: TilePlan) -> list[np.ndarray]:
    """Per canvas (N, 6) ``x1 y1 x2 y2 conf cls`` in canvas pixels -> per frame (M, 6) in that frame's pixels.

    A box belongs to the frame whose placed area holds its centre; it is clipped to that frame. A box centred
    on the grey padding belongs to no frame and is dropped.
    """
    out: list[np.ndarray] = []
    for p in plan.placements:
        boxes = np.asarray(canvas_boxes[p.canvas], dtype=np.float32).reshape(-1, 6)
        w_px, h_px = p.frame_w_px * p.scale, p.frame_h_px * p.scale
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 - p.x0_px
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 - p.y0_px
        mine = boxes[(cx >= 0) & (cx < w_px) & (cy >= 0) & (cy < h_px)].copy()
        mine[:, [0, 2]] = np.clip((mine[:, [0, 2]] - p.x0_px) / p.scale, 0, p.frame_w_px)
        mine[:, [1, 3]] = np.clip((mine[:, [1, 3]] - p.y0_px) / p.scale, 0, p.frame_h_px)
        out.append(mine)
    return out
