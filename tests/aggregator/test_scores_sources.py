"""One aggregator, many inference hosts (issue 19, item 2): a list of scores endpoints, one SUB per endpoint,
walkways kept apart across endpoints (a clash refused, counted, logged in one line), the live view and metrics
naming the endpoints, CURVE per endpoint with its own server key, and the real aggregator process fed by two
publishers. The end-to-end run with real inference processes is tests/test_many_hosts.py."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
import zmq
from agg_helpers import AggregatorProcess, score, write_config

from aggregator.config import AggregatorConfig
from aggregator.hub import AggregatorHub
from aggregator.live import LiveState
from aggregator.metrics import AggregatorMetrics
from aggregator.process import ScoreSources
from aggregator.sources import LOG_EVERY_S, RELEASE_AFTER_S, WalkwayOwners
from aggregator.store import open_store
from core.configtools import ConfigError
from core.messages import EndOfStream, Heartbeat, encode_eos, encode_heartbeat, encode_window
from core.security import Curve, configured_endpoints, generate_key_pair, scores_names
from core.transport import pub_socket
from dualgait.cli import main
from dualgait.config import load_config

A, B = "tcp://10.0.0.11:5703", "tcp://10.0.0.12:5703"


class Clock:
    def __init__(self) -> None:
        self.s = 1000.0

    def __call__(self) -> float:
        return self.s


# --------------------------------------------------------------------------- config


def test_scores_may_be_one_endpoint_or_a_list():
    one = load_config(None)
    assert one.endpoints.scores_list == ["tcp://127.0.0.1:5703"] == [one.endpoints.scores_bind]
    assert scores_names(one) == ["scores"] and configured_endpoints(one)["scores"] == "tcp://127.0.0.1:5703"
    many = load_config(None, [f"endpoints.scores=[{A}, {B}]", "walkway_id=bay1"])
    assert many.endpoints.scores_list == [A, B] and many.endpoints.scores_bind == A
    assert scores_names(many) == ["scores.0", "scores.1"]
    named = configured_endpoints(many)
    assert (named["scores"], named["scores.0"], named["scores.1"]) == (A, A, B)
    assert many.walkway_ids() == ["bay1"] and many.for_walkway("bay1").walkway_id == "bay1"


@pytest.mark.parametrize(("overrides", "message"), [
    (["endpoints.scores=[]"], "endpoints: scores is an empty list"),
    ([f"endpoints.scores=[{A}, {A}]"], f"endpoints: scores lists {A} twice"),
    (["endpoints.scores=5"], "endpoints.scores: expected str or list"),
    (["walkway_id=two words"], "walkway_id: walkway id 'two words' must be"),
    (["walkway_id=bay2", "walkways=[{id: bay2, front: a.mp4, side: b.mp4, front_endpoint: ipc:///tmp/x, "
      "side_endpoint: ipc:///tmp/y}]"], "walkway id 'bay2' is the pair in capture/endpoints (walkway_id)"),
    (["security.server_keys={scores.2: c.key}", f"endpoints.scores=[{A}, {B}]"],
     "security.server_keys.scores.2: endpoints.scores has 2 endpoint(s)"),
    (["security.server_keys={scores.x: c.key}"], "server_keys.scores.x: not an endpoint"),
    (["security.curve=false", f"endpoints.scores=[tcp://127.0.0.1:5703, {B}]"], None),
])
def test_bad_scores_settings_are_one_line_errors(overrides, message):
    if message is None:  # CURVE off and a list entry leaving the host: refused when a process starts, naming it
        cfg = load_config(None, overrides)
        with pytest.raises(ConfigError, match=r"endpoints\.scores\[1\] \(tcp://10\.0\.0\.12:5703\) is not loopback"):
            Curve.for_process(cfg, connects=tuple(scores_names(cfg)))
        return
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_inference_host_binds_the_first_scores_endpoint_and_a_foreign_address_names_the_fix():
    """``dualgait run`` checks the ports it will bind: with a list whose first entry is another host's address (an
    aggregator-only host's config), the one-line error says to run only the aggregator."""
    from dualgait.preflight import PreflightError, check_ports, planned_tcp_binds

    cfg = load_config(None, [f"endpoints.scores=[{A}, {B}]"])
    uses = planned_tcp_binds(cfg, components=("inference",))
    assert [(u.host, u.port, u.key) for u in uses] == [("10.0.0.11", 5703, "endpoints.scores")]
    assert planned_tcp_binds(cfg, components=("aggregator",)) == [
        u for u in planned_tcp_binds(cfg) if u.key.startswith("aggregator.")]  # the aggregator binds no scores
    with pytest.raises(PreflightError) as info:
        check_ports(uses)
    message = str(info.value)
    assert message.startswith("cannot bind 10.0.0.11:5703: ") and "\n" not in message
    assert message.endswith("(the window scores, endpoints.scores); on a host that runs only the aggregator: "
                            "dualgait run --only aggregator")


