"""First-run checks: what a command needs from this machine, each failure one line that names the fix.

Run before anything slow (loading torch models, starting processes), so a user mistake costs seconds:

- :func:`check_assets`: the shared assets folder (``$DUALGAIT_ASSETS``, default ``../shared/assets``)
  when a default path into it is in use, the videos and the detector weights;
- ``inference.engines.cache.check_cache_dir`` and ``core.folders.check_writable_dir``: a cache or output
  folder can be created and written;
- :func:`planned_tcp_binds` + :func:`check_ports`: every TCP port the processes of this host will bind
  (live view, metrics, session updates, and the frame/score endpoints unless they are private ipc) is free.

Every failure is a :class:`PreflightError` (a :class:`~core.configtools.ConfigError`), which the CLI
prints as one line and exit code 2. ``dualgait doctor`` reports the same facts without stopping.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from core.configtools import ConfigError
from dualgait.config import DualgaitConfig

__all__ = ["PortUse", "PreflightError", "assets_dir", "check_assets", "check_ports", "planned_tcp_binds",
           "port_is_free"]

ASSETS_ENV = "DUALGAIT_ASSETS"
ASSETS_DEFAULT = "../shared/assets"


class PreflightError(ConfigError):
    """Something this machine lacks for the command; the message names the fix."""


def assets_dir() -> Path:
    """Where the shared assets are looked for: ``$DUALGAIT_ASSETS``, else ``../shared/assets`` (from the cwd)."""
    return Path(os.environ.get(ASSETS_ENV) or ASSETS_DEFAULT).expanduser().resolve()


def _in_assets(path: str) -> bool:
    try:
        Path(path).expanduser().resolve().relative_to(assets_dir())
    except ValueError:
        return False
    return True


def check_assets(videos: dict[str, str], detector_weights: str, *, video_fix: str | None = None) -> None:
    """The videos (``{"front video": path, ...}``) and the detector weights exist, else one actionable line.

    A path into the shared assets folder that is missing because the whole folder is missing gets the
    folder's fix (set DUALGAIT_ASSETS) rather than a file's. ``video_fix``: what to do about a missing video,
    ``{view}`` replaced by its view (e.g. "give another with --{view} FILE").
    """
    wanted = [*videos.values(), detector_weights]
    root = assets_dir()
    if any(_in_assets(p) and not Path(p).exists() for p in wanted) and not root.is_dir():
        raise PreflightError(f"shared assets not found at {root}: put the project's shared/ folder beside the "
                             f"checkout (../shared/assets, seen from where you run dualgait), or set {ASSETS_ENV} to "
                             "the folder that holds videos/ and weights/")
    for what, path in videos.items():
        if not Path(path).exists():
            fix = f" ({video_fix.format(view=what.split()[0])})" if video_fix else ""
            raise PreflightError(f"{what} not found: {path}{fix}")
    if not Path(detector_weights).exists():
        raise PreflightError(f"detector weights not found: {detector_weights} (the shared YOLO11n OpenVINO model is "
                             f"weights/yolo11n_int8_openvino_model in the shared assets, found through {ASSETS_ENV}; "
                             "or --set inference.detector.weights=PATH to your own YOLO model)")


@dataclass(frozen=True, slots=True)
class PortUse:
    """One TCP port a process of this host will bind, and the config key that chooses it."""

    host: str
    port: int
    key: str   # e.g. "aggregator.http.port"
    what: str  # e.g. "the live view"


def _tcp(endpoint: str | None) -> tuple[str, int] | None:
    """``tcp://host:port`` -> (host, port); None for ipc, inproc, wildcard or port-0 endpoints."""
    if not endpoint or not endpoint.startswith("tcp://"):
        return None
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return None
    host = host.strip("[]")
    return ("0.0.0.0" if host == "*" else host), int(port)


def planned_tcp_binds(cfg: DualgaitConfig, *, private_endpoints: bool = False,
                      components: tuple[str, ...] = ("capture", "inference", "aggregator", "supervisor")
                      ) -> list[PortUse]:
    """The fixed TCP ports that ``components`` will bind with ``cfg`` (port 0 and ipc endpoints need none).

    ``private_endpoints``: frames, scores and supervisor events go over private ipc sockets (``dualgait demo``).
    """
    acfg = cfg.aggregator
    uses: list[PortUse] = []
    if "aggregator" in components:
        if acfg.http.enabled and acfg.http.port:
            uses.append(PortUse(acfg.http.host, acfg.http.port, "aggregator.http.port", "the live view"))
        if acfg.metrics.enabled and acfg.metrics.port:
            uses.append(PortUse(acfg.metrics.host, acfg.metrics.port, "aggregator.metrics.port", "the metrics"))
        if (hp := _tcp(acfg.publish_endpoint)) is not None:
            uses.append(PortUse(*hp, "aggregator.publish_endpoint", "the session updates"))
    if not private_endpoints:
        endpoints = []
        if "capture" in components:
            endpoints += [(cfg.endpoints.view(v), f"endpoints.{v}", f"the {v} camera's frames") for v in cfg.views]
            endpoints += [(getattr(w, f"{v}_endpoint"), f"walkways[{w.id}].{v}_endpoint",
                           f"walkway {w.id}'s {v} camera's frames") for w in cfg.walkways for v in cfg.views]
        if "inference" in components:
            endpoints.append((cfg.endpoints.scores_bind, "endpoints.scores", "the window scores"))
        if "supervisor" in components:
            endpoints.append((cfg.supervisor.event_endpoint, "supervisor.event_endpoint", "the process events"))
        uses += [PortUse(*hp, key, what) for endpoint, key, what in endpoints if (hp := _tcp(endpoint)) is not None]
    return uses


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP listener could bind ``host:port`` now (SO_REUSEADDR, as ZeroMQ and http.server do)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise PreflightError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    return True


def check_ports(uses: list[PortUse]) -> None:
    """Every port in ``uses`` is free, else one line naming the port, what wanted it and the key to change."""
    for use in uses:
        try:
            free = port_is_free(use.host, use.port)
        except PreflightError as exc:  # e.g. an address of another host: a list's first scores endpoint
            hint = "; on a host that runs only the aggregator: dualgait run --only aggregator" if (
                use.key == "endpoints.scores") else ""
            raise PreflightError(f"{exc} ({use.what}, {use.key}){hint}") from None
        if not free:
            if use.key.startswith("walkways["):  # a list entry: no --set path reaches it
                fix = f"choose another port for {use.key} in the config file"
            else:
                fix = f"choose another port with --set {use.key}=" + (
                    f"tcp://{use.host}:PORT" if use.key.endswith("endpoint") else "PORT (0: any free)")
            raise PreflightError(f"port {use.port} on {use.host} ({use.what}) is taken by another program: stop it, "
                                 f"or {fix}")
