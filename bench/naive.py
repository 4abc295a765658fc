"""The naive baseline of ``dualgait bench e2e``: how the paper's code would run live, in one process.

Written the way the paper's code works, on purpose: both videos are read frame by frame, the YOLO tracker
runs on *every* frame of each view (Ultralytics ``track(..., persist=True)``, one model per view, one
frame per call), every frame's patient box is cropped (box height to 512 px, black-padded, resized to
the model input), and once per second the last second's crops are sampled to T=8 and scored by the
eager fp32 PyTorch model (no bf16, no channels_last, no exported engine). No pairing by capture time (the
two files are read in lockstep), no window checks, no queues: the same model and crop, none of the
pipeline's engineering.

``pace=True`` reads the files as cameras would deliver them (frame i is available at start + i / fps):
a loop slower than real time falls behind and its lag grows. ``pace=False`` reads as fast as it can.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.messages import VIEWS
from inference.crop import apply_crop, plan_crop

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only


@dataclass(slots=True)
class NaiveWindow:
    window: int
    t_s: float  # stream time of the window's last frame
    valid: bool  # the tracker found someone in every sampled frame of both views
    p_asd: float | None
    timings_ms: dict[str, float]  # detect (every frame of the second, both views), crop, model
    latency_ms: float  # the window's last frame available -> score


def _frames(path: str, loop: bool) -> Iterator[np.ndarray]:
    while True:
        cap = cv2.VideoCapture(path)
        ok, image = cap.read()
        if not ok:
            cap.release()
            return
        while ok:
            yield image
            ok, image = cap.read()
        cap.release()
        if not loop:
            return


def run_naive(cfg: DualgaitConfig, front: str, side: str, *, pace: bool, max_duration_s: float | None = None,
              loop: bool = False) -> Iterator[NaiveWindow]:
    import torch
    from ultralytics import YOLO

    from inference.engines.base import preprocess
    from inference.models.checkpoint import ModelSpec, load_checkpoint

    icfg = cfg.inference
    threads = torch.get_num_threads()
    yolo = {view: YOLO(icfg.detector.weights, task="detect") for view in VIEWS}
    if icfg.model.weights is not None:
        model = load_checkpoint(icfg.model.weights).model.float().eval()
    else:
        torch.manual_seed(icfg.model.seed)
        model = ModelSpec(variant=icfg.model.variant or "late", input_px=icfg.crop.input_px,
                          frames=icfg.window.frames).build().eval()
    fps = cv2.VideoCapture(front).get(cv2.CAP_PROP_FPS) or 25.0
    per_window = round(fps * icfg.window.duration_s)
    det = icfg.detector
    crops: dict[str, list[np.ndarray | None]] = {view: [] for view in VIEWS}
    spent = {"detect": 0.0, "crop": 0.0}
    start = time.perf_counter()
    for i, images in enumerate(zip(_frames(front, loop), _frames(side, loop), strict=False)):
        t_frame = i / fps
        if max_duration_s is not None and t_frame >= max_duration_s:
            return
        if pace:
            wait = start + t_frame - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        for view, image in zip(VIEWS, images, strict=True):
            t0 = time.perf_counter()
            result = yolo[view].track(image, persist=True, tracker=det.tracker, classes=[det.person_class],
                                      conf=det.conf, iou=det.iou, imgsz=det.imgsz_px, verbose=False)[0]
            torch.set_num_threads(threads)  # Ultralytics sets torch to one thread on its first predict
            spent["detect"] += (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            crop = None
            if len(result.boxes):
                boxes = result.boxes.xyxy.numpy()
                box = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
                plan = plan_crop(tuple(float(v) for v in box), frame_w_px=image.shape[1],
                                 frame_h_px=image.shape[0], canvas_px=icfg.crop.canvas_px, out_px=icfg.crop.input_px)
                crop = apply_crop(image, plan)
            crops[view].append(crop)
            spent["crop"] += (time.perf_counter() - t0) * 1e3
        if (i + 1) % per_window:
            continue
        picks = np.linspace(0, per_window - 1, icfg.window.frames).round().astype(int)
        clips = {v: [crops[v][k] for k in picks] for v in VIEWS}
        valid = all(c is not None for v in VIEWS for c in clips[v])
        t0 = time.perf_counter()
        p_asd = None
        if valid:
            with torch.inference_mode():
                inputs = [torch.from_numpy(preprocess(np.stack(clips[v]))) for v in model.views]  # (1, 3, T, H, W)
                out = model(*inputs)
            p_asd = float(out[0, 0])  # (B, K) probabilities, p_asd first
        model_ms = (time.perf_counter() - t0) * 1e3
        yield NaiveWindow(window=(i + 1) // per_window - 1, t_s=t_frame, valid=valid, p_asd=p_asd,
                          timings_ms={"detect": round(spent["detect"], 3), "crop": round(spent["crop"], 3),
                                      "model": round(model_ms, 3)},
                          latency_ms=round((time.perf_counter() - (start + t_frame)) * 1e3, 3) if pace else 0.0)
        crops = {view: [] for view in VIEWS}
        spent = {"detect": 0.0, "crop": 0.0}
