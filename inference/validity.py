"""Whether a window may be scored: the first rule it breaks, as ``(reason_code, reason)``, else None.

The views are those of ``locks`` (one per camera: front and side, or one view alone).

Rules in order (codes from :data:`core.messages.REASON_CODES`): every sample has a front/side pair
(``too_few_frames`` when a view has no frame near a sample time, ``skew`` when both have frames but none
within the pairing tolerance); no frame is stale (``stale``); the locked patient's track shows the same person
throughout (``identity_changed``: a sample where :mod:`inference.identity` saw the track's colours jump; checked
before ``patient_missing``, which the lock's release after the jump would report instead); no sample has the
young lock contested by someone with clearly more evidence of being the patient (``lock_contested``,
:meth:`inference.patient.PatientLock.update`); the patient is found
in both views in
``min_visible_frames`` samples (``patient_missing``); the patient's body is not cut off by the frame edge in
more than ``max_truncated_frac`` of the samples of a view (``truncated_body``, :func:`inference.patient.cut_off`);
with one side camera alone, the patient's box shows a stride (``no_side_stride``: its width / height varies less
than ``min_side_stride_ratio`` over the window, a front or back view, or nobody walking);
both views see the same walk (``views_disagree``,
see :class:`inference.patient.WalkMonitor`). A window that breaks a rule is published with its reason
and never scored from substitute frames.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from inference.config import WindowConfig
from inference.patient import PatientLock, WalkMonitor

if TYPE_CHECKING:
    from inference.samples import ProcessedSample


def check_window(samples: Sequence[ProcessedSample | None], win: WindowConfig, *, locks: Mapping[str, PatientLock],
                 walks: WalkMonitor, pair_tolerance_ns: int | None,
                 cross_view_distance: float | None = None) -> tuple[str, str] | None:
    """``cross_view_distance``: the colour distance between the views' locked patients
    (:meth:`inference.patient_stage.PatientStage.cross_view_distance`), None when not known."""
    views = tuple(locks)
    missing = [s for s in samples if s is None or s.missing is not None]
    if missing:
        causes = collections.Counter((s.missing if s is not None else "too_few_frames:" + ",".join(views))
                                     for s in missing)
        if all(c == "skew" for c in causes):
            return "skew", (f"skew: in {len(missing)} of {win.frames} samples the front and side frames are "
                            f"further apart than the pairing tolerance ({(pair_tolerance_ns or 0) / 1e6:.0f} ms)")
        views = sorted({v for c in causes if c.startswith("too_few") for v in c.split(":", 1)[1].split(",")})
        return "too_few_frames", (f"too few frames: {len(missing)} of {win.frames} samples have no "
                                  f"{' or '.join(views)} frame")
    present = [s for s in samples if s is not None]
    stale = [s for s in present if s.stale]
    if stale:
        return "stale", f"stale frames in {len(stale)} of {win.frames} samples: {stale[-1].stale}"
    jumps = [f"{view} {what}" for s in present for view, what in s.identity_jump.items()]
    if jumps:
        limit = locks[views[0]].cfg.identity_max_distance
        return "identity_changed", (f"identity changed: {'; '.join(jumps)} (limit {limit:g}): the track went over "
                                    f"to another person")
    crowded = _crowded(present, locks)
    if crowded is not None:
        return "crowded", crowded
    contested = {view: s.contested[view] for s in present for view in s.contested}  # the last sample's, per view
    if contested:
        return "lock_contested", ("patient uncertain: " + "; ".join(f"{v}: {why}" for v, why in contested.items())
                                  + " (inference.patient.takeover_*)")
    visible = {v: sum(1 for s in present if v in s.crops) for v in views}
    every_view = sum(1 for s in present if all(v in s.crops for v in views))
    if every_view < win.min_visible_frames:
        lost = [v for v in views if visible[v] < win.min_visible_frames]
        where = ", ".join(lost) or "not in the same samples"
        counts = " and ".join(f"{visible[v]}/{win.frames} {v}" for v in views)
        return "patient_missing", f"patient not found: in {counts} samples ({where})"
    truncated = _truncated(present, win.frames, locks)
    if truncated is not None:
        return "truncated_body", truncated
    stride = _side_stride(present, locks)
    if stride is not None:
        return "no_side_stride", stride
    motion = {v: locks[v].motion_per_s(locks[v].locked_id) if locks[v].locked_id is not None else None
              for v in views}
    disagreement = walks.disagreement(motion)
    if disagreement is not None:
        return "views_disagree", disagreement
    limit = locks[views[0]].cfg.cross_view_max_distance
    if limit is not None and cross_view_distance is not None and cross_view_distance > limit:
        return "views_disagree", (f"views disagree: the patients' clothes differ between the views (colour distance "
                                  f"{cross_view_distance:.2f}, limit {limit:g}): two different people")
    return None


def _crowded(present: Sequence[ProcessedSample], locks: Mapping[str, PatientLock]) -> str | None:
    """Why a view is too crowded to tell the patient: the median count of eligible people over the window's
    detected samples above ``max_people``."""
    for view in locks:
        counts = sorted(s.eligible[view] for s in present if view in s.eligible)
        limit = locks[view].cfg.max_people
        if counts and counts[len(counts) // 2] > limit:
            return (f"crowded: {counts[len(counts) // 2]} people who could be the patient in the {view} view "
                    f"(median of {len(counts)} detected samples, limit {limit})")
    return None


def _truncated(present: Sequence[ProcessedSample], frames: int, locks: Mapping[str, PatientLock]) -> str | None:
    """Why the patient is cut off by the frame in too many samples of a view (head, side or legs outside)."""
    parts = []
    for view in locks:
        edges = collections.Counter(s.cut_off[view] for s in present if view in s.cut_off)
        limit = locks[view].cfg.max_truncated_frac
        if sum(edges.values()) > limit * frames:
            where = ", ".join(f"{edge} {n}" for edge, n in edges.most_common())
            parts.append(f"{view} {sum(edges.values())}/{frames} samples ({where})")
    if not parts:
        return None
    return f"patient cut off by the frame edge: {'; '.join(parts)} (limit {limit:.0%} of the samples)"


def _side_stride(present: Sequence[ProcessedSample], locks: Mapping[str, PatientLock]) -> str | None:
    """Single-view side mode: why the window shows no stride seen from the side. Seen from the side, the legs
    swinging apart and together change the box's width / height by 1.4-2.5x within a second of walking; seen from
    the front or back (or standing) by 1.0-1.2x. Not checked with two cameras (the front view is there anyway)."""
    if tuple(locks) != ("side",):
        return None
    limit = locks["side"].cfg.min_side_stride_ratio
    # the detector's boxes: the tracker's are Kalman-smoothed (their aspect varies 1.0-1.2x even from the side)
    aspects = [(b[2] - b[0]) / (b[3] - b[1]) for s in present if "side" in s.patient
               for b in (s.patient["side"].detected_xyxy,) if b is not None and b[3] > b[1] and b[2] > b[0]]
    if limit is None or len(aspects) < 2:
        return None
    ratio = max(aspects) / min(aspects)
    if ratio >= limit:
        return None
    return (f"no stride seen from the side: the patient's box width / height varies {ratio:.2f}x over the window "
            f"(a side view of walking: >= {limit:g}x); a front or back view, or not walking "
            "(inference.patient.min_side_stride_ratio)")
