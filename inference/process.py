"""The inference process: subscribe to both views, run the pipeline, publish one score per window."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import zmq

from dualgait.config import DualgaitConfig
from dualgait.messages import (
    VIEWS,
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
from dualgait.security import Curve
from dualgait.transport import Receiver, StopFlag, mark_ready, pub_socket, pull_socket, sub_socket
from inference.camera_monitor import CameraMonitor
from inference.preview import PreviewThrottle

log = logging.getLogger(__name__)


def build_pipeline(cfg: DualgaitConfig, *, clock_ns: Callable[[], int] = time.monotonic_ns):
    """Load the detector and the model, warm them up (first calls compile), and return the pipeline."""
    import numpy as np

    from inference.detector import YoloDetector
    from inference.engines import set_torch_threads
    from inference.engines.factory import create_runner
    from inference.pipeline import InferencePipeline

    icfg = cfg.inference
    if cfg.capture.lossless and icfg.window.max_frame_age_s is not None:
        # lossless replay is paced by inference: frames wait in the queue by design, so age says nothing
        icfg = replace(icfg, window=replace(icfg.window, max_frame_age_s=None))
    t0 = time.perf_counter()
    detector = YoloDetector(icfg.detector)
    blank = np.zeros((icfg.detector.imgsz_px, icfg.detector.imgsz_px, 3), dtype=np.uint8)
    detector.track(dict.fromkeys(VIEWS, blank))
    # Ultralytics sets torch to one thread on its first predict: set ours back after it
    threads = set_torch_threads(icfg.model.threads)
    runner = create_runner(icfg.model, input_px=icfg.crop.input_px, frames=icfg.window.frames)
    runner.warm_up()
    log.info("inference ready in %.1f s: %s; torch threads %d", time.perf_counter() - t0, runner.description,
             threads)
    if runner.untrained:
        log.warning("untrained model: scores are meaningless")
    return InferencePipeline(icfg, detector=detector, engine=runner, clock_ns=clock_ns)


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
        self.last_ns: dict[str, int | None] = dict.fromkeys(VIEWS)

    @property
    def malformed(self) -> int:
        return sum(r.malformed for r in self.receivers.values())

    def poll(self, timeout_ms: int, *, max_messages: int = 64) -> Iterator[tuple[Message, int]]:
        live = [v for v in VIEWS if not self.monitor.views[v].ended] or list(VIEWS)
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
    """Live: one SUB for both views. Lossless (``capture.lossless``): one PULL per view (the captures PUSH)."""
    hwm = cfg.inference.receive_hwm_frames
    if not cfg.capture.lossless:
        return {"both": sub_socket(ctx, [cfg.endpoints.front, cfg.endpoints.side], hwm=hwm, curve=curve)}
    return {view: pull_socket(ctx, cfg.endpoints.view(view), hwm=hwm, curve=curve) for view in VIEWS}


def serve(pipeline, receiver: Receiver | LosslessReceiver, scores_out: zmq.Socket, monitor: CameraMonitor,
          stop: StopFlag, *, exit_on_end_of_stream: bool, poll_ms: int = 200,
          previews: PreviewThrottle | None = None) -> None:
    """The receive loop: frames -> pipeline -> scores; camera states forwarded; a stream ends when both views
    have ended (``ended`` state, end-of-stream, or silence, see :class:`CameraMonitor`). Camera previews
    with the patient's latest box go out through ``previews`` (at most its rate per view)."""
    while not stop:
        for message, received_ns in receiver.poll(poll_ms):
            if stop:
                break  # a lagging inference answers SIGTERM within one frame, not one batch of up to 256
            if isinstance(message, Frame):
                monitor.heard(message.view)
                for score in pipeline.push(message, received_ns=received_ns):
                    scores_out.send_multipart(encode_window(pipeline.stamp_latency(score)))
                if previews is not None:
                    patient = pipeline.latest_patient.get(message.view)
                    preview = previews.offer(message, patient.box_xyxy if patient else None,
                                             patient.track_id if patient else None)
                    if preview is not None:
                        scores_out.send_multipart(encode_preview(preview))
            elif isinstance(message, Heartbeat):
                monitor.heartbeat(message)
                scores_out.send_multipart(encode_heartbeat(message))  # the aggregator's camera health stays current
            elif isinstance(message, CameraState):
                if monitor.camera_state(message):
                    scores_out.send_multipart(encode_camera_state(message))  # the aggregator shows them
            elif isinstance(message, EndOfStream) and message.source in VIEWS:
                log.info("end of stream from %s: %s", message.source, message.reason)
                monitor.end_of_stream(message.source, message.reason)
        for event in monitor.silent_views():
            scores_out.send_multipart(encode_camera_state(event))
        if monitor.all_ended:
            eos = pipeline.end("end of stream from both views")
            eos.stats["malformed_messages"] = receiver.malformed
            eos.stats.update(monitor.stats())
            scores_out.send_multipart(encode_eos(eos))
            log.info("stream %s ended: %s", pipeline.session, eos.stats)
            if exit_on_end_of_stream:
                time.sleep(0.2)  # let the EOS leave before the socket closes
                return
            monitor.reset()
            if isinstance(receiver, LosslessReceiver):
                receiver.reset()
            pipeline.reset()
    if pipeline.started:
        eos = pipeline.end("inference stopped")
        eos.stats.update(monitor.stats())
        scores_out.send_multipart(encode_eos(eos))
        time.sleep(0.2)


def run_inference(cfg: DualgaitConfig, *, ready_file: str | None = None) -> int:
    stop = StopFlag()
    curve = Curve.for_process(cfg, binds=("scores",), connects=VIEWS)  # ConfigError before the model loads
    pipeline = build_pipeline(cfg)
    ctx = zmq.Context()
    try:
        monitor = CameraMonitor(silence_s=cfg.inference.view_silence_s)
        sockets = receive_sockets(ctx, cfg, curve=curve)
        if cfg.capture.lossless:
            receiver: Receiver | LosslessReceiver = LosslessReceiver(sockets, monitor)
        else:
            receiver = Receiver(sockets["both"])
            monitor.idle_ns = lambda: receiver.waited_ns
        scores_out = pub_socket(ctx, cfg.endpoints.scores, hwm=1000, curve=curve)
        mark_ready(ready_file)
        serve(pipeline, receiver, scores_out, monitor, stop, exit_on_end_of_stream=cfg.inference.exit_on_end_of_stream,
              previews=PreviewThrottle.from_config(cfg.inference.preview))
    finally:
        if curve is not None:
            curve.close()
        ctx.destroy(linger=0)
    return 0
