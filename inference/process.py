"""The inference process: subscribe to each walkway's cameras (both views, or one), run the pipeline, publish one
score per window."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import zmq

from core.folders import check_writable_dir
from core.messages import (
    CameraState,
    EndOfStream,
    Frame,
    Heartbeat,
    Message,
    encode_camera_state,
    encode_eos,
    encode_heartbeat,
    encode_preview,
    encode_window,
)
from core.security import Curve
from core.transport import Receiver, StopFlag, mark_ready, pub_socket, pull_socket, sub_socket
from inference.camera_monitor import CameraMonitor
from inference.config import InferenceConfig
from inference.preview import CropsPreview, PreviewThrottle

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only

log = logging.getLogger(__name__)


def _inference_config(cfg: DualgaitConfig) -> InferenceConfig:
    icfg = cfg.inference
    icfg = replace(icfg, model=icfg.model.for_views(cfg.views))  # untrained: the variant that takes these cameras
    if cfg.capture.lossless:
        # lossless replay is paced by inference: frames wait in the queue by design, so age says nothing,
        # and nothing is shed
        icfg = replace(icfg, window=replace(icfg.window, max_frame_age_s=None),
                       overload=replace(icfg.overload, enabled=False))
    return icfg


def load_models(cfg: DualgaitConfig, *, batch: int = 1):
    """The detector network and the model runner, warmed up (first calls compile) for up to ``batch`` walkways.

    What the inference process serves with; ``bench walkways`` times the same objects.
    """
    import numpy as np

    from inference.detector import YoloModel
    from inference.engines import set_torch_threads
    from inference.engines.factory import create_runner

    icfg = _inference_config(cfg)
    t0 = time.perf_counter()
    detector = YoloModel(icfg.detector)
    blank = np.zeros((icfg.detector.imgsz_px, icfg.detector.imgsz_px, 3), dtype=np.uint8)
    detector.predict([blank] * (2 * batch))
    # Ultralytics sets torch to one thread on its first predict: set ours back after it
    threads = set_torch_threads(icfg.model.threads)
    runner = create_runner(icfg.model, input_px=icfg.crop.input_px, frames=icfg.window.frames)
    runner.warm_up(buckets=batch)  # every batch size N walkways can give, compiled before the first frame
    log.info("inference ready in %.1f s: %s; torch threads %d", time.perf_counter() - t0, runner.description,
             threads)
    if runner.untrained:
        log.warning("untrained model: scores are meaningless")
    return detector, runner


def build_pipeline(cfg: DualgaitConfig, *, clock_ns: Callable[[], int] = time.monotonic_ns):
    """Load the detector and the model, warm them up, and return the pipeline of walkway ``walkway_id``."""
    return build_batcher(cfg.for_walkway(cfg.walkway_id), clock_ns=clock_ns).pipelines[cfg.walkway_id]


def build_batcher(cfg: DualgaitConfig, *, clock_ns: Callable[[], int] = time.monotonic_ns):
    """One pipeline per walkway (``main`` and ``walkways``), sharing one detector network and one model."""
    from inference.detector import YoloDetector
    from inference.pipeline import InferencePipeline
    from inference.walkways import WalkwayBatcher

    ids = cfg.walkway_ids()
    network, runner = load_models(cfg, batch=len(ids))
    pipelines = {}
    for walkway in ids:
        icfg = _inference_config(cfg.for_walkway(walkway))
        pipelines[walkway] = InferencePipeline(icfg, detector=YoloDetector(icfg.detector, model=network),
                                               engine=runner, clock_ns=clock_ns, walkway=walkway, views=cfg.views)
    if len(ids) > 1:
        log.info("serving %d walkways: %s", len(ids), ", ".join(ids))
    if len(ids) > runner.max_batch:
        log.warning("inference.model.max_batch %d < %d walkways: their windows may take %d engine calls per step",
                    runner.max_batch, len(ids), -(-len(ids) // runner.max_batch))
    return WalkwayBatcher(pipelines, engine=runner, batch=cfg.inference.batch_walkways)


class LosslessReceiver:
    """Lossless mode: one PULL socket per view, read in capture-time order.

    Frames are taken from the view that is behind (the older newest capture time), so a view that starts
    late or runs slow holds the other back (its PUSH blocks) instead of being outrun: without this, a
    capture started seconds earlier would be seconds ahead and the pairer would give up its frames. The
    view not being read is still "heard" while messages wait for it, so it is not taken for silent.
    """

    def __init__(self, sockets: dict[str, zmq.Socket], monitor: CameraMonitor) -> None:
        self.receivers = {view: Receiver(sock) for view, sock in sockets.items()}
        self.monitor = monitor
        monitor.idle_ns = self.waited_ns
        self.reset()

    def waited_ns(self) -> int:
        return sum(r.waited_ns for r in self.receivers.values())

    def reset(self) -> None:
        self.last_ns: dict[str, int | None] = dict.fromkeys(self.receivers)

    @property
    def malformed(self) -> int:
        return sum(r.malformed for r in self.receivers.values())

    def poll(self, timeout_ms: int, *, max_messages: int = 64) -> Iterator[tuple[Message, int]]:
        live = [v for v in self.receivers if not self.monitor.views[v].ended] or list(self.receivers)
        behind = min(live, key=lambda v: -1 if self.last_ns[v] is None else self.last_ns[v])
        for view in live:
            if view != behind and self.receivers[view].poller.poll(0):
                self.monitor.heard(view)
        for _ in range(max_messages):
            got = next(iter(self.receivers[behind].poll(timeout_ms, max_messages=1)), None)
            if got is None:
                return
            message, received_ns = got
            if isinstance(message, Frame) and message.view == behind:
                self.last_ns[behind] = message.capture_mono_ns
                yield message, received_ns
                return  # the other view may be behind now
            yield message, received_ns


def receive_sockets(ctx: zmq.Context, cfg: DualgaitConfig, *, curve: Curve | None = None) -> dict[str, zmq.Socket]:
    """Live: one SUB for the walkway's cameras. Lossless (``capture.lossless``): one PULL per view (the captures
    PUSH)."""
    hwm = cfg.inference.receive_hwm_frames
    if not cfg.capture.lossless:
        return {"both": sub_socket(ctx, [cfg.endpoints.view(v) for v in cfg.views], hwm=hwm, curve=curve)}
    return {view: pull_socket(ctx, cfg.endpoints.view(view), hwm=hwm, curve=curve) for view in cfg.views}


@dataclass(slots=True)
class WalkwayInput:
    """One walkway's receiving side in the process loop: its sockets' receiver, camera monitor and previews."""

    walkway: str
    receiver: Receiver | LosslessReceiver
    monitor: CameraMonitor
    previews: PreviewThrottle | None = None
    crops: CropsPreview | None = None  # the last window's model input (a pipeline observer), for the live view
    finished: bool = False  # its stream ended and the process exits at the end of every walkway's
    foreign_view_messages: int = 0  # messages of a view this walkway has no camera for (ignored)

    def sockets(self) -> list[zmq.Socket]:
        if isinstance(self.receiver, LosslessReceiver):
            return [r.sock for r in self.receiver.receivers.values()]
        return [self.receiver.sock]


class _Inputs:
    """Every walkway's input; one walkway polls its receiver as before, several are polled together."""

    def __init__(self, inputs: list[WalkwayInput], *, per_walkway_messages: int = 32) -> None:
        self.inputs = inputs
        self.per_walkway = per_walkway_messages
        self.waited_ns = 0
        self.poller = zmq.Poller()
        for io in inputs:
            for sock in io.sockets():
                self.poller.register(sock, zmq.POLLIN)
        if len(inputs) > 1:  # the process's idle clock is this poll's, not any one receiver's
            for io in inputs:
                io.monitor.idle_ns = self.idle_ns

    def idle_ns(self) -> int:
        return self.waited_ns + sum(io.receiver.waited_ns() if isinstance(io.receiver, LosslessReceiver)
                                    else io.receiver.waited_ns for io in self.inputs)

    def poll(self, timeout_ms: int) -> Iterator[tuple[WalkwayInput, Message, int]]:
        if len(self.inputs) == 1:
            io = self.inputs[0]
            for message, received_ns in io.receiver.poll(timeout_ms):
                yield io, message, received_ns
            return
        t0 = time.monotonic_ns()
        ready = self.poller.poll(timeout_ms)
        self.waited_ns += time.monotonic_ns() - t0
        if not ready:
            return
        got = False
        for io in self.inputs:  # round robin: a busy walkway does not starve the others
            for message, received_ns in io.receiver.poll(0, max_messages=self.per_walkway):
                got = True
                yield io, message, received_ns
        if not got:  # lossless: the queued messages are of a view that waits for the other one (no busy loop)
            time.sleep(0.002)
            self.waited_ns += 2_000_000

    @property
    def malformed(self) -> int:
        return sum(io.receiver.malformed for io in self.inputs)


