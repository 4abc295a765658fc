"""Transport security: ZeroMQ CURVE (authentication + encryption) for endpoints that leave the host.

Every process that binds an endpoint (capture: front/side, inference: scores, aggregator: publish) is a
CURVE *server*: it holds this host's key pair and admits only clients whose public key is a ``.key`` file
in the allow-list folder (a ZAP handler checks each connection). Every process that connects is a CURVE
*client*: it holds this host's key pair and must know the server's public key. Key files are pyzmq's /
czmq's format (``zmq.auth.create_certificates``); ``dualgait keys generate`` writes them.

``security.curve``: ``auto`` (default) puts CURVE on every non-loopback ``tcp://`` endpoint and leaves
loopback and ipc endpoints plain (they never leave the host); ``true`` (YAML also reads ``on``) puts it on
every tcp and ipc endpoint; ``false`` (``off``) never, and then a non-loopback tcp endpoint is refused.
See docs/security.md.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from core.configtools import ConfigError

log = logging.getLogger(__name__)
# pyzmq's authenticator logs raw keys and ZAP frames at DEBUG: keep it out of a DEBUG log
_ZAP_LOG = logging.getLogger("core.security.zap")
_ZAP_LOG.setLevel(logging.INFO)

ENDPOINT_NAMES = ("front", "side", "scores", "publish")
SCORES_ENTRY_RE = re.compile(r"scores\.(0|[1-9][0-9]{0,3})")  # scores.N: entry N (0-based) of a list of scores
LOOPBACK_HOSTS = ("localhost", "lo")
WARN_EVERY_S = 10.0  # a refused client retries every ~100 ms: log refusals at most this often


@dataclass(slots=True)
class SecurityConfig:
    """CURVE settings of this host (configs/default.yaml, section ``security``; docs/security.md)."""

    curve: bool | Literal["auto"] = "auto"  # true/on: every tcp and ipc endpoint; false/off: none
    keys_dir: str = "${DUALGAIT_KEYS_DIR:-~/.config/dualgait/keys}"
    key_name: str = "host"             # this host's pair: <keys_dir>/<key_name>.key and .key_secret
    allowed_dir: str | None = None     # allow-list of client public keys (*.key); null: <keys_dir>/allowed
    # public key file of the server of each endpoint this host connects to (front, side, scores, publish; with a
    # list of scores endpoints scores.0, scores.1, ... per entry, scores for those not listed), relative to
    # keys_dir or absolute; an endpoint not listed: the server holds this host's own key pair
    server_keys: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [name for name in self.server_keys
                   if name not in ENDPOINT_NAMES and not SCORES_ENTRY_RE.fullmatch(name)]
        if unknown:
            raise ValueError(f"server_keys.{unknown[0]}: not an endpoint (one of {', '.join(ENDPOINT_NAMES)}, "
                             "or scores.N for entry N of a list of scores endpoints)")
        if not self.key_name or "/" in self.key_name:
            raise ValueError("key_name must be a file name without '/'")

    @property
    def mode(self) -> str:
        """"auto", "on" or "off"."""
        return "auto" if self.curve == "auto" else "on" if self.curve else "off"


def is_loopback(endpoint: str) -> bool:
    """ipc/inproc never leave the host; a tcp endpoint is loopback when its host is 127.x, ::1 or localhost."""
    if not endpoint.startswith("tcp://"):
        return endpoint.startswith(("ipc://", "inproc://"))
    address = endpoint[len("tcp://"):].split(";")[-1]  # tcp://source;destination: the destination
    host = address.rsplit(":", 1)[0].strip("[]")
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # *, a host name, an interface name: may leave the host


def needs_curve(endpoint: str, mode: str) -> bool:
    if mode == "off":  # a SecurityConfig.mode
        return False
    if mode == "on":
        return endpoint.startswith(("tcp://", "ipc://"))
    return endpoint.startswith("tcp://") and not is_loopback(endpoint)


def scores_names(cfg: Any) -> list[str]:
    """The names of the scores endpoints an aggregator connects to: ``scores``, or ``scores.0``, ``scores.1``, ...
    for each entry of a list (see :func:`configured_endpoints`)."""
    scores = cfg.endpoints.scores
    return ["scores"] if isinstance(scores, str) else [f"scores.{i}" for i in range(len(scores))]


def configured_endpoints(cfg: Any) -> dict[str, str]:
    """Endpoint name -> endpoint of a DualgaitConfig (``publish`` only when set; the cameras of each extra walkway
    as ``<id>.front`` and ``<id>.side``, whose servers hold this host's key pair).

    ``scores`` is the scores endpoint an inference process binds (``endpoints.scores``, or the first entry of a
    list); a list's entries are also ``scores.0``, ``scores.1``, ... (the aggregator connects to each)."""
    out = {"front": cfg.endpoints.front, "side": cfg.endpoints.side, "scores": cfg.endpoints.scores_bind}
    if not isinstance(cfg.endpoints.scores, str):
        out.update(zip(scores_names(cfg), cfg.endpoints.scores, strict=True))
    if cfg.aggregator.publish_endpoint:
        out["publish"] = cfg.aggregator.publish_endpoint
    for walkway in getattr(cfg, "walkways", ()):
        out[f"{walkway.id}.front"] = walkway.front_endpoint
        out[f"{walkway.id}.side"] = walkway.side_endpoint
    return out


def endpoint_setting(name: str) -> str:
    """Where the endpoint called ``name`` (see :func:`configured_endpoints`) is set in the configuration."""
    if name == "publish":
        return "aggregator.publish_endpoint"
    if SCORES_ENTRY_RE.fullmatch(name):
        return f"endpoints.scores[{name.partition('.')[2]}]"
    if "." in name:
        walkway, view = name.rsplit(".", 1)
        return f"walkways[{walkway}].{view}_endpoint"
    return f"endpoints.{name}"


def check_endpoints(cfg: Any) -> None:
    """With CURVE off, an endpoint that may leave the host is refused (ConfigError, one line)."""
    if cfg.security.mode != "off":
        return
    for name, endpoint in configured_endpoints(cfg).items():
        if name == "scores" and not isinstance(cfg.endpoints.scores, str):
            continue  # a list: reported as its entry, scores.N
        if endpoint.startswith("tcp://") and not is_loopback(endpoint):
            raise ConfigError(f"{endpoint_setting(name)} ({endpoint}) is not loopback and security.curve is off: "
                              "patient data would leave the host unencrypted (set security.curve to auto and "
                              "create keys with 'dualgait keys generate')")


def _expand(path: str) -> Path:
    return Path(os.path.expanduser(path))


def read_public_key(path: Path) -> bytes:
    try:
        public, _secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError):
        raise ConfigError(f"no CURVE public key in {path} (create one with 'dualgait keys generate')") from None
    if len(public) != 40:
        raise ConfigError(f"{path}: not a CURVE public key (40 Z85 characters)")
    return public


