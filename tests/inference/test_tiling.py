"""Tiling frames on one detector canvas and mapping the boxes back (inference.tiling)."""

from __future__ import annotations

import numpy as np
import pytest

from inference.tiling import PAD_VALUE, best_grid, compose, plan_tiles, split_boxes


def test_two_squares_share_the_canvas_two_wide_frames_stack():
    cols, rows, scale = best_grid([(628, 628), (628, 628)], 640)
    assert cols * rows == 2 and scale == pytest.approx(320 / 628)
    cols, rows, scale = best_grid([(720, 1280), (720, 1280)], 640)
    assert (cols, rows) == (1, 2) and scale == pytest.approx(320 / 720)
    assert best_grid([(100, 100)] * 4, 640)[:2] == (2, 2)


def test_canvases_hold_tiles_per_canvas_frames_each():
    plan = plan_tiles([(480, 640)] * 5, canvas_px=640, tiles_per_canvas=2)
    assert plan.canvases == 3 and [p.canvas for p in plan.placements] == [0, 0, 1, 1, 2]
    with pytest.raises(ValueError):
        plan_tiles([(10, 10)], canvas_px=640, tiles_per_canvas=0)


def test_compose_places_each_frame_and_pads_the_rest():
    front = np.full((200, 200, 3), 10, np.uint8)
    side = np.full((200, 200, 3), 200, np.uint8)
    plan = plan_tiles([front.shape[:2], side.shape[:2]], canvas_px=640, tiles_per_canvas=2)
    (canvas,) = compose([front, side], plan)
    assert canvas.shape == (640, 640, 3)
    (first, second) = plan.placements
    assert canvas[first.y0_px + 100, first.x0_px + 100, 0] == 10  # scaled 1.6x into 320 px cells
    assert canvas[second.y0_px + 100, second.x0_px + 100, 0] == 200
    assert (canvas == PAD_VALUE).all(axis=2).sum() == 640 * 640 - 2 * 320 * 320


def test_boxes_map_back_to_their_own_frame():
    plan = plan_tiles([(600, 1256), (600, 1256)], canvas_px=640, tiles_per_canvas=2)  # wide frames stack
    s = 640 / 1256  # each 306 px high in its 320 px cell: grey rows below each
    front_box = np.array([100, 50, 300, 590]) * s
    side_box = np.array([200, 20, 400, 580]) * s + np.array([0, 320, 0, 320])
    padding_box = [20, 630, 60, 639]  # centred on the grey below the second frame
    canvas = np.array([[*front_box, 0.9, 0], [*side_box, 0.8, 0], [*padding_box, 0.7, 0]], np.float32)
    front, side = split_boxes([canvas], plan)
    np.testing.assert_allclose(front[:, :4], [[100, 50, 300, 590]], atol=1e-3)
    np.testing.assert_allclose(side[:, :4], [[200, 20, 400, 580]], atol=1e-3)
    assert front[0, 4] == pytest.approx(0.9) and side[0, 4] == pytest.approx(0.8)


def test_a_box_over_the_cell_border_is_clipped_to_its_frame():
    plan = plan_tiles([(320, 640), (320, 640)], canvas_px=640, tiles_per_canvas=2)  # stacked at scale 1
    canvas = np.array([[10, 250, 300, 340, 0.9, 0]], np.float32)  # centre y 295: the front frame
    front, side = split_boxes([canvas], plan)
    assert len(side) == 0
    np.testing.assert_allclose(front[0, :4], [10, 250, 300, 320], atol=1e-3)
