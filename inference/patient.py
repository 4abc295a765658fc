"""Which tracked person is the patient: a lock per view, and a check that both views see the same walk.

Stages without sockets, fed once per sample (8 Hz by default) with the tracker's people and the frame.

Per view (:class:`PatientLock`):

- *eligible*: the box's bottom centre (the feet) lies inside the view's walkway region and the box is at
  least ``min_height_frac`` of the frame high (far-away people, reflections in a small mirror, posters);
- *moving*: the person's motion over the last ``motion_window_s`` is at least ``min_motion_per_s``.
  Motion is measured on the person's own box, so it holds for a walk along the walkway, towards the
  camera, or on a treadmill: the change of a small grey thumbnail of the box between samples (limbs
  swing) plus the box's displacement in box heights;
- *excluded*: a person whose box centre lies in one of the view's ``exclude_*`` regions (a mirror, a
  doorway) is never locked;
- *crossing*: a person moving across the walkway rather than along it (staff crossing near a camera) never
  contests or takes a lock (:meth:`PatientLock.crossing`);
- *evidence*: the box's height as a fraction of the frame, halved when the body is cut off by the frame
  (:func:`cut_off`: head or side outside, or legs cut at the bottom edge) — a full-body walker in the
  walkway outweighs a reflection, a poster or someone half out of the picture;
- the lock goes to the eligible moving person with the most evidence (any eligible person when
  ``require_motion`` is off). In its first ``takeover_s`` a clearly better candidate (evidence
  ``takeover_ratio`` times the locked one's in ``takeover_samples`` samples running) takes it over: the
  reflection or the person filming who moved first does not keep the walk. After that the lock *stays*
  on its track while it is seen: a second person (staff walking in) never takes it over, however large.
  A lock unseen for ``lost_after_s`` is released; the next lock may be a new track id of the same
  patient after an occlusion.

Across views (:class:`WalkMonitor`): a walk starts with the first lock in either view and ends when no
view has seen its patient for ``walk_gap_s``; the pipeline then resets the trackers (new track ids, no
stale Kalman state) and the next lock starts the next walk. Both views must see the same walk: their
locks must start within ``max_start_offset_s`` of each other, and in a window the patient must not move
in one view while standing clearly still in the other (a walking patient in one view and a standing
person in the other means the views are locked on different people).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from inference.config import PatientConfig
from inference.detector import Detection

THUMB_W_PX, THUMB_H_PX = 16, 32  # grey thumbnail of a person's box, for the motion measure
# a person moving across the walkway (PatientLock.crossing) at least this fast, in box heights (front view) or
# ln of the box height (side view) per second, and this many times faster than along it
CROSSING_MIN_PER_S, CROSSING_RATIO = 0.2, 2.0


def thumbnail(image: np.ndarray, box_xyxy: tuple[float, float, float, float]) -> np.ndarray | None:
    """(THUMB_H_PX, THUMB_W_PX) float32 grey, zero mean / unit variance; None for a box outside the image."""
    h, w = image.shape[:2]
    x0, y0 = max(0, int(box_xyxy[0])), max(0, int(box_xyxy[1]))
    x1, y1 = min(w, int(np.ceil(box_xyxy[2]))), min(h, int(np.ceil(box_xyxy[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    region = image[y0:y1, x0:x1]
    if region.ndim == 3:
        region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(region, (THUMB_W_PX, THUMB_H_PX), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (small - small.mean()) / (small.std() + 8.0)  # +8: flat boxes do not amplify noise


def cut_off(box_xyxy: tuple[float, float, float, float], frame_w_px: int, frame_h_px: int, *, margin_frac: float,
            min_body_aspect: float) -> str | None:
    """The frame edge that cuts a person's body off ("top", "left", "right", "bottom"), or None.

    A box within ``margin_frac`` of the frame's top (head outside), left or right edge (part of the body
    outside) is cut off. At the bottom edge the feet may just touch it (a side camera framed tightly), so
    there only a squat box (height / width < ``min_body_aspect``: the legs are missing) counts.
    """
    x0, y0, x1, y1 = box_xyxy
    mx, my = margin_frac * frame_w_px, margin_frac * frame_h_px
    if y0 <= my:
        return "top"
    if x0 <= mx:
        return "left"
    if x1 >= frame_w_px - mx:
        return "right"
    if y1 >= frame_h_px - my and (y1 - y0) < min_body_aspect * (x1 - x0):
        return "bottom"
    return None


def _inside(x: float, y: float, region: tuple[float, float, float, float]) -> bool:
    return region[0] <= x <= region[2] and region[1] <= y <= region[3]


@dataclass(slots=True)
class _Seen:
    t_ns: int
    box: tuple[float, float, float, float]
    thumb: np.ndarray | None


def _step_motion(a: _Seen, b: _Seen) -> float:
    """Motion between two sightings of one person: thumbnail change + displacement in box heights."""
    h = max(1.0, 0.5 * ((a.box[3] - a.box[1]) + (b.box[3] - b.box[1])))
    dx = abs((a.box[0] + a.box[2]) - (b.box[0] + b.box[2])) / 2
    dy = abs(a.box[3] - b.box[3])
    dh = abs((a.box[3] - a.box[1]) - (b.box[3] - b.box[1]))
    appearance = float(np.abs(a.thumb - b.thumb).mean()) if a.thumb is not None and b.thumb is not None else 0.0
    return appearance + (dx + dy + dh) / h


@dataclass(slots=True)
class LockUpdate:
    patient: Detection | None
    people: int
    acquired: bool = False  # the lock was (re)acquired on this sample: earlier sightings of the track count too
    released: bool = False  # the locked track has been lost for lost_after_s
    taken_over_from: int | None = None  # a better candidate took the lock from this track on this sample
    contested: str | None = None  # why the young lock may be on the wrong person (a better candidate is in view)
    eligible: int = 0  # people on this sample who could be the patient (in the walkway, tall enough, not excluded)


class PatientLock:
    """One view's patient lock; ``update(t_ns, people, image)`` once per sample, in time order."""

    def __init__(self, cfg: PatientConfig, *, walkway: tuple[float, float, float, float],
                 exclude: tuple[tuple[float, float, float, float], ...] = (), view: str | None = None) -> None:
        self.cfg = cfg
        self.view = view  # "front" or "side": which way the walkway runs in the picture (None: unknown)
        self.walkway = walkway
        self.exclude = exclude
        # over the stream, across walks
        self.stats = {"locks": 0, "releases": 0, "takeovers": 0, "ignored_people": 0, "excluded_people": 0}
        self.reset()

    def reset(self) -> None:
        """Forget the lock and every track's history (between walks: the tracker's ids start again)."""
        self.locked_id: int | None = None
        self.last_seen_ns: int | None = None
        self.locked_at_ns: int | None = None
        self._challenger: tuple[int, int] | None = None  # (track id, samples running it beat the lock)
        self._history: dict[int, collections.deque[_Seen]] = {}

    def release(self) -> None:
        """Drop the lock now (e.g. the locked track changed identity); the next update decides afresh, and the
        released track's history is forgotten so it is judged again from new sightings only."""
        if self.locked_id is None:
            return
        self._history.pop(self.locked_id, None)
        self.locked_id, self.last_seen_ns, self.locked_at_ns, self._challenger = None, None, None, None
        self.stats["releases"] += 1

    # ------------------------------------------------------------------------------ rules

    def eligible(self, det: Detection, frame_w_px: int, frame_h_px: int) -> bool:
        x0, y0, x1, y1 = det.box_xyxy
        foot_x, foot_y = (x0 + x1) / 2 / frame_w_px, y1 / frame_h_px
        wx0, wy0, wx1, wy1 = self.walkway
        inside = wx0 <= foot_x <= wx1 and wy0 <= foot_y <= wy1 + 1e-6
        return inside and (y1 - y0) / frame_h_px >= self.cfg.min_height_frac and not self.excluded(
            det, frame_w_px, frame_h_px)

    def excluded(self, det: Detection, frame_w_px: int, frame_h_px: int) -> bool:
        """The box centre lies in one of the view's exclusion regions (a mirror, a doorway)."""
        x0, y0, x1, y1 = det.box_xyxy
        cx, cy = (x0 + x1) / 2 / frame_w_px, (y0 + y1) / 2 / frame_h_px
        return any(_inside(cx, cy, region) for region in self.exclude)

    def cut_off(self, det: Detection, frame_w_px: int, frame_h_px: int) -> str | None:
        return cut_off(det.box_xyxy, frame_w_px, frame_h_px, margin_frac=self.cfg.edge_margin_frac,
                       min_body_aspect=self.cfg.min_body_aspect)

    def evidence(self, det: Detection, frame_w_px: int, frame_h_px: int) -> float:
        """How much a person looks like the walking patient: box height / frame height, halved when cut off."""
        height_frac = (det.box_xyxy[3] - det.box_xyxy[1]) / frame_h_px
        return height_frac * (0.5 if self.cut_off(det, frame_w_px, frame_h_px) else 1.0)

    def motion_per_s(self, track_id: int) -> float | None:
        """Mean motion per second of a track over the motion window; None until the history spans it."""
        seen = self._history.get(track_id)
        if not seen or len(seen) < 2:
            return None
        span_ns = seen[-1].t_ns - seen[0].t_ns
        if span_ns < 0.7 * self.cfg.motion_window_s * 1e9:
            return None
        steps = [_step_motion(a, b) for a, b in zip(seen, list(seen)[1:], strict=False)]
        return sum(steps) / (span_ns / 1e9)

    def crossing(self, track_id: int) -> bool:
        """The track moves across the walkway rather than along it (or in place) over the motion window: in the
        side view the walkway runs across the picture, so a person crossing it nears or leaves the camera (the box
        grows or shrinks, ln of its height per second); in the front view it runs towards the camera, so a person
        crossing it moves sideways (box centre, in box heights per second). Across must be at least
        ``CROSSING_MIN_PER_S`` and ``CROSSING_RATIO`` times along. False when the view or the history is unknown."""
        seen = self._history.get(track_id)
        if self.view not in ("front", "side") or not seen or len(seen) < 2:
            return False
        a, b = seen[0], seen[-1]
        span_s = (b.t_ns - a.t_ns) / 1e9
        if span_s < 0.7 * self.cfg.motion_window_s:
            return False
        h_a, h_b = max(1.0, a.box[3] - a.box[1]), max(1.0, b.box[3] - b.box[1])
        lateral = abs((b.box[0] + b.box[2]) - (a.box[0] + a.box[2])) / (h_a + h_b) / span_s
        depth = abs(float(np.log(h_b / h_a))) / span_s
        along, across = (lateral, depth) if self.view == "side" else (depth, lateral)
        return across >= CROSSING_MIN_PER_S and across > CROSSING_RATIO * along

    def moving(self, track_id: int | None) -> bool | None:
        if track_id is None:
            return None
        motion = self.motion_per_s(track_id)
        return None if motion is None else motion >= self.cfg.min_motion_per_s

    # ------------------------------------------------------------------------------ update

    def update(self, t_ns: int, people: list[Detection], image: np.ndarray, *,
               affinity: Callable[[Detection], float] | None = None) -> LockUpdate:
        """``affinity``: how unlike the other view's patient a person looks (lower: more alike); when given, a new
        lock goes to the most alike of the candidates whose evidence is within ``takeover_ratio`` of the best, so
        the two views lock the same one of two similar people."""
        h, w = image.shape[:2]
        keep_ns = round(self.cfg.motion_window_s * 1e9)
        for det in people:
            if det.track_id is None:
                continue
            seen = self._history.setdefault(det.track_id, collections.deque())
            seen.append(_Seen(t_ns, det.box_xyxy, thumbnail(image, det.box_xyxy)))
            while len(seen) > 2 and seen[1].t_ns <= t_ns - keep_ns:  # keep one sighting at the window's edge
                seen.popleft()
        for track_id in [k for k, v in self._history.items() if v[-1].t_ns < t_ns - keep_ns]:
            del self._history[track_id]  # tracks not seen for a motion window are forgotten

        out = LockUpdate(patient=None, people=len(people),
                         eligible=sum(1 for d in people if self.eligible(d, w, h)))
        self.stats["excluded_people"] += sum(1 for d in people if self.excluded(d, w, h))
        if self.locked_id is not None:
            out.patient = next((d for d in people if d.track_id == self.locked_id), None)
            if out.patient is not None:
                self.last_seen_ns = t_ns
                self.stats["ignored_people"] += len(people) - 1
                self._challenge(t_ns, people, out, w, h)
                return out
            if self.last_seen_ns is not None and t_ns - self.last_seen_ns < self.cfg.lost_after_s * 1e9:
                return out  # briefly unseen (occlusion, a missed detection): keep the lock
            self.locked_id, self.locked_at_ns, self._challenger = None, None, None
            self.stats["releases"] += 1
            out.released = True
        candidates = self._candidates(people, w, h)
        if not candidates:
            return out
        patient = max(candidates, key=lambda d: self.evidence(d, w, h))
        if affinity is not None:
            floor = self.evidence(patient, w, h) / self.cfg.takeover_ratio
            patient = min((d for d in candidates if self.evidence(d, w, h) >= floor), key=affinity)
        self.locked_id, self.last_seen_ns, self.locked_at_ns = patient.track_id, t_ns, t_ns
        self.stats["locks"] += 1
        self.stats["ignored_people"] += len(people) - 1
        out.patient, out.acquired = patient, True
        return out

    def _candidates(self, people: list[Detection], frame_w_px: int, frame_h_px: int) -> list[Detection]:
        """The people who may be locked: tracked, eligible and (with ``require_motion``) moving."""
        out = [d for d in people if d.track_id is not None and self.eligible(d, frame_w_px, frame_h_px)]
        return [d for d in out if self.moving(d.track_id)] if self.cfg.require_motion else out

    def _challenge(self, t_ns: int, people: list[Detection], out: LockUpdate, frame_w_px: int,
                   frame_h_px: int) -> None:
        """In a young lock's first ``takeover_s``: while someone eligible and not standing still has
        ``takeover_ratio`` times the locked person's evidence, the sample is contested (``out.contested``); once such
        a person moves and has beaten the lock in ``takeover_samples`` samples running, they take the lock
        (``out.taken_over_from``)."""
        cfg, patient = self.cfg, out.patient
        if patient is None or self.locked_at_ns is None or t_ns - self.locked_at_ns >= cfg.takeover_s * 1e9:
            self._challenger = None
            return
        locked_evidence = self.evidence(patient, frame_w_px, frame_h_px)
        # contested: someone eligible with takeover_ratio times the evidence who is not known to stand still
        # (a walker just entering: its motion is not known yet) -- until it wins or the lock is old enough
        rivals = [d for d in people if d.track_id is not None and d.track_id != self.locked_id
                  and self.eligible(d, frame_w_px, frame_h_px) and self.moving(d.track_id) is not False
                  and not self.crossing(d.track_id)  # staff crossing the walkway near a camera: not a patient
                  and self.evidence(d, frame_w_px, frame_h_px) >= cfg.takeover_ratio * locked_evidence]
        if rivals:
            rival = max(rivals, key=lambda d: self.evidence(d, frame_w_px, frame_h_px))
            ratio = self.evidence(rival, frame_w_px, frame_h_px) / max(locked_evidence, 1e-9)
            out.contested = (f"track {rival.track_id} has {ratio:.1f}x the evidence of the locked track "
                             f"{self.locked_id}, locked {(t_ns - self.locked_at_ns) / 1e9:.1f} s ago")
        movers = [d for d in rivals if self.moving(d.track_id) or not cfg.require_motion]
        best = max(movers, key=lambda d: self.evidence(d, frame_w_px, frame_h_px), default=None)
        if best is None:
            self._challenger = None
            return
        runs = self._challenger[1] + 1 if self._challenger and self._challenger[0] == best.track_id else 1
        self._challenger = (best.track_id, runs)
        if runs < cfg.takeover_samples:
            return
        # this sample's patient is the winner: no longer contested (earlier samples of its window still are)
        out.taken_over_from, out.patient, out.acquired, out.contested = self.locked_id, best, True, None
        self.locked_id, self.locked_at_ns, self._challenger = best.track_id, t_ns, None
        self.stats["takeovers"] += 1


