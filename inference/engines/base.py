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

__all__ = ["Engine", "EngineError", "ModelRunner", "available_cores", "batch_buckets", "preprocess", "preprocess_batch",
           "set_torch_threads"]


class EngineError(RuntimeError):
    """An engine cannot be built or run here (missing package, no GPU, bad combination)."""


class Engine(Protocol):
    name: str  # e.g. "openvino-bf16"
    description: str
    views: tuple[str, ...]
    output_names: tuple[str, ...]
    # optional: static_shapes (bool, default True) -- the engine prefers few distinct batch sizes
    # (compiles, captures or tunes per shape), so the runner pads its batches to buckets

    def infer(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """``len(views)`` arrays (B, 3, T, H, W) float32 -> (B, K) float32."""
        ...


def available_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)))


_MEAN = np.asarray(KINETICS_MEAN, dtype=np.float32).reshape(3, 1, 1, 1) * 255.0
_INV_STD = 1.0 / (np.asarray(KINETICS_STD, dtype=np.float32).reshape(3, 1, 1, 1) * 255.0)


def _check_clip(clip: np.ndarray) -> None:
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
        raise ValueError(f"expected a (T, H, W, 3) uint8 clip, got {clip.shape} {clip.dtype}")


def preprocess(clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 BGR -> (1, 3, T, H, W) float32 RGB, Kinetics-normalised."""
    return preprocess_batch([clip], 1)


def preprocess_batch(clips: Sequence[np.ndarray], size: int | None = None) -> np.ndarray:
    """n windows (T, H, W, 3) uint8 BGR -> (size, 3, T, H, W) float32 RGB, Kinetics-normalised.

    Rows n..size-1 repeat the last window (padding to a batch bucket; converted once, then copied).
    """
    n = len(clips)
    size = n if size is None else size
    if not 1 <= n <= size:
        raise ValueError(f"cannot pad {n} windows to a batch of {size}")
    for clip in clips:
        _check_clip(clip)
    t, h, w, _ = clips[0].shape
    out = np.empty((size, 3, t, h, w), dtype=np.float32)
    for i, clip in enumerate(clips):
        x = out[i]  # (3, T, H, W)
        x[...] = clip[..., ::-1].transpose(3, 0, 1, 2)  # uint8 BGR -> float32 RGB
        x -= _MEAN
        x *= _INV_STD
    out[n:] = out[n - 1]
    return out


def batch_buckets(max_batch: int) -> tuple[int, ...]:
    """The batch sizes a runner calls its engine with: powers of two below ``max_batch``, then ``max_batch``.

    8 -> (1, 2, 4, 8); 12 -> (1, 2, 4, 8, 12); 1 -> (1,).
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    sizes, b = [], 1
    while b < max_batch:
        sizes.append(b)
        b *= 2
    return (*sizes, max_batch)


class ModelRunner:
    """Crops in, named probabilities out, on any engine; one engine call for a batch of windows.

    ``predict_batch`` splits its windows into chunks of at most ``max_batch`` and, on engines with
    static shapes (``engine.static_shapes``, true unless the engine says otherwise), pads each chunk
    up to the next of ``batch_buckets`` by repeating its last window, so the engine only ever sees
    those few batch sizes (one OpenVINO compile, CUDA graph or TensorRT shape each). Windows are
    independent through the model (BatchNorm in eval mode), so the padded rows change no real row;
    they are dropped from the result.
    """

    def __init__(self, engine: Engine, *, spec: ModelSpec, untrained: bool, synthetic: bool = False,
                 source: str = "", max_batch: int = 8, pad: bool | None = None) -> None:
        self.engine = engine
        self.spec = spec
        self.untrained = untrained
        self.synthetic = synthetic
        self.views = engine.views
        self.output_names = engine.output_names
        self.max_batch = max_batch
        self.batch_buckets = batch_buckets(max_batch)
        # pad to the buckets: the engine's choice unless the caller says (tests force it on eager engines)
        self.pad = bool(getattr(engine, "static_shapes", True)) if pad is None else pad
        state = source or ("untrained" if untrained else "trained")
        if synthetic:
            state += ", trained on simulated walkers"
        width = f", width {spec.width}" if spec.width != 64 else ""
        self.description = f"{spec.variant} fusion{width}, {spec.input_px}px, T={spec.frames}, {engine.name} ({state})"

    def bucket(self, n: int) -> int:
        """The batch size ``n`` windows (1..max_batch) are run at: the smallest bucket >= n, or n unpadded."""
        if not 1 <= n <= self.max_batch:
            raise ValueError(f"a chunk holds 1..{self.max_batch} windows, not {n}")
        if not self.pad:
            return n
        return next(b for b in self.batch_buckets if b >= n)

    def predict(self, clips: Mapping[str, np.ndarray]) -> dict[str, float]:
        """clips: view -> (T, H, W, 3) uint8 BGR crops of one window; only ``views`` are used."""
        return self.predict_batch([clips])[0]

    def predict_batch(self, clips: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, float]]:
        """One dict per window, in order, each what :meth:`predict` gives for that window alone.

        clips: one mapping per window, view -> (T, H, W, 3) uint8 BGR crops (all windows the same
        shape); only ``views`` are used. At most ``max_batch`` windows go into one engine call.
        """
        results: list[dict[str, float]] = []
        for start in range(0, len(clips), self.max_batch):
            out = self._run_chunk(clips[start:start + self.max_batch])  # (n, K)
            results.extend({name: float(v) for name, v in zip(self.output_names, row, strict=True)} for row in out)
        return results

    def _run_chunk(self, chunk: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        """1..max_batch windows -> (n, K), run at the chunk's bucket size with the padding rows dropped.

        Engines with ``infer_clips`` (PyTorch) take the uint8 crops, per view a list of (T, H, W, 3)
        windows, and preprocess on their device (on a GPU: uint8 upload from pinned memory,
        normalisation there); the others get (B, 3, T, H, W) float32 from here.
        """
        n = len(chunk)
        size = self.bucket(n)
        per_view = [[window[view] for window in chunk] for view in self.views]  # views x n x (T, H, W, 3)
        for view, windows in zip(self.views, per_view, strict=True):
            if any(w.shape != windows[0].shape for w in windows):
                raise ValueError(f"view {view}: windows of different shapes in one batch "
                                 f"({sorted({w.shape for w in windows})})")
        infer_clips = getattr(self.engine, "infer_clips", None)
        if infer_clips is not None:
            padded = [windows + [windows[-1]] * (size - n) for windows in per_view]
            out = infer_clips(padded)  # (size, K)
        else:
            out = self.engine.infer([preprocess_batch(windows, size) for windows in per_view])  # (size, K)
        if out.shape[0] != size:
            raise RuntimeError(f"{self.engine.name} returned {out.shape[0]} rows for a batch of {size}")
        return out[:n]

    def warm_up(self, runs: int = 2, *, buckets: int | None = None) -> None:
        """Run batch 1 ``runs`` times and every other bucket up to ``buckets`` windows (default: all) once,
        so no engine compiles or captures a shape mid-stream. A process serving N walkways passes
        ``buckets=N``: larger batches never occur there."""
        limit = self.max_batch if buckets is None else max(1, min(buckets, self.max_batch))
        blank = np.zeros((self.spec.frames, self.spec.input_px, self.spec.input_px, 3), dtype=np.uint8)
        window = dict.fromkeys(self.views, blank)
        for _ in range(runs):
            self.predict(window)
        sizes = {self.bucket(min(b, limit)) for b in self.batch_buckets} - {1}  # what 2..limit windows run at
        for size in sorted(sizes):
            self.predict_batch([window] * size)


def set_torch_threads(threads: int) -> int:
    """Set torch intra-op threads (0: one per available core); returns the number set."""
    import torch

    n = threads if threads > 0 else available_cores()
    torch.set_num_threads(n)
    return n
