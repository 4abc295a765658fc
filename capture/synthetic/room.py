"""The synthetic walker's cameras (pinholes) and the room they film (ray-cast floor, walls, ceiling)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from capture.synthetic.subjects import Scene


@dataclass(frozen=True, slots=True)
class Camera:
    position: np.ndarray  # (3,) world
    rotation: np.ndarray  # (3, 3) world -> camera; rows: right, down, forward
    focal_px: float
    size_px: int

    @staticmethod
    def look_at(position: np.ndarray, target: np.ndarray, *, focal_px: float, size_px: int) -> Camera:
        fwd = target - position
        fwd = fwd / np.linalg.norm(fwd)
        right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        return Camera(np.asarray(position, float), np.stack([right, down, fwd]), focal_px, size_px)

    def to_camera(self, p: np.ndarray) -> np.ndarray:
        return self.rotation @ (p - self.position)

    def project(self, p: np.ndarray) -> tuple[np.ndarray, float]:
        """World point -> (pixel (2,), depth in metres)."""
        c = self.to_camera(p)
        half = self.size_px / 2
        return np.array([half + self.focal_px * c[0] / c[2], half + self.focal_px * c[1] / c[2]]), float(c[2])

    def rays(self, scale: int = 1) -> np.ndarray:
        """World direction of every pixel centre: (H*scale, W*scale, 3)."""
        n = self.size_px * scale
        coords = (np.arange(n) + 0.5) / scale - self.size_px / 2
        u, v = np.meshgrid(coords, coords)
        cam = np.stack([u / self.focal_px, v / self.focal_px, np.ones_like(u)], axis=-1)
        return cam @ self.rotation  # row vectors: R^T @ d


# ----------------------------------------------------------------------------------- the room


def _hash01(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic pseudo-random value in [0, 1) per integer cell (a, b)."""
    h = (a.astype(np.int64) * 73856093) ^ (b.astype(np.int64) * 19349663) ^ (seed * 83492791)
    return ((h % 1000003) % 1000) / 1000.0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int, amount: float) -> np.ndarray:
    small = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    return 1.0 + amount * cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def render_room(cam: Camera, scene: Scene, *, view: str, walk_x: float, z_range: tuple[float, float],
                rng: np.random.Generator) -> np.ndarray:
    """The empty room seen by ``cam``: (size, size, 3) uint8 BGR."""
    scale = 2
    d = cam.rays(scale)
    o = cam.position
    h, w = d.shape[:2]
    t_best = np.full((h, w), np.inf)
    kind = np.zeros((h, w), np.int8)  # 0 floor, 1 ceiling, 2 wall (facing the camera), 3 side wall
    planes: list[tuple[int, int, float]] = [(1, 0, 0.0), (1, 1, scene.ceiling_m)]  # (axis, kind, offset)
    if view == "front":
        planes += [(2, 2, z_range[0] - scene.back_wall_m), (0, 3, walk_x + scene.corridor_half_width_m),
                   (0, 3, walk_x - scene.corridor_half_width_m)]
    else:
        planes += [(0, 2, walk_x + scene.side_wall_m)]
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis, k, offset in planes:
            t = (offset - o[axis]) / d[..., axis]
            better = (t > 1e-6) & (t < t_best)
            t_best = np.where(better, t, t_best)
            kind = np.where(better, k, kind).astype(np.int8)
    t_best = np.where(np.isfinite(t_best), t_best, 1e3)
    p = o + d * t_best[..., None]
    img = np.empty((h, w, 3), np.float32)
    seed = int(rng.integers(1 << 20))

    floor = kind == 0
    base = np.array(scene.floor, np.float32)
    fx, fz = p[..., 0], p[..., 2]
    shade = np.ones((h, w), np.float32) * 0.92
    if scene.floor_pattern == "tiles":
        tx, tz = np.floor(fx / scene.tile_m), np.floor(fz / scene.tile_m)
        shade *= 0.94 + 0.12 * _hash01(tx, tz, seed)
        gx, gz = (fx / scene.tile_m) % 1.0, (fz / scene.tile_m) % 1.0
        grout = (np.minimum(gx, 1 - gx) < 0.035) | (np.minimum(gz, 1 - gz) < 0.035)
        shade = np.where(grout, shade * 0.72, shade)
    elif scene.floor_pattern == "planks":
        plank_w = scene.tile_m * 0.4
        px = np.floor(fx / plank_w)
        joint = np.floor(fz / 1.2 + _hash01(px, px * 0, seed))
        shade *= 0.9 + 0.2 * _hash01(px, joint, seed + 1)
        gx = (fx / plank_w) % 1.0
        shade = np.where(np.minimum(gx, 1 - gx) < 0.04, shade * 0.8, shade)
    img[floor] = base * shade[floor][:, None]

    ceiling = kind == 1
    cz, cx = p[..., 2] / 1.2, p[..., 0] / 1.2
    panel = (np.abs((cz % 1.0) - 0.5) < 0.3) & (np.abs((cx % 1.0) - 0.5) < 0.3)
    cshade = np.where(panel, 1.05, 0.88)
    img[ceiling] = np.array(scene.ceiling, np.float32) * cshade[ceiling][:, None]

    for k, light in ((2, 0.95), (3, 0.82)):
        wall = kind == k
        along = p[..., 0] if (k == 2 and view == "front") else p[..., 2]
        y = p[..., 1]
        wshade = np.full((h, w), light, np.float32)
        if scene.wall_pattern == "panels":
            g = (along / 1.2) % 1.0
            wshade = np.where(np.minimum(g, 1 - g) < 0.01, wshade * 0.75, wshade)
        elif scene.wall_pattern == "stripes":
            wshade = np.where((y > 0.85) & (y < 1.0), wshade * 0.7, wshade)
            wshade = np.where((y > 1.9) & (y < 1.95), wshade * 0.8, wshade)
        wshade = np.where(y < 0.1, wshade * 0.65, wshade)  # skirting board
        img[wall] = np.array(scene.wall, np.float32) * wshade[wall][:, None]

    dist = np.linalg.norm(p - o, axis=-1)
    img *= np.clip(1.05 - 0.015 * dist, 0.75, 1.0)[..., None]
    img = cv2.resize(img, (cam.size_px, cam.size_px), interpolation=cv2.INTER_AREA)
    n = cam.size_px
    img *= _smooth_noise(rng, (n, n), 6, 0.04)[..., None]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    r2 = ((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / (n / 2) ** 2
    img *= (1.0 - scene.vignette * 0.5 * r2)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)
