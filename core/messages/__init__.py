"""Wire messages shared by capture, inference and the aggregator.

Every message is one ZeroMQ multipart message: a UTF-8 JSON header, followed by zero or more raw
buffers. Nothing is pickled. The header always carries ``"v"`` (the protocol version, currently
``PROTOCOL_VERSION``) and ``"type"``. Messages are validated on receipt: a message that does not
match its layout raises :class:`MessageError`; the process loops count such messages and drop them.

Frame layout (``type = "frame"``, capture -> inference)::

    part 0: header JSON
        v                int   protocol version
        type             "frame"
        view             "front" | "side"
        seq              int >= 0, per view, +1 per published frame (gaps = frames lost upstream)
        capture_mono_ns  int   host CLOCK_MONOTONIC at capture (latency; same host only)
        capture_wall_ns  int   host wall clock at capture (records; cross-host with NTP/PTP)
        source_ts_ns     int | null   the container's own timestamp (pts) when known
        width, height    int   pixels, 1..MAX_SIDE_PX
        channels         1 | 3 (3 = BGR, OpenCV order)
        encoding         "raw" | "jpeg"
    part 1: payload
        raw:  height * width * channels bytes, uint8, row-major HWC (C-contiguous)
        jpeg: a JPEG file; its decoded size must equal width x height x channels

End of stream (``type = "eos"``, inference -> aggregator)::

    part 0: header JSON {v, type: "eos", source: str, reason: str, stats: {str: number}, walkway: str}
        walkway          str   the camera pair (DEFAULT_WALKWAY 'main' for one pair)

Camera state event (``type = "camera_state"``, capture -> inference -> aggregator, on every change)::

    part 0: header JSON
        view             "front" | "side"
        state            "connected" | "stalled" | "reconnecting" | "ended"
        reason           str   why (empty for a first connection)
        attempt          int >= 0   reconnection attempt (0 when connected or ended)
        mono_ns, wall_ns int   host clocks when the state was entered
        counters         {str: int >= 0}  at least frames_sent, frames_dropped_injected,
                         send_drops, reconnects (all of them: capture.state.Counters)
        walkway          str   the camera pair (DEFAULT_WALKWAY 'main' for one pair)

Heartbeat (``type = "heartbeat"``, capture -> inference, every ``capture.heartbeat_s``, also while the
camera is stalled or reconnecting, so "camera silent" is told apart from "capture process gone")::

    part 0: header JSON {v, type: "heartbeat", view, state, mono_ns, wall_ns, last_seq: int | null, counters,
                         walkway}
        walkway          str   the camera pair (DEFAULT_WALKWAY 'main' for one pair)

Window score (``type = "window"``, inference -> aggregator; duration_s and stride_s since protocol 6)::

    part 0: header JSON
        v, type "window"
        session          str   identifies one stream/walk
        window           int >= 0
        frames           {"front": [seq, ...], "side": [seq, ...]}  sequence numbers used per view (since protocol
                         8 a single-view walkway's window has its one view only, here and in visible)
        t_start_mono_ns  int   capture time of the window's first sampled frame (front view)
        t_end_mono_ns    int   capture time of the window's last sampled frame (later of the two views)
        t_start_wall_ns  int   wall-clock counterpart of t_start_mono_ns
        valid            bool
        reason           str | null   required (non-empty) when not valid, null when valid
        reason_code      str | null   REASON_CODES: too_few_frames | skew | stale | patient_missing |
                         views_disagree | shed | truncated_body | identity_changed | lock_contested |
                         crowded (the last four since protocol 7) | no_side_stride (since 8); null exactly when
                         valid
        walk             int >= 0 | null   the walk (patient lock) within the session; null: no patient locked
        p_asd            float in [0, 1] | null   fused probability (null when invalid)
        p_front, p_side  float in [0, 1] | null   per-view probabilities (null when invalid or n/a)
        view_weights     {front, side: float in [0, 1]} | null   per-window view weights of gated fusion
        visible          {"front": int, "side": int}  sampled frames in which the patient was found (views as frames)
        max_skew_ms      float  largest front/side capture-time difference among the window's pairs
        timings_ms       {stage: float}  per-stage time of this window, ms (docs/inference.md): receive, pair,
                         detect, crop, wait, model, publish
        latency_ms       float  capture of the window's last frame -> score published (host monotonic)
        model            str    model description
        untrained        bool   true when the model's weights are random (scores are meaningless)
        overload_level   int >= 0 (optional, 0)   inference's load-shedding step, OVERLOAD_STEPS[level]
        duration_s       float > 0 (finite)   the window's length in seconds (inference.window.duration_s)
        stride_s         float > 0 (finite)   seconds from one window's start to the next's
                         (inference.window.stride_s); the aggregator's times and "over N s" come from it
        synthetic        bool   true when the model was trained on simulated walkers only
        walkway          str   the camera pair (DEFAULT_WALKWAY 'main' for one pair)

Camera preview (``type = "preview"``, inference -> aggregator, at most ``rate_hz`` per view; for the live view
only, never stored: inference/preview.py)::

    part 0: header JSON
        view             "front" | "side"
        seq              int >= 0   the frame's sequence number
        capture_mono_ns  int   the frame's capture time (host monotonic)
        width, height    int   the ORIGINAL frame's size, 1..MAX_SIDE_PX
        box_xyxy         [x1, y1, x2, y2] | null   the patient's box in original-frame pixels,
                         0 <= x1 < x2 <= width, 0 <= y1 < y2 <= height; null: no patient locked
        track_id         int >= 0 | null   the tracker's id of that box
        preview_width, preview_height   int 1..MAX_PREVIEW_SIDE_PX (1024)   size of the JPEG below
        walkway          str   the camera pair (DEFAULT_WALKWAY 'main' for one pair)
        kind             "frame" | "crops" (optional: "frame")   "crops": the view's model input of the last
                         window (at most rate_hz per view): its crops in one row, ``seq`` the window index,
                         capture_mono_ns the window's end, width/height the JPEG's size; box_xyxy and track_id null
    part 1: a JPEG file (BGR), at most MAX_PREVIEW_BYTES (256 KiB); it must decode to the preview size

Walk-session update (``type = "session"``, aggregator -> any consumer, published on
``aggregator.publish_endpoint`` at every session start, window and end; docs/aggregator.md)::

    part 0: header JSON
        event            "started" | "window" | "ended"
        session_id       int >= 1   the aggregator's session id (its database key)
        stream, walk     inference's session (stream) and walk index (null: no patient lock) of the session
        status           "open" | "closed"
        started_wall_ns  int;  ended_wall_ns int | null
        end_reason       null while open; "gone" | "operator" | "new_stream" | "new_walk" | "end_of_stream"
        windows          int   windows in the session (valid or not)
        valid_windows    int <= windows
        invalid_by_reason {reason_code: int}
        cumulative_p_asd float in [0, 1] | null   mean p_asd over the valid windows
        ci_low, ci_high  float | null   interval on that mean at ci_level (null below 2 valid windows)
        ci_level         float in (0, 1)
        decision         "not_enough_data" | "asd_like" | "not_asd_like" | "uncertain" (research screen only)
        min_valid_windows, decision_threshold   the settings the decision used
        window           {window, t_s, valid, reason_code, p_asd} | null   the window just added ("window" events)
        model, untrained, synthetic   as in the window score (say which model made the scores)
        walkway          str   the camera pair (DEFAULT_WALKWAY 'main' for one pair): sessions are per walkway

Process event (``type = "process_event"``, supervisor -> any consumer, published on
``supervisor.event_endpoint`` by ``dualgait run`` whenever a supervised process starts, crashes, ends,
is given up on or is stopped; docs/reliability.md. A new type in protocol 4: no existing layout changed)::

    part 0: header JSON
        process          str (1..64 chars)   aggregator | inference | capture-front | capture-side
        event            "started" | "crashed" | "ended" | "gave_up" | "stopped"
        pid              int >= 1 | null   the process (the new one for "started")
        exit_code        int in [-64, 255] | null   negative: killed by that signal (-9: SIGKILL); non-zero
                         for "crashed"
        restarts         int >= 0   restarts of this process so far
        backoff_s        float >= 0 | null   "crashed": the delay before the restart (null: not restarted)
        reason           str (<= 1024 chars)   in words, e.g. "killed by SIGKILL; restart in 0.52 s"
        mono_ns, wall_ns int   the supervisor's clocks at the event
"""

