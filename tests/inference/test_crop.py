"""Tests for the paper's patient crop (inference/crop.py): geometry of plan_crop and pixels of apply_crop."""

from __future__ import annotations

import numpy as np
import pytest

from inference.crop import CropPlan, apply_crop, plan_crop

FRAME = 628
COLOUR = (10, 200, 30)
BACKGROUND = 123


def _frame_with_box(box: tuple[int, int, int, int], colour=COLOUR, size: int = FRAME) -> np.ndarray:
    """A frame filled with a non-zero grey, with the box region painted in ``colour``."""
    image = np.full((size, size, 3), BACKGROUND, dtype=np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = colour
    return image


def _plan(box, out_px: int = 224, canvas_px: int = 512, frame: int = FRAME) -> CropPlan:
    return plan_crop(box, frame_w_px=frame, frame_h_px=frame, canvas_px=canvas_px, out_px=out_px)


def _padding_mask(plan: CropPlan) -> np.ndarray:
    mask = np.ones((plan.out_px, plan.out_px), dtype=bool)
    mask[plan.dst_y:plan.dst_y + plan.dst_h, plan.dst_x:plan.dst_x + plan.dst_w] = False
    return mask


# --------------------------------------------------------------------------- plan_crop


def test_tall_box_scaled_to_full_height_and_centred():
    """A tall box fills the output height, keeps its aspect ratio and is centred horizontally."""
    plan = _plan((100, 100, 200, 500))  # 100 x 400
    assert (plan.src_x0, plan.src_y0, plan.src_x1, plan.src_y1) == (100, 100, 200, 500)
    assert plan.dst_h == 224
    assert plan.dst_w == round(100 * 224 / 400) == 56
    assert plan.dst_x == (224 - 56) // 2
    assert plan.dst_y == 0
    assert plan.out_px == 224
    assert plan.scale == pytest.approx(224 / 400)


def test_wide_box_scaled_to_full_width_and_centred():
    """A box wider than tall is fitted to the width (nothing cut) and centred vertically."""
    plan = _plan((100, 100, 500, 200))  # 400 x 100
    assert plan.dst_w == 224
    assert plan.dst_h == 56
    assert plan.dst_x == 0
    assert plan.dst_y == (224 - 56) // 2


def test_square_box_fills_output():
    """A square box fills the whole output square."""
    plan = _plan((0, 0, 300, 300))
    assert (plan.dst_w, plan.dst_h, plan.dst_x, plan.dst_y) == (224, 224, 0, 0)


def test_out_px_512():
    """out_px equal to the canvas: the two-step crop is a single resize to 512 high."""
    plan = _plan((100, 100, 200, 500), out_px=512)
    assert (plan.dst_w, plan.dst_h) == (128, 512)
    assert (plan.dst_x, plan.dst_y) == ((512 - 128) // 2, 0)
    assert plan.out_px == 512


def test_box_partly_outside_frame_is_clamped():
    """Coordinates outside the frame are clamped to it before the geometry is computed."""
    plan = _plan((-50.0, 500.0, 100.0, 700.0))
    assert (plan.src_x0, plan.src_y0, plan.src_x1, plan.src_y1) == (0, 500, 100, FRAME)
    # clamped box is 100 x 128: height-limited, 224 high, 100 * 224 / 128 = 175 wide
    assert plan.dst_h == 224
    assert plan.dst_w == 175


def test_fractional_coordinates_floor_and_ceil():
    """x0/y0 are floored and x1/y1 (exclusive) ceiled, so the crop covers the whole box."""
    plan = _plan((10.2, 20.7, 110.1, 420.0))
    assert (plan.src_x0, plan.src_y0, plan.src_x1, plan.src_y1) == (10, 20, 111, 420)


def test_sub_pixel_box_still_one_pixel():
    """A box inside one pixel becomes a 1x1 source region (floor/ceil), not an error."""
    plan = _plan((5.2, 5.2, 5.8, 5.8))
    assert (plan.src_x1 - plan.src_x0, plan.src_y1 - plan.src_y0) == (1, 1)
    assert (plan.dst_w, plan.dst_h) == (224, 224)


@pytest.mark.parametrize(
    "box",
    [
        (10, 10, 10, 50),  # zero width
        (10, 50, 60, 50),  # zero height
        (60, 10, 10, 50),  # x1 < x0
        (700, 700, 800, 800),  # entirely outside (right/below)
        (-100, -100, -10, -10),  # entirely outside (left/above)
    ],
)
def test_box_without_area_raises(box):
    """A box with no area inside the frame is a ValueError."""
    with pytest.raises(ValueError, match="no area"):
        _plan(box)


def test_extreme_aspect_keeps_at_least_one_pixel():
    """A very thin box still gets a 1-pixel wide destination, never 0."""
    plan = _plan((0, 0, 1, 600))
    assert plan.dst_h == 224
    assert plan.dst_w == 1


# --------------------------------------------------------------------------- apply_crop


@pytest.mark.parametrize("box", [(100, 100, 200, 500), (100, 100, 500, 200), (300, 20, 320, 70)])
def test_apply_crop_shape_padding_and_content(box):
    """Output is (224, 224, 3) uint8, padding is exactly 0 and a uniform box keeps its colour exactly."""
    image = _frame_with_box(box)
    plan = _plan(box)
    out = apply_crop(image, plan)
    assert out.shape == (224, 224, 3)
    assert out.dtype == np.uint8
    padding = _padding_mask(plan)
    assert padding.any()  # none of these boxes is square
    assert (out[padding] == 0).all()
    content = out[plan.dst_y:plan.dst_y + plan.dst_h, plan.dst_x:plan.dst_x + plan.dst_w]
    assert content.shape == (plan.dst_h, plan.dst_w, 3)
    assert (content == np.array(COLOUR, dtype=np.uint8)).all()


def test_apply_crop_reads_only_the_box():
    """Pixels outside the (clamped) box never leak into the crop."""
    box = (50, 60, 150, 460)
    image = _frame_with_box(box)
    out = apply_crop(image, _plan(box))
    assert not (out == BACKGROUND).any()


def test_apply_crop_out_px_512():
    """out_px=512 gives a 512x512 output with the box 128 wide and centred."""
    box = (100, 100, 200, 500)
    plan = _plan(box, out_px=512)
    out = apply_crop(_frame_with_box(box), plan)
    assert out.shape == (512, 512, 3)
    assert (out[:, 192:320] == np.array(COLOUR, dtype=np.uint8)).all()
    assert (out[:, :192] == 0).all() and (out[:, 320:] == 0).all()


def test_apply_crop_keeps_vertical_order():
    """Top of the box stays at the top of the crop (no flips)."""
    box = (100, 100, 200, 500)
    image = _frame_with_box(box)
    image[100:300, 100:200] = (255, 0, 0)  # top half blue (BGR)
    image[300:500, 100:200] = (0, 0, 255)  # bottom half red
    plan = _plan(box)
    out = apply_crop(image, plan)
    column = out[:, plan.dst_x + plan.dst_w // 2]
    assert tuple(column[5]) == (255, 0, 0)
    assert tuple(column[-5]) == (0, 0, 255)


def test_apply_crop_does_not_modify_input():
    """The source frame is left untouched."""
    box = (100, 100, 200, 500)
    image = _frame_with_box(box)
    before = image.copy()
    apply_crop(image, _plan(box))
    np.testing.assert_array_equal(image, before)
