"""A capture process: one view's source published on ZeroMQ PUB, then an end-of-stream message."""

from __future__ import annotations

import logging
import time

import zmq

from capture.replay import Pacer, SourceError, VideoFileSource, start_instant_mono_ns
from dualgait.config import DualgaitConfig
from dualgait.messages import EndOfStream, Frame, encode_eos, encode_frame
from dualgait.transport import StopFlag, pub_socket

log = logging.getLogger(__name__)


def run_capture(cfg: DualgaitConfig, view: str, *, start_at_unix_s: float | None = None) -> int:
    """Replay ``cfg.capture.<view>`` as a camera on ``cfg.endpoints.<view>``; returns an exit code."""
    ccfg = cfg.capture
    stop = StopFlag()
    source = VideoFileSource(ccfg.source(view))  # SourceError: reported by the CLI in one line
    log.info("%s: %s, %dx%d @ %.2f fps, %d frames (%.1f s)", view, source.path, source.width_px,
             source.height_px, source.fps, source.frame_count, source.duration_s)
    ctx = zmq.Context()
    sent = 0
    reason = "end of recording"
    try:
        sock = pub_socket(ctx, cfg.endpoints.view(view), hwm=ccfg.send_hwm_frames)
        pacer = Pacer(start_instant_mono_ns(start_at_unix_s, ccfg.start_delay_s), ccfg.speed)
        try:
            for decoded in source.frames():
                pacer.wait(decoded.pts_ns)
                if stop:
                    reason = "stopped"
                    break
                # a replayed frame is stamped with the instant it is due (a camera stamps at exposure, not
                # when its process gets the CPU); how late it actually left is counted in late_frames
                due_ns = pacer.due_ns(decoded.pts_ns)
                frame = Frame(view=view, seq=decoded.index, capture_mono_ns=due_ns,
                              capture_wall_ns=time.time_ns() - (time.monotonic_ns() - due_ns), image=decoded.image,
                              source_ts_ns=decoded.pts_ns if decoded.pts_from_container else None)
                sock.send_multipart(encode_frame(frame, encoding=ccfg.encoding, jpeg_quality=ccfg.jpeg_quality),
                                    copy=False)
                sent += 1
        except SourceError as exc:
            reason = str(exc)
            log.error("%s: %s", view, exc)
        stats = {"frames_sent": sent, "late_frames": pacer.late_frames}
        sock.send_multipart(encode_eos(EndOfStream(source=view, reason=reason, stats=stats)))
        time.sleep(0.3)  # a PUB socket with linger=0 would drop the EOS on close
        log.info("%s: %s after %d frames (%d released late)", view, reason, sent, pacer.late_frames)
    finally:
        source.close()
        ctx.destroy(linger=0)
    return 0 if reason in ("end of recording", "stopped") else 1
