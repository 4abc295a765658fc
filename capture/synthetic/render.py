"""Render one synthetic walk as a synchronised front/side video pair (numpy + OpenCV drawing only).

Cameras are pinholes. The front camera stands on the walkway axis and the walker approaches it; the side
camera stands beside the walkway, far enough that the whole walk crosses its view from left to right.
The room (floor, walls, ceiling, with tiles, planks, panels...) is ray-cast once per camera at twice the
resolution and downsampled; the walker is drawn on it every frame as shaded, anti-aliased ellipses
(projected ellipsoids) and tapered capsules, far to near. Then each frame gets a little blur, camera
shake (a smooth random walk of the image position) and sensor noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from capture.synthetic.body import Ellipsoid, Part, Walker
from capture.synthetic.room import Camera, render_room
from capture.synthetic.subjects import BGR, SubjectSpec

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << _SHIFT
_LIGHT = np.array([-0.45, -0.89])  # light comes from the upper left of the image
_BODY_MARGIN_M = 0.7  # half the walker's extent along the walk (stride, arms), for the side framing

VIEWS = ("front", "side")


# ----------------------------------------------------------------------------------- the figure


def _pts(p: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(p) * _ONE).astype(np.int32)


def _capsule(img: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: BGR) -> None:
    d = b - a
    n = np.array([-d[1], d[0]])
    norm = float(np.hypot(*n))
    if norm > 1e-6:
        n /= norm
        quad = np.stack([a + n * ra, b + n * rb, b - n * rb, a - n * ra])
        cv2.fillConvexPoly(img, _pts(quad), colour, cv2.LINE_AA, _SHIFT)
    cv2.circle(img, tuple(_pts(a)), max(1, round(ra * _ONE)), colour, -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(img, tuple(_pts(b)), max(1, round(rb * _ONE)), colour, -1, cv2.LINE_AA, _SHIFT)


def _ellipse(img: np.ndarray, centre: np.ndarray, cov: np.ndarray, colour: BGR) -> None:
    evals, evecs = np.linalg.eigh(cov)
    axes = np.sqrt(np.maximum(evals, 1e-6))
    angle = math.degrees(math.atan2(evecs[1, 1], evecs[0, 1]))
    cv2.ellipse(img, tuple(_pts(centre)), (max(1, round(axes[1] * _ONE)), max(1, round(axes[0] * _ONE))),
                angle, 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)


def _tones(colour: BGR) -> tuple[BGR, BGR, BGR]:
    c = np.array(colour, np.float32)
    dark = tuple(int(v) for v in c * 0.82)
    light = tuple(int(v) for v in np.clip(c * 1.08 + 12, 0, 255))
    return dark, tuple(int(v) for v in c), light  # type: ignore[return-value]


@dataclass(slots=True)
class _Projected:
    depth: float  # metres from the camera
    key: float  # depth + the part's bias: the order inside its group
    group: str
    layers: list[tuple]  # dark, mid, light; a detail has one layer
    box: tuple[float, float, float, float]
    detail: bool = False


def _ellipse_layers(centre: np.ndarray, cov: np.ndarray, colour: BGR) -> list[tuple]:
    dark, mid, light = _tones(colour)
    reach = math.sqrt(float(_LIGHT @ cov @ _LIGHT))
    return [("e", centre, cov, dark), ("e", centre + _LIGHT * (0.16 * reach), cov * 0.8**2, mid),
            ("e", centre + _LIGHT * (0.4 * reach), cov * 0.4**2, light)]


def _capsule_layers(a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: BGR) -> list[tuple]:
    dark, mid, light = _tones(colour)
    d = b - a
    n = np.array([-d[1], d[0]])
    norm = float(np.hypot(*n))
    n = n / norm if norm > 1e-6 else -_LIGHT
    if n @ _LIGHT < 0:
        n = -n
    return [("c", a, b, ra, rb, dark), ("c", a + n * (0.22 * ra), b + n * (0.22 * rb), 0.75 * ra, 0.75 * rb, mid),
            ("c", a + n * (0.5 * ra), b + n * (0.5 * rb), 0.3 * ra, 0.3 * rb, light)]


def _project_part(cam: Camera, part: Part, key: int) -> _Projected | None:
    group = part.group or f"_{key}"
    if isinstance(part, Ellipsoid):
        centre, depth = cam.project(part.center)
        if depth <= 0.05:
            return None
        jac = cam.rotation[:2] @ part.axes * (cam.focal_px / depth)  # weak perspective at the centre
        cov = jac @ jac.T
        ext = np.sqrt(np.diag(cov))
        box = (centre[0] - ext[0], centre[1] - ext[1], centre[0] + ext[0], centre[1] + ext[1])
        if part.normal is not None:
            if float(part.normal @ (cam.position - part.center)) <= 0:
                return None  # a detail on the far side of the head
            return _Projected(depth, depth + part.bias_m, group, [("e", centre, cov, part.colour)], box, detail=True)
        return _Projected(depth, depth + part.bias_m, group, _ellipse_layers(centre, cov, part.colour), box)
    a, za = cam.project(part.p0)
    b, zb = cam.project(part.p1)
    if min(za, zb) <= 0.05:
        return None
    ra, rb = cam.focal_px * part.r0 / za, cam.focal_px * part.r1 / zb
    box = (min(a[0] - ra, b[0] - rb), min(a[1] - ra, b[1] - rb), max(a[0] + ra, b[0] + rb), max(a[1] + ra, b[1] + rb))
    depth = (za + zb) / 2
    return _Projected(depth, depth + part.bias_m, group, _capsule_layers(a, b, ra, rb, part.colour), box)


def _draw(img: np.ndarray, item: tuple) -> None:
    if item[0] == "e":
        _ellipse(img, item[1], item[2], item[3])
    else:
        _capsule(img, *item[1:])


def draw_walker(img: np.ndarray, cam: Camera, parts: list[Part]) -> tuple[float, float, float, float] | None:
    """Draw the parts far to near; returns the figure's box (x1, y1, x2, y2) in pixels, or None if unseen.

    Parts of one group (torso, head, an arm, a leg) are drawn together at the group's mean depth, layer by
    layer (all dark rims, then all mid tones, then all highlights), so a limb shades as one piece.
    """
    projected = [p for p in (_project_part(cam, part, k) for k, part in enumerate(parts)) if p is not None]
    if not projected:
        return None
    groups: dict[str, list[_Projected]] = {}
    for p in projected:
        groups.setdefault(p.group, []).append(p)
    order = sorted(groups.values(), key=lambda ms: -float(np.mean([m.depth for m in ms if not m.detail] or [0.0])))
    for members in order:
        members.sort(key=lambda m: -m.key)
        shaded = [m for m in members if not m.detail]
        if members[0].group.startswith("head"):  # distinct materials (skin, hair): one part at a time
            for m in shaded:
                for layer in m.layers:
                    _draw(img, layer)
        else:
            for stage in range(3):
                for m in shaded:
                    _draw(img, m.layers[stage])
        for m in members:
            if m.detail:
                _draw(img, m.layers[0])
    boxes = np.array([p.box for p in projected if not p.detail])
    return float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max())


def figure_box(cam: Camera, parts: list[Part]) -> tuple[float, float, float, float] | None:
    """The box (x1, y1, x2, y2) the parts would cover in ``cam``'s image, without drawing (not clipped)."""
    projected = [p for p in (_project_part(cam, part, k) for k, part in enumerate(parts)) if p is not None]
    boxes = np.array([p.box for p in projected if not p.detail])
    if not len(boxes):
        return None
    return float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max())


