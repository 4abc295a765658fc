"""Tests for FramePairer (inference/pairing.py): greedy in-order front/side matching by capture time."""

from __future__ import annotations

import random

import numpy as np
import pytest

from core.messages import Frame
from inference.pairing import FramePair, FramePairer

MS = 1_000_000
PERIOD_NS = 40 * MS  # 25 fps
_PIXEL = np.zeros((1, 1, 3), dtype=np.uint8)


def _frame(view: str, seq: int, t_ns: int) -> Frame:
    return Frame(view=view, seq=seq, capture_mono_ns=t_ns, capture_wall_ns=t_ns, image=_PIXEL)


def _stream(view: str, n: int, *, offset_ns: int = 0, jitter_ns: int = 0, seed: int = 0) -> list[Frame]:
    rng = random.Random(seed)
    return [_frame(view, i, 1_000 * MS + i * PERIOD_NS + offset_ns + rng.randint(-jitter_ns, jitter_ns))
            for i in range(n)]


def _push_all(pairer: FramePairer, frames: list[Frame]) -> list[FramePair]:
    out: list[FramePair] = []
    for f in frames:
        out.extend(pairer.push(f))
    return out


def _interleave(a: list[Frame], b: list[Frame]) -> list[Frame]:
    return [f for pair in zip(a, b, strict=True) for f in pair]


def test_jittered_streams_pair_one_to_one():
    """Two 25 fps streams with +-3 ms jitter pair 1:1, in order, with skew within the jitter."""
    n = 50
    front = _stream("front", n, jitter_ns=3 * MS, seed=1)
    side = _stream("side", n, jitter_ns=3 * MS, seed=2)
    pairer = FramePairer()
    pairs = _push_all(pairer, _interleave(front, side))
    assert [(p.front.seq, p.side.seq) for p in pairs] == [(i, i) for i in range(n)]
    assert all(p.front.view == "front" and p.side.view == "side" for p in pairs)
    assert pairer.stats.pairs == n
    assert pairer.stats.unpaired == {"front": 0, "side": 0}
    assert pairer.stats.max_abs_skew_ns == max(abs(p.skew_ns) for p in pairs)
    assert 0 < pairer.stats.max_abs_skew_ns <= 6 * MS
    assert pairer.pending() == {"front": 0, "side": 0}


def test_pair_properties():
    """A pair's time is the front capture time; skew is side minus front."""
    pair = FramePair(_frame("front", 0, 100), _frame("side", 0, 93))
    assert pair.t_mono_ns == 100
    assert pair.skew_ns == -7


def test_tolerance_is_half_the_frame_period_once_known():
    """Tolerance is None until both views have two frames, then half the frame period (20 ms at 25 fps)."""
    front, side = _stream("front", 3), _stream("side", 3)
    pairer = FramePairer()
    assert pairer.tolerance_ns() is None
    assert pairer.push(front[0]) == []
    assert pairer.push(side[0]) == []
    assert pairer.push(front[1]) == []
    assert pairer.tolerance_ns() is None  # side has only one frame
    assert pairer.pending() == {"front": 2, "side": 1}
    pairs = pairer.push(side[1])
    assert pairer.tolerance_ns() == 20 * MS
    assert [(p.front.seq, p.side.seq) for p in pairs] == [(0, 0), (1, 1)]


def test_tolerance_uses_the_faster_view():
    """With 25 fps front and 50 fps side, tolerance is half the smaller period (10 ms)."""
    pairer = FramePairer()
    for i in range(4):
        pairer.push(_frame("front", i, i * 40 * MS))
    for i in range(8):
        pairer.push(_frame("side", i, i * 20 * MS))
    assert pairer.tolerance_ns() == 10 * MS


def test_fixed_tolerance_respected():
    """A fixed tolerance_ns is used from the start: skew 4 ms pairs, 6 ms does not."""
    pairer = FramePairer(tolerance_ns=5 * MS)
    assert pairer.tolerance_ns() == 5 * MS
    assert [(p.front.seq, p.side.seq) for p in pairer.push(_frame("front", 0, 0)) + pairer.push(
        _frame("side", 0, 4 * MS))] == [(0, 0)]
    pairer.push(_frame("front", 1, 40 * MS))
    assert pairer.push(_frame("side", 1, 46 * MS)) == []  # 6 ms > 5 ms: the older (front) is dropped
    assert pairer.stats.unpaired == {"front": 1, "side": 0}
    assert pairer.pending() == {"front": 0, "side": 1}
    assert pairer.stats.pairs == 1
    assert pairer.stats.max_abs_skew_ns == 4 * MS


