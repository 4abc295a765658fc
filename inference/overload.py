"""Staying current when inference falls behind: frames too old to use are dropped, work degrades in steps.

Live mode only (lossless replay is paced by inference and never sheds). Two mechanisms, both counted:

- **drop at receive** (:meth:`OverloadGovernor.keep_frame`): a frame that reaches the pipeline more than
  ``drop_after_s`` after its capture is dropped before pairing (``frames_dropped_late_<view>``). A pipeline that
  fell behind skips the backlog and goes on with the newest frames instead of working through seconds of frames
  whose windows would be stale anyway. The windows over the skipped time come out invalid (``too_few_frames``),
  the next ones are current.
- **degrade in steps** (:meth:`OverloadGovernor.observe`, once per window): a window that lags (receive lag,
  capture of its last frame -> receipt, above ``degrade_lag_s``; frames dropped since the last window; or a busy
  fraction, its detector + crop + model time over the window stride, above ``degrade_busy``) for
  ``degrade_windows`` windows in a row moves one step down; calm windows (lag below ``recover_lag_s`` and busy
  below ``recover_busy``, so that the step back up still fits) for ``recover_windows`` in a row, one step back
  up. The busy fraction keeps the governor from stepping back into the overload the step got it out of (the
  lag alone looks fine once the backlog is dropped). Each change is logged, counted, and carried on every window
  score (``overload_level``: live view, metrics).

=====  ==================================================================================================
level  what runs
=====  ==================================================================================================
0      as configured (default: both views tiled, every other sample detected, full size while locking)
1      the detector on every 4th sample (boxes interpolated), lock acquisition on the same cheap path
2      the detector once per window (its last sample; boxes interpolated across windows)
3      as 2, and only every other window scored (the others: invalid, ``shed``; the model is the largest cost)
=====  ==================================================================================================

The shared YOLO11n export takes a fixed 640x640 input, so a smaller detector input would cost the same: the
detector steps make fewer calls instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.messages import OVERLOAD_STEPS

log = logging.getLogger(__name__)

__all__ = ["LEVELS", "OverloadConfig", "OverloadGovernor"]

# level -> (samples per detector run at least, score every window?, what it does: the protocol's words)
LEVELS: tuple[tuple[int, bool, str], ...] = tuple(
    (every, score_all, words) for (every, score_all), words in zip(((1, True), (4, True), (8, True), (8, False)),
                                                                    OVERLOAD_STEPS, strict=True))


@dataclass(slots=True)
class OverloadConfig:
    """``inference.overload``: shedding when live inference falls behind (:mod:`inference.overload`)."""

    enabled: bool = True
    drop_after_s: float = 0.75  # frames reaching the pipeline later than this after capture are dropped
    degrade_lag_s: float = 0.35  # a window's receive lag above this, degrade_windows in a row: one step down
    degrade_windows: int = 2
    recover_lag_s: float = 0.15  # below this, recover_windows in a row: one step back up
    recover_windows: int = 4
    degrade_busy: float = 0.9  # a window's work (detect + crop + model) over its stride above this: lagging
    recover_busy: float = 0.5  # calm only below this (one step up adds up to about as much work again)
    max_level: int = 3

    def __post_init__(self) -> None:
        if self.drop_after_s <= 0 or self.degrade_lag_s <= 0 or self.recover_lag_s < 0:
            raise ValueError("drop_after_s and degrade_lag_s must be > 0, recover_lag_s >= 0")
        if self.recover_lag_s >= self.degrade_lag_s:
            raise ValueError("recover_lag_s must be below degrade_lag_s")
        if not 0 < self.recover_busy < self.degrade_busy:
            raise ValueError("busy fractions: 0 < recover_busy < degrade_busy")
        if self.degrade_windows < 1 or self.recover_windows < 1:
            raise ValueError("degrade_windows and recover_windows must be >= 1")
        if not 0 <= self.max_level < len(LEVELS):
            raise ValueError(f"max_level must be in 0..{len(LEVELS) - 1}")


class OverloadGovernor:
    """Receive -> keep or drop a frame; per window: its receive lag -> the level of the next samples."""

    def __init__(self, cfg: OverloadConfig, *, walkway: str = "main") -> None:
        self.cfg = cfg
        self.walkway = walkway
        self.level = 0
        self._high = 0
        self._low = 0
        self.stats: dict[str, int] = {"overload_level": 0, "overload_level_max": 0, "overload_steps_down": 0,
                                      "overload_steps_up": 0}

    def keep_frame(self, age_ns: int) -> bool:
        """False for a frame too old to use (it reached the pipeline ``age_ns`` after its capture)."""
        return not self.cfg.enabled or age_ns <= self.cfg.drop_after_s * 1e9

    @property
    def detect_every(self) -> int:
        """The detector runs at least this many samples apart at the current level."""
        return LEVELS[self.level][0]

    @property
    def score_every_window(self) -> bool:
        return LEVELS[self.level][1]

    def describe(self, level: int | None = None) -> str:
        level = self.level if level is None else level
        return f"level {level} ({LEVELS[level][2]})"

    def observe(self, receive_lag_s: float, busy: float | None = None) -> int | None:
        """One window's receive lag and busy fraction (its work over its stride; None: unknown); returns the new
        level when it changed."""
        if not self.cfg.enabled:
            return None
        cfg = self.cfg
        high = receive_lag_s > cfg.degrade_lag_s or (busy is not None and busy > cfg.degrade_busy)
        low = receive_lag_s < cfg.recover_lag_s and (busy is None or busy < cfg.recover_busy)
        self._high = self._high + 1 if high else 0
        self._low = self._low + 1 if low else 0
        old = self.level
        if self._high >= cfg.degrade_windows and self.level < cfg.max_level:
            self.level += 1
            self.stats["overload_steps_down"] += 1
        elif self._low >= cfg.recover_windows and self.level > 0:
            self.level -= 1
            self.stats["overload_steps_up"] += 1
        if self.level == old:
            return None
        self._high = self._low = 0
        self.stats["overload_level"] = self.level
        self.stats["overload_level_max"] = max(self.stats["overload_level_max"], self.level)
        log.warning("walkway %s: overload %s, receive lag %.0f ms, busy %s%s", self.walkway, self.describe(),
                    receive_lag_s * 1e3, "?" if busy is None else f"{busy:.0%}",
                    " (load dropped: stepping back)" if self.level < old else "")
        return self.level