def draw_shadow(img: np.ndarray, cam: Camera, centre: np.ndarray, forward: np.ndarray, height_m: float) -> None:
    """A soft contact shadow on the floor under the walker."""
    left = np.array([forward[2], 0.0, -forward[0]])
    angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    ring = [centre + forward * (0.22 * height_m * math.cos(a)) + left * (0.13 * height_m * math.sin(a))
            for a in angles]
    pts = []
    for p in ring:
        px, depth = cam.project(np.array([p[0], 0.0, p[2]]))
        if depth <= 0.05:
            return
        pts.append(px)
    poly = np.array(pts)
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, img.shape[1]), min(y1, img.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_pts(poly - [x0, y0])], 255, cv2.LINE_AA, _SHIFT)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5)
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi * (1.0 - 0.35 * mask[..., None] / 255.0)).astype(np.uint8)


# ----------------------------------------------------------------------------------- the walk


@dataclass(frozen=True, slots=True)
class WalkLayout:
    walker: Walker
    cameras: dict[str, Camera]
    z_range: tuple[float, float]


def layout_walk(spec: SubjectSpec, *, size_px: int, seconds: float) -> WalkLayout:
    """Place the walker and both cameras so that the whole walk stays in both views."""
    scene = spec.scene
    length = spec.speed_mps * seconds
    z_end = -scene.end_distance_m
    z_start = z_end - length
    yaw = math.radians(spec.yaw_deg)
    x_start = -math.tan(yaw) * length / 2  # the walk is centred on the walkway axis
    walker = Walker(spec, z_start=z_start, x_start=x_start)
    z_mid = (z_start + z_end) / 2
    # frame the end of the walk: the walker fills ``front_fill`` of the height there, centred
    f_front = scene.front_fill * size_px * scene.end_distance_m / spec.height_m
    front = Camera.look_at(np.array([0.0, scene.front_cam_height_m, 0.0]),
                           np.array([0.0, 0.5 * spec.height_m, z_end]), focal_px=f_front, size_px=size_px)
    f_side = scene.focal_side * size_px
    distance = f_side * (length / 2 + _BODY_MARGIN_M) / (0.94 * size_px / 2)
    side = Camera.look_at(np.array([-distance, scene.side_cam_height_m, z_mid]),
                          np.array([0.0, 0.88, z_mid]), focal_px=f_side, size_px=size_px)
    return WalkLayout(walker, {"front": front, "side": side}, (z_start, z_end))