def serve(batcher, inputs: list[WalkwayInput], scores_out: zmq.Socket, stop: StopFlag, *,
          exit_on_end_of_stream: bool, poll_ms: int = 200) -> None:
    """The receive loop: frames -> the walkways' pipelines (``batcher``, :class:`inference.walkways.WalkwayBatcher`)
    -> scores; camera states, heartbeats and previews forwarded with their walkway. A walkway's stream ends when
    both its views have ended (``ended`` state, end-of-stream, or silence, see :class:`CameraMonitor`). At the end
    of each receive burst the batcher runs what waits for a batch (:meth:`WalkwayBatcher.flush`)."""
    source = _Inputs(inputs)
    pipelines = batcher.pipelines

    def publish(scores) -> None:
        for score in scores:
            scores_out.send_multipart(encode_window(pipelines[score.walkway].stamp_latency(score)))
        for io in inputs:  # after its window's score: the crops panel finds the verdict
            for preview in io.crops.take() if io.crops is not None else ():
                preview.walkway = io.walkway
                scores_out.send_multipart(encode_preview(preview))

    while not stop:
        for io, message, received_ns in source.poll(poll_ms):
            if stop:
                break  # a lagging inference answers SIGTERM within one frame, not one batch of up to 256
            monitor = io.monitor
            view = getattr(message, "view", None)
            if view is not None and view not in monitor.views:  # a camera this walkway does not have
                io.foreign_view_messages += 1
                if io.foreign_view_messages == 1:
                    log.warning("walkway %s: %s message from a %s camera, which this walkway does not have "
                                "(capture.%s is null): ignored", io.walkway, type(message).__name__, view, view)
                continue
            if isinstance(message, Frame):
                monitor.heard(message.view)
                publish(batcher.push(io.walkway, message, received_ns=received_ns))
                if io.previews is not None:
                    patient = pipelines[io.walkway].latest_patient.get(message.view)
                    preview = io.previews.offer(message, patient.box_xyxy if patient else None,
                                                patient.track_id if patient else None)
                    if preview is not None:
                        preview.walkway = io.walkway
                        scores_out.send_multipart(encode_preview(preview))
            elif isinstance(message, Heartbeat):
                monitor.heartbeat(message)
                message.walkway = io.walkway
                scores_out.send_multipart(encode_heartbeat(message))  # the aggregator's camera health stays current
            elif isinstance(message, CameraState):
                if monitor.camera_state(message):
                    message.walkway = io.walkway
                    scores_out.send_multipart(encode_camera_state(message))  # the aggregator shows them
            elif isinstance(message, EndOfStream) and message.source in monitor.views:
                log.info("end of stream from %s of walkway %s: %s", message.source, io.walkway, message.reason)
                monitor.end_of_stream(message.source, message.reason)
        publish(batcher.flush())
        for io in inputs:
            if io.finished:
                continue
            for event in io.monitor.silent_views():
                event.walkway = io.walkway
                scores_out.send_multipart(encode_camera_state(event))
            if io.monitor.all_ended:
                pipeline = pipelines[io.walkway]
                eos = pipeline.end(f"end of stream from {'both views' if len(io.monitor.views) > 1 else 'the camera'}")
                eos.stats["malformed_messages"] = io.receiver.malformed
                eos.stats.update(io.monitor.stats())
                eos.stats["foreign_view_messages"] = io.foreign_view_messages
                eos.stats.update(batcher.stats.counters())
                scores_out.send_multipart(encode_eos(eos))
                log.info("stream %s of walkway %s ended: %s", pipeline.session, io.walkway, eos.stats)
                if exit_on_end_of_stream:
                    io.finished = True
                    continue
                io.monitor.reset()
                if isinstance(io.receiver, LosslessReceiver):
                    io.receiver.reset()
                pipeline.reset()
        if inputs and all(io.finished for io in inputs):
            time.sleep(0.2)  # let the EOS leave before the socket closes
            return
    publish(batcher.flush())
    for io in inputs:
        pipeline = pipelines[io.walkway]
        if pipeline.started and not io.finished:
            eos = pipeline.end("inference stopped")
            eos.stats.update(io.monitor.stats())
            scores_out.send_multipart(encode_eos(eos))
    if any(p.started for p in pipelines.values()):
        time.sleep(0.2)