# --------------------------------------------------------------------------- walkway owners


def test_the_first_endpoint_serves_a_walkway_and_another_is_refused_in_one_logged_line(caplog):
    caplog.set_level(logging.INFO, logger="aggregator.sources")
    clock = Clock()
    owners = WalkwayOwners([A, B], clock_s=clock)
    assert not owners.all_heard
    assert owners.admit("main", A) == "claimed"
    assert owners.admit("bay3", B) == "claimed" and owners.all_heard
    assert owners.admit("main", A) == "served"
    for _ in range(5):
        clock.s += 1.0
        assert owners.admit("main", B) == "refused"
        assert owners.admit("main", A) == "served"  # the owner goes on
    assert owners.admit("bay3", B) == "served"     # B's other walkway is not affected
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"walkway main from {B} refused: {A} serves it (1 messages refused; walkway ids must be unique "
                      "across inference hosts: give one host's pair another walkway_id or walkways[].id)"]
    clock.s += LOG_EVERY_S - 5.0
    assert owners.admit("main", A) == "served"
    clock.s += 5.0
    assert owners.admit("main", B) == "refused"
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2  # at most once per LOG_EVERY_S
    snap = owners.snapshot()
    assert snap["endpoints"] == [{"endpoint": A, "walkways": ["main"], "messages": 8, "silent_s": 5.0},
                                 {"endpoint": B, "walkways": ["bay3"], "messages": 8, "silent_s": 0.0}]
    assert snap["refused"] == [{"walkway": "main", "endpoint": B, "owner": A, "messages": 6}]


def test_a_walkway_moves_to_another_endpoint_once_its_own_was_silent_about_it(caplog):
    caplog.set_level(logging.WARNING, logger="aggregator.sources")
    clock = Clock()
    owners = WalkwayOwners([A, B], clock_s=clock)
    owners.admit("main", A)
    clock.s += RELEASE_AFTER_S - 0.1
    assert owners.admit("main", B) == "refused"  # A spoke about it 29.9 s ago: still A's
    clock.s += 0.1
    assert owners.admit("main", B) == "claimed"  # 30 s: A gave it up
    assert owners.admit("main", A) == "refused" and owners.owner == {"main": B}
    assert any(r.getMessage().startswith(f"walkway main is now served by {B} (nothing about it from {A} for 30 s)")
               for r in caplog.records)


def test_hub_admission_reaches_metrics_and_live_view():
    clock_ns = [0]
    metrics, live = AggregatorMetrics(), LiveState()
    hub = AggregatorHub(AggregatorConfig(), store=None, metrics=metrics, live=live, now_ns=lambda: clock_ns[0],
                        endpoints=[A, B])
    sample = metrics.registry.get_sample_value
    assert sample("dualgait_scores_endpoint_messages_total", {"endpoint": B}) == 0.0  # exported before any message
    assert hub.admit("main", A) and hub.admit("main", A) and not hub.admit("main", B) and hub.admit("bay3", B)
    clock_ns[0] = round(RELEASE_AFTER_S * 1e9)
    assert hub.admit("bay3", A)  # bay3 moves to A: B was silent about it for 30 s
    assert sample("dualgait_scores_endpoint_messages_total", {"endpoint": A}) == 3.0
    assert sample("dualgait_scores_endpoint_messages_total", {"endpoint": B}) == 2.0
    assert sample("dualgait_walkway_refused_messages_total", {"walkway": "main", "endpoint": B}) == 1.0
    assert sample("dualgait_walkway_source", {"walkway": "main", "endpoint": A}) == 1.0
    assert sample("dualgait_walkway_source", {"walkway": "bay3", "endpoint": B}) == 0.0
    assert sample("dualgait_walkway_source", {"walkway": "bay3", "endpoint": A}) == 1.0
    hub.tick(clock_ns[0], 0)
    sources = live.snapshot()["pipeline"]["sources"]
    assert [(e["endpoint"], e["walkways"], e["messages"]) for e in sources["endpoints"]] == [
        (A, ["main", "bay3"], 3), (B, [], 2)]
    assert sources["refused"] == [{"walkway": "main", "endpoint": B, "owner": A, "messages": 1}]


