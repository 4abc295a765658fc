"""Frames in, window scores out: pairing -> sampling -> tracking + patient lock + crop -> windows -> model.

A plain class without sockets (the process loop in ``inference.process`` owns those), so it runs and
tests without ZeroMQ. The detector runs only on the sampled frames a window needs (8 per second per
view by default, both views in one call), never on every frame.

Per-stage timings of each window (``WindowScore.timings_ms``, milliseconds):

- ``receive``: capture of the window's last frame -> its receipt by inference (transport + queueing);
- ``pair``: pairing and sampling of the frames pushed since the previous window;
- ``detect``: detector + tracker on the window's samples (both views), ``crop``: their crops;
- ``wait``: receipt of the window's last frame -> model start, less that last sample's own detect and
  crop (the sampler's one-pair look-ahead, and queueing behind other work);
- ``model``: clip assembly + the model; ``publish``: model end -> the score is stamped for sending.

``latency_ms`` is end to end: capture of the window's last frame -> score published (host monotonic).

Two ways to drive it. :meth:`InferencePipeline.push` runs the detector and the model itself, one frame at a
time. :meth:`InferencePipeline.feed` is the same work as a generator that hands the two expensive calls out:
it yields a :class:`DetectRequest` (send the people back) and a :class:`PendingWindow` for each window (score
it later with :func:`score_windows`), so one caller can batch the detector and the model across several
pipelines (walkways): :class:`inference.walkways.WalkwayBatcher`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from core.messages import DEFAULT_WALKWAY, REASON_CODES, VIEWS, EndOfStream, Frame, WindowScore
from inference.config import InferenceConfig
from inference.detector import Detection, Detector
from inference.errors import ModelViewsError
from inference.frame_log import FrameLog
from inference.overload import OverloadGovernor
from inference.pairing import FramePairer
from inference.patient import PatientLock
from inference.patient_stage import PatientStage
from inference.samples import ProcessedSample
from inference.sampling import Sample, WindowReady, WindowSampler
from inference.steps import DetectRequest, Model, Observer, PendingWindow, Steps
from inference.validity import check_window

log = logging.getLogger(__name__)

__all__ = ["DetectRequest", "InferencePipeline", "Model", "Observer", "PendingWindow", "ProcessedSample",
           "check_model_views", "score_windows"]




def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def predict_many(engine: Model, clips: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, float]]:
    """One engine call for several windows when the engine batches (``predict_batch``), else one call each."""
    batch = getattr(engine, "predict_batch", None)
    if batch is not None:
        return list(batch(clips))
    return [engine.predict(c) for c in clips]


def score_windows(engine: Model, pending: Sequence[PendingWindow]) -> list[WindowScore]:
    """Run the model once over every valid window in ``pending`` (any pipelines sharing ``engine``) and return
    their scores in order; each window's ``model`` time is the whole call's, which it waited for."""
    runs = [p for p in pending if p.clips is not None]
    outs: list[dict[str, float]] = []
    model_ms = 0.0
    if runs:
        t0 = time.perf_counter()
        outs = predict_many(engine, [p.clips for p in runs if p.clips is not None])
        model_ms = _ms(t0)
    results = iter(outs)
    return [p.owner.finish_window(p, next(results) if p.clips is not None else {},
                                  model_ms if p.clips is not None else 0.0) for p in pending]


def check_model_views(model_views: Sequence[str], views: Sequence[str]) -> None:
    """The model takes exactly the walkway's cameras (a late-fusion model needs both, ``single_side`` the side one),
    else :class:`ModelViewsError` in one line."""
    if set(model_views) != set(views):
        raise ModelViewsError(model_views, views)


def drive(steps: Steps, detector: Detector) -> list[PendingWindow]:
    """Run ``steps`` to the end with ``detector``; returns the windows it made ready."""
    pending: list[PendingWindow] = []
    reply: dict[str, list[Detection]] | None = None
    while True:
        try:
            item = steps.send(reply)
        except StopIteration:
            return pending
        reply = None
        if isinstance(item, DetectRequest):
            t0 = time.perf_counter()
            reply = detector.track(item.images, full_size=item.full_size)
            item.detect_ms = _ms(t0)
        else:
            pending.append(item)


class InferencePipeline:
    """One stream (session) at a time of one walkway; ``reset()`` starts the next one."""

    def __init__(self, cfg: InferenceConfig, *, detector: Detector, engine: Model,
                 clock_ns: Callable[[], int] = time.monotonic_ns, walkway: str = DEFAULT_WALKWAY,
                 views: tuple[str, ...] = VIEWS) -> None:
        check_model_views(engine.views, views)
        self.cfg = cfg
        self.walkway = walkway
        self.views = tuple(v for v in VIEWS if v in views)  # the cameras: front + side, or one view alone
        self.detector = detector
        self.engine = engine
        self.clock_ns = clock_ns
        # the machine's load outlives a stream: the overload level is kept across reset()
        self.overload = OverloadGovernor(cfg.overload, walkway=walkway)
        self.observers: list[Observer] = []  # none by default: nothing is kept for them
        self.reset()

    def reset(self) -> None:
        win = self.cfg.window
        tol = None if win.pair_tolerance_s is None else round(win.pair_tolerance_s * 1e9)
        self.pairer = FramePairer(tolerance_ns=tol, max_wait_ns=round(win.max_pair_wait_s * 1e9), views=self.views)
        self.sampler = WindowSampler(frames=win.frames, step_ns=round(win.step_s * 1e9),
                                     stride_samples=win.stride_samples)
        self.samples: dict[int, ProcessedSample] = {}
        self.detector.reset()
        self._seen: dict[str, bool] = dict.fromkeys(self.views, False)  # someone detected at the last detection
        self._dropped_late = 0  # frames dropped at receive since the last window
        self.session = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.stats: dict[str, float] = {
            "frames_front": 0, "frames_side": 0, "samples": 0, "samples_missing": 0, "samples_skipped": 0,
            "samples_detected": 0, "samples_shed_stale": 0, "frames_dropped_late_front": 0,
            "frames_dropped_late_side": 0, "windows_shed": 0,
            "visible_front": 0, "visible_side": 0, "windows": 0, "windows_valid": 0,
            "seq_gaps_front": 0, "seq_gaps_side": 0, "frames_stale_front": 0, "frames_stale_side": 0, "walks": 0,
            # identity continuity: jumps seen, and the largest colour distance of a locked track's sighting to its
            # reference (jumps included), to set patient.identity_max_distance from a clinic's own walks
            "identity_jumps_front": 0, "identity_jumps_side": 0, "identity_distance_max_front": 0.0,
            "identity_distance_max_side": 0.0,
            **{f"invalid_{code}": 0 for code in REASON_CODES},
        }
        self.frames = FrameLog(self.stats, max_frame_age_s=self.cfg.window.max_frame_age_s, views=self.views)
        self.patients = PatientStage(self.cfg, self.stats, views=self.views)
        self._pair_ms = 0.0
        self._model_end_ns = 0
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    @property
    def locks(self) -> dict[str, PatientLock]:
        return self.patients.locks

    @property
    def latest_patient(self) -> dict[str, Detection | None]:
        """Each view's patient at the last detected sample (for previews)."""
        return self.patients.latest_patient

    # ----------------------------------------------------------------------------------- stages

    def push(self, frame: Frame, *, received_ns: int | None = None) -> list[WindowScore]:
        """Feed one received frame; returns the windows it completed (usually none)."""
        return score_windows(self.engine, drive(self.feed(frame, received_ns=received_ns), self.detector))

    def feed(self, frame: Frame, *, received_ns: int | None = None) -> Steps:
        """:meth:`push` as steps: yields a :class:`DetectRequest` per sample to detect (send the people back) and
        a :class:`PendingWindow` per completed window (score it with :func:`score_windows`)."""
        self._started = True
        received_ns = self.clock_ns() if received_ns is None else received_ns
        if not self.overload.keep_frame(received_ns - frame.capture_mono_ns):
            self.stats[f"frames_dropped_late_{frame.view}"] += 1  # behind: skip to the newest frames
            self._dropped_late += 1
            return
        self.frames.note(frame, received_ns)
        t0 = time.perf_counter()
        self.sampler.start(frame.capture_mono_ns)
        pairs = self.pairer.push(frame)
        events: list[Sample | WindowReady] = []
        for pair in pairs:
            events.extend(self.sampler.push(pair))
        events.extend(self.sampler.advance(self.pairer.settled_ns()))
        self._pair_ms += _ms(t0)
        for event in events:
            if isinstance(event, Sample):
                out, images = self._sample_before_detection(event)
                if images is not None:
                    request = DetectRequest(images, full_size=self._acquiring())
                    people = yield request
                    assert people is not None, "a DetectRequest needs the people sent back"
                    out.detect_ms = request.detect_ms
                    self._sample_after_detection(out, images, people)
            else:
                yield self._prepare_window(event)
                self._forget_old_samples()

    def _sample_before_detection(self, sample: Sample) -> tuple[ProcessedSample, dict[str, np.ndarray] | None]:
        """Book the sample; returns it and, when the detector must run on it, its frames (view -> image)."""
        self.stats["samples"] += 1
        if sample.pair is None:
            self.stats["samples_missing"] += 1
            cause = self.frames.missing_cause(sample.target_ns, self.sampler.step_ns)
            out = ProcessedSample(sample.index, missing=cause, t_mono_ns=sample.target_ns)
            self.samples[sample.index] = out
            return out, None
        pair = sample.pair
        frames = pair.frames
        meta = {v: self.frames.receipt(v, f.seq) for v, f in frames.items()}
        out = ProcessedSample(
            sample.index, seqs={v: f.seq for v, f in frames.items()}, t_mono_ns=pair.t_mono_ns,
            t_wall_ns=pair.first.capture_wall_ns, last_capture_ns=max(f.capture_mono_ns for f in frames.values()),
            last_received_ns=max(m[0] for m in meta.values()), skew_ns=pair.skew_ns,
            stale=next((m[1] for m in meta.values() if m[1] is not None), None))
        self.samples[sample.index] = out
        for observer in self.observers:
            observer.sample(self.session, out, {v: f.image for v, f in frames.items()})
        if not self.sampler.needed(sample.index):
            out.skipped = True
            self.stats["samples_skipped"] += 1
            return out, None
        if out.stale is not None:  # its window is invalid (stale) whatever the detector finds: shed that work,
            self.stats["samples_shed_stale"] += 1  # so a pipeline that fell behind catches up instead of lagging on
            return out, None
        out.images = {v: f.image for v, f in frames.items()}
        every = self._detect_every()
        if (sample.index - (self.cfg.window.frames - 1)) % every and not self._acquiring():
            return out, None  # between detector runs: its boxes are interpolated once the next detection is in
        out.detected = True
        self.stats["samples_detected"] += 1
        return out, {v: f.image for v, f in frames.items()}

    def _detect_every(self) -> int:
        """Samples from one detector run to the next: the configured interval, or the overload level's (the
        largest spacing at most that level's that still ends every window on a detection)."""
        every = self.cfg.detector.interval_samples + 1
        want = self.overload.detect_every
        if want <= every:
            return every
        stride = self.cfg.window.stride_samples
        return max(k for k in range(every, want + 1) if stride % k == 0)

    def _acquiring(self) -> bool:
        """A lock is being decided: someone was seen in a view at its last detection, and that view has no patient
        locked. The lock's motion measure was calibrated on boxes detected on every sample at full size, so the
        detector runs that way until both views are locked (the tiled, every-other-sample detection is for a
        locked walk; on an empty walkway it stays cheap). Not under overload: then the lock uses the cheap path."""
        if self.overload.level > 0:
            return False
        return any(self._seen[view] and not self.patients.locked(view) for view in self.views)

    def _sample_after_detection(self, out: ProcessedSample, images: dict[str, np.ndarray],
                                people: dict[str, list[Detection]]) -> None:
        self._seen = {view: bool(people.get(view)) for view in self.views}
        if self.patients.update(out, images, people, self.samples, every=self._detect_every()):
            self.detector.reset()  # the walk ended: new track ids, no stale Kalman state

    # ----------------------------------------------------------------------------------- windows

    def _check_window(self, samples: list[ProcessedSample | None]) -> tuple[str, str] | None:
        return check_window(samples, self.cfg.window, locks=self.patients.locks, walks=self.patients.walks,
                            cross_view_distance=self.patients.cross_view_distance(),
                            pair_tolerance_ns=self.pairer.tolerance_ns())

    def _prepare_window(self, ready: WindowReady) -> PendingWindow:
        """Check the window and assemble its clips; the model runs later (:func:`score_windows`)."""
        win = self.cfg.window
        samples = [self.samples.get(k) for k in range(ready.first_sample, ready.first_sample + win.frames)]
        present = [s for s in samples if s is not None and s.missing is None]
        verdict = self._check_window(samples)
        level = self.overload.level
        if verdict is None and not self.overload.score_every_window and ready.window % 2:
            verdict = ("shed", f"not scored: inference is overloaded ({self.overload.describe()})")
            self.stats["windows_shed"] += 1
        clips = None
        if verdict is None:
            clips = {v: np.stack([s.crops[v] for s in present]) for v in self.engine.views}  # (T, H, W, 3) uint8
        code, reason = verdict if verdict is not None else (None, None)
        end_ns = max((s.last_capture_ns for s in present), default=samples[-1].t_mono_ns if samples[-1] else 0)
        pair_ms, self._pair_ms = self._pair_ms, 0.0
        return PendingWindow(owner=self, window=ready.window, first=samples[0], present=present, end_ns=end_ns,
                             code=code, reason=reason, clips=clips, start_ns=self.clock_ns(), pair_ms=pair_ms,
                             walk=self.patients.walks.walk if self.patients.walks.active else None,
                             overload_level=level, first_sample=ready.first_sample)

    def finish_window(self, pending: PendingWindow, out: Mapping[str, float], model_ms: float) -> WindowScore:
        """The score message of ``pending`` from the model's output ``out`` (empty for an invalid window)."""
        code, present = pending.code, pending.present
        weights = ({"front": out["w_front"], "side": out["w_side"]} if "w_front" in out and "w_side" in out
                   else None)
        self.stats["windows"] += 1
        if code is None:
            self.stats["windows_valid"] += 1
        else:
            self.stats[f"invalid_{code}"] += 1
        timings = self._timings(pending, model_ms)
        self._observe_load(pending, timings)
        self._model_end_ns = self.clock_ns()
        first = pending.first
        score = WindowScore(
            session=self.session,
            window=pending.window,
            frames={v: [s.seqs[v] for s in present] for v in self.views},
            t_start_mono_ns=first.t_mono_ns if first else 0,
            t_end_mono_ns=pending.end_ns,
            t_start_wall_ns=first.t_wall_ns if first else 0,
            valid=code is None,
            reason=pending.reason,
            reason_code=code,
            walk=pending.walk,
            p_asd=out.get("p_asd"),
            p_front=out.get("p_front"),
            p_side=out.get("p_side"),
            view_weights=weights,
            visible={v: sum(1 for s in present if v in s.crops) for v in self.views},
            max_skew_ms=round(max((abs(s.skew_ns) for s in present), default=0) / 1e6, 3),
            timings_ms=timings,
            latency_ms=0.0,
            model=self.engine.description,
            untrained=self.engine.untrained,
            duration_s=self.cfg.window.duration_s,
            stride_s=self.cfg.window.stride_s,
            synthetic=self.engine.synthetic,
            walkway=self.walkway,
            overload_level=pending.overload_level,
        )
        for observer in self.observers:
            observer.window(pending, score)
        return score

    def _observe_load(self, pending: PendingWindow, timings: Mapping[str, float]) -> None:
        """The overload governor's input, once per window: its receive lag and its work over the stride."""
        last = pending.present[-1] if pending.present else None
        lag_s = timings["receive"] / 1e3 if last is not None and last.last_received_ns else 0.0
        if self._dropped_late:  # the frames that got through look fresh because the old ones were dropped:
            lag_s = max(lag_s, self.cfg.overload.drop_after_s)  # a window that needed drops counts as lagging
            self._dropped_late = 0
        busy = (timings["detect"] + timings["crop"] + timings["model"]) / 1e3 / self.cfg.window.stride_s
        if last is not None or lag_s:
            self.overload.observe(lag_s, busy)

    def _timings(self, pending: PendingWindow, model_ms: float) -> dict[str, float]:
        """The window's stages in milliseconds up to the model (``publish`` is added by :meth:`stamp_latency`)."""
        present = pending.present
        last = present[-1] if present else None
        wait_ms = 0.0
        if last is not None and last.last_received_ns:
            wait_ms = max(0.0, (pending.start_ns - last.last_received_ns) / 1e6 - last.detect_ms - last.crop_ms)
        return {
            "receive": round(max(0.0, (last.last_received_ns - last.last_capture_ns) / 1e6), 3) if last else 0.0,
            "pair": round(pending.pair_ms, 3),
            "detect": round(sum(s.detect_ms for s in present), 3),
            "crop": round(sum(s.crop_ms for s in present), 3),
            # model queue: the window waited here for other walkways' work before its batched model call
            "wait": round(wait_ms + max(0.0, (self.clock_ns() - pending.start_ns) / 1e6 - model_ms), 3),
            "model": round(model_ms, 3),
        }

    def stamp_latency(self, score: WindowScore) -> WindowScore:
        """Set ``latency_ms`` (capture of the window's last frame -> now) and the ``publish`` stage; call just
        before sending."""
        now_ns = self.clock_ns()
        score.latency_ms = round(max(0, now_ns - score.t_end_mono_ns) / 1e6, 3)
        score.timings_ms["publish"] = round(max(0, now_ns - self._model_end_ns or now_ns) / 1e6, 3)
        return score

    def _forget_old_samples(self) -> None:
        # detecting every k-th sample, the detected sample before a window's first one is its left neighbour
        keep_from = self.sampler.oldest_sample_still_needed() - (self._detect_every() - 1)
        for k in [k for k in self.samples if k < keep_from]:
            del self.samples[k]

    def end(self, reason: str) -> EndOfStream:
        """The stream ended: drop any partial window and report the stream's counters."""
        stats = dict(self.stats)
        stats.update({f"unpaired_{v}": n for v, n in self.pairer.stats.unpaired.items()})
        stats["max_abs_skew_ms"] = round(self.pairer.stats.max_abs_skew_ns / 1e6, 3)
        stats["pairs"] = self.pairer.stats.pairs
        stats.update(self.overload.stats)
        for view, lock in self.patients.locks.items():
            stats.update({f"patient_{key}_{view}": n for key, n in lock.stats.items()})
        for observer in self.observers:
            observer.end(self.session)
        return EndOfStream(source="inference", reason=reason, stats=stats, walkway=self.walkway)
