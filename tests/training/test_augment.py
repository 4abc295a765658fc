"""Appearance augmentation changes appearance, never shape, dtype or the motion across frames."""

from __future__ import annotations

import numpy as np
import torch

from training.augment import augment_clip
from training.data import WindowDataset


def _clip() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (1, 16, 12, 3), dtype=np.uint8)
    return np.repeat(base, 8, axis=0)  # (8, 16, 12, 3): identical frames


def test_augment_keeps_shape_and_applies_the_same_op_to_every_frame() -> None:
    clip = _clip()
    outs = [augment_clip(clip, np.random.default_rng(seed)) for seed in range(20)]
    for out in outs:
        assert out.shape == clip.shape and out.dtype == np.uint8
        assert all(np.array_equal(out[0], out[t]) for t in range(8))  # frames stay identical: no new motion
    assert sum(not np.array_equal(out, clip) for out in outs) >= 15  # it does change appearance
    assert np.array_equal(augment_clip(clip, np.random.default_rng(3)), augment_clip(clip, np.random.default_rng(3)))


class _Rec:
    participant_id = "p1"
    label = 1

    def __init__(self) -> None:
        self.clips = {"front": _clip()[None], "side": _clip()[None]}

    def __len__(self) -> int:
        return 1


def test_dataset_augments_only_when_asked() -> None:
    plain = WindowDataset([_Rec()], views=("front", "side"))
    aug = WindowDataset([_Rec()], views=("front", "side"), augment=True)
    torch.manual_seed(0)
    a = [aug[0][0][0] for _ in range(5)]
    assert all(torch.equal(plain[0][0][0], plain[0][0][0]) for _ in range(2))
    assert any(not torch.equal(x, plain[0][0][0]) for x in a)