def test_fixed_tolerance_boundary_is_inclusive():
    """A skew equal to the tolerance still pairs."""
    pairer = FramePairer(tolerance_ns=5 * MS)
    pairer.push(_frame("side", 0, 0))
    assert len(pairer.push(_frame("front", 0, 5 * MS))) == 1


def test_offset_30ms_pairs_with_next_front_frame():
    """Side 30 ms behind front at 25 fps: greedy drops front 0, then pairs front i+1 with side i (skew -10 ms)."""
    n = 20
    front = _stream("front", n)
    side = _stream("side", n, offset_ns=30 * MS)
    pairer = FramePairer()
    pairs = _push_all(pairer, _interleave(front, side))
    assert pairer.tolerance_ns() == 20 * MS
    assert [(p.front.seq, p.side.seq) for p in pairs] == [(i + 1, i) for i in range(n - 1)]
    assert all(p.skew_ns == -10 * MS for p in pairs)
    assert pairer.stats.unpaired == {"front": 1, "side": 0}
    assert pairer.pending() == {"front": 0, "side": 1}  # the last side frame waits for front frame n


def test_half_period_offset_beyond_tolerance_never_pairs():
    """Offset 20 ms with a 19 ms tolerance: every oldest frame is too far from the other view and is dropped."""
    n = 10
    front = _stream("front", n)
    side = _stream("side", n, offset_ns=20 * MS)
    pairer = FramePairer(tolerance_ns=19 * MS)
    pairs = _push_all(pairer, _interleave(front, side))
    assert pairs == []
    assert pairer.stats.pairs == 0
    # each of the 2n frames but the newest is dropped, in time order: f0, s0, f1, s1, ...
    assert pairer.stats.unpaired == {"front": n, "side": n - 1}
    assert pairer.pending() == {"front": 0, "side": 1}


def test_bursts_per_view_still_pair():
    """A burst of front frames followed by a burst of side frames pairs in order."""
    n = 30
    front = _stream("front", n, jitter_ns=2 * MS, seed=3)
    side = _stream("side", n, jitter_ns=2 * MS, seed=4)
    pairer = FramePairer()
    assert _push_all(pairer, front) == []
    assert pairer.pending() == {"front": n, "side": 0}
    pairs = _push_all(pairer, side)
    assert [(p.front.seq, p.side.seq) for p in pairs] == [(i, i) for i in range(n)]
    assert pairer.stats.pairs == n
    assert pairer.stats.unpaired == {"front": 0, "side": 0}


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_uneven_chunks_pair(chunk):
    """Views arriving in uneven chunks (side lagging by up to a chunk) pair exactly like lock-step."""
    n = 40
    front, side = _stream("front", n, jitter_ns=3 * MS, seed=5), _stream("side", n, jitter_ns=3 * MS, seed=6)
    order: list[Frame] = []
    for start in range(0, n, chunk):
        order += front[start:start + chunk] + side[start:start + chunk]
    pairer = FramePairer()
    pairs = _push_all(pairer, order)
    assert [(p.front.seq, p.side.seq) for p in pairs] == [(i, i) for i in range(n)]


def test_stopped_view_bounds_pending_queue():
    """When side stops, front's queue never exceeds max_pending and overflow is counted as unpaired."""
    pairer = FramePairer(max_pending=8)
    front, side = _stream("front", 102), _stream("side", 2)
    pairs = _push_all(pairer, _interleave(front[:2], side))
    assert len(pairs) == 2
    max_seen = 0
    for f in front[2:]:
        assert pairer.push(f) == []
        max_seen = max(max_seen, pairer.pending()["front"])
    assert max_seen == 8
    assert pairer.pending() == {"front": 8, "side": 0}
    assert pairer.stats.unpaired == {"front": 100 - 8, "side": 0}
    assert pairer.stats.pairs == 2


def test_stopped_view_before_tolerance_known():
    """Even before any tolerance is known (side never sent), the front queue stays bounded."""
    pairer = FramePairer(max_pending=5)
    _push_all(pairer, _stream("front", 50))
    assert pairer.pending() == {"front": 5, "side": 0}
    assert pairer.stats.unpaired["front"] == 45


def test_resumed_view_pairs_with_newest_pending():
    """After the overflow, a returning side stream pairs with the frames still pending (the newest ones)."""
    pairer = FramePairer(tolerance_ns=20 * MS, max_pending=4)
    front = _stream("front", 10)
    _push_all(pairer, front)
    assert pairer.pending() == {"front": 4, "side": 0}
    pairs = _push_all(pairer, _stream("side", 10)[6:])
    assert [(p.front.seq, p.side.seq) for p in pairs] == [(6, 6), (7, 7), (8, 8), (9, 9)]