class WalkMonitor:
    """Walk boundaries and the cross-view check; fed the views' lock updates once per sample."""

    def __init__(self, cfg: PatientConfig, views: tuple[str, ...]) -> None:
        self.cfg = cfg
        self.views = views
        self.walk = -1  # index of the current (or last) walk; -1 before the first
        self.active = False
        self.started_ns: dict[str, int | None] = dict.fromkeys(views)
        self.last_seen_ns: int | None = None

    def update(self, t_ns: int, updates: dict[str, LockUpdate]) -> str | None:
        """Returns "started" or "ended" when the walk changes on this sample, else None."""
        seen = [v for v, u in updates.items() if u.patient is not None]
        if seen:
            event = None
            if not self.active:
                self.active, self.walk = True, self.walk + 1
                self.started_ns = dict.fromkeys(self.views)
                event = "started"
            for view in seen:
                if self.started_ns[view] is None:
                    self.started_ns[view] = t_ns
            self.last_seen_ns = t_ns
            return event
        if self.active and self.last_seen_ns is not None and t_ns - self.last_seen_ns >= self.cfg.walk_gap_s * 1e9:
            self.active = False
            return "ended"
        return None

    def disagreement(self, motion: dict[str, float | None]) -> str | None:
        """Why the two views do not see the same walk in a window, or None when they agree.

        ``motion``: each view's locked patient's motion per second (None: not known yet). The views
        disagree when one patient moves (>= min_motion_per_s) while the other stands clearly still
        (< half of it): the band between keeps a slow walker seen head-on from flickering into "still".
        """
        if len(self.views) < 2:  # one camera: nothing to disagree with
            return None
        starts = self.started_ns
        if all(starts[v] is not None for v in self.views):
            offset_s = abs(starts[self.views[0]] - starts[self.views[1]]) / 1e9
            if offset_s > self.cfg.max_start_offset_s:
                return (f"views disagree: patient locked {offset_s:.1f} s apart in the two views "
                        f"(limit {self.cfg.max_start_offset_s:g} s)")
        if any(motion.get(v) is None for v in self.views):
            return None
        threshold = self.cfg.min_motion_per_s
        moving = [v for v in self.views if motion[v] >= threshold]
        still = [v for v in self.views if motion[v] < threshold / 2]
        if moving and still:
            parts = [f"{v} {'moving' if v in moving else 'still'} ({motion[v]:.2f}/s)" for v in self.views]
            return (f"views disagree: patient {', '.join(parts)} (moving >= {threshold:g}/s, "
                    f"still < {threshold / 2:g}/s)")
        return None
