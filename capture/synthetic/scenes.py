"""Scenes that test the patient lock: the simulator's walker with what real rooms add (issue 20).

Each scene yields ``(frame index, {view: image}, {view: {name: box or None}})`` like
:func:`capture.synthetic.render.render_frames`, with the true box of every figure in the picture by name
(``"walker"``, ``"reflection"``), so a test can tell whom the pipeline locked.

- :func:`mirror_scene`: a mirror on the wall of one view shows a dimmed, left-right flipped, smaller copy of the
  walker with the legs hidden by the mirror's frame, from the first frame on; the walker itself enters the
  view only at ``enter_s`` (before that the view shows the empty room).
- :func:`cut_off_scene`: one view's camera is tilted so that the top of the walker's body (the head) is above
  the picture.

Synthetic figures: what a scene shows is a stand-in for a real room, not a recording of one.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from capture.synthetic.render import layout_walk, render_frames
from capture.synthetic.room import render_room
from capture.synthetic.subjects import SubjectSpec

Box = tuple[float, float, float, float]
SceneFrame = tuple[int, dict[str, np.ndarray], dict[str, dict[str, Box | None]]]

__all__ = ["SceneFrame", "cut_off_scene", "empty_rooms", "mirror_scene"]


def empty_rooms(spec: SubjectSpec, *, size_px: int, seconds: float) -> dict[str, np.ndarray]:
    """Each view's room without the walker, blurred like :func:`render_frames`' frames: (size, size, 3) uint8."""
    layout = layout_walk(spec, size_px=size_px, seconds=seconds)
    rng = np.random.default_rng(spec.render_seed)  # the same room as render_frames draws
    out = {}
    for view, cam in layout.cameras.items():
        room = render_room(cam, spec.scene, view=view, walk_x=0.0, z_range=layout.z_range, rng=rng)
        out[view] = cv2.GaussianBlur(room, (0, 0), spec.scene.blur_sigma_px)
    return out


def _paste_reflection(image: np.ndarray, source: np.ndarray, box: Box, at_px: tuple[float, float], *, scale: float,
                      dim: float, keep_frac: float) -> Box | None:
    """Paste the flipped, dimmed upper ``keep_frac`` of ``source[box]``, scaled by ``scale``, with its top-left
    corner at ``at_px`` (x, y pixels); returns the pasted figure's box."""
    x0, y0, x1, y1 = (round(v) for v in box)
    crop = source[y0:y0 + max(2, round((y1 - y0) * keep_frac)), x0:x1]
    w_px, h_px = round(crop.shape[1] * scale), round(crop.shape[0] * scale)
    left, top = round(at_px[0]), round(at_px[1])
    w_px, h_px = min(w_px, image.shape[1] - left), min(h_px, image.shape[0] - top)
    if w_px < 2 or h_px < 2 or crop.shape[0] < 2 or crop.shape[1] < 2:
        return None
    small = cv2.resize(cv2.flip(crop, 1), (w_px, h_px), interpolation=cv2.INTER_AREA)
    image[top:top + h_px, left:left + w_px] = (small.astype(np.float32) * dim).astype(np.uint8)
    return (float(left), float(top), float(left + w_px), float(top + h_px))


def mirror_scene(spec: SubjectSpec, *, size_px: int = 320, seconds: float = 6.0, fps: float = 25.0,
                 view: str = "side", enter_s: float = 2.0, mirror_frac: tuple[float, float, float] = (0.02, 0.3, 0.4),
                 scale: float = 0.8, dim: float = 0.6, keep_frac: float = 0.6) -> Iterator[SceneFrame]:
    """The walk with a mirror in ``view`` showing the walker's upper ``keep_frac`` (legs hidden by the mirror's
    frame), ``scale`` times the walker's size, dimmed by ``dim``, from the start; the walker is in that view only
    from ``enter_s`` on, and the other view is the plain walk. The mirror spans ``mirror_frac`` = (x0, top, x1) of
    the frame; the reflection walks across it the other way (left-right flipped). It is drawn from the frame
    1.5 s later in the walk (the mirror sees the walker from elsewhere), so it moves before the walker enters."""
    rooms = empty_rooms(spec, size_px=size_px, seconds=seconds)
    frames = [(images, boxes) for _, images, boxes in render_frames(spec, size_px=size_px, seconds=seconds, fps=fps)]
    x0_px, top_px, x1_px = (v * size_px for v in mirror_frac)
    lead = round(1.5 * fps)
    for i, (images, boxes) in enumerate(frames):
        out_images = dict(images)
        figures: dict[str, dict[str, Box | None]] = {v: {"walker": boxes[v]} for v in images}
        entered = i / fps >= enter_s
        image = images[view].copy() if entered else rooms[view].copy()
        figures[view]["walker"] = boxes[view] if entered else None
        src_images, src_boxes = frames[min(len(frames) - 1, i + lead)]
        src_box = src_boxes[view]
        figures[view]["reflection"] = None
        if src_box is not None:
            across = 1.0 - (src_box[0] + src_box[2]) / 2 / size_px  # flipped: the walker's right is its left
            at_px = (x0_px + across * (x1_px - x0_px - scale * (src_box[2] - src_box[0])), top_px)
            figures[view]["reflection"] = _paste_reflection(image, src_images[view], src_box, at_px, scale=scale,
                                                            dim=dim, keep_frac=keep_frac)
        out_images[view] = image
        yield i, out_images, figures


def cut_off_scene(spec: SubjectSpec, *, size_px: int = 320, seconds: float = 6.0, fps: float = 25.0,
                  view: str = "side", cut_frac: float = 0.2) -> Iterator[SceneFrame]:
    """The walk with ``view``'s picture moved up so that the top ``cut_frac`` of the walker's body is outside
    it (the bottom is padded with the room's floor row); the other view is the plain walk."""
    frames = list(render_frames(spec, size_px=size_px, seconds=seconds, fps=fps))
    tops = [b[1] + cut_frac * (b[3] - b[1]) for _, _, boxes in frames if (b := boxes[view]) is not None]
    shift_px = round(float(np.median(tops))) if tops else 0  # one tilt for the whole walk
    for i, images, boxes in frames:
        out_images = dict(images)
        figures: dict[str, dict[str, Box | None]] = {v: {"walker": boxes[v]} for v in images}
        image = images[view]
        out_images[view] = np.concatenate([image[shift_px:], np.repeat(image[-1:], shift_px, axis=0)])
        box = boxes[view]
        figures[view]["walker"] = None if box is None else (box[0], max(0.0, box[1] - shift_px), box[2],
                                                              box[3] - shift_px)
        yield i, out_images, figures
