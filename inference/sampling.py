"""Choose T evenly spaced samples per window from the stream of frame pairs.

Samples lie on one grid for the whole stream: sample k targets ``t0 + k * step`` with
``step = duration / T`` (T=8, 1 s -> 125 ms), and the pair closest in time to the target is taken
(one pair of look-ahead). Window w is samples ``[w * S, w * S + T)`` where S is the stride in samples
(S = T for back-to-back 1-s windows). Because samples sit on one grid, each frame pair is detected at
most once and the tracker sees samples in time order, also with overlapping windows.

A target with no pair within half a step (a gap in the stream) becomes a *missing* sample; a window
that contains one is later published as invalid, never filled from another frame. Pairs alone cannot
reveal a gap when a camera stops, so the caller also advances the sampler on time (``advance``): a
target whose half-step neighbourhood lies wholly before the settled time is resolved with what it has.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference.pairing import FramePair


@dataclass(slots=True)
class Sample:
    index: int
    pair: FramePair | None  # None: missing (no pair near the target time)
    target_ns: int


@dataclass(slots=True)
class WindowReady:
    window: int
    first_sample: int  # samples first_sample .. first_sample + frames - 1


class WindowSampler:
    def __init__(self, *, frames: int, step_ns: int, stride_samples: int) -> None:
        if frames < 1 or step_ns <= 0 or stride_samples < 1:
            raise ValueError("frames, step_ns and stride_samples must be positive")
        self.frames = frames
        self.step_ns = step_ns
        self.stride_samples = stride_samples
        self._t0_ns: int | None = None
        self._next = 0  # index of the next sample to resolve
        self._prev: FramePair | None = None
        self._used: FramePair | None = None

    def _target(self, k: int) -> int:
        assert self._t0_ns is not None
        return self._t0_ns + k * self.step_ns

    def start(self, t0_ns: int) -> None:
        """Anchor the grid (the first frame's time); the first push anchors it when not called."""
        if self._t0_ns is None:
            self._t0_ns = t0_ns

    def push(self, pair: FramePair) -> list[Sample | WindowReady]:
        """Feed the next pair (in time order); returns resolved samples and completed windows, in order."""
        self.start(pair.t_mono_ns)
        out: list[Sample | WindowReady] = []
        while pair.t_mono_ns >= self._target(self._next):
            out.extend(self._resolve((self._prev, pair)))
        self._prev = pair
        return out

    def advance(self, settled_ns: int) -> list[Sample | WindowReady]:
        """No pair earlier than ``settled_ns`` can still arrive: resolve the targets that only such pairs
        could have filled (missing, unless the last pair seen fits)."""
        out: list[Sample | WindowReady] = []
        if self._t0_ns is None:
            return out
        while self._target(self._next) + self.step_ns // 2 < settled_ns:
            out.extend(self._resolve((self._prev,)))
        return out

    def _resolve(self, candidates: tuple[FramePair | None, ...]) -> list[Sample | WindowReady]:
        target = self._target(self._next)
        usable = [p for p in candidates if p is not None and p is not self._used]
        best = min(usable, key=lambda p: abs(p.t_mono_ns - target), default=None)
        if best is not None and abs(best.t_mono_ns - target) <= self.step_ns // 2:
            self._used = best
            out: list[Sample | WindowReady] = [Sample(self._next, best, target)]
        else:
            out = [Sample(self._next, None, target)]
        out.extend(self._windows_completed_by(self._next))
        self._next += 1
        return out

    def _windows_completed_by(self, k: int) -> list[WindowReady]:
        """Window w ends at sample w*S + T - 1; return the window that sample k completes, if any."""
        last_offset = k - (self.frames - 1)
        if last_offset >= 0 and last_offset % self.stride_samples == 0:
            return [WindowReady(last_offset // self.stride_samples, last_offset)]
        return []

    def needed(self, k: int) -> bool:
        """Whether sample k belongs to any window (not when the stride is longer than the window)."""
        return k % self.stride_samples < self.frames

    def oldest_sample_still_needed(self) -> int:
        """Samples below this index belong to no window that can still complete."""
        next_window_first = -(-max(self._next - self.frames + 1, 0) // self.stride_samples) * self.stride_samples
        return min(next_window_first, self._next)
