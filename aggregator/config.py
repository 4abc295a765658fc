"""Configuration of the aggregator process (configs/default.yaml, section ``aggregator``)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

MIN_TOKEN_CHARS = 16
TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]+")  # URL-, header- and cookie-safe (secrets.token_urlsafe)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # 0.0.0.0, a host name, an interface address: reachable from the network


@dataclass(slots=True)
class SessionConfig:
    """Walk sessions, the cumulative score, its confidence interval and the decision (docs/aggregator.md)."""

    seen_min_visible_frames: int = 1   # a window "sees" the patient when both views found them in >= this many samples
    gone_timeout_s: float = 5.0        # no window has seen the patient for this long: the session ends
    min_valid_windows: int = 5         # decision stays "not enough data" below this many valid windows
    decision_threshold: float = 0.5    # cumulative p_asd at or above it: "ASD-like"
    ci_level: float = 0.95             # confidence level of the interval on the cumulative score
    ci_autocorrelation: bool = True    # shrink n to an effective sample size from the lag-1 autocorrelation

    def __post_init__(self) -> None:
        if self.seen_min_visible_frames < 1:
            raise ValueError("seen_min_visible_frames must be >= 1")
        if self.gone_timeout_s <= 0:
            raise ValueError("gone_timeout_s must be > 0")
        if self.min_valid_windows < 2:
            raise ValueError("min_valid_windows must be >= 2 (an interval needs two windows)")
        if not 0.0 < self.decision_threshold < 1.0:
            raise ValueError("decision_threshold must be in (0, 1)")
        if not 0.5 <= self.ci_level < 1.0:
            raise ValueError("ci_level must be in [0.5, 1)")


SQLITE_URL_PREFIX = "sqlite:///"
POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")


def store_backend(url: str) -> Literal["sqlite", "postgres"]:
    """The backend of a store URL (ValueError for anything else)."""
    if url.startswith(SQLITE_URL_PREFIX) and len(url) > len(SQLITE_URL_PREFIX):
        return "sqlite"
    if url.startswith(POSTGRES_URL_PREFIXES) and len(url) > len("postgres://"):
        return "postgres"
    raise ValueError(f"url must be sqlite:///PATH or postgresql://user@host[:port]/db, got {url[:60]!r}")


@dataclass(slots=True)
class StoreConfig:
    """The session store (docs/aggregator.md): ``url`` ``sqlite:///PATH`` (one SQLite file, WAL; ``~`` expanded;
    an absolute PATH makes four slashes) or ``postgresql://user@host[:port]/db`` (the ``postgres`` extra);
    null: keep nothing. ``synchronous`` is SQLite's; the others are PostgreSQL's."""

    RENAMED_KEYS: ClassVar[dict[str, tuple[str, str]]] = {
        "db_path": ("url", "write url: sqlite:///PATH (four slashes before an absolute path, e.g. "
                           "sqlite:////var/lib/dualgait/sessions.db) or postgresql://user@host/db")}

    url: str | None = "sqlite:///~/.local/share/dualgait/sessions.db"
    synchronous: Literal["FULL", "NORMAL"] = "FULL"  # FULL: committed windows survive a power cut; NORMAL: a crash
    max_pending_windows: int = 10_000  # windows kept in memory while the database is away; beyond: the oldest go
    connect_timeout_s: float = 2.0     # a (re)connection attempt gives up after this (libpq rounds up to >= 2 s)
    write_wait_s: float = 1.0          # the receive loop waits this long for a commit, then queues

    def __post_init__(self) -> None:
        if self.url is not None:
            store_backend(self.url)
        if self.max_pending_windows < 1:
            raise ValueError("max_pending_windows must be >= 1")
        if self.connect_timeout_s <= 0 or self.write_wait_s <= 0:
            raise ValueError("connect_timeout_s and write_wait_s must be > 0")


@dataclass(slots=True)
class HttpConfig:
    """The live view in the browser. Loopback by default: it shows patient video.

    ``access_token``: when set, every request needs it (``Authorization: Bearer ...``, or ``?token=`` once in
    the browser, which then keeps it in a cookie). A host that is not loopback requires one (docs/security.md).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8765                   # 0: any free port (logged)
    chart_windows: int = 300           # the live chart shows this many latest windows of the session
    preview_max_age_s: float = 5.0     # an older preview is shown as stale
    access_token: str | None = None    # e.g. ${DUALGAIT_LIVE_TOKEN}; at least 16 characters

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("http port must be in 0..65535")
        if self.access_token is not None and not TOKEN_RE.fullmatch(self.access_token):
            raise ValueError("access_token may only hold letters, digits and . _ ~ -")
        if self.access_token is not None and len(self.access_token) < MIN_TOKEN_CHARS:
            raise ValueError(f"access_token must have at least {MIN_TOKEN_CHARS} characters "
                             "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')")
        if self.enabled and self.access_token is None and not is_loopback_host(self.host):
            raise ValueError(f"host {self.host} is not loopback: the live view shows patient video, so it needs "
                             "an access_token (or keep host 127.0.0.1 and use an SSH tunnel)")


@dataclass(slots=True)
class MetricsConfig:
    """Prometheus metrics endpoint (``/metrics``), on its own port so it can be scraped without the live view."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108                   # 0: any free port (logged)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("metrics port must be in 0..65535")


@dataclass(slots=True)
class AggregatorConfig:
    """``output_dir``: where windows.jsonl and summary.json go (null: keep nothing there).

    ``publish_endpoint``: where session updates are published (ZeroMQ PUB, null: not published).
    """

    output_dir: str | None = None
    console: bool = True
    exit_on_end_of_stream: bool = False
    publish_endpoint: str | None = "tcp://127.0.0.1:5704"
    session: SessionConfig = field(default_factory=SessionConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
