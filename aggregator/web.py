"""The live view's HTTP server (stdlib ``http.server`` in a thread; no framework, nothing from the internet).

Routes::

    GET  /                      the page (aggregator/static/index.html + app.js + style.css)
    GET  /api/state             everything the page shows of one walkway, JSON (LiveState.snapshot)
    GET  /api/preview/<view>.jpg  the walkway's latest camera preview (404 before the first)
    GET  /api/crops/<view>.jpg    the view's model input of the walkway's last window, its crops in a row (404
                                before the first; inference.preview.CropsPreview)
    POST /api/session/end       end the walkway's open walk session (operator command); needs the header
                                ``X-Dualgait-Operator: 1`` so that a page of another site cannot post it

Each /api route takes ``?walkway=ID`` (a camera pair). Without it: the first walkway seen for GETs, and for
the end command the only walkway with an open session (409 when several have one: the answer lists them).
An unknown walkway is 404, a malformed id 400.

Bound to loopback by default; requests whose Host header is not a loopback name are refused while bound to
loopback (DNS rebinding), and every response forbids framing and content sniffing.

With an access token (``aggregator.http.access_token``) every request must carry it: ``Authorization: Bearer
<token>``, or ``?token=<token>`` (the browser: the answer sets an HttpOnly, SameSite=Strict cookie and
redirects to the same path without the token, so later requests and the page's own fetches carry the
cookie). Anything else gets 401. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from aggregator.live import AMBIGUOUS_WALKWAY, LiveState, UnknownWalkway
from core.messages import VIEWS, check_walkway_id

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
OPERATOR_HEADER = "X-Dualgait-Operator"
TOKEN_COOKIE = "dualgait_token"
_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", _TOKEN_IN_QUERY.sub(r"\1<redacted>", format % args))

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' blob:")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json", headers)

    def _host_ok(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = self.headers.get("Host") or ""
        name = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
        return name in LOOPBACK_NAMES

    def _presented_tokens(self) -> tuple[str | None, str | None, str | None]:
        """(bearer header, ?token= query, cookie): what the request offers."""
        auth = self.headers.get("Authorization") or ""
        bearer = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else None
        query = parse_qs(urlsplit(self.path).query).get("token", [None])[0]
        cookie = None
        try:
            morsel = SimpleCookie(self.headers.get("Cookie") or "").get(TOKEN_COOKIE)
            cookie = morsel.value if morsel is not None else None
        except CookieError:
            pass
        return bearer, query, cookie

    def _authorized(self) -> bool:
        """No token configured: True. Else one of the presented tokens must match (constant-time compare);
        answers 401 (or the cookie-setting redirect for a good ``?token=``) and returns False otherwise."""
        expected = self.server.access_token
        if expected is None:
            return True
        bearer, query, cookie = self._presented_tokens()
        want = expected.encode()
        if any(t is not None and hmac.compare_digest(t.encode(), want) for t in (bearer, cookie)):
            return True
        if query is not None and hmac.compare_digest(query.encode(), want):
            parts = urlsplit(self.path)
            if self.command == "GET" and parts.path == "/":  # the page: keep it in a cookie, out of the address bar
                rest = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "token"])
                cookie = f"{TOKEN_COOKIE}={expected}; Path=/; HttpOnly; SameSite=Strict"
                self._send(HTTPStatus.SEE_OTHER, b"", "text/plain",
                           {"Location": parts.path + (f"?{rest}" if rest else ""), "Set-Cookie": cookie})
                return False
            return True
        self._json(HTTPStatus.UNAUTHORIZED, {"error": "access token required"},
                   {"WWW-Authenticate": 'Bearer realm="dualgait"'})
        return False

    def _walkway(self) -> tuple[bool, str | None]:
        """(ok, ``?walkway=``: None when absent); answers 400 and returns (False, None) when it is malformed."""
        values = parse_qs(urlsplit(self.path).query).get("walkway")
        if not values:
            return True, None
        try:
            return True, check_walkway_id(values[0])
        except ValueError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return False, None

    def do_GET(self) -> None:
        if not self._host_ok():
            return self._json(HTTPStatus.FORBIDDEN, {"error": "host not allowed"})
        if not self._authorized():
            return None
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, content_type = STATIC[path]
            return self._send(HTTPStatus.OK, (STATIC_DIR / name).read_bytes(), content_type)
        if not path.startswith("/api/"):
            return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        ok, walkway = self._walkway()
        if not ok:
            return None
        if path == "/api/state":
            try:
                return self._json(HTTPStatus.OK, self.server.state.snapshot(walkway))
            except UnknownWalkway:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"unknown walkway {walkway!r}"})
        for kind, prefix in (("frame", "/api/preview/"), ("crops", "/api/crops/")):
            if path.startswith(prefix) and path.endswith(".jpg"):
                view = path[len(prefix):-len(".jpg")]
                jpeg = self.server.state.preview_jpeg(view, walkway, kind=kind) if view in VIEWS else None
                if jpeg is None:
                    what = "preview" if kind == "frame" else "crops"
                    return self._json(HTTPStatus.NOT_FOUND, {"error": f"no {what} of {view!r} yet"})
                return self._send(HTTPStatus.OK, jpeg, "image/jpeg")
        return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:
        if not self._host_ok():
            return self._json(HTTPStatus.FORBIDDEN, {"error": "host not allowed"})
        if not self._authorized():
            return None
        if self.path.split("?", 1)[0] != "/api/session/end":
            return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        if self.headers.get(OPERATOR_HEADER) != "1":
            error = f"operator commands need the header {OPERATOR_HEADER}: 1"
            return self._json(HTTPStatus.FORBIDDEN, {"error": error})
        ok, walkway = self._walkway()
        if not ok:
            return None
        result = self.server.state.request("end_session", walkway=walkway)
        if result.get("ok"):
            return self._json(HTTPStatus.OK, result)
        conflict = result.get("reason") == AMBIGUOUS_WALKWAY
        return self._json(HTTPStatus.CONFLICT if conflict else HTTPStatus.SERVICE_UNAVAILABLE, result)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: LiveState, loopback_only: bool,
                 access_token: str | None) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.loopback_only = loopback_only
        self.access_token = access_token


class LiveServer:
    """Serves the live view of ``state`` on ``host:port`` from a daemon thread (``access_token``: see above)."""

    def __init__(self, state: LiveState, host: str, port: int, *, access_token: str | None = None) -> None:
        try:
            self._server = _Server((host, port), state, loopback_only=host in LOOPBACK_NAMES,
                                   access_token=access_token)
        except OSError as exc:
            raise OSError(f"cannot serve the live view on {host}:{port}: {exc.strerror or exc} (stop the program "
                          "using it, or --set aggregator.http.port=PORT, 0: any free)") from None
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-view", daemon=True)
        self._thread.start()
        log.info("live view on http://%s:%d/%s", host, self.port, " (access token required)" if access_token else "")
        if host not in LOOPBACK_NAMES:
            log.warning("live view reachable from the network on %s:%d over plain HTTP: the token and the patient "
                        "video are not encrypted on the wire; prefer 127.0.0.1 + an SSH tunnel or a TLS proxy "
                        "(docs/security.md)", host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)
