"""The patient in each detected sample: people in -> locks, identity checks, walk boundaries -> crops out.

A stage without sockets, one per :class:`inference.pipeline.InferencePipeline` (one walkway). Per detected
sample it feeds each view's :class:`inference.patient.PatientLock`, marks contested samples and identity
jumps (:mod:`inference.identity`), crops the patient (the paper's crop, :mod:`inference.crop`), claims the
locked person's earlier sightings and interpolates the patient's box over the samples the detector skipped;
across views, :class:`inference.patient.WalkMonitor` says when a walk ends. With one camera (``views`` of one
view) the cross-view steps (the clearer view deciding first, the other view's patient as colour reference, the
cross-view colour distance) have nothing to compare and are skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import numpy as np

from core.messages import VIEWS
from inference.config import InferenceConfig
from inference.crop import apply_crop, plan_crop
from inference.detector import Detection
from inference.identity import IdentityMonitor, signature, signature_distance
from inference.patient import LockUpdate, PatientLock, WalkMonitor
from inference.samples import ProcessedSample

log = logging.getLogger(__name__)

__all__ = ["PatientStage"]


class PatientStage:
    """Locks, identity monitors and the walk monitor of one stream; ``reset()`` between streams.

    ``stats``: the pipeline's counters, updated in place (``visible_<view>``, ``walks``, ``identity_*``).
    """

    def __init__(self, cfg: InferenceConfig, stats: dict[str, float], *, views: tuple[str, ...] = VIEWS) -> None:
        self.cfg = cfg
        self.stats = stats
        self.views = views
        self.reset()

    def reset(self) -> None:
        patient = self.cfg.patient
        self.locks = {view: PatientLock(patient, walkway=patient.walkway(view), exclude=patient.excluded(view),
                                        view=view) for view in self.views}
        self.walks = WalkMonitor(patient, self.views)
        self.identity = {view: IdentityMonitor(patient.identity_max_distance) for view in self.views}
        self.latest_patient: dict[str, Detection | None] = dict.fromkeys(self.views)  # for previews
        # the walk's patient per view: the signature of the walk's first lock (or of a takeover's winner), against
        # which a later lock of the same walk (after the patient was lost) is checked; why the current lock is not
        # that person (its samples then count as an identity change)
        self._walk_reference: dict[str, np.ndarray | None] = dict.fromkeys(self.views)
        self._foreign: dict[str, str | None] = dict.fromkeys(self.views)

    def locked(self, view: str) -> bool:
        return self.locks[view].locked_id is not None

    def _ambiguity(self, view: str, people: list[Detection], image: np.ndarray) -> float:
        """How hard the choice is in ``view``: the second-largest evidence of its eligible people over the largest
        (0: one person or none, 1: two alike)."""
        h, w = image.shape[:2]
        lock = self.locks[view]
        evidence = sorted((lock.evidence(d, w, h) for d in people if lock.eligible(d, w, h)), reverse=True)
        return evidence[1] / evidence[0] if len(evidence) > 1 and evidence[0] > 0 else 0.0

    def _affinity(self, view: str, image: np.ndarray) -> Callable[[Detection], float] | None:
        """Colour distance of a person in ``view`` to the walk's patient in this view (after the patient was lost)
        or else to the other view's locked patient (its identity reference); None when neither is known."""
        reference = self._walk_reference[view]
        if not self.cfg.patient.identity_check:
            return None
        other = next((v for v in self.views if v != view), None)
        if reference is None and other is not None:
            monitor, lock = self.identity[other], self.locks[other]
            if lock.locked_id is not None:
                reference = monitor.reference
        if reference is None:
            return None

        def distance(det: Detection) -> float:
            sig = signature(image, det.box_xyxy)
            return 1.0 if sig is None else signature_distance(reference, sig)

        return distance

    def cross_view_distance(self) -> float | None:
        """Colour distance (0..1) between the two views' locked patients' identity references; None when a view
        has no locked patient with a reference yet (or identity_check is off), and always for one camera."""
        if len(self.views) < 2:
            return None
        refs = []
        for view in self.views:
            monitor, lock = self.identity[view], self.locks[view]
            if lock.locked_id is None or monitor.track_id != lock.locked_id or monitor.reference is None:
                return None
            refs.append(monitor.reference)
        return signature_distance(refs[0], refs[1])

    def update(self, out: ProcessedSample, images: dict[str, np.ndarray], people: dict[str, list[Detection]],
               samples: Mapping[int, ProcessedSample], *, every: int) -> bool:
        """A detected sample ``out`` with each view's frame and people; ``samples``: the pipeline's kept samples
        (earlier sightings are claimed, skipped samples interpolated when ``every`` > 1). True when the walk ended
        on this sample (the locks are reset: the caller resets the trackers)."""
        out.people = people
        updates: dict[str, LockUpdate] = {}
        # the view where the patient is clearest decides first; the other then locks the one of its similar
        # candidates who looks most like that view's patient (two people walking side by side: both views lock the
        # same one, the one the clearer view sees whole)
        for view in sorted(self.views, key=lambda v: self._ambiguity(v, people[v], images[v])):
            updates[view] = self.locks[view].update(out.t_mono_ns, people[view], images[view],
                                                    affinity=self._affinity(view, images[view]))
            self._apply(out, view, updates[view], images[view], samples, every=every)
        ended = self.walks.update(out.t_mono_ns, updates) == "ended"
        if ended:
            log.info("walk %d ended: no patient in either view for %.1f s; trackers reset",
                     self.walks.walk, self.cfg.patient.walk_gap_s)
            for lock in self.locks.values():
                lock.reset()
            self._walk_reference, self._foreign = dict.fromkeys(self.views), dict.fromkeys(self.views)
        self.stats["walks"] = self.walks.walk + 1
        return ended

    def _apply(self, out: ProcessedSample, view: str, update: LockUpdate, image: np.ndarray,
               samples: Mapping[int, ProcessedSample], *, every: int) -> None:
        """One view's lock update on the sample: marks, crop, identity check, earlier and skipped samples."""
        self.latest_patient[view] = update.patient
        out.eligible[view] = update.eligible
        if update.contested is not None:
            out.contested[view] = update.contested
        if update.taken_over_from is not None:
            log.info("%s: the lock moved from track %d to track %d, which has more evidence of being the "
                     "patient", view, update.taken_over_from, update.patient.track_id)
        if update.patient is not None:
            self.set_patient(out, view, update.patient)
            if self.cfg.patient.identity_check:
                if update.acquired:
                    self._judge_new_lock(view, update, image)
                self._check_identity(out, view, update.patient, image, acquired=update.acquired)
                if self._foreign[view] is not None and view not in out.identity_jump:
                    out.identity_jump[view] = self._foreign[view]
        if update.acquired:
            self._claim_earlier_sightings(view, update.patient.track_id, samples, before=out.index)
        if every > 1:
            self._interpolate_between_detections(view, samples, every=every)

    def _judge_new_lock(self, view: str, update: LockUpdate, image: np.ndarray) -> None:
        """A new lock: the walk's first (or a takeover's winner) becomes the walk's patient; a later one (the
        patient was lost and someone was locked again) must look like that patient, else its samples are
        marked as an identity change until the lock moves back."""
        patient = update.patient
        current = signature(image, patient.box_xyxy)
        if current is None:
            return
        reference = self._walk_reference[view]
        if reference is None or update.taken_over_from is not None:
            self._walk_reference[view], self._foreign[view] = current, None
            return
        distance = signature_distance(reference, current)
        limit = self.cfg.patient.identity_max_distance
        self._foreign[view] = None
        if distance > limit:
            self._foreign[view] = (f"track {patient.track_id}, locked again in the walk, is not the walk's patient "
                                   f"(colour distance {distance:.2f})")
            log.info("%s: the lock went to track %d, who does not look like the walk's patient (colour distance "
                     "%.2f > %g): its windows are not scored", view, patient.track_id, distance, limit)

    def _check_identity(self, out: ProcessedSample, view: str, patient: Detection, image: np.ndarray, *,
                        acquired: bool) -> None:
        """The locked track's appearance against its earlier detected sightings: a jump (the tracker handed the id
        to someone else) marks the sample, whose windows are then invalid, and releases the lock to re-decide."""
        monitor = self.identity[view]
        if acquired or patient.track_id is None:
            monitor.reset()  # a new lock (or takeover): a new reference
        if patient.track_id is None:
            return
        check = monitor.check(patient.track_id, image, patient.box_xyxy)
        if check is None:
            return
        key = f"identity_distance_max_{view}"
        self.stats[key] = max(self.stats[key], round(check.distance, 3))
        if not check.jump:
            return
        out.identity_jump[view] = f"track {check.track_id} at sample {out.index}, colour distance {check.distance:.2f}"
        self.stats[f"identity_jumps_{view}"] += 1
        self.locks[view].release()
        self.latest_patient[view] = None
        log.info("identity changed: %s track %d now looks like another person (colour distance %.2f > %g); "
                 "the lock re-decides", view, check.track_id, check.distance, monitor.max_distance)

    def _interpolate_between_detections(self, view: str, samples: Mapping[int, ProcessedSample], *,
                                        every: int) -> None:
        """Samples the detector skipped get the patient's box interpolated (in time) between the detected
        samples around them, when both show the same track; next to only one of them, its box is held."""
        kept = [samples[k] for k in sorted(samples)]
        detected = [s for s in kept if s.detected]
        for sample in kept:
            if sample.detected or sample.missing or view in sample.crops or view not in sample.images:
                continue
            after = next((d for d in detected if d.index > sample.index), None)
            if after is None or view not in after.patient:
                continue
            target = after.patient[view]
            before = next((d for d in reversed(detected) if d.index < sample.index), None)
            seen = next((p for p in (before.people.get(view, []) if before else []) if p.track_id == target.track_id),
                        None)
            if seen is None:
                if after.index - sample.index > every - 1:
                    continue
                box = target.box_xyxy
            else:
                a = (sample.t_mono_ns - before.t_mono_ns) / max(1, after.t_mono_ns - before.t_mono_ns)
                box = tuple(b0 + a * (b1 - b0) for b0, b1 in zip(seen.box_xyxy, target.box_xyxy, strict=True))
            self.set_patient(sample, view, Detection(box, target.conf, target.track_id))

    def set_patient(self, sample: ProcessedSample, view: str, patient: Detection) -> None:
        """Crop ``patient`` from the sample's frame of ``view`` (the frame is then let go) and note whether the
        frame cuts the body off."""
        image = sample.images.pop(view, None)
        if image is None:
            return
        t0 = time.perf_counter()
        crop_cfg = self.cfg.crop
        plan = plan_crop(patient.box_xyxy, frame_w_px=image.shape[1], frame_h_px=image.shape[0],
                         canvas_px=crop_cfg.canvas_px, out_px=crop_cfg.input_px)
        sample.crops[view] = apply_crop(image, plan)
        sample.patient[view] = patient
        edge = self.locks[view].cut_off(patient, image.shape[1], image.shape[0])
        if edge is not None:
            sample.cut_off[view] = edge
        sample.crop_ms += (time.perf_counter() - t0) * 1e3
        self.stats[f"visible_{view}"] += 1

    def _claim_earlier_sightings(self, view: str, track_id: int | None, samples: Mapping[int, ProcessedSample], *,
                                 before: int) -> None:
        """A lock needs a motion window of history: the locked person's earlier sightings (still kept for an
        open window) are the patient too, so the walk's first window is not lost to the lock's delay."""
        for k in sorted(samples):
            sample = samples[k]
            if k >= before or view in sample.patient:
                continue
            match = next((d for d in sample.people.get(view, []) if d.track_id == track_id), None)
            if match is not None:
                self.set_patient(sample, view, match)
