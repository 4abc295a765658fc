"""A synthetic dual-view walker: labelled front/side walking videos for training and end-to-end checks.

A small articulated skeleton walks a gait cycle down a walkway and is drawn with OpenCV (shaded
ellipsoids and capsules) through two pinhole cameras: front (the walker approaches) and side (the walker
crosses the view from left to right). ASD subjects carry posture traits (trunk flexion, dropped head,
lateral sway or tilt, limp); non-ASD subjects carry none. See ``subjects`` for the traits and the
front-only / side-only mixes, ``docs/training.md`` for the command.

Synthetic data: a model trained on it says nothing about real patients.
"""

from training.synthetic.cli import add_simulate_args, run_simulate
from training.synthetic.dataset import generate_dataset
from training.synthetic.render import render_frames, render_walk
from training.synthetic.subjects import (
    FRONT_TRAITS,
    SIDE_TRAITS,
    TRAIT_VIEWS,
    TRAITS,
    SubjectSpec,
    make_subject,
    parse_trait_views,
    sample_subjects,
)

__all__ = ["FRONT_TRAITS", "SIDE_TRAITS", "TRAITS", "TRAIT_VIEWS", "SubjectSpec", "add_simulate_args",
           "generate_dataset", "make_subject", "parse_trait_views", "render_frames", "render_walk", "run_simulate",
           "sample_subjects"]
