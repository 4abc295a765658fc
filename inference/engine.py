"""The dual-view classifier behind one call: crops in, probabilities out (PyTorch on the CPU for now)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inference.config import ModelConfig
from inference.errors import ModelLoadError
from inference.models import KINETICS_MEAN, KINETICS_STD, create_late_fusion


@dataclass(frozen=True, slots=True)
class ViewProbabilities:
    p_asd: float
    p_front: float
    p_side: float


def set_threads(threads: int) -> int:
    """Set torch intra-op threads (0: one per available core); returns the number set."""
    n = threads if threads > 0 else max(1, len(os.sched_getaffinity(0)))
    torch.set_num_threads(n)
    return n


class TorchEngine:
    """Late-fusion model on the CPU; ``precision`` bf16 uses autocast and channels_last_3d."""

    def __init__(self, cfg: ModelConfig, *, input_px: int, frames: int) -> None:
        self.cfg = cfg
        self.input_px = input_px
        self.frames = frames
        torch.manual_seed(cfg.seed)
        self.model = create_late_fusion().eval()
        self.untrained = cfg.weights is None
        if cfg.weights is not None:
            self._load(Path(cfg.weights))
        self._channels_last = cfg.precision == "bf16"
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        self._mean = torch.tensor(KINETICS_MEAN, dtype=torch.float32).view(1, 3, 1, 1, 1) * 255.0
        self._std = torch.tensor(KINETICS_STD, dtype=torch.float32).view(1, 3, 1, 1, 1) * 255.0
        state = f"untrained, random init seed {cfg.seed}" if self.untrained else Path(cfg.weights).name
        self.description = f"late fusion slow_r50 x2, {input_px}px, T={frames}, {cfg.precision} ({state})"

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise ModelLoadError(f"model weights not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelLoadError(f"cannot read model weights {path}: {exc.__class__.__name__}") from None
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        try:
            self.model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"weights {path} do not fit the late-fusion model: {first}") from None

    def to_tensor(self, clips: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 BGR -> (1, 3, T, H, W) float32, RGB, Kinetics-normalised."""
        x = torch.from_numpy(np.ascontiguousarray(clips[..., ::-1]))  # BGR -> RGB
        x = x.permute(3, 0, 1, 2).unsqueeze(0).float()  # (1, 3, T, H, W)
        x = (x - self._mean) / self._std
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x

    @torch.inference_mode()
    def predict(self, front: np.ndarray, side: np.ndarray) -> ViewProbabilities:
        """front, side: (T, H, W, 3) uint8 BGR crops of one window."""
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if self.cfg.precision == "bf16"
                    else contextlib.nullcontext())
        with autocast:
            out = self.model(self.to_tensor(front), self.to_tensor(side)).float()  # (1, 3)
        p_asd, p_front, p_side = (float(v) for v in out[0])
        return ViewProbabilities(p_asd, p_front, p_side)

    def warm_up(self) -> None:
        blank = np.zeros((self.frames, self.input_px, self.input_px, 3), dtype=np.uint8)
        self.predict(blank, blank)
