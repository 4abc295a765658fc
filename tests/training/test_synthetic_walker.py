"""The synthetic dual-view walker: subjects, traits, videos, manifest, determinism, person detection."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from capture.sources import FileSource
from capture.synthetic import FRONT_TRAITS, SIDE_TRAITS, TRAITS, make_subject, parse_trait_views, sample_subjects
from capture.synthetic.render import figure_box, layout_walk
from core.configtools import ConfigError
from training.manifest import read_manifest
from training.synthetic import add_simulate_args, generate_dataset, run_simulate

SIZE, SECONDS, FPS = 128, 1.2, 25.0
FRAMES = round(SECONDS * FPS)


def _in(value: float, lo_hi: tuple[float, float]) -> bool:
    return lo_hi[0] - 1e-9 <= value <= lo_hi[1] + 1e-9


def _first_frame(path: Path) -> np.ndarray:
    source = FileSource(path)
    try:
        return next(source.frames()).image
    finally:
        source.close()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    return generate_dataset(out, subjects=3, seed=5, asd_fraction=0.67, size_px=SIZE, seconds=SECONDS, fps=FPS,
                            write_boxes=True)


# ----------------------------------------------------------------------------------- subjects


def test_subjects_are_deterministic_and_labelled_in_proportion() -> None:
    a = sample_subjects(20, seed=3, asd_fraction=0.3)
    assert a == sample_subjects(20, seed=3, asd_fraction=0.3)
    assert a != sample_subjects(20, seed=4, asd_fraction=0.3)
    assert sum(s.is_asd for s in a) == 6
    assert [s.participant_id for s in a] == [f"syn{i:04d}" for i in range(1, 21)]


def test_labels_and_traits_are_consistent() -> None:
    for spec in sample_subjects(60, seed=0):
        if spec.is_asd:
            assert spec.traits and spec.subcategory == spec.traits[0]
            assert spec.trait_view in ("front", "side", "both")
            assert [t.split("=")[0] for t in spec.trait_strings()] == list(spec.traits)
        else:
            assert spec.traits == () and spec.subcategory == "normal" and spec.trait_view == "none"
            assert spec.trait_strings() == ()
        for trait, (_view, _unit, natural, present) in TRAITS.items():
            assert _in(spec.trait_value(trait), present if trait in spec.traits else natural), (spec, trait)
        if spec.trait_view == "both":  # signal in both views: a limp, or one trait of each view
            assert "limp" in spec.traits or ({*spec.traits} & {*FRONT_TRAITS} and {*spec.traits} & {*SIDE_TRAITS})


@pytest.mark.parametrize(("view", "own", "other"), [("front", FRONT_TRAITS, SIDE_TRAITS),
                                                     ("side", SIDE_TRAITS, FRONT_TRAITS)])
def test_single_view_subjects_have_no_trait_of_the_other_view(view: str, own: tuple, other: tuple) -> None:
    subjects = sample_subjects(40, seed=11, trait_views=(view,))
    asd = [s for s in subjects if s.is_asd]
    assert len(asd) == 20
    for spec in asd:
        assert spec.trait_view == view and set(spec.traits) <= set(own)
        for trait in (*other, "limp"):  # drawn exactly like a healthy subject's
            assert trait not in spec.traits and _in(spec.trait_value(trait), TRAITS[trait][2])


def test_trait_views_are_spread_evenly() -> None:
    subjects = sample_subjects(20, seed=2, trait_views=parse_trait_views("front_only,side_only"))
    views = [s.trait_view for s in subjects if s.is_asd]
    assert sorted(views) == ["front"] * 5 + ["side"] * 5


def test_parse_trait_views() -> None:
    assert parse_trait_views(None) == ("front", "side", "both")
    assert parse_trait_views(" side , front,side") == ("side", "front")
    with pytest.raises(ValueError, match="bad trait view 'top'"):
        parse_trait_views("front,top")


def test_walk_stays_in_both_views_with_feet_on_the_floor() -> None:
    for spec in sample_subjects(30, seed=9):
        layout = layout_walk(spec, size_px=320, seconds=6.0)
        for i in (0, 37, 75, 112, 149):
            t = i / 25
            for view, cam in layout.cameras.items():
                x1, y1, x2, y2 = figure_box(cam, layout.walker.parts(t))
                assert min(x1, y1) > 0 and max(x2, y2) < 320, (spec.participant_id, view, i)
                assert y2 - y1 > 40  # big enough to find and crop
            joints = layout.walker.joints(t)
            lowest = min(joints[f"{p}_{s}"][1] for p in ("heel", "toe") for s in ("left", "right"))
            assert 0 <= lowest < 0.01


# ----------------------------------------------------------------------------------- data set


def test_dataset_manifest_matches_subjects(dataset: Path) -> None:
    rows = read_manifest(dataset)
    info = json.loads((dataset.parent / "subjects.json").read_text())
    specs = info["subjects"]
    assert [r.participant_id for r in rows] == [s["participant_id"] for s in specs]
    assert sum(r.is_asd for r in rows) == 2
    for row, spec in zip(rows, specs, strict=True):
        assert row.label == spec["label"] and row.subcategory == spec["subcategory"]
        assert [t.split("=")[0] for t in row.traits] == spec["traits"]
        assert (row.traits != ()) == row.is_asd
        assert row.front.parent == row.side.parent == dataset.parent / "videos"


def test_videos_are_readable_with_the_right_size_and_length(dataset: Path) -> None:
    for row in read_manifest(dataset):
        for path in (row.front, row.side):
            source = FileSource(path)
            try:
                assert (source.width_px, source.height_px, source.fps, source.frame_count) == (SIZE, SIZE, FPS, FRAMES)
                images = [f.image for f in source.frames()]
            finally:
                source.close()
            assert len(images) == FRAMES and images[0].shape == (SIZE, SIZE, 3)
            assert float(np.abs(images[-1].astype(int) - images[0].astype(int)).mean()) > 0.5  # it moves


def test_true_boxes_are_written_inside_the_frame(dataset: Path) -> None:
    from training.synthetic.detect_rate import read_boxes

    for row in read_manifest(dataset):
        for path in (row.boxes_front, row.boxes_side):
            assert path is not None
            boxes = read_boxes(path)
            assert sorted(boxes) == list(range(FRAMES))
            for x1, y1, x2, y2 in boxes.values():
                assert 0 <= x1 < x2 <= SIZE and 0 <= y1 < y2 <= SIZE


def test_same_seed_gives_the_same_frames(dataset: Path, tmp_path: Path) -> None:
    again = generate_dataset(tmp_path / "again", subjects=3, seed=5, asd_fraction=0.67, size_px=SIZE,
                             seconds=SECONDS, fps=FPS)
    other = generate_dataset(tmp_path / "other", subjects=1, seed=6, size_px=SIZE, seconds=0.2, fps=FPS)
    first, second = read_manifest(dataset), read_manifest(again)
    for a, b in zip(first, second, strict=True):
        assert (a.participant_id, a.label, a.traits) == (b.participant_id, b.label, b.traits)
        for view in ("front", "side"):
            assert np.array_equal(_first_frame(getattr(a, view)), _first_frame(getattr(b, view)))
    assert not np.array_equal(_first_frame(first[0].front), _first_frame(read_manifest(other)[0].front))


def test_simulate_command(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_simulate_args(parser)
    args = parser.parse_args(["--subjects", "2", "--output", str(tmp_path / "out"), "--seed", "1", "--size-px", "64",
                              "--seconds", "0.4", "--asd-fraction", "1", "--trait-views", "side", "--workers", "2"])
    assert run_simulate(args) == 0
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    assert len(rows) == 2 and all(r.is_asd and "side view only" in r.notes for r in rows)
    bad = parser.parse_args(["--subjects", "2", "--output", str(tmp_path / "bad"), "--trait-views", "top"])
    with pytest.raises(ConfigError, match="bad trait view"):
        run_simulate(bad)
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------------- detection


def test_the_live_tracker_finds_the_walker(assets: Path, tmp_path: Path) -> None:
    """The shared YOLO model (the live pipeline's tracker) sees the synthetic walker in both views."""
    from dualgait.config import load_config
    from training.synthetic.detect_rate import detection_rate

    cfg = load_config().inference.detector
    cfg = dataclasses.replace(cfg, weights=str(assets / "weights" / "yolo11n_int8_openvino_model"))
    spec = make_subject("det01", asd=True, trait_view="side", traits=("trunk_flexion",), seed=1234)
    manifest = generate_dataset(tmp_path, subjects=[spec], seconds=3.0)
    row = read_manifest(manifest)[0]
    rate = detection_rate(row.front, row.side, step=3, detector_cfg=cfg)
    assert rate.frames == {"front": 25, "side": 25}
    assert rate.rate("front") >= 0.8 and rate.rate("side") >= 0.8, rate.as_dict()
