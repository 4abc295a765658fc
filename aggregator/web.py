"""The live view's HTTP server (stdlib ``http.server`` in a thread; no framework, nothing from the internet).

Routes::

    GET  /                      the page (aggregator/static/index.html + app.js + style.css)
    GET  /api/state             everything the page shows, JSON (LiveState.snapshot)
    GET  /api/preview/<view>.jpg  the latest camera preview (404 before the first)
    POST /api/session/end       end the open walk session (operator command); needs the header
                                ``X-Dualgait-Operator: 1`` so that a page of another site cannot post it

Bound to loopback by default; requests whose Host header is not a loopback name are refused while bound to
loopback (DNS rebinding), and every response forbids framing and content sniffing.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aggregator.live import LiveState
from dualgait.messages import VIEWS

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
OPERATOR_HEADER = "X-Dualgait-Operator"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' blob:")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _host_ok(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = self.headers.get("Host") or ""
        name = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
        return name in LOOPBACK_NAMES

    def do_GET(self) -> None:
        if not self._host_ok():
            return self._json(HTTPStatus.FORBIDDEN, {"error": "host not allowed"})
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, content_type = STATIC[path]
            return self._send(HTTPStatus.OK, (STATIC_DIR / name).read_bytes(), content_type)
        if path == "/api/state":
            return self._json(HTTPStatus.OK, self.server.state.snapshot())
        if path.startswith("/api/preview/") and path.endswith(".jpg"):
            view = path[len("/api/preview/"):-len(".jpg")]
            jpeg = self.server.state.preview_jpeg(view) if view in VIEWS else None
            if jpeg is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no preview of {view!r} yet"})
            return self._send(HTTPStatus.OK, jpeg, "image/jpeg")
        return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:
        if not self._host_ok():
            return self._json(HTTPStatus.FORBIDDEN, {"error": "host not allowed"})
        if self.path.split("?", 1)[0] != "/api/session/end":
            return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        if self.headers.get(OPERATOR_HEADER) != "1":
            error = f"operator commands need the header {OPERATOR_HEADER}: 1"
            return self._json(HTTPStatus.FORBIDDEN, {"error": error})
        result = self.server.state.request("end_session")
        return self._json(HTTPStatus.OK if result.get("ok") else HTTPStatus.SERVICE_UNAVAILABLE, result)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: LiveState, loopback_only: bool) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.loopback_only = loopback_only


class LiveServer:
    """Serves the live view of ``state`` on ``host:port`` from a daemon thread."""

    def __init__(self, state: LiveState, host: str, port: int) -> None:
        try:
            self._server = _Server((host, port), state, loopback_only=host in LOOPBACK_NAMES)
        except OSError as exc:
            raise OSError(f"cannot serve the live view on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-view", daemon=True)
        self._thread.start()
        log.info("live view on http://%s:%d/", host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)