from __future__ import annotations

from core.messages.base import (
    DEFAULT_WALKWAY,
    MAX_HEADER_BYTES,
    MAX_SIDE_PX,
    PROTOCOL_VERSION,
    REASON_CODES,
    VIEWS,
    WALKWAY_ID_PATTERN,
    Encoding,
    MessageError,
    by_view,
    check_walkway_id,
    parse_header,
)
from core.messages.camera import (
    CAMERA_STATES,
    REQUIRED_COUNTERS,
    CameraState,
    Heartbeat,
    decode_camera_state,
    decode_heartbeat,
    encode_camera_state,
    encode_heartbeat,
)
from core.messages.frame import EndOfStream, Frame, decode_eos, decode_frame, encode_eos, encode_frame
from core.messages.preview import (
    MAX_PREVIEW_BYTES,
    MAX_PREVIEW_SIDE_PX,
    PREVIEW_KINDS,
    Preview,
    decode_preview,
    encode_preview,
)
from core.messages.session import (
    DECISIONS,
    SESSION_END_REASONS,
    SESSION_EVENTS,
    SessionUpdate,
    decode_session,
    encode_session,
)
from core.messages.supervisor import PROCESS_EVENTS, ProcessEvent, decode_process_event, encode_process_event
from core.messages.window import OVERLOAD_STEPS, WindowScore, decode_window, encode_window

