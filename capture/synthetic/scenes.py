"""Scenes that test the patient lock: the simulator's walker with what real rooms add (issue 20).

Each scene yields ``(frame index, {view: image}, {view: {name: box or None}})`` like
:func:`capture.synthetic.render.render_frames`, with the true box of every figure in the picture by name
(``"walker"``, ``"reflection"``), so a test can tell whom the pipeline locked.

- :func:`mirror_scene`: a mirror on the wall of one view shows a dimmed, left-right flipped, smaller copy of the
  walker with the legs hidden by the mirror's frame, from the first frame on; the walker itself enters the
  view only at ``enter_s`` (before that the view shows the empty room).
- :func:`cut_off_scene`: one view's camera is tilted so that the top of the walker's body (the head) is above
  the picture.
- :func:`people_scene`: the walk with other simulated people in the same room (:class:`Figure`: someone
  walking beside or behind the patient, someone crossing the walkway), each drawn into both views in depth
  order; the patient may also leave the picture and come back (``walker_visible_s``).

Synthetic figures: what a scene shows is a stand-in for a real room, not a recording of one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from capture.synthetic.body import Walker
from capture.synthetic.render import draw_shadow, draw_walker, layout_walk, render_frames
from capture.synthetic.room import render_room
from capture.synthetic.subjects import SubjectSpec

Box = tuple[float, float, float, float]
SceneFrame = tuple[int, dict[str, np.ndarray], dict[str, dict[str, Box | None]]]

__all__ = ["Figure", "SceneFrame", "cut_off_scene", "empty_rooms", "mirror_scene", "people_scene"]


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


@dataclass(frozen=True, slots=True)
class Figure:
    """Another person in the room: a simulator walker of its own, placed against the patient's walk.

    ``dx_m``: sideways from the patient's path (+: towards the front camera's right); ``dz_m``: along the
    walkway from the patient's start (+: ahead); ``yaw_deg``: walking direction (0: along the walkway like the
    patient, 90: across it); in the room from ``start_s`` to ``end_s``.
    """

    name: str
    spec: SubjectSpec
    dx_m: float = 0.0
    dz_m: float = 0.0
    yaw_deg: float = 0.0
    start_s: float = 0.0
    end_s: float = math.inf


def _visible(t_s: float, spans: Sequence[tuple[float, float]] | None) -> bool:
    return spans is None or any(a <= t_s < b for a, b in spans)


def people_scene(spec: SubjectSpec, figures: Sequence[Figure], *, size_px: int = 320, seconds: float = 6.0,
                 fps: float = 25.0, walker_visible_s: Sequence[tuple[float, float]] | None = None
                 ) -> Iterator[SceneFrame]:
    """The patient's walk (``spec``, framed as :func:`render_frames` frames it) with ``figures`` in the room; the
    patient is drawn only within ``walker_visible_s`` spans (None: always). Figures and the patient are drawn far
    to near in each view. Blur and sensor noise as in :func:`render_frames`; no camera shake."""
    layout = layout_walk(spec, size_px=size_px, seconds=seconds)
    rooms = empty_rooms(spec, size_px=size_px, seconds=seconds)
    start = layout.walker.pelvis_position(0.0)
    others = [(f, Walker(dataclasses.replace(f.spec, yaw_deg=f.yaw_deg), z_start=start[2] + f.dz_m,
                         x_start=start[0] + f.dx_m)) for f in figures]
    noise_rng = np.random.default_rng(spec.render_seed + 1)
    for i in range(max(1, round(seconds * fps))):
        t_s = i / fps
        people = [("walker", layout.walker, t_s)] if _visible(t_s, walker_visible_s) else []
        people += [(f.name, w, t_s - f.start_s) for f, w in others if f.start_s <= t_s < f.end_s]
        images, figures_seen = {}, {}
        for view, cam in layout.cameras.items():
            img = rooms[view].copy()
            boxes: dict[str, Box | None] = {"walker": None} | {f.name: None for f in figures}
            by_depth = sorted(people, key=lambda p: -float(np.linalg.norm(p[1].pelvis_position(p[2]) - cam.position)))
            for name, walker, t_walk in by_depth:
                draw_shadow(img, cam, walker.pelvis_position(t_walk), walker.F, walker.H)
                boxes[name] = draw_walker(img, cam, walker.parts(t_walk))
            noise = noise_rng.standard_normal(img.shape, dtype=np.float32) * np.float32(spec.scene.noise_sigma)
            images[view] = cv2.add(cv2.GaussianBlur(img, (0, 0), spec.scene.blur_sigma_px), noise, dtype=cv2.CV_8U)
            figures_seen[view] = boxes
        yield i, images, figures_seen
