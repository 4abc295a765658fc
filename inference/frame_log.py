"""What inference remembers of each received frame: receipt time, staleness, sequence gaps, recent capture times.

A stage without sockets, fed every frame before pairing (:meth:`FrameLog.note`). The window rules read it
back: a sample's frames were received when (latency, the ``wait`` stage), whether one of them is stale
(received more than ``max_frame_age_s`` after capture, or a repeat of the camera's previous frame: same
source timestamp), and why no pair was found near a sample time (:meth:`FrameLog.missing_cause`).
Counters go to the stream's ``stats``: ``frames_<view>``, ``seq_gaps_<view>``, ``frames_stale_<view>``.
"""

from __future__ import annotations

import collections

from core.messages import VIEWS, Frame

__all__ = ["FrameLog"]

KEPT_FRAMES = 512  # receipts kept (both views): enough for any frame a window still samples
RECENT_PER_VIEW = 128  # capture times kept per view for missing_cause


class FrameLog:
    def __init__(self, stats: dict[str, float], *, max_frame_age_s: float | None,
                 views: tuple[str, ...] = VIEWS) -> None:
        self.stats = stats
        self.views = views
        self.max_frame_age_s = max_frame_age_s
        self._last_seq: dict[str, int | None] = dict.fromkeys(VIEWS)
        self._last_source_ts: dict[str, int | None] = dict.fromkeys(VIEWS)
        # (view, seq) -> (received_ns, why stale or None), for the frames that may still be sampled
        self._meta: collections.OrderedDict[tuple[str, int], tuple[int, str | None]] = collections.OrderedDict()
        self._recent_ns = {view: collections.deque(maxlen=RECENT_PER_VIEW) for view in VIEWS}

    def note(self, frame: Frame, received_ns: int) -> None:
        """Count the frame and its sequence gap; remember its receipt and whether it is stale."""
        view = frame.view
        self.stats[f"frames_{view}"] += 1
        last = self._last_seq[view]
        if last is not None and frame.seq > last + 1:
            self.stats[f"seq_gaps_{view}"] += frame.seq - last - 1
        self._last_seq[view] = frame.seq
        stale = None
        age_ns = received_ns - frame.capture_mono_ns
        if self.max_frame_age_s is not None and age_ns > self.max_frame_age_s * 1e9:
            stale = (f"{view} frame {frame.seq} arrived {age_ns / 1e6:.0f} ms after capture "
                     f"(limit {self.max_frame_age_s:g} s)")
        elif frame.source_ts_ns is not None and frame.source_ts_ns == self._last_source_ts[view]:
            stale = f"{view} frame {frame.seq} repeats the camera's previous frame (same source timestamp)"
        self._last_source_ts[view] = frame.source_ts_ns
        if stale is not None:
            self.stats[f"frames_stale_{view}"] += 1
        self._meta[(view, frame.seq)] = (received_ns, stale)
        while len(self._meta) > KEPT_FRAMES:
            self._meta.popitem(last=False)
        self._recent_ns[view].append(frame.capture_mono_ns)

    def receipt(self, view: str, seq: int) -> tuple[int, str | None]:
        """(received_ns, why stale or None) of a noted frame; (0, None) once forgotten."""
        return self._meta.get((view, seq), (0, None))

    def missing_cause(self, target_ns: int, step_ns: int) -> str:
        """Why no pair was found near ``target_ns``: a view without frames there, or frames too far apart."""
        half = step_ns // 2
        near = {v: any(abs(t - target_ns) <= half for t in self._recent_ns[v]) for v in self.views}
        if all(near.values()) and len(self.views) > 1:
            return "skew"
        return "too_few_frames:" + ",".join(v for v in self.views if not near[v] or len(self.views) == 1)
