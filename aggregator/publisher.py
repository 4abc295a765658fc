"""Session updates for other consumers (the ``session`` message of :mod:`core.messages`; no sockets here).

The process loop sends each update on a ZeroMQ PUB socket bound at ``aggregator.publish_endpoint``;
consumers SUB to it and decode with ``core.messages.decode``.
"""

from __future__ import annotations

from typing import Any

from core.messages import SessionUpdate


def session_update(event: str, summary: dict[str, Any], record: dict[str, Any] | None = None) -> SessionUpdate:
    """The message for a session ``event`` ("started", "window", "ended") from its summary (and window record)."""
    window = None
    if record is not None:
        window = {"window": record["window"], "t_s": record["t_s"], "valid": record["valid"],
                  "reason_code": record["reason_code"], "p_asd": record["p_asd"]}
    return SessionUpdate(
        event=event, session_id=summary["id"], stream=summary["stream"], walk=summary["walk"],
        status=summary["status"], started_wall_ns=summary["started_wall_ns"], ended_wall_ns=summary["ended_wall_ns"],
        end_reason=summary["end_reason"], windows=summary["windows"], valid_windows=summary["valid_windows"],
        invalid_by_reason=dict(summary["invalid_by_reason"]), cumulative_p_asd=summary["cumulative_p_asd"],
        ci_low=summary["ci_low"], ci_high=summary["ci_high"], ci_level=summary["ci_level"],
        decision=summary["decision"], min_valid_windows=summary["min_valid_windows"],
        decision_threshold=summary["decision_threshold"], window=window, model=summary["model"],
        untrained=summary["untrained"], synthetic=summary["synthetic"], walkway=summary["walkway"])