# --------------------------------------------------------------------------- sockets


def test_score_sources_yield_each_message_with_its_endpoint(tmp_path):
    ctx = zmq.Context()
    try:
        pubs = [pub_socket(ctx, "tcp://127.0.0.1:*", hwm=100) for _ in range(2)]
        endpoints = [p.getsockopt_string(zmq.LAST_ENDPOINT) for p in pubs]
        sources = ScoreSources(ctx, endpoints, hwm=100)
        assert sources.endpoints == endpoints
        got: list[tuple[str, int]] = []
        deadline = time.monotonic() + 10
        while len({e for e, _ in got}) < 2 and time.monotonic() < deadline:  # slow joiners: publish until heard
            for i, pub in enumerate(pubs):
                pub.send_multipart(encode_window(score(i, walkway=f"w{i}")))
            pubs[0].send_multipart([b"not a message"])
            got += [(e, m.window) for e, m, _ in sources.poll(50)]
        assert {e: {w for f, w in got if f == e} for e in endpoints} == {endpoints[0]: {0}, endpoints[1]: {1}}
        assert sources.malformed >= 1
    finally:
        ctx.destroy(linger=0)


def test_curve_applies_to_each_scores_endpoint_with_its_own_server_key(tmp_path):
    """Two inference hosts with their own key pairs, both admitting the aggregator's key: the aggregator hears both
    with server_keys scores.0 / scores.1; with the keys swapped it hears neither; ``scores`` is the key of every
    entry without its own."""
    keys = {name: tmp_path / name for name in ("host-a", "host-b", "agg")}
    for folder in keys.values():
        generate_key_pair(folder, "host")
    for host in ("host-a", "host-b"):
        assert main(["keys", "allow", str(keys["agg"] / "host.key"), "--dir", str(keys[host]), "--as", "agg"]) == 0
    (keys["agg"] / "a.key").write_bytes((keys["host-a"] / "host.key").read_bytes())
    (keys["agg"] / "b.key").write_bytes((keys["host-b"] / "host.key").read_bytes())
    ctx = zmq.Context()
    host_ctxs = [zmq.Context(), zmq.Context()]  # one process (context, ZAP handler) per inference host
    curves: list[Curve] = []
    pubs: list[zmq.Socket] = []
    try:
        for host, host_ctx in zip(("host-a", "host-b"), host_ctxs, strict=True):
            cfg = load_config(None, ["security.curve=true", f"security.keys_dir={keys[host]}",
                                     "endpoints.scores=tcp://127.0.0.1:*", "aggregator.publish_endpoint=null"])
            curves.append(Curve.for_process(cfg, binds=("scores",)))
            pubs.append(pub_socket(host_ctx, "tcp://127.0.0.1:*", hwm=100, curve=curves[-1]))
        endpoints = [p.getsockopt_string(zmq.LAST_ENDPOINT) for p in pubs]

        def heard(server_keys: str, seconds: float) -> set[str]:
            cfg = load_config(None, ["security.curve=true", f"security.keys_dir={keys['agg']}",
                                     f"endpoints.scores=[{endpoints[0]}, {endpoints[1]}]",
                                     f"security.server_keys={server_keys}", "aggregator.publish_endpoint=null"])
            curve = Curve.for_process(cfg, connects=tuple(scores_names(cfg)))
            sources = ScoreSources(ctx, endpoints, hwm=100, curve=curve)
            got: set[str] = set()
            deadline = time.monotonic() + seconds
            while len(got) < 2 and time.monotonic() < deadline:
                for pub in pubs:
                    pub.send_multipart(encode_window(score(0)))
                got |= {e for e, _m, _rx in sources.poll(50)}
            for receiver in sources.receivers.values():
                receiver.sock.close(linger=0)
            return got

        assert heard("{scores.0: a.key, scores.1: b.key}", 8.0) == set(endpoints)
        assert heard("{scores.0: b.key, scores.1: a.key}", 1.5) == set()
        assert heard("{scores: a.key}", 3.0) == {endpoints[0]}  # scores.1 falls back to scores: A's key, wrong
    finally:
        for curve in curves:
            curve.close()
        for c in (ctx, *host_ctxs):
            c.destroy(linger=0)


