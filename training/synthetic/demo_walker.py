"""One synthetic walker pair for ``dualgait demo --walker asd|normal`` (not in the demo model's training set)."""

from __future__ import annotations

from pathlib import Path

from training.manifest import read_manifest
from training.synthetic.dataset import generate_dataset
from training.synthetic.subjects import make_subject

__all__ = ["render_demo_walker"]

# seeds far from the demo model's training subjects (training.demo_model.DemoRecipe.seed)
_SEEDS = {True: 90_001, False: 90_002}


def render_demo_walker(out_dir: str | Path, *, asd: bool, seed: int | None = None, seconds: float | None = None,
                       size_px: int | None = None) -> tuple[Path, Path]:
    """Render one walker (ASD-like traits in both views, or none) and return its (front, side) videos.

    ``seed`` None: the demo's own walker of that class. Length and size default to the demo model's
    training walks: the side camera frames the whole walk, so a longer walk would show a smaller walker
    than the model was trained on.
    """
    from training.demo_model import DEMO_RECIPE

    seconds = DEMO_RECIPE.seconds if seconds is None else seconds
    size_px = DEMO_RECIPE.size_px if size_px is None else size_px
    label = "asd" if asd else "normal"
    pid = f"demo-{label}" if seed is None else f"synthetic-{label}-{seed}"
    seed = _SEEDS[asd] if seed is None else seed
    spec = make_subject(pid, asd=asd, trait_view="both" if asd else None, seed=seed)
    manifest = generate_dataset(out_dir, subjects=[spec], seed=seed, size_px=size_px, seconds=seconds)
    (row,) = read_manifest(manifest)
    return row.front, row.side
