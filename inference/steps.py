"""What the inference pipeline hands out and expects: the model's interface, a sample waiting for the detector,
a window waiting for the model, the generator of those steps, and the observer protocol.

Shared by :mod:`inference.pipeline` (which makes them), :mod:`inference.walkways` (which batches them across
walkways) and the observers (:mod:`inference.annotate`, :mod:`inference.preview`); plain types, no behaviour.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from core.messages import WindowScore
from inference.detector import Detection
from inference.samples import ProcessedSample

if TYPE_CHECKING:
    from inference.pipeline import InferencePipeline

__all__ = ["DetectRequest", "Model", "Observer", "PendingWindow", "Steps"]


class Model(Protocol):
    """What the pipeline needs of the classifier (``inference.engines.ModelRunner`` in production)."""

    description: str
    untrained: bool
    synthetic: bool
    views: tuple[str, ...]

    def predict(self, clips: Mapping[str, np.ndarray]) -> dict[str, float]:
        """view -> (T, H, W, 3) uint8 BGR crops; returns p_asd and, per variant, p_front/p_side/w_front/w_side."""
        ...


@dataclass(slots=True)
class DetectRequest:
    """A sample's frames waiting for the detector; whoever runs it sets ``detect_ms`` and sends the people back."""

    images: dict[str, np.ndarray]  # view -> (H, W, 3) uint8 BGR
    full_size: bool = False  # each frame alone at the detector's full size (a lock is being decided)
    detect_ms: float = 0.0


@dataclass(slots=True)
class PendingWindow:
    """A window checked and assembled, waiting for the model (``clips`` None: invalid, nothing to run)."""

    owner: InferencePipeline
    window: int
    first: ProcessedSample | None
    present: list[ProcessedSample]
    end_ns: int
    code: str | None
    reason: str | None
    clips: dict[str, np.ndarray] | None  # view -> (T, H, W, 3) uint8
    start_ns: int  # model queue entry (host monotonic)
    pair_ms: float
    walk: int | None
    overload_level: int = 0  # inference.overload's level when the window was made
    first_sample: int = 0  # index of the window's first sample


Steps = Generator[DetectRequest | PendingWindow, dict[str, list[Detection]] | None, None]


class Observer(Protocol):
    """Sees what the pipeline processed: ``InferencePipeline.observers``, e.g. :mod:`inference.annotate`'s recorder."""

    def sample(self, session: str, sample: ProcessedSample, images: Mapping[str, np.ndarray]) -> None:
        """A sample with a frame pair (view -> image), before detection; the sample object fills in later."""
        ...

    def window(self, pending: PendingWindow, score: WindowScore) -> None:
        """A finished window and its score."""
        ...

    def end(self, session: str) -> None:
        """The stream ended."""
        ...