def _wait_sources(url: str, done, timeout_s: float = 20) -> dict:
    """The live view's ``pipeline.sources`` once ``done(sources)`` holds."""
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(url.rstrip("/") + "/api/state", timeout=5) as response:
            sources = json.loads(response.read())["pipeline"]["sources"]
        if done(sources):
            return sources
        assert time.monotonic() < deadline, sources
        time.sleep(0.1)


def test_one_aggregator_process_serves_two_endpoints_and_refuses_a_walkway_clash(tmp_path, capfd):
    """The real ``dualgait aggregate`` subscribed to two publishers: each endpoint's walkway stored apart; endpoint B
    also publishing walkway east (served by A) is refused with one ERROR line and nothing of it stored; the live
    view names both endpoints and the refusal; ``dualgait session end --walkway west`` ends B's walkway's session;
    exit_on_end_of_stream waits for both endpoints' ends."""
    config = write_config(tmp_path, session={"gone_timeout_s": 120.0})
    cfg = yaml.safe_load(config.read_text())
    endpoints = [f"ipc://{tmp_path}/scores-a.sock", f"ipc://{tmp_path}/scores-b.sock"]
    cfg["endpoints"] = {"scores": endpoints}
    config.write_text(yaml.safe_dump(cfg))
    ctx = zmq.Context()
    pubs = [pub_socket(ctx, e, hwm=1000) for e in endpoints]
    agg = AggregatorProcess(config, tmp_path)
    try:
        counters = {"frames_sent": 1, "frames_dropped_injected": 0, "send_drops": 0, "reconnects": 0}
        pubs[0].send_multipart(encode_heartbeat(Heartbeat("front", "connected", counters=counters, walkway="east")))
        _wait_sources(agg.url(), lambda s: s["endpoints"][0]["walkways"] == ["east"])
        for i in range(3):
            pubs[0].send_multipart(encode_window(score(i, 0.8, stream="a-1", walkway="east")))
            pubs[1].send_multipart(encode_window(score(i, 0.2, stream="b-1", walkway="west")))
            pubs[1].send_multipart(encode_window(score(i, 0.5, stream="b-2", walkway="east")))  # the clash
        sources = _wait_sources(agg.url(), lambda s: sum(e["messages"] for e in s["endpoints"]) == 10)
        assert [(e["endpoint"], e["walkways"], e["messages"]) for e in sources["endpoints"]] == [
            (endpoints[0], ["east"], 4), (endpoints[1], ["west"], 6)]
        assert sources["refused"] == [{"walkway": "east", "endpoint": endpoints[1], "owner": endpoints[0],
                                       "messages": 3}]
        ended = subprocess.run([sys.executable, "-m", "dualgait", "session", "end", "--walkway", "west", "--url",
                                agg.url(), "--config", str(config)], capture_output=True, text=True, timeout=30)
        assert ended.stdout.strip() == "ended session 2 (walkway west)", ended.stderr  # B's walkway, ended here
        pubs[0].send_multipart(encode_eos(EndOfStream(source="inference", walkway="east")))
        pubs[1].send_multipart(encode_eos(EndOfStream(source="inference", walkway="east")))  # refused as well
        time.sleep(1.0)
        assert agg.proc.poll() is None  # west has not ended
        pubs[1].send_multipart(encode_eos(EndOfStream(source="inference", walkway="west")))
        assert agg.wait() == 0
    finally:
        agg.kill()
        ctx.destroy(linger=0)
    errors = [line for line in capfd.readouterr().err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and errors[0].endswith(
        f"walkway east from {endpoints[1]} refused: {endpoints[0]} serves it (1 messages refused; walkway ids must "
        "be unique across inference hosts: give one host's pair another walkway_id or walkways[].id)")
    store = open_store(load_config(config).aggregator.store, read_only=True)  # east only from A, west from B
    sessions = {s["walkway"]: s for s in store.list_sessions()}
    assert sorted(sessions) == ["east", "west"]
    assert [w["window"] for w in store.windows(sessions["east"]["id"])] == [0, 1, 2]
    assert sessions["east"]["cumulative_p_asd"] == pytest.approx(0.8)  # none of B's 0.5 windows
    assert sessions["west"]["cumulative_p_asd"] == pytest.approx(0.2)
    assert (sessions["east"]["end_reason"], sessions["west"]["end_reason"]) == ("end_of_stream", "operator")
