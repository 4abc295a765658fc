"""TEST ONLY fault injection: drop frames and delay them by random jitter, reproducibly from a seed.

Real cameras drop frames and deliver them late; tests and benchmarks of pairing, windows and
back-pressure need the same on a recording. Off (rate 0, jitter 0) by default.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class FaultDecision:
    drop: bool
    delay_ns: int


class FaultInjector:
    """``decide()`` once per frame: drop it with probability ``drop_rate``, else delay it by U(0, jitter_ms)."""

    def __init__(self, *, drop_rate: float = 0.0, jitter_ms: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        if jitter_ms < 0:
            raise ValueError(f"jitter_ms must be >= 0, got {jitter_ms}")
        self.drop_rate = drop_rate
        self.jitter_ns = round(jitter_ms * 1e6)
        self._rng = random.Random(seed)

    @property
    def active(self) -> bool:
        return self.drop_rate > 0 or self.jitter_ns > 0

    def decide(self) -> FaultDecision:
        if not self.active:
            return FaultDecision(False, 0)
        drop = self._rng.random() < self.drop_rate
        delay_ns = round(self._rng.random() * self.jitter_ns) if self.jitter_ns else 0
        return FaultDecision(drop, 0 if drop else delay_ns)
