"""Process event (supervisor -> any consumer); layout in :mod:`core.messages`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.messages.base import PROTOCOL_VERSION, MessageError, _dump, _get, _get_int

PROCESS_EVENTS: tuple[str, ...] = ("started", "crashed", "ended", "gave_up", "stopped")
MAX_PROCESS_NAME = 64
MAX_REASON = 1024


@dataclass(slots=True)
class ProcessEvent:
    """A supervised process started, crashed, ended, was given up on or was stopped (see the module docstring)."""

    process: str
    event: str
    pid: int | None
    exit_code: int | None
    restarts: int
    backoff_s: float | None
    reason: str
    mono_ns: int
    wall_ns: int


def encode_process_event(event: ProcessEvent) -> list[bytes]:
    return [_dump({"v": PROTOCOL_VERSION, "type": "process_event", **asdict(event)})]


def decode_process_event(header: dict[str, Any], parts: list[bytes]) -> ProcessEvent:
    if parts:
        raise MessageError("process_event message carries no payload parts")
    process = _get(header, "process", str)
    if not 0 < len(process) <= MAX_PROCESS_NAME:
        raise MessageError(f"field 'process' must have 1..{MAX_PROCESS_NAME} characters")
    event = _get(header, "event", str)
    if event not in PROCESS_EVENTS:
        raise MessageError(f"field 'event' = {event!r} is not one of {PROCESS_EVENTS}")
    reason = _get(header, "reason", str)
    if len(reason) > MAX_REASON:
        raise MessageError(f"field 'reason' longer than {MAX_REASON} characters")
    exit_code = _get(header, "exit_code", int, nullable=True)
    if exit_code is not None and not -64 <= exit_code <= 255:
        raise MessageError(f"field 'exit_code' = {exit_code} is not an exit status or -signal")
    backoff = _get(header, "backoff_s", (int, float), nullable=True)
    if backoff is not None and not 0.0 <= backoff < 1e6:
        raise MessageError(f"field 'backoff_s' = {backoff} out of range")
    if event == "crashed" and not exit_code:
        raise MessageError("a 'crashed' event needs a non-zero exit_code")
    return ProcessEvent(process=process, event=event, pid=_get_int(header, "pid", 1, nullable=True),
                        exit_code=exit_code, restarts=_get_int(header, "restarts", 0),
                        backoff_s=None if backoff is None else float(backoff), reason=reason,
                        mono_ns=_get_int(header, "mono_ns", 0), wall_ns=_get_int(header, "wall_ns", 0))
