"""The inference process: subscribe to both views, run the pipeline, publish one score per window."""

from __future__ import annotations

import logging
import time

import zmq

from dualgait.config import DualgaitConfig
from dualgait.messages import VIEWS, EndOfStream, Frame, encode_eos, encode_window
from dualgait.transport import Receiver, StopFlag, mark_ready, pub_socket, sub_socket

log = logging.getLogger(__name__)


def build_pipeline(cfg: DualgaitConfig):
    """Load the trackers and the model, warm them up (first calls compile), and return the pipeline."""
    import numpy as np

    from inference.detector import PatientTracker
    from inference.engines import set_torch_threads
    from inference.engines.factory import create_runner
    from inference.pipeline import InferencePipeline

    icfg = cfg.inference
    t0 = time.perf_counter()
    trackers = {view: PatientTracker(icfg.detector) for view in VIEWS}
    blank = np.zeros((icfg.detector.imgsz_px, icfg.detector.imgsz_px, 3), dtype=np.uint8)
    for tracker in trackers.values():
        tracker.update(blank)
    # Ultralytics sets torch to one thread on its first predict: set ours back after it
    threads = set_torch_threads(icfg.model.threads)
    runner = create_runner(icfg.model, input_px=icfg.crop.input_px, frames=icfg.window.frames)
    runner.warm_up()
    log.info("inference ready in %.1f s: %s; torch threads %d", time.perf_counter() - t0, runner.description,
             threads)
    if runner.untrained:
        log.warning("untrained model: scores are meaningless")
    return InferencePipeline(icfg, trackers=trackers, engine=runner)


def run_inference(cfg: DualgaitConfig, *, ready_file: str | None = None) -> int:
    stop = StopFlag()
    pipeline = build_pipeline(cfg)
    ctx = zmq.Context()
    try:
        frames_in = sub_socket(ctx, [cfg.endpoints.front, cfg.endpoints.side], hwm=cfg.inference.receive_hwm_frames)
        scores_out = pub_socket(ctx, cfg.endpoints.scores, hwm=1000)
        receiver = Receiver(frames_in)
        mark_ready(ready_file)
        ended: set[str] = set()
        while not stop:
            for message, received_ns in receiver.poll(200):
                if isinstance(message, Frame):
                    for score in pipeline.push(message, received_ns=received_ns):
                        scores_out.send_multipart(encode_window(pipeline.stamp_latency(score)))
                elif isinstance(message, EndOfStream) and message.source in VIEWS:
                    log.info("end of stream from %s: %s", message.source, message.reason)
                    ended.add(message.source)
            if ended == set(VIEWS):
                eos = pipeline.end("end of stream from both views")
                eos.stats["malformed_messages"] = receiver.malformed
                scores_out.send_multipart(encode_eos(eos))
                log.info("stream %s ended: %s", pipeline.session, eos.stats)
                if cfg.inference.exit_on_end_of_stream:
                    time.sleep(0.2)  # let the EOS leave before the socket closes
                    break
                ended.clear()
                pipeline.reset()
        else:
            if pipeline.started:
                scores_out.send_multipart(encode_eos(pipeline.end("inference stopped")))
                time.sleep(0.2)
    finally:
        ctx.destroy(linger=0)
    return 0