# --------------------------------------------------------------------------- dispatch

Message = Frame | EndOfStream | WindowScore | CameraState | Heartbeat | Preview | SessionUpdate | ProcessEvent

_DECODERS = {"frame": decode_frame, "eos": decode_eos, "window": decode_window,
             "camera_state": decode_camera_state, "heartbeat": decode_heartbeat, "preview": decode_preview,
             "session": decode_session, "process_event": decode_process_event}


def decode(parts: list[bytes]) -> Message:
    """Decode any message from its multipart parts; raises MessageError on anything malformed."""
    if not parts:
        raise MessageError("empty message")
    header = parse_header(parts[0])
    decoder = _DECODERS.get(header["type"])
    if decoder is None:
        raise MessageError(f"unknown message type {header['type']!r}")
    return decoder(header, list(parts[1:]))


__all__ = [
    "CAMERA_STATES", "DECISIONS", "DEFAULT_WALKWAY",
    "MAX_HEADER_BYTES", "MAX_PREVIEW_BYTES", "MAX_PREVIEW_SIDE_PX", "MAX_SIDE_PX",
    "OVERLOAD_STEPS", "PREVIEW_KINDS", "PROCESS_EVENTS", "PROTOCOL_VERSION", "REASON_CODES", "REQUIRED_COUNTERS",
    "SESSION_END_REASONS", "SESSION_EVENTS", "VIEWS", "WALKWAY_ID_PATTERN",
    "CameraState", "Encoding", "EndOfStream", "Frame", "Heartbeat", "Message", "MessageError", "Preview",
    "ProcessEvent", "SessionUpdate", "WindowScore",
    "by_view", "check_walkway_id", "decode", "decode_camera_state",
    "decode_eos", "decode_frame", "decode_heartbeat", "decode_preview",
    "decode_process_event", "decode_session", "decode_window", "encode_camera_state", "encode_eos", "encode_frame",
    "encode_heartbeat", "encode_preview", "encode_process_event", "encode_session", "encode_window", "parse_header",
]
