"""CURVE over real sockets (tcp 127.0.0.1): an allowed client is served; an unknown key, a client without CURVE
and a client with the wrong server key get nothing and the server counts the refusal. Config refusals, the
``dualgait keys`` command and secret-key permissions."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from capture.process import FrameSender
from core.configtools import ConfigError
from core.messages import Frame, encode_frame
from core.security import Curve, check_endpoints, generate_key_pair, is_loopback, needs_curve
from core.transport import Receiver, pub_socket, sub_socket
from dualgait.cli import main
from dualgait.config import load_config


@pytest.fixture
def hosts(tmp_path: Path) -> dict[str, Path]:
    """Three hosts' key folders: a server, a client in its allow-list, a stranger that is not."""
    dirs = {name: tmp_path / name for name in ("server", "client", "stranger")}
    for folder in dirs.values():
        generate_key_pair(folder, "host")
    allow = ["keys", "allow", str(dirs["client"] / "host.key"), "--dir", str(dirs["server"]), "--as", "client"]
    assert main(allow) == 0
    return dirs


def _cfg(keys_dir: Path, *, scores: str = "tcp://127.0.0.1:5703", front: str = "tcp://127.0.0.1:5701",
         curve: str = "true", server_key: Path | None = None):
    overrides = [f"security.curve={curve}", f"security.keys_dir={keys_dir}", f"endpoints.scores={scores}",
                 f"endpoints.front={front}", "aggregator.publish_endpoint=null"]
    if server_key is not None:
        overrides += [f"security.server_keys={{scores: {server_key}, front: {server_key}}}"]
    return load_config(None, overrides)


def _serve_and_listen(server_sock: zmq.Socket, clients: dict[str, Receiver], payload_parts, *, seconds: float,
                      xpub: bool = False) -> dict[str, list]:
    got: dict[str, list] = {name: [] for name in clients}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(zmq.Again):
            server_sock.send_multipart(payload_parts, zmq.NOBLOCK)
        if xpub:
            while server_sock.poll(0, zmq.POLLIN):
                server_sock.recv(zmq.NOBLOCK)
        for name, receiver in clients.items():
            got[name] += [m for m, _ in receiver.poll(10)]
        if got["allowed"] and time.monotonic() > deadline - seconds / 2:
            break  # the allowed client is served; the others had at least half the time
    return got


