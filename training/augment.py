"""Appearance augmentation for training clips: break the identity cues a small data set lets a model memorise.

With few walkers, a model can separate the training set by what identifies each walker (clothes
colours, the room, brightness) instead of posture, and then fail on new walkers. Every op here changes
appearance but not posture, and is applied identically to all frames of a clip (motion is kept):
channel permutation, brightness/contrast, grayscale and horizontal flip (a mirrored walker has the
same posture traits, mirrored: a lean to the left becomes one to the right; both are traits).
"""

from __future__ import annotations

import numpy as np

__all__ = ["augment_clip"]


def augment_clip(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, H, W, 3) uint8 BGR -> an augmented copy, same shape and dtype."""
    x = clip.astype(np.float32)
    if rng.random() < 0.8:
        x = x[..., rng.permutation(3)]
    if rng.random() < 0.8:
        alpha = rng.uniform(0.6, 1.4)
        beta = rng.uniform(-40.0, 40.0)
        x = (x - 128.0) * alpha + 128.0 + beta
    if rng.random() < 0.2:
        x = np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1)
    if rng.random() < 0.5:
        x = x[:, :, ::-1]
    return np.clip(x, 0, 255).astype(np.uint8)
