"""A synthetic dual-view walker: a camera that films a simulated person walking down a walkway.

A small articulated skeleton walks a gait cycle down a walkway and is drawn with OpenCV (shaded
ellipsoids and capsules) through two pinhole cameras: front (the walker approaches) and side (the walker
crosses the view from left to right). ASD subjects carry posture traits (trunk flexion, dropped head,
lateral sway or tilt, limp); non-ASD subjects carry none. See ``subjects`` for the traits and the
front-only / side-only mixes. The ``synthetic:`` capture source replays one (``demo_walker``); training
renders labelled data sets from it (``training.synthetic``).

Synthetic data: a model trained on it says nothing about real patients.
"""

from capture.synthetic.demo_walker import DEMO_WALK_SECONDS, DEMO_WALK_SIZE_PX, render_demo_walker
from capture.synthetic.render import render_frames, render_walk
from capture.synthetic.subjects import (
    FRONT_TRAITS,
    SIDE_TRAITS,
    TRAIT_VIEWS,
    TRAITS,
    SubjectSpec,
    make_subject,
    parse_trait_views,
    sample_subjects,
)

__all__ = ["DEMO_WALK_SECONDS", "DEMO_WALK_SIZE_PX", "FRONT_TRAITS", "SIDE_TRAITS", "TRAITS", "TRAIT_VIEWS",
           "SubjectSpec", "make_subject", "parse_trait_views", "render_demo_walker", "render_frames", "render_walk",
           "sample_subjects"]
