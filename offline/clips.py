"""Real model inputs from a recorded front/side pair (or one view's recording): the live pipeline's own pairing,
tracking and crop.

Used to calibrate int8 engines and to check engine parity on realistic inputs (random noise has the
wrong activation ranges for both). The recording is read as fast as it decodes, not in real time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from core.messages import VIEWS, Frame, by_view

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only
    from inference.detector import Detector

log = logging.getLogger(__name__)

__all__ = ["ensure_int8_engine", "recording_clips", "recording_windows"]


class _ClipCollector:
    """Stands in for the model inside the pipeline and keeps each valid window's crops."""

    description = "calibration collector (not a model)"
    untrained = True
    synthetic = False

    def __init__(self, views: tuple[str, ...] = VIEWS) -> None:
        self.views = views
        self.clips: list[dict[str, np.ndarray]] = []

    def predict(self, clips: Mapping[str, np.ndarray]) -> dict[str, float]:
        self.clips.append({view: clips[view].copy() for view in self.views})
        return {"p_asd": 0.5}  # never published: the pipeline's scores are discarded


def recording_clips(cfg: DualgaitConfig, front: str | None, side: str | None, *, max_windows: int,
                    detector: Detector | None = None,
                    on_frame: Callable[[str, int, np.ndarray], None] | None = None,
                    progress: str | None = None) -> list[dict[str, np.ndarray]]:
    """Up to ``max_windows`` valid windows of the pair: view -> (T, input_px, input_px, 3) uint8 BGR crops.

    One of ``front``/``side`` None: one camera's recording, through the single-view pipeline (its windows hold
    that view only).

    ``detector`` replaces the YOLO detector (e.g. true boxes per view, or one already loaded);
    ``on_frame(view, index, image)`` sees each decoded frame just before it enters the pipeline. Frames
    count as received at their capture time (a file is not late). ``progress``: a progress bar (on stderr)
    with this label, counting the windows.
    """
    import torch
    from tqdm import tqdm

    from capture.sources import FileSource
    from inference.detector import YoloDetector
    from inference.pipeline import InferencePipeline

    files = by_view(front, side)
    threads = torch.get_num_threads()  # Ultralytics sets torch to one thread on its first predict
    collector = _ClipCollector(tuple(files))
    if detector is None:
        detector = YoloDetector(cfg.inference.detector)
    # no load shedding: a file is read as fast as it decodes, and what the windows hold (training data, calibration)
    # must not depend on how busy the machine was (the governor reads work per window against real time)
    icfg = replace(cfg.inference, overload=replace(cfg.inference.overload, enabled=False))
    pipeline = InferencePipeline(icfg, detector=detector, engine=collector, clock_ns=lambda: 0, views=tuple(files))
    sources = {view: FileSource(path) for view, path in files.items()}
    # on a terminal only (disable=None): a log or a pipe gets the log lines around it, not bar redraws
    bar = tqdm(total=max_windows, desc=progress, unit="window", disable=True if progress is None else None, leave=False)
    try:
        streams = {view: src.frames() for view, src in sources.items()}
        while len(collector.clips) < max_windows:
            bar.update(len(collector.clips) - bar.n)
            pushed = False
            for view in sources:
                decoded = next(streams[view], None)
                if decoded is None:
                    continue
                pushed = True
                if on_frame is not None:
                    on_frame(view, decoded.index, decoded.image)
                frame = Frame(view, decoded.index, decoded.pts_ns, decoded.pts_ns, decoded.image,
                              source_ts_ns=decoded.pts_ns)
                pipeline.push(frame, received_ns=decoded.pts_ns)
            if not pushed:
                break
    finally:
        bar.close()
        for src in sources.values():
            src.close()
        torch.set_num_threads(threads)
    log.debug("collected %d windows from the recording", len(collector.clips))  # no file names: they may name people
    return collector.clips[:max_windows]


def recording_windows(cfg: DualgaitConfig, front: str | None, side: str | None, *, max_windows: int,
                      views: tuple[str, ...], progress: str | None = None) -> list[list[np.ndarray]]:
    """As :func:`recording_clips`, preprocessed for an engine: per window, one (1, 3, T, H, W) float32 per view."""
    from inference.engines.base import preprocess

    return [[preprocess(clip[view]) for view in views]
            for clip in recording_clips(cfg, front, side, max_windows=max_windows, progress=progress)]


def ensure_int8_engine(cfg: DualgaitConfig, front: str | None, side: str | None, *, windows: int = 8) -> None:
    """Build the OpenVINO int8 engine ``cfg`` asks for, once (cached), calibrated on ``windows`` windows of the pair.

    Nothing to do for any other engine (``engine: auto`` resolved first, as the processes will). The app calls it
    before it starts the processes, the real-time benchmarks before they start the clock.
    """
    from inference.engines.auto import resolve_engine

    mcfg, _ = resolve_engine(cfg.inference.model.for_views(cfg.views))
    if not (mcfg.engine == "openvino" and mcfg.precision == "int8"):
        return
    from inference.engines.base import EngineError
    from inference.engines.factory import build_engine, int8_model_cached, load_model

    loaded = load_model(mcfg, input_px=cfg.inference.crop.input_px, frames=cfg.inference.window.frames)
    if int8_model_cached(loaded, mcfg):
        return  # the processes compile it when they start: not here as well
    # no file names in the log: recordings are often named after the patient
    log.info("building the int8 model once: calibration on %d windows of the recording, cached in %s", windows,
             mcfg.cache_dir)
    t0 = time.perf_counter()
    calibration = recording_windows(cfg, front, side, max_windows=windows, views=loaded.model.views,
                                    progress="int8 calibration: crops")
    if not calibration:
        raise EngineError("int8 calibration found no valid window (patient seen in every view) in the recording")
    build_engine(loaded, mcfg, calibration=calibration)
    log.info("int8 model built in %.1f s", time.perf_counter() - t0)
