"""Pair front and side frames by capture time (a stage: push frames in, get pairs out).

A single-camera walkway (``views`` of one view) pairs nothing: each frame is its own "pair", so the stages
after this one (sampling, detection, windows) run the same for one camera as for two.
"""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass

from core.messages import VIEWS, Frame


@dataclass(slots=True, init=False)
class FramePair:
    """The frames of one instant, one per view: ``FramePair(front, side)``, or ``FramePair(frame)`` for one camera."""

    frames: dict[str, Frame]  # view -> frame, in protocol order

    def __init__(self, *frames: Frame) -> None:
        self.frames = {f.view: f for f in sorted(frames, key=lambda f: VIEWS.index(f.view))}
        if len(self.frames) != len(frames) or not frames:
            raise ValueError("a frame pair holds one frame of each of its views")

    @property
    def front(self) -> Frame:
        return self.frames["front"]

    @property
    def side(self) -> Frame:
        return self.frames["side"]

    @property
    def first(self) -> Frame:
        """The frame that dates the pair: the front one, or the only one."""
        return next(iter(self.frames.values()))

    @property
    def t_mono_ns(self) -> int:
        """The pair's time: the front frame's capture time (the only frame's, for one camera)."""
        return self.first.capture_mono_ns

    @property
    def skew_ns(self) -> int:
        """Side minus front capture time (0 for one camera)."""
        if len(self.frames) < 2:
            return 0
        return self.side.capture_mono_ns - self.front.capture_mono_ns


@dataclass(slots=True)
class PairingStats:
    pairs: int = 0
    unpaired: dict[str, int] | None = None
    max_abs_skew_ns: int = 0

    def __post_init__(self) -> None:
        if self.unpaired is None:
            self.unpaired = dict.fromkeys(VIEWS, 0)  # the pairer sets its own views


class FramePairer:
    """Greedy in-order matcher of two per-view frame streams.

    Frames of each view arrive in capture order. The oldest waiting front and side frames form a pair
    when their capture times differ by at most the tolerance; otherwise the older one can never be
    paired (the other view has already moved past it) and is dropped and counted. The tolerance is
    ``tolerance_ns`` when given, else half of the smaller measured frame period of the two views.
    A frame still unpaired ``max_wait_ns`` after the newest frame of either view is given up (a view
    that stopped cannot make the other's queue grow), and no queue holds more than ``max_pending``.
    With one view (``views=("side",)``) every frame is a pair of its own.
    """

    def __init__(self, *, tolerance_ns: int | None = None, max_wait_ns: int = 2_000_000_000,
                 max_pending: int = 64, views: tuple[str, ...] = VIEWS) -> None:
        if not views or any(v not in VIEWS for v in views):
            raise ValueError(f"views must be front and side, or one of them; got {views}")
        self.views = tuple(v for v in VIEWS if v in views)
        self._max_wait_ns = max_wait_ns
        self._newest_ns = 0
        self._fixed_tolerance_ns = tolerance_ns
        self._pending: dict[str, collections.deque[Frame]] = {v: collections.deque() for v in self.views}
        self._intervals_ns: dict[str, collections.deque[int]] = {v: collections.deque(maxlen=16) for v in self.views}
        self._last_ns: dict[str, int | None] = dict.fromkeys(self.views)
        self._max_pending = max_pending
        self.stats = PairingStats(unpaired=dict.fromkeys(self.views, 0))

    def tolerance_ns(self) -> int | None:
        """Current pairing tolerance (None until both views' frame periods are known)."""
        if self._fixed_tolerance_ns is not None:
            return self._fixed_tolerance_ns
        if not all(self._intervals_ns[v] for v in self.views):
            return None
        period_ns = min(statistics.median(self._intervals_ns[v]) for v in self.views)
        return int(period_ns // 2)

    def push(self, frame: Frame) -> list[FramePair]:
        view = frame.view
        if view not in self._pending:
            raise ValueError(f"a {view} frame, but this walkway's cameras are {' + '.join(self.views)}")
        last = self._last_ns[view]
        if last is not None and frame.capture_mono_ns > last:
            self._intervals_ns[view].append(frame.capture_mono_ns - last)
        self._last_ns[view] = frame.capture_mono_ns
        self._newest_ns = max(self._newest_ns, frame.capture_mono_ns)
        queue = self._pending[view]
        queue.append(frame)
        out = self._match()
        for v, q in self._pending.items():
            while q and (len(q) > self._max_pending or q[0].capture_mono_ns < self._newest_ns - self._max_wait_ns):
                q.popleft()
                self.stats.unpaired[v] += 1
        return out

    def settled_ns(self) -> int:
        """No pair with a time (front capture time) before this can still be formed."""
        if len(self.views) == 1:  # every frame is paired at once: nothing earlier can still come
            return self._newest_ns
        settled = self._newest_ns - self._max_wait_ns
        tolerance = self.tolerance_ns() or 0
        if self._pending["front"]:
            settled = min(settled, self._pending["front"][0].capture_mono_ns)
        if self._pending["side"]:
            settled = min(settled, self._pending["side"][0].capture_mono_ns - tolerance)
        return settled

    def _match(self) -> list[FramePair]:
        if len(self.views) == 1:
            queue = self._pending[self.views[0]]
            out = [FramePair(queue.popleft()) for _ in range(len(queue))]
            self.stats.pairs += len(out)
            return out
        tolerance = self.tolerance_ns()
        if tolerance is None:
            return []
        front_q, side_q = self._pending["front"], self._pending["side"]
        out: list[FramePair] = []
        while front_q and side_q:
            front, side = front_q[0], side_q[0]
            skew = side.capture_mono_ns - front.capture_mono_ns
            if abs(skew) <= tolerance:
                front_q.popleft()
                side_q.popleft()
                out.append(FramePair(front, side))
                self.stats.pairs += 1
                self.stats.max_abs_skew_ns = max(self.stats.max_abs_skew_ns, abs(skew))
            elif skew > 0:  # front frame is older than every side frame still to come
                front_q.popleft()
                self.stats.unpaired["front"] += 1
            else:
                side_q.popleft()
                self.stats.unpaired["side"] += 1
        return out

    def pending(self) -> dict[str, int]:
        return {v: len(q) for v, q in self._pending.items()}