def read_key_pair(keys_dir: Path, name: str, why: str = "CURVE") -> tuple[bytes, bytes]:
    path = keys_dir / f"{name}.key_secret"
    if not path.is_file():
        raise ConfigError(f"{why} needs CURVE but this host's key pair {path} is missing: create it with "
                          f"'dualgait keys generate --name {name} --dir {keys_dir}'")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"secret key {path} is readable by other users (mode {stat.S_IMODE(mode):o}): "
                          f"chmod 600 {path}")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError):
        secret = None
    if secret is None or len(secret) != 40:
        raise ConfigError(f"{path}: no CURVE secret key in it")
    return public, secret


def fingerprint(public_key: bytes) -> str:
    """A short, loggable name of a public key (its first 8 Z85 characters)."""
    return public_key[:8].decode("ascii", "replace")


class _AllowList:
    """The allow-list folder, read again whenever it changes (adding or deleting a .key takes effect for the
    next connection); counts and logs (rate-limited) refused keys."""

    def __init__(self, folder: Path, refusals: Counter) -> None:
        self.folder = folder
        self.refusals = refusals
        self._mtime_ns = -1
        self._keys: set[bytes] = set()
        self._last_warning_s = 0.0
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        mtime_ns = self.folder.stat().st_mtime_ns
        if mtime_ns != self._mtime_ns:
            self._keys = set(zmq.auth.load_certificates(self.folder))
            self._mtime_ns = mtime_ns

    def callback(self, _domain: str, key: bytes) -> bool:
        with self._lock:
            try:
                self.reload()
            except (OSError, ValueError) as exc:  # folder gone or a bad file: refuse everyone, say why
                log.error("CURVE allow-list %s unreadable: %s", self.folder, exc)
                self._keys = set()
            if key in self._keys:
                return True
            self.refusals["unknown_key"] += 1
            now = time.monotonic()
            if now - self._last_warning_s >= WARN_EVERY_S:
                self._last_warning_s = now
                log.warning("refused a CURVE client whose key %s... is not in the allow-list %s (%d refusals so "
                            "far)", fingerprint(key), self.folder, self.refusals["unknown_key"])
            return False


