"""Which scores endpoint (inference host) serves each walkway: a stage without sockets.

``endpoints.scores`` may list several endpoints (one aggregator, many inference hosts; docs/aggregator.md). The
process loop has one SUB socket per endpoint (aggregator.process.ScoreSources: a SUB connected to several
publishers does not say which one a message came from) and hands each message here with its endpoint.
:class:`WalkwayOwners` keeps the walkways of different hosts apart: the first endpoint heard about a walkway
serves it, and messages about that walkway from another endpoint are refused (counted, logged as one ERROR line
at most every ``LOG_EVERY_S`` per walkway and endpoint, shown in the live view and the metrics) while the others'
walkways go on. A walkway id is unique across hosts by configuration (``walkway_id``, ``walkways[].id``); a clash is a
configuration mistake on one host, and refusing that host's messages about the walkway keeps every other
walkway monitored (a fatal error would stop the dashboard of every walkway for one host's typo).

An endpoint that has said nothing about its walkway for ``release_after_s`` (no window, heartbeat or preview:
its captures or its inference process are down) gives the walkway up: another endpoint may then serve it (a
walkway moved to another host), logged as a WARNING.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0        # a refused walkway's ERROR line at most this often per (walkway, endpoint)
RELEASE_AFTER_S = 30.0    # an endpoint silent about its walkway this long gives it up

Admission = Literal["served", "claimed", "refused"]


class WalkwayOwners:
    """Which scores endpoint serves each walkway (see the module docstring); counts messages per endpoint."""

    def __init__(self, endpoints: list[str], *, clock_s: Callable[[], float] = time.monotonic,
                 release_after_s: float = RELEASE_AFTER_S) -> None:
        self.endpoints = list(endpoints)
        self.clock_s = clock_s
        self.release_after_s = release_after_s
        self.owner: dict[str, str] = {}          # walkway -> its endpoint
        self.last_s: dict[str, float] = {}       # walkway -> when its endpoint last spoke about it
        self.messages: Counter[str] = Counter()  # endpoint -> messages received (refused ones included)
        self.last_message_s: dict[str, float] = {}
        self.refused: Counter[tuple[str, str]] = Counter()  # (walkway, endpoint) -> messages refused
        self._logged_s: dict[tuple[str, str], float] = {}

    def admit(self, walkway: str, endpoint: str) -> Admission:
        """``served``: ``endpoint`` serves ``walkway``; ``claimed``: it does from now on (first heard, or the
        previous endpoint was silent about it for ``release_after_s``); ``refused``: another endpoint serves it."""
        now = self.clock_s()
        self.messages[endpoint] += 1
        self.last_message_s[endpoint] = now
        owner = self.owner.get(walkway)
        if owner == endpoint:
            self.last_s[walkway] = now
            return "served"
        if owner is not None and now - self.last_s[walkway] < self.release_after_s:
            self._refuse(walkway, endpoint, owner, now)
            return "refused"
        if owner is not None:
            log.warning("walkway %s is now served by %s (nothing about it from %s for %.0f s)", walkway, endpoint,
                        owner, now - self.last_s[walkway])
        self.owner[walkway], self.last_s[walkway] = endpoint, now
        return "claimed"

    def _refuse(self, walkway: str, endpoint: str, owner: str, now: float) -> None:
        key = (walkway, endpoint)
        self.refused[key] += 1
        if now - self._logged_s.get(key, -math.inf) >= LOG_EVERY_S:
            self._logged_s[key] = now
            log.error("walkway %s from %s refused: %s serves it (%d messages refused; walkway ids must be unique "
                      "across inference hosts: give one host's pair another walkway_id or walkways[].id)",
                      walkway, endpoint, owner, self.refused[key])

    @property
    def all_heard(self) -> bool:
        """Every endpoint has sent something (``exit_on_end_of_stream`` waits for every host)."""
        return all(self.messages[e] for e in self.endpoints)

    def snapshot(self) -> dict[str, Any]:
        """For the live view: each endpoint's walkways, message count and silence; the refusals."""
        now = self.clock_s()
        endpoints = [*self.endpoints, *(e for e in self.messages if e not in self.endpoints)]
        return {
            "endpoints": [{"endpoint": e, "walkways": [w for w, o in self.owner.items() if o == e],
                           "messages": self.messages[e],
                           "silent_s": round(now - self.last_message_s[e], 1) if e in self.last_message_s else None}
                          for e in endpoints],
            "refused": [{"walkway": w, "endpoint": e, "owner": self.owner.get(w), "messages": n}
                        for (w, e), n in sorted(self.refused.items())],
        }
