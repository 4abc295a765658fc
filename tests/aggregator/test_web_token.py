"""The live view's optional access token, over real HTTP against the real server: 401 without it, served with
it (Bearer header, ?token= query, the cookie the page gets); a non-loopback host without a token is refused."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import pytest

from aggregator.config import HttpConfig
from aggregator.live import LiveState
from aggregator.web import TOKEN_COOKIE, LiveServer
from core.configtools import ConfigError
from dualgait.config import load_config

TOKEN = "s3cret-token_0123456789"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # let the test see the 303 itself


def _request(url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict, bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers=headers or {}, method=method,
                                     data=b"" if method == "POST" else None)
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def server():
    live = LiveServer(LiveState(), "127.0.0.1", 0, access_token=TOKEN)
    yield f"http://127.0.0.1:{live.port}"
    live.close()


@pytest.mark.parametrize("path", ["/", "/app.js", "/api/state", "/api/preview/front.jpg"])
def test_every_route_needs_the_token(server: str, path: str) -> None:
    status, headers, body = _request(server + path)
    assert status == 401 and json.loads(body) == {"error": "access token required"}
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert _request(server + path, {"Authorization": "Bearer " + TOKEN[:-1] + "x"})[0] == 401  # wrong token
    assert _request(server + path, {"Authorization": TOKEN})[0] == 401  # not a Bearer header


def test_bearer_header_query_and_cookie_are_served(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aggregator.web")
    status, _h, body = _request(server + "/api/state", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "session" in json.loads(body)
    assert _request(server + f"/api/state?token={TOKEN}")[0] == 200  # an API client without headers
    # the browser opens /?token=...: it gets a cookie and a redirect to / without the token
    status, headers, _ = _request(server + f"/?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    cookie_header = {"Cookie": cookie.split(";", 1)[0]}
    assert cookie_header["Cookie"] == f"{TOKEN_COOKIE}={TOKEN}"
    status, _h, page = _request(server + "/", cookie_header)
    assert status == 200 and b"<html" in page.lower()
    assert _request(server + "/api/state", cookie_header)[0] == 200
    # the operator command needs the token too (and still its header)
    assert _request(server + "/api/session/end", {"X-Dualgait-Operator": "1"}, "POST")[0] == 401
    assert _request(server + "/api/session/end", {**cookie_header, "X-Dualgait-Operator": "1"}, "POST")[0] == 503
    assert _request(server + "/api/session/end", cookie_header, "POST")[0] == 403
    assert TOKEN not in caplog.text and "token=<redacted>" in caplog.text  # request lines are logged redacted


def test_no_token_configured_serves_as_before() -> None:
    live = LiveServer(LiveState(), "127.0.0.1", 0)
    try:
        assert _request(f"http://127.0.0.1:{live.port}/api/state")[0] == 200
    finally:
        live.close()


def test_non_loopback_host_needs_a_token() -> None:
    with pytest.raises(ConfigError, match=r"aggregator.http: host 0.0.0.0 is not loopback"):
        load_config(None, ["aggregator.http.host=0.0.0.0"])
    cfg = load_config(None, ["aggregator.http.host=0.0.0.0", f"aggregator.http.access_token={TOKEN}"])
    assert cfg.aggregator.http.access_token == TOKEN
    assert HttpConfig(host="::1").access_token is None  # loopback: no token needed
    with pytest.raises(ValueError, match="at least 16"):
        HttpConfig(access_token="short")
    with pytest.raises(ValueError, match="may only hold"):
        HttpConfig(access_token="with space and ; semicolon")