class _HandshakeWatch(threading.Thread):
    """Counts failed handshakes on one server socket other than refused keys (e.g. a client without CURVE)."""

    EVENTS = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL

    def __init__(self, sock: zmq.Socket, endpoint: str, refusals: Counter) -> None:
        super().__init__(name="curve-handshake-watch", daemon=True)
        self.sock = sock
        self.endpoint = endpoint
        self.refusals = refusals
        self.monitor = sock.get_monitor_socket(self.EVENTS)
        self.stop_event = threading.Event()
        self._last_warning_s = 0.0

    def run(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        try:
            while not self.stop_event.is_set():
                if not self.monitor.poll(100):
                    continue
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
                self.refusals["handshake_failed"] += 1
                now = time.monotonic()
                if now - self._last_warning_s >= WARN_EVERY_S:
                    self._last_warning_s = now
                    log.warning("refused a client on %s: CURVE handshake failed (%s; %d so far; a client "
                                "without CURVE or with the wrong server key)", self.endpoint,
                                zmq.Event(event["event"]).name, self.refusals["handshake_failed"])
        except zmq.ZMQError:
            pass  # the context is going away

    def close(self) -> None:
        self.stop_event.set()
        self.join(timeout=1.0)
        self.monitor.close(linger=0)


class Curve:
    """CURVE for one process: which of its endpoints need it, the keys, the ZAP handler and refusal counts.

    Build it with :meth:`for_process` (None when nothing needs CURVE) and :meth:`close` it before the
    context is destroyed.
    """

    def __init__(self, cfg: SecurityConfig, public: bytes, secret: bytes, server_keys: dict[str, bytes],
                 allowed_dir: Path | None) -> None:
        self.mode = cfg.mode
        self.public, self.secret = public, secret
        self.server_keys = server_keys  # endpoint -> the server's public key
        self.allowed_dir = allowed_dir
        self.refusals: Counter = Counter()
        self._authenticators: dict[int, ThreadAuthenticator] = {}  # id(context) -> its ZAP handler
        self._watches: list[_HandshakeWatch] = []

    @classmethod
    def for_process(cls, cfg: Any, *, binds: tuple[str, ...] = (), connects: tuple[str, ...] = ()) -> Curve | None:
        """Check and load what a process binding/connecting these endpoint names needs (ConfigError)."""
        check_endpoints(cfg)
        sec: SecurityConfig = cfg.security
        endpoints = configured_endpoints(cfg)
        needing = [n for n in (*binds, *connects) if n in endpoints and needs_curve(endpoints[n], sec.mode)]
        if not needing:
            return None
        keys_dir = _expand(sec.keys_dir)
        where = endpoint_setting(needing[0])
        public, secret = read_key_pair(keys_dir, sec.key_name, f"{where} ({endpoints[needing[0]]})")
        allowed_dir = None
        if any(n in binds for n in needing):
            allowed_dir = _expand(sec.allowed_dir) if sec.allowed_dir else keys_dir / "allowed"
            if not allowed_dir.is_dir():
                raise ConfigError(f"CURVE allow-list folder {allowed_dir} is missing: put the public keys (.key) of "
                                  "the hosts allowed to connect there ('dualgait keys allow')")
            if not list(allowed_dir.glob("*.key")):
                log.warning("CURVE allow-list %s is empty: no client can connect", allowed_dir)
        server_keys = {}
        for name in (n for n in needing if n in connects):
            path = sec.server_keys.get(name)
            if path is None and SCORES_ENTRY_RE.fullmatch(name):  # an entry of a list: scores.N, else scores
                path = sec.server_keys.get("scores")
            key = public if path is None else read_public_key(keys_dir / _expand(path))
            server_keys[endpoints[name]] = key
        curve = cls(sec, public, secret, server_keys, allowed_dir)
        log.info("CURVE on %s (this host's key %s...)", ", ".join(endpoints[n] for n in needing), fingerprint(public))
        return curve

    def needed(self, endpoint: str) -> bool:
        return needs_curve(endpoint, self.mode)

    def server(self, ctx: zmq.Context, sock: zmq.Socket, endpoint: str) -> None:
        """Before ``sock.bind(endpoint)``: make it a CURVE server that checks clients against the allow-list."""
        if not self.needed(endpoint):
            return
        if self.allowed_dir is None:
            raise ConfigError(f"{endpoint} needs CURVE but this process loaded no allow-list")
        if id(ctx) not in self._authenticators:  # one ZAP handler per context; without it CURVE admits any key
            allow_list = _AllowList(self.allowed_dir, self.refusals)
            auth = ThreadAuthenticator(ctx, log=_ZAP_LOG)
            auth.start()
            auth.configure_curve_callback(domain="*", credentials_provider=allow_list)
            self._authenticators[id(ctx)] = auth
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True
        watch = _HandshakeWatch(sock, endpoint, self.refusals)
        watch.start()
        self._watches.append(watch)

    def client(self, sock: zmq.Socket, endpoint: str) -> None:
        """Before ``sock.connect(endpoint)``: CURVE towards that endpoint's server, or plain (NULL) when not
        needed (options apply per connect, so one SUB can mix both)."""
        if not self.needed(endpoint):
            sock.plain_server = False  # back to the NULL mechanism for this connect
            return
        key = self.server_keys.get(endpoint, self.public)  # not configured: the server holds this host's pair
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_serverkey = key

    def close(self, *, linger_ms: int = 0) -> None:
        """Close the server sockets this secured (with ``linger_ms`` to deliver what is queued to connected
        clients), then stop the handshake watches and the ZAP handler; call it before the context is destroyed.

        Sockets first: libzmq admits any key to a CURVE server once no ZAP handler runs, and a closed socket
        accepts no new connection while it lingers (unbinding instead would drop the queued tail)."""
        for watch in self._watches:
            watch.close()
            if not watch.sock.closed:
                watch.sock.close(linger=linger_ms)
        for auth in self._authenticators.values():
            auth.stop()
        self._watches.clear()
        self._authenticators.clear()
        if self.refusals:
            log.info("CURVE refusals: %s", dict(self.refusals))


def file_pseudonym(path: str | os.PathLike[str]) -> str:
    """How logs and camera events name a recording: a digest of its path, never its name (clinic recordings
    are often named after the patient or their record number; docs/security.md)."""
    import hashlib

    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:8]
    return f"recording #{digest}{Path(path).suffix}"


def generate_key_pair(keys_dir: Path, name: str) -> tuple[Path, Path]:
    """Write <name>.key (public) and <name>.key_secret (mode 600) in keys_dir; never overwrites."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    public_path, secret_path = keys_dir / f"{name}.key", keys_dir / f"{name}.key_secret"
    for path in (public_path, secret_path):
        if path.exists():
            raise ConfigError(f"{path} exists: not overwritten (delete it first to replace the key pair)")
    old_umask = os.umask(0o077)
    try:
        zmq.auth.create_certificates(keys_dir, name)
    finally:
        os.umask(old_umask)
    secret_path.chmod(0o600)
    public_path.chmod(0o644)
    return public_path, secret_path