def run_inference(cfg: DualgaitConfig, *, ready_file: str | None = None) -> int:
    stop = StopFlag()
    cameras = cfg.views + tuple(f"{w.id}.{view}" for w in cfg.walkways for view in cfg.views)
    curve = Curve.for_process(cfg, binds=("scores",), connects=cameras)  # ConfigError before the model loads
    if cfg.inference.save_video_dir is not None:  # an unwritable folder: one line before the model loads
        check_writable_dir(cfg.inference.save_video_dir, what="video folder",
                           fix="choose another with --save-video DIR or inference.save_video_dir")
    batcher = build_batcher(cfg)
    recorders = {}
    if cfg.inference.save_video_dir is not None:
        from inference.annotate import attach_recorders

        recorders = attach_recorders(batcher.pipelines, cfg.inference.save_video_dir, per_stream=True)
    ctx = zmq.Context()
    try:
        inputs = []
        for walkway in cfg.walkway_ids():
            wcfg = cfg.for_walkway(walkway)
            monitor = CameraMonitor(silence_s=cfg.inference.view_silence_s, views=cfg.views)
            sockets = receive_sockets(ctx, wcfg, curve=curve)
            if cfg.capture.lossless:
                receiver: Receiver | LosslessReceiver = LosslessReceiver(sockets, monitor)
            else:
                receiver = Receiver(sockets["both"])
                monitor.idle_ns = lambda receiver=receiver: receiver.waited_ns
            crops = CropsPreview.from_config(cfg.inference.preview, frames=cfg.inference.window.frames)
            if crops is not None:
                batcher.pipelines[walkway].observers.append(crops)
            inputs.append(WalkwayInput(walkway, receiver, monitor, PreviewThrottle.from_config(cfg.inference.preview),
                                       crops))
        scores_out = pub_socket(ctx, cfg.endpoints.scores_bind, hwm=1000, curve=curve)
        mark_ready(ready_file)
        serve(batcher, inputs, scores_out, stop, exit_on_end_of_stream=cfg.inference.exit_on_end_of_stream)
    finally:
        for recorder in recorders.values():
            recorder.close()
        if curve is not None:
            curve.close()
        ctx.destroy(linger=0)
    return 0
