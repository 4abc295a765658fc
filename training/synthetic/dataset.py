"""A synthetic data set: rendered front/side walk pairs plus a manifest (``training.manifest``).

Layout of ``out_dir``::

    manifest.csv            one row per subject (see docs/training.md, "Manifest")
    subjects.json           every subject's full parameters (posture, body, gait, scene), for inspection
    videos/<id>_front.mp4   25 fps mp4v, size_px x size_px
    videos/<id>_side.mp4
    boxes/<id>_front.csv    true person boxes, only with ``write_boxes=True``
    boxes/<id>_side.csv
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from capture.synthetic.render import render_walk, write_boxes
from capture.synthetic.subjects import TRAIT_VIEWS, SubjectSpec, sample_subjects
from training.manifest import ManifestRow, write_manifest


def _notes(spec: SubjectSpec) -> str:
    if not spec.is_asd:
        return "synthetic walker; no traits"
    where = {"front": "front view only", "side": "side view only", "both": "both views"}[spec.trait_view]
    return f"synthetic walker; traits meant to be seen in the {where} (trait_view={spec.trait_view})"


def _render_one(spec: SubjectSpec, out_dir: Path, size_px: int, seconds: float, fps: float,
                boxes: bool) -> ManifestRow:
    videos = out_dir / "videos"
    walk = render_walk(spec, videos / f"{spec.participant_id}_front.mp4", videos / f"{spec.participant_id}_side.mp4",
                       size_px=size_px, seconds=seconds, fps=fps)
    box_paths: dict[str, Path | None] = {"front": None, "side": None}
    if boxes:
        (out_dir / "boxes").mkdir(parents=True, exist_ok=True)
        for view in ("front", "side"):
            box_paths[view] = write_boxes(out_dir / "boxes" / f"{spec.participant_id}_{view}.csv", walk.boxes[view])
    return ManifestRow(participant_id=spec.participant_id, label=spec.label, subcategory=spec.subcategory,
                       front=walk.front, side=walk.side, boxes_front=box_paths["front"],
                       boxes_side=box_paths["side"], traits=spec.trait_strings(), notes=_notes(spec))


def _render_args(args: tuple) -> ManifestRow:
    return _render_one(*args)


def spec_to_dict(spec: SubjectSpec) -> dict[str, object]:
    return dataclasses.asdict(spec)


def generate_dataset(out_dir: str | Path, *, subjects: int | Sequence[SubjectSpec], seed: int = 0,
                     asd_fraction: float = 0.5, trait_views: Sequence[str] = TRAIT_VIEWS, size_px: int = 320,
                     seconds: float = 6.0, fps: float = 25.0, write_boxes: bool = False, workers: int = 1,
                     progress: Callable[[SubjectSpec], None] | None = None) -> Path:
    """Render ``subjects`` (a count, drawn with :func:`sample_subjects`, or given specs); returns the manifest.

    Deterministic in ``seed``: the same arguments give the same subjects and the same frames. ``workers``
    > 1 renders subjects in that many processes (same output). ``progress`` is called after each subject.
    """
    if size_px < 64 or size_px % 2:
        raise ValueError("size_px must be even and >= 64")
    if seconds <= 0 or fps <= 0:
        raise ValueError("seconds and fps must be > 0")
    out = Path(out_dir)
    specs = (sample_subjects(subjects, seed=seed, asd_fraction=asd_fraction, trait_views=tuple(trait_views))
             if isinstance(subjects, int) else list(subjects))
    ids = [s.participant_id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("participant ids must be unique")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(spec, out, size_px, seconds, fps, write_boxes) for spec in specs]
    rows: list[ManifestRow] = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for spec, row in zip(specs, pool.map(_render_args, jobs), strict=True):
                rows.append(row)
                if progress:
                    progress(spec)
    else:
        for spec, job in zip(specs, jobs, strict=True):
            rows.append(_render_args(job))
            if progress:
                progress(spec)
    (out / "subjects.json").write_text(json.dumps(
        {"seed": seed, "size_px": size_px, "seconds": seconds, "fps": fps,
         "subjects": [spec_to_dict(s) for s in specs]}, indent=1) + "\n")
    return write_manifest(out / "manifest.csv", rows)