def test_frames_reach_an_allowed_client_only(hosts: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    """Capture's FrameSender (XPUB, CURVE server) vs four SUB clients on tcp 127.0.0.1."""
    caplog.set_level(logging.INFO)
    server_cfg = _cfg(hosts["server"], front="tcp://127.0.0.1:*")
    server_curve = Curve.for_process(server_cfg, binds=("front",))
    assert server_curve is not None
    server_ctx, client_ctx = zmq.Context(), zmq.Context()
    try:
        sender = FrameSender(server_ctx, "tcp://127.0.0.1:*", lossless=False, hwm=64, curve=server_curve)
        endpoint = sender.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        server_public = hosts["server"] / "host.key"
        curves = {
            "allowed": Curve.for_process(_cfg(hosts["client"], front=endpoint, server_key=server_public),
                                         connects=("front",)),
            "unknown_key": Curve.for_process(_cfg(hosts["stranger"], front=endpoint, server_key=server_public),
                                             connects=("front",)),
            # the allowed client's pair, but it takes its own key for the server's
            "wrong_server_key": Curve.for_process(_cfg(hosts["client"], front=endpoint), connects=("front",)),
            "no_curve": None,
        }
        clients = {name: Receiver(sub_socket(client_ctx, [endpoint], hwm=100, curve=curve))
                   for name, curve in curves.items()}
        image = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
        got = _serve_and_listen(sender.sock, clients, encode_frame(Frame("front", 1, 2, 3, image)), seconds=6.0,
                                xpub=True)
        assert got["allowed"] and isinstance(got["allowed"][0], Frame)
        np.testing.assert_array_equal(got["allowed"][0].image, image)
        assert got["unknown_key"] == [] and got["wrong_server_key"] == [] and got["no_curve"] == []
        assert server_curve.refusals["unknown_key"] >= 1
        assert server_curve.refusals["handshake_failed"] >= 1  # the plain client and the wrong server key
        assert any("not in the allow-list" in r.getMessage() for r in caplog.records)
    finally:
        server_curve.close()
        server_ctx.destroy(linger=0)
        client_ctx.destroy(linger=0)


def test_allow_list_changes_apply_to_the_next_connection(hosts: dict[str, Path]) -> None:
    """pub_socket (inference's scores): the stranger is refused; once its key is allowed, its next connection is
    served without restarting the server (a refused client does not retry by itself: it reconnects); once the key
    is deleted again, the next connection is refused."""
    curve = Curve.for_process(_cfg(hosts["server"], scores="tcp://127.0.0.1:*"), binds=("scores",))
    ctx = zmq.Context()
    try:
        pub = pub_socket(ctx, "tcp://127.0.0.1:*", hwm=100, curve=curve)
        endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        stranger_cfg = _cfg(hosts["stranger"], scores=endpoint, server_key=hosts["server"] / "host.key")
        client_curve = Curve.for_process(stranger_cfg, connects=("scores",))
        parts = [b'{"v": 4, "type": "nonsense"}']  # the Receiver counts it as malformed: enough to see delivery

        def delivered(seconds: float) -> bool:
            receiver = Receiver(sub_socket(ctx, [endpoint], hwm=100, curve=client_curve))
            deadline = time.monotonic() + seconds
            while receiver.malformed == 0 and time.monotonic() < deadline:
                pub.send_multipart(parts)
                list(receiver.poll(20))
            receiver.sock.close(linger=0)
            return receiver.malformed > 0

        assert not delivered(1.5)
        assert curve.refusals["unknown_key"] >= 1
        assert main(["keys", "allow", str(hosts["stranger"] / "host.key"), "--dir", str(hosts["server"])]) == 0
        assert delivered(6.0)
        (hosts["server"] / "allowed" / "host.key").unlink()  # revoked: its next connection is refused
        assert not delivered(1.5)
    finally:
        curve.close()
        ctx.destroy(linger=0)


@pytest.mark.parametrize(("endpoint", "loopback"), [
    ("tcp://127.0.0.1:5701", True), ("tcp://127.3.2.1:1", True), ("tcp://localhost:5701", True),
    ("tcp://[::1]:5701", True), ("ipc:///tmp/x.sock", True), ("inproc://x", True),
    ("tcp://0.0.0.0:5701", False), ("tcp://*:5701", False), ("tcp://10.0.0.5:5701", False),
    ("tcp://eth0:5701", False), ("tcp://camera-host:5701", False), ("tcp://127.0.0.1;10.0.0.5:5701", False),
])
def test_loopback_classification(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback
    assert needs_curve(endpoint, "auto") is (not loopback and endpoint.startswith("tcp://"))
    assert needs_curve(endpoint, "off") is False


def test_defaults_need_no_keys(tmp_path: Path) -> None:
    """Loopback/ipc defaults: no CURVE, no key files needed (auto)."""
    cfg = load_config(None, [f"security.keys_dir={tmp_path / 'none'}"])
    assert Curve.for_process(cfg, binds=("front", "side", "scores", "publish"), connects=("scores",)) is None


def test_curve_off_refuses_a_non_loopback_endpoint() -> None:
    cfg = load_config(None, ["security.curve=off", "endpoints.side=tcp://0.0.0.0:5702"])
    with pytest.raises(ConfigError, match=r"endpoints.side .* is not loopback and security.curve is off"):
        check_endpoints(cfg)


@pytest.mark.parametrize(("extra", "needle"), [
    ([], "endpoints.front (tcp://0.0.0.0:5701) needs CURVE but this host's key pair"),
    (["--set", "security.curve=off"], "is not loopback and security.curve is off"),
])
def test_cli_refuses_a_non_loopback_endpoint_without_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          extra: list[str], needle: str) -> None:
    code = main(["capture", "--view", "front", "--set", "endpoints.front=tcp://0.0.0.0:5701",
                 "--set", f"security.keys_dir={tmp_path / 'no-keys'}", *extra])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err


def test_allow_list_must_exist_for_a_server(tmp_path: Path) -> None:
    generate_key_pair(tmp_path, "host")
    cfg = load_config(None, [f"security.keys_dir={tmp_path}", "endpoints.scores=tcp://0.0.0.0:5703"])
    with pytest.raises(ConfigError, match=r"allow-list folder .* is missing"):
        Curve.for_process(cfg, binds=("scores",))


def test_secret_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    _public, secret = generate_key_pair(tmp_path, "host")
    assert secret.stat().st_mode & 0o777 == 0o600
    secret.chmod(0o644)
    cfg = load_config(None, [f"security.keys_dir={tmp_path}", "endpoints.front=tcp://10.1.2.3:5701"])
    with pytest.raises(ConfigError, match="readable by other users"):
        Curve.for_process(cfg, connects=("front",))


def test_keys_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "--name", "cam-a", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "cam-a.key").is_file() and (tmp_path / "cam-a.key_secret").stat().st_mode & 0o077 == 0
    assert main(["keys", "generate", "--name", "cam-a", "--dir", str(tmp_path)]) == 2  # never overwritten
    assert "not overwritten" in capsys.readouterr().err
    # allowing a secret key file copies its public key only
    assert main(["keys", "allow", str(tmp_path / "cam-a.key_secret"), "--dir", str(tmp_path)]) == 0
    allowed = (tmp_path / "allowed" / "cam-a.key").read_text()
    assert "public-key" in allowed and "secret-key" not in allowed
    assert main(["keys", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cam-a.key" in out and "secret-key" not in out
    assert main(["keys", "allow", str(tmp_path / "missing.key"), "--dir", str(tmp_path)]) == 2


def test_unknown_security_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"security.curv: unknown key"):
        load_config(None, ["security.curv=on"])
    with pytest.raises(ConfigError, match=r"security.curve: expected bool or 'auto'"):
        load_config(None, ["security.curve=maybe"])
    assert load_config(None, ["security.curve=on"]).security.mode == "on"  # YAML reads on/off as true/false
    assert load_config(None, ["security.curve=off"]).security.mode == "off"
    with pytest.raises(ConfigError, match=r"server_keys.aggregator: not an endpoint"):
        load_config(None, ["security.server_keys={aggregator: x.key}"])


def test_close_delivers_the_tail_and_admits_nobody_new(hosts: dict[str, Path]) -> None:
    """libzmq admits any key to a CURVE server once no ZAP handler runs: close() closes the server socket
    (lingering for its queue) before it stops the handler, so a connected client still gets the tail and a
    stranger connecting afterwards gets nothing."""
    curve = Curve.for_process(_cfg(hosts["server"], scores="tcp://127.0.0.1:*"), binds=("scores",))
    ctx, client_ctx = zmq.Context(), zmq.Context()
    try:
        pub = pub_socket(ctx, "tcp://127.0.0.1:*", hwm=10_000, curve=curve)
        endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        server_key = hosts["server"] / "host.key"
        allowed = Curve.for_process(_cfg(hosts["client"], scores=endpoint, server_key=server_key), connects=("scores",))
        stranger = Curve.for_process(_cfg(hosts["stranger"], scores=endpoint, server_key=server_key),
                                     connects=("scores",))
        connected = sub_socket(client_ctx, [endpoint], hwm=10_000, curve=allowed)
        deadline = time.monotonic() + 5.0
        while not connected.poll(20) and time.monotonic() < deadline:  # joined
            pub.send(b"hello")
        while connected.poll(0):
            connected.recv()
        for i in range(200):
            pub.send(b"tail %d" % i + b" " * 10_000)
        curve.close(linger_ms=5_000)  # the process's last step before ctx.destroy
        late = sub_socket(client_ctx, [endpoint], hwm=100, curve=stranger)
        tail, late_got = 0, 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if not pub.closed:  # open only without the fix: the stranger would then get these
                pub.send(b"after close")
            while connected.poll(0):
                tail += connected.recv().startswith(b"tail")
            while late.poll(0):
                late_got += 1
                late.recv()
            time.sleep(0.005)
        assert tail == 200 and late_got == 0
    finally:
        client_ctx.destroy(linger=0)
        ctx.destroy(linger=0)


def test_lossless_push_pull_over_curve(hosts: dict[str, Path]) -> None:
    """Lossless mode: capture PUSHes as a CURVE server, inference PULLs (pull_socket) as an allowed client."""
    from core.transport import pull_socket

    curve = Curve.for_process(_cfg(hosts["server"], front="tcp://127.0.0.1:*"), binds=("front",))
    ctx = zmq.Context()
    try:
        sender = FrameSender(ctx, "tcp://127.0.0.1:*", lossless=True, hwm=8, curve=curve)
        endpoint = sender.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        client = Curve.for_process(_cfg(hosts["client"], front=endpoint, server_key=hosts["server"] / "host.key"),
                                   connects=("front",))
        receiver = Receiver(pull_socket(ctx, endpoint, hwm=8, curve=client))
        image = np.zeros((4, 4, 3), dtype=np.uint8)
        assert sender.send_control(encode_frame(Frame("front", 9, 1, 2, image)), timeout_s=5.0)
        got = []
        deadline = time.monotonic() + 5.0
        while not got and time.monotonic() < deadline:
            got = [m for m, _ in receiver.poll(50)]
        assert got and got[0].seq == 9
    finally:
        curve.close()
        ctx.destroy(linger=0)
