"""The aggregator without sockets (aggregator/hub.py) with its live server and metrics endpoint over HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from agg_helpers import S, rx, score

from aggregator.config import AggregatorConfig, SessionConfig
from aggregator.hub import AggregatorHub
from aggregator.live import LiveState
from aggregator.metrics import AggregatorMetrics
from aggregator.sessions import END_REASONS
from aggregator.stats import DECISION_TEXT
from aggregator.store import SessionStore
from aggregator.web import LiveServer
from dualgait.messages import DECISIONS, SESSION_END_REASONS, CameraState, EndOfStream, decode, encode_session

COUNTERS = {"frames_sent": 120, "frames_dropped_injected": 0, "send_drops": 3, "reconnects": 1}


def _hub(tmp_path, store: SessionStore | None = None, now_ns: int = 0) -> AggregatorHub:
    cfg = AggregatorConfig(session=SessionConfig(gone_timeout_s=3.0, min_valid_windows=3))
    return AggregatorHub(cfg, store=store, metrics=AggregatorMetrics(), live=LiveState(chart_windows=50),
                         now_ns=lambda: now_ns)


def _get(url: str, headers: dict | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_message_constants_match_the_stages():
    assert set(DECISIONS) == set(DECISION_TEXT)
    assert SESSION_END_REASONS == END_REASONS


def test_windows_flow_to_console_store_updates_and_live_view(tmp_path):
    store = SessionStore(tmp_path / "s.db")
    hub = _hub(tmp_path, store)
    out = hub.window(score(0, code="patient_missing", visible=(0, 0)), rx(0))  # before the patient appears
    assert out.updates == [] and len(out.lines) == 1 and "session_id" not in out.records[0]
    out = hub.window(score(1, 0.8, synthetic=True), rx(1))
    assert out.lines[0] == "session 1 started (stream stream-1)" and out.lines[1].startswith("window   1")
    assert [u.event for u in out.updates] == ["started", "window"]
    assert out.records[0]["session_id"] == 1
    for i in (2, 3):
        out = hub.window(score(i, 0.9, synthetic=True), rx(i))
    update = decode(encode_session(out.updates[-1]))  # what consumers receive
    assert update.valid_windows == 3 and update.cumulative_p_asd == pytest.approx(0.8666667)
    assert update.window == {"window": 3, "t_s": 2.0, "valid": True, "reason_code": None, "p_asd": 0.9}
    assert store.get_session(1)["windows"] == 3
    snap = hub.live.snapshot()
    assert [c["window"] for c in snap["chart"]] == [1, 2, 3]
    assert snap["session"]["id"] == 1 and snap["pipeline"]["by_validity"] == {"patient_missing": 1, "valid": 3}
    assert any("simulated walkers" in note for note in snap["notes"])
    out = hub.end_of_stream(EndOfStream(source="inference", stats={"seq_gaps_front": 2}))
    assert out.updates[0].event == "ended" and out.updates[0].end_reason == "end_of_stream"
    assert out.lines[0].startswith("session 1 ended (end_of_stream): 3 valid of 3 windows; cumulative p_asd 0.867")
    assert out.summary["windows"] == 4 and store.open_session_ids() == []


def test_restart_carries_on_with_the_open_session(tmp_path):
    store = SessionStore(tmp_path / "s.db")
    hub = _hub(tmp_path, store)
    for i in range(3):
        hub.window(score(i, 0.5), rx(i))
    store.close()
    store = SessionStore(tmp_path / "s.db")
    again = _hub(tmp_path, store, now_ns=rx(3))
    assert again.live.snapshot()["session"]["windows"] == 3 and len(again.live.snapshot()["chart"]) == 3
    out = again.window(score(3, 0.9), rx(3))
    assert [u.event for u in out.updates] == ["window"] and out.updates[0].session_id == 1
    assert store.get_session(1)["windows"] == 4 and store.get_session(1)["valid_windows"] == 4


def test_gone_timeout_and_operator_end_over_http(tmp_path):
    hub = _hub(tmp_path)
    hub.window(score(0, 0.5), rx(0))
    assert hub.tick(rx(0) + 2 * S, 0).updates == []
    server = LiveServer(hub.live, "127.0.0.1", 0)
    stop = threading.Event()

    def loop() -> None:  # what the process loop does between messages
        while not stop.is_set():
            hub.tick(rx(0) + 2 * S, 0)
            time.sleep(0.02)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        url = f"{server.url}api/session/end"
        assert _get(url, data=b"{}")[0] == 403  # no operator header: refused
        status, body = _get(url, headers={"X-Dualgait-Operator": "1"}, data=b"{}")
        assert status == 200 and json.loads(body) == {"ok": True, "ended": 1}
        assert json.loads(_get(url, headers={"X-Dualgait-Operator": "1"}, data=b"{}")[1])["ended"] is None
        assert _get(server.url, headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
        status, page = _get(server.url)
        assert status == 200 and b"<title>dualgait live view</title>" in page
        state = json.loads(_get(f"{server.url}api/state")[1])
        assert state["session"]["end_reason"] == "operator"
        assert _get(f"{server.url}api/preview/front.jpg")[0] == 404
    finally:
        stop.set()
        thread.join()
        server.close()
    hub.window(score(5, 0.5), rx(5))
    out = hub.tick(rx(5) + 3 * S + 1, 0)
    assert [u.end_reason for u in out.updates] == ["gone"]


def test_metrics_endpoint(tmp_path):
    hub = _hub(tmp_path)
    hub.camera(CameraState(view="front", state="reconnecting", attempt=2, counters=COUNTERS))
    hub.window(score(0, 0.5, latency_ms=120.0), rx(0))
    hub.window(score(1, code="skew"), rx(1))
    hub.tick(rx(1), 7)
    hub.end_of_stream(EndOfStream(source="inference", stats={"seq_gaps_side": 4}))
    port = hub.metrics.serve("127.0.0.1", 0)
    try:
        text = _get(f"http://127.0.0.1:{port}/metrics")[1].decode()
    finally:
        hub.metrics.close()
    lines = set(text.splitlines())
    for expected in ('dualgait_windows_total{validity="valid"} 1.0', 'dualgait_windows_total{validity="skew"} 1.0',
                     'dualgait_window_frames_total{view="front"} 2.0',
                     'dualgait_stage_seconds_count{stage="model"} 2.0',
                     'dualgait_window_latency_seconds_bucket{le="0.25"} 2.0',
                     'dualgait_window_latency_seconds_bucket{le="0.1"} 1.0',
                     'dualgait_sessions_started_total 1.0', 'dualgait_sessions_ended_total{reason="end_of_stream"} 1.0',
                     'dualgait_session_open 0.0', 'dualgait_camera_send_drops_total{view="front"} 3.0',
                     'dualgait_camera_frames_sent_total{view="front"} 120.0',
                     'dualgait_camera_state{state="reconnecting",view="front"} 1.0',
                     'dualgait_inference_seq_gaps_total{view="side"} 4.0',
                     'dualgait_aggregator_malformed_messages_total 7.0'):
        assert expected in lines, expected
    assert "p_asd" not in text  # scores are patient data: not exported


def test_ports_in_use_are_one_line_errors(tmp_path):
    server = LiveServer(LiveState(), "127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match=f"cannot serve the live view on 127.0.0.1:{server.port}"):
            LiveServer(LiveState(), "127.0.0.1", server.port)
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{server.port}"):
            AggregatorMetrics().serve("127.0.0.1", server.port)
    finally:
        server.close()