@dataclass(slots=True)
class WalkVideos:
    front: Path
    side: Path
    frames: int
    boxes: dict[str, list[tuple[int, float, float, float, float]]]  # view -> (frame, x1, y1, x2, y2)


class _Shake:
    """Camera shake: a smooth random walk of the image offset (pixels)."""

    def __init__(self, rng: np.random.Generator, sigma_px: float) -> None:
        self.rng, self.sigma = rng, sigma_px
        self.pos = rng.normal(0.0, sigma_px, 2)

    def next(self) -> np.ndarray:
        keep = 0.85
        self.pos = keep * self.pos + math.sqrt(1 - keep**2) * self.rng.normal(0.0, self.sigma, 2)
        return self.pos


def render_frames(spec: SubjectSpec, *, size_px: int = 320, seconds: float = 6.0, fps: float = 25.0):
    """Yield (frame index, {view: image}, {view: box or None}) for the whole walk."""
    layout = layout_walk(spec, size_px=size_px, seconds=seconds)
    rng = np.random.default_rng(spec.render_seed)
    rooms = {v: render_room(layout.cameras[v], spec.scene, view=v, walk_x=0.0, z_range=layout.z_range, rng=rng)
             for v in VIEWS}
    shakes = {v: _Shake(rng, spec.scene.jitter_px) for v in VIEWS}
    # sensor noise: random windows into one larger noise field per view (cheaper than fresh noise per frame)
    noise_rng = np.random.default_rng(spec.render_seed + 1)
    pad = 64
    fields = {v: noise_rng.standard_normal((size_px + pad, size_px + pad, 3), dtype=np.float32)
              * np.float32(spec.scene.noise_sigma) for v in VIEWS}
    n_frames = max(1, round(seconds * fps))
    walker = layout.walker
    for i in range(n_frames):
        t = i / fps
        parts = walker.parts(t)
        pelvis = walker.pelvis_position(t)
        images: dict[str, np.ndarray] = {}
        boxes: dict[str, tuple[float, float, float, float] | None] = {}
        for view in VIEWS:
            cam = layout.cameras[view]
            img = rooms[view].copy()
            draw_shadow(img, cam, pelvis, walker.F, walker.H)
            box = draw_walker(img, cam, parts)
            img = cv2.GaussianBlur(img, (0, 0), spec.scene.blur_sigma_px)
            dx, dy = shakes[view].next()
            warp = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
            img = cv2.warpAffine(img, warp, (size_px, size_px), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT_101)
            ox, oy = noise_rng.integers(0, pad, 2)
            noise = fields[view][oy:oy + size_px, ox:ox + size_px]
            images[view] = cv2.add(img, noise, dtype=cv2.CV_8U)
            if box is not None:
                x1, y1 = max(0.0, box[0] + dx), max(0.0, box[1] + dy)
                x2, y2 = min(float(size_px), box[2] + dx), min(float(size_px), box[3] + dy)
                box = (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None
            boxes[view] = box
        yield i, images, boxes


def render_walk(spec: SubjectSpec, front: Path, side: Path, *, size_px: int = 320, seconds: float = 6.0,
                fps: float = 25.0) -> WalkVideos:
    """Write the walk as two mp4 files (``mp4v``); returns the paths, frame count and the true boxes."""
    paths = {"front": Path(front), "side": Path(side)}
    writers = {}
    for view, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size_px, size_px))
        if not writer.isOpened():
            raise OSError(f"cannot write video {path} (OpenCV mp4v writer did not open)")
        writers[view] = writer
    boxes: dict[str, list[tuple[int, float, float, float, float]]] = {v: [] for v in VIEWS}
    frames = 0
    try:
        for i, images, frame_boxes in render_frames(spec, size_px=size_px, seconds=seconds, fps=fps):
            for view in VIEWS:
                writers[view].write(images[view])
                box = frame_boxes[view]
                if box is not None:
                    boxes[view].append((i, *box))
            frames += 1
    finally:
        for writer in writers.values():
            writer.release()
    return WalkVideos(paths["front"], paths["side"], frames, boxes)


def write_boxes(path: Path, boxes: list[tuple[int, float, float, float, float]]) -> Path:
    """The true boxes of one view as CSV: ``frame,x1,y1,x2,y2`` (pixels, x2/y2 exclusive)."""
    lines = ["frame,x1,y1,x2,y2"] + [f"{i},{x1:.1f},{y1:.1f},{x2:.1f},{y2:.1f}" for i, x1, y1, x2, y2 in boxes]
    path.write_text("\n".join(lines) + "\n")
    return path
