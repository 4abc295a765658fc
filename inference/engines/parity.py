"""Engine parity: an engine's probabilities against PyTorch fp32 on the same real windows.

Tolerances are on probabilities (max absolute difference over windows and output columns) plus
the decision at 0.5, which must agree on every window. They were set from measurements on the
shared walking recording (docs/engines.md), with some margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from inference.engines.base import Engine
from inference.models.fusion import FusionModel

__all__ = ["TOLERANCES", "ParityReport", "compare_engines", "make_realistic"]

# max |Δp| allowed against PyTorch fp32, by engine precision
TOLERANCES: dict[str, float] = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 3e-2, "int8": 6e-2}


@dataclass(frozen=True, slots=True)
class ParityReport:
    engine: str
    precision: str
    windows: int
    max_abs_diff: float
    mean_abs_diff: float
    decisions_agree: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.decisions_agree == self.windows

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (f"parity {verdict}: {self.engine} vs torch fp32 on {self.windows} windows: max |dp| "
                f"{self.max_abs_diff:.2g} (tolerance {self.tolerance:g}), mean {self.mean_abs_diff:.2g}, "
                f"decisions agree {self.decisions_agree}/{self.windows}")


def compare_engines(reference: Engine, candidate: Engine, windows: Sequence[Sequence[np.ndarray]], *,
                    precision: str, threshold: float = 0.5) -> ParityReport:
    """Run both engines on each window (one array per view, batch 1) and compare all output columns."""
    ref = np.concatenate([reference.infer(list(w)) for w in windows])  # (N, K)
    got = np.concatenate([candidate.infer(list(w)) for w in windows])  # (N, K)
    diff = np.abs(ref - got)
    agree = int(np.sum((ref[:, 0] >= threshold) == (got[:, 0] >= threshold)))
    return ParityReport(engine=candidate.name, precision=precision, windows=len(windows),
                        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
                        decisions_agree=agree, tolerance=TOLERANCES[precision])


@torch.no_grad()
def make_realistic(model: FusionModel, windows: Sequence[Sequence[np.ndarray]], *, seed: int = 0) -> FusionModel:
    """Give a randomly initialised model the statistics of a trained one, for meaningful parity checks.

    A fresh slow_r50 has zero-gamma residual branches and a near-zero classifier, so every engine
    outputs p ~ 0.5 and any error hides. This randomises every BatchNorm's affine parameters,
    re-estimates the running statistics on ``windows`` (real crops), and rescales each final linear
    layer so logits on those windows have a magnitude of about 2. The result is not a trained model.
    """
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.6 + 0.4)
            m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the windows below
    model.train()
    inputs = [[torch.from_numpy(a) for a in w] for w in windows]
    for xs in inputs:
        model(*xs)
    model.eval()
    heads = [m for name, m in model.named_modules() if isinstance(m, nn.Linear) and not name.startswith("gate")]
    for head in heads:  # small first, so no sigmoid saturates while the logits are measured
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 1e-3)
        head.bias.zero_()
    logits = torch.cat([model.logit(*xs) for xs in inputs])  # (N,)
    # logits of magnitude ~2 (p ~ 0.12 or 0.88), as a confident trained classifier gives; not scaled to
    # the spread between windows, which for one walker is tiny and would amplify rounding noise
    scale = 2.0 / max(float(logits.pow(2).mean().sqrt()), 1e-9)
    for head in heads:
        head.weight.mul_(scale)
    return model
