"""One synthetic walker pair: ``dualgait demo --walker asd|normal`` and the ``synthetic:`` camera source.

Its length and size are the demo model's training walks (``training.demo_model.DemoRecipe`` takes its
defaults from here): the side camera frames the whole walk, so a longer walk would show a smaller walker
than the model was trained on. The seeds are far from the demo model's training subjects.
"""

from __future__ import annotations

from pathlib import Path

from capture.synthetic.render import render_walk
from capture.synthetic.subjects import make_subject

__all__ = ["DEMO_WALK_SECONDS", "DEMO_WALK_SIZE_PX", "render_demo_walker"]

DEMO_WALK_SECONDS = 6.0
DEMO_WALK_SIZE_PX = 320
_SEEDS = {True: 90_001, False: 90_002}


def render_demo_walker(out_dir: str | Path, *, asd: bool, seed: int | None = None, seconds: float | None = None,
                       size_px: int | None = None, fps: float = 25.0) -> tuple[Path, Path]:
    """Render one walker (ASD-like traits in both views, or none) and return its (front, side) videos.

    ``seed`` None: the demo's own walker of that class; ``seconds`` / ``size_px`` None: the demo walk's.
    """
    seconds = DEMO_WALK_SECONDS if seconds is None else seconds
    size_px = DEMO_WALK_SIZE_PX if size_px is None else size_px
    label = "asd" if asd else "normal"
    pid = f"demo-{label}" if seed is None else f"synthetic-{label}-{seed}"
    seed = _SEEDS[asd] if seed is None else seed
    spec = make_subject(pid, asd=asd, trait_view="both" if asd else None, seed=seed)
    videos = Path(out_dir) / "videos"
    walk = render_walk(spec, videos / f"{pid}_front.mp4", videos / f"{pid}_side.mp4", size_px=size_px,
                       seconds=seconds, fps=fps)
    return walk.front, walk.side
