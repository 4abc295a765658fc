"""One synthetic walker pair for ``dualgait demo --walker asd|normal`` (not in the demo model's training set)."""

from __future__ import annotations

from pathlib import Path

from training.manifest import read_manifest
from training.synthetic.dataset import generate_dataset
from training.synthetic.subjects import make_subject

__all__ = ["render_demo_walker"]

# seeds far from the demo model's training subjects (training.demo_model.DemoRecipe.seed)
_SEEDS = {True: 90_001, False: 90_002}


def render_demo_walker(out_dir: str | Path, *, asd: bool, seconds: float = 12.0,
                       size_px: int = 320) -> tuple[Path, Path]:
    """Render one walker (ASD-like traits in both views, or none) and return its (front, side) videos."""
    pid = "demo-asd" if asd else "demo-normal"
    spec = make_subject(pid, asd=asd, trait_view="both" if asd else None, seed=_SEEDS[asd])
    manifest = generate_dataset(out_dir, subjects=[spec], seed=_SEEDS[asd], size_px=size_px, seconds=seconds)
    (row,) = read_manifest(manifest)
    return row.front, row.side
