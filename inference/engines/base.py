"""One interface for every inference engine, and the runner the pipeline calls.

An engine runs a model's graph: ``infer(inputs)`` takes one array per view, in ``views`` order,
each ``(B, 3, T, H, W)`` float32 normalised, and returns ``(B, K)`` float32 probabilities with
columns ``output_names``. The :class:`ModelRunner` turns the pipeline's uint8 BGR crops into those
inputs and the output row into named floats, whatever the engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from inference.models.checkpoint import ModelSpec
from inference.models.fusion import KINETICS_MEAN, KINETICS_STD

__all__ = ["Engine", "EngineError", "ModelRunner", "available_cores", "preprocess", "set_torch_threads"]


class EngineError(RuntimeError):
    """An engine cannot be built or run here (missing package, no GPU, bad combination)."""


class Engine(Protocol):
    name: str  # e.g. "openvino-bf16"
    description: str
    views: tuple[str, ...]
    output_names: tuple[str, ...]

    def infer(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """``len(views)`` arrays (B, 3, T, H, W) float32 -> (B, K) float32."""
        ...


def available_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)))


_MEAN = np.asarray(KINETICS_MEAN, dtype=np.float32).reshape(3, 1, 1, 1) * 255.0
_INV_STD = 1.0 / (np.asarray(KINETICS_STD, dtype=np.float32).reshape(3, 1, 1, 1) * 255.0)


def preprocess(clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 BGR -> (1, 3, T, H, W) float32 RGB, Kinetics-normalised."""
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
        raise ValueError(f"expected a (T, H, W, 3) uint8 clip, got {clip.shape} {clip.dtype}")
    x = clip[..., ::-1].transpose(3, 0, 1, 2).astype(np.float32)  # (3, T, H, W) RGB
    x -= _MEAN
    x *= _INV_STD
    return x[None]  # (1, 3, T, H, W)


class ModelRunner:
    """Crops in, named probabilities out, on any engine."""

    def __init__(self, engine: Engine, *, spec: ModelSpec, untrained: bool, synthetic: bool = False,
                 source: str = "") -> None:
        self.engine = engine
        self.spec = spec
        self.untrained = untrained
        self.synthetic = synthetic
        self.views = engine.views
        self.output_names = engine.output_names
        state = source or ("untrained" if untrained else "trained")
        if synthetic:
            state += ", trained on simulated walkers"
        width = f", width {spec.width}" if spec.width != 64 else ""
        self.description = f"{spec.variant} fusion{width}, {spec.input_px}px, T={spec.frames}, {engine.name} ({state})"

    def predict(self, clips: Mapping[str, np.ndarray]) -> dict[str, float]:
        """clips: view -> (T, H, W, 3) uint8 BGR crops of one window; only ``views`` are used.

        Engines with ``infer_clips`` (PyTorch) take the uint8 crops and preprocess on their device (on a
        GPU: uint8 upload from pinned memory, normalisation there); the others get float32 from here."""
        infer_clips = getattr(self.engine, "infer_clips", None)
        if infer_clips is not None:
            out = infer_clips([clips[view] for view in self.views])  # (1, K)
        else:
            out = self.engine.infer([preprocess(clips[view]) for view in self.views])  # (1, K)
        return {name: float(v) for name, v in zip(self.output_names, out[0], strict=True)}

    def warm_up(self, runs: int = 2) -> None:
        blank = np.zeros((self.spec.frames, self.spec.input_px, self.spec.input_px, 3), dtype=np.uint8)
        for _ in range(runs):
            self.predict(dict.fromkeys(self.views, blank))


def set_torch_threads(threads: int) -> int:
    """Set torch intra-op threads (0: one per available core); returns the number set."""
    import torch

    n = threads if threads > 0 else available_cores()
    torch.set_num_threads(n)
    return n
