"""Frames in, window scores out: pairing -> sampling -> tracking + crop -> windows -> model.

A plain class without sockets (the process loop in ``inference.process`` owns those), so it runs and
tests without ZeroMQ. The detector runs only on the sampled frames (8 per second per view), not on
every frame.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dualgait.messages import VIEWS, EndOfStream, Frame, WindowScore
from inference.config import InferenceConfig
from inference.crop import apply_crop, plan_crop
from inference.detector import Detection
from inference.pairing import FramePairer
from inference.sampling import Sample, WindowReady, WindowSampler

log = logging.getLogger(__name__)


class Tracker(Protocol):
    def update(self, image: np.ndarray) -> tuple[Detection | None, int]: ...
    def reset(self) -> None: ...


class Model(Protocol):
    """What the pipeline needs of the classifier (``inference.engines.ModelRunner`` in production)."""

    description: str
    untrained: bool
    synthetic: bool
    views: tuple[str, ...]

    def predict(self, clips: Mapping[str, np.ndarray]) -> dict[str, float]:
        """view -> (T, H, W, 3) uint8 BGR crops; returns p_asd and, per variant, p_front/p_side/w_front/w_side."""
        ...


@dataclass(slots=True)
class ProcessedSample:
    index: int
    missing: bool
    seqs: dict[str, int] = field(default_factory=dict)
    t_mono_ns: int = 0
    t_wall_ns: int = 0
    last_capture_ns: int = 0  # the later capture time of the two views
    skew_ns: int = 0
    crops: dict[str, np.ndarray] = field(default_factory=dict)  # view -> (input_px, input_px, 3) uint8
    receive_ms: float = 0.0
    detect_ms: float = 0.0
    crop_ms: float = 0.0


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class InferencePipeline:
    """One stream (session) at a time; ``reset()`` starts the next one."""

    def __init__(self, cfg: InferenceConfig, *, trackers: dict[str, Tracker], engine: Model,
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.cfg = cfg
        self.trackers = trackers
        self.engine = engine
        self.clock_ns = clock_ns
        self.reset()

    def reset(self) -> None:
        win = self.cfg.window
        tol = None if win.pair_tolerance_s is None else round(win.pair_tolerance_s * 1e9)
        self.pairer = FramePairer(tolerance_ns=tol, max_wait_ns=round(win.max_pair_wait_s * 1e9))
        self.sampler = WindowSampler(frames=win.frames, step_ns=round(win.step_s * 1e9),
                                     stride_samples=win.stride_samples)
        self.samples: dict[int, ProcessedSample] = {}
        for tracker in self.trackers.values():
            tracker.reset()
        self.session = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.stats: dict[str, float] = {
            "frames_front": 0, "frames_side": 0, "samples": 0, "samples_missing": 0,
            "visible_front": 0, "visible_side": 0, "windows": 0, "windows_valid": 0,
            "seq_gaps_front": 0, "seq_gaps_side": 0,
        }
        self._last_seq: dict[str, int | None] = dict.fromkeys(VIEWS)
        self._pair_ms = 0.0
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    # ----------------------------------------------------------------------------------- stages

    def push(self, frame: Frame, *, received_ns: int | None = None) -> list[WindowScore]:
        """Feed one received frame; returns the windows it completed (usually none)."""
        self._started = True
        received_ns = self.clock_ns() if received_ns is None else received_ns
        view = frame.view
        self.stats[f"frames_{view}"] += 1
        last = self._last_seq[view]
        if last is not None and frame.seq > last + 1:
            self.stats[f"seq_gaps_{view}"] += frame.seq - last - 1
        self._last_seq[view] = frame.seq
        t0 = time.perf_counter()
        self.sampler.start(frame.capture_mono_ns)
        pairs = self.pairer.push(frame)
        events: list[Sample | WindowReady] = []
        for pair in pairs:
            events.extend(self.sampler.push(pair))
        events.extend(self.sampler.advance(self.pairer.settled_ns()))
        self._pair_ms += _ms(t0)
        scores: list[WindowScore] = []
        for event in events:
            if isinstance(event, Sample):
                self.samples[event.index] = self._process_sample(event, received_ns)
            else:
                scores.append(self._score_window(event))
                self._forget_old_samples()
        return scores

    def _process_sample(self, sample: Sample, received_ns: int) -> ProcessedSample:
        self.stats["samples"] += 1
        if sample.pair is None:
            self.stats["samples_missing"] += 1
            return ProcessedSample(sample.index, missing=True, t_mono_ns=sample.target_ns)
        pair = sample.pair
        frames = {"front": pair.front, "side": pair.side}
        last_capture = max(f.capture_mono_ns for f in frames.values())
        out = ProcessedSample(
            sample.index, missing=False, seqs={v: f.seq for v, f in frames.items()},
            t_mono_ns=pair.t_mono_ns, t_wall_ns=pair.front.capture_wall_ns, last_capture_ns=last_capture,
            skew_ns=pair.skew_ns, receive_ms=max(0.0, (received_ns - last_capture) / 1e6))
        crop_cfg = self.cfg.crop
        for view, frame in frames.items():
            t0 = time.perf_counter()
            patient, _people = self.trackers[view].update(frame.image)
            out.detect_ms += _ms(t0)
            if patient is None:
                continue
            self.stats[f"visible_{view}"] += 1
            t0 = time.perf_counter()
            plan = plan_crop(patient.box_xyxy, frame_w_px=frame.width, frame_h_px=frame.height,
                             canvas_px=crop_cfg.canvas_px, out_px=crop_cfg.input_px)
            out.crops[view] = apply_crop(frame.image, plan)
            out.crop_ms += _ms(t0)
        return out

    def _score_window(self, ready: WindowReady) -> WindowScore:
        t_start = time.perf_counter()
        win = self.cfg.window
        samples = [self.samples.get(k) for k in range(ready.first_sample, ready.first_sample + win.frames)]
        present = [s for s in samples if s is not None and not s.missing]
        visible = {v: sum(1 for s in present if v in s.crops) for v in VIEWS}
        both = [s for s in present if all(v in s.crops for v in VIEWS)]
        reason: str | None = None
        code: str | None = None
        if len(present) < win.frames:
            code = "too_few_frames"
            reason = f"pairing: {win.frames - len(present)} of {win.frames} samples have no front/side pair"
        elif len(both) < win.min_visible_frames:
            code = "patient_missing"
            lost = [v for v in VIEWS if visible[v] < win.min_visible_frames]
            reason = (f"patient not visible: found in {visible['front']}/{win.frames} front and "
                      f"{visible['side']}/{win.frames} side samples" + (f" ({', '.join(lost)})" if lost else ""))
        out: dict[str, float] = {}
        model_ms = 0.0
        if reason is None:
            t0 = time.perf_counter()
            clip = {v: np.stack([s.crops[v] for s in both]) for v in self.engine.views}  # (T, H, W, 3) uint8
            out = self.engine.predict(clip)
            model_ms = _ms(t0)
        weights = ({"front": out["w_front"], "side": out["w_side"]} if "w_front" in out and "w_side" in out
                   else None)
        stack_ms = _ms(t_start) - model_ms
        first = present[0] if present else samples[0]
        last = present[-1] if present else samples[-1]
        self.stats["windows"] += 1
        self.stats["windows_valid"] += reason is None
        timings = {
            "receive": round(present[-1].receive_ms, 3) if present else 0.0,
            "pair": round(self._pair_ms, 3),
            "detect": round(sum(s.detect_ms for s in present), 3),
            "crop": round(sum(s.crop_ms for s in present), 3),
            "window": round(stack_ms, 3),
            "model": round(model_ms, 3),
        }
        self._pair_ms = 0.0
        score = WindowScore(
            session=self.session,
            window=ready.window,
            frames={v: [s.seqs[v] for s in present] for v in VIEWS},
            t_start_mono_ns=first.t_mono_ns if first else 0,
            t_end_mono_ns=max((s.last_capture_ns for s in present), default=last.t_mono_ns if last else 0),
            t_start_wall_ns=first.t_wall_ns if first else 0,
            valid=reason is None,
            reason=reason,
            reason_code=code,
            walk=None,
            p_asd=out.get("p_asd"),
            p_front=out.get("p_front"),
            p_side=out.get("p_side"),
            view_weights=weights,
            visible=visible,
            max_skew_ms=round(max((abs(s.skew_ns) for s in present), default=0) / 1e6, 3),
            timings_ms=timings,
            latency_ms=0.0,
            model=self.engine.description,
            untrained=self.engine.untrained,
            synthetic=self.engine.synthetic,
        )
        return score

    def stamp_latency(self, score: WindowScore) -> WindowScore:
        """Set ``latency_ms``: now minus the capture of the window's last frame. Call just before publishing."""
        score.latency_ms = round(max(0, self.clock_ns() - score.t_end_mono_ns) / 1e6, 3)
        return score

    def _forget_old_samples(self) -> None:
        keep_from = self.sampler.oldest_sample_still_needed()
        for k in [k for k in self.samples if k < keep_from]:
            del self.samples[k]

    def end(self, reason: str) -> EndOfStream:
        """The stream ended: drop any partial window and report the stream's counters."""
        stats = dict(self.stats)
        stats.update({f"unpaired_{v}": n for v, n in self.pairer.stats.unpaired.items()})
        stats["max_abs_skew_ms"] = round(self.pairer.stats.max_abs_skew_ns / 1e6, 3)
        stats["pairs"] = self.pairer.stats.pairs
        return EndOfStream(source="inference", reason=reason, stats=stats)
