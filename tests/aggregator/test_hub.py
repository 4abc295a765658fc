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
from aggregator.store import SessionStore, SqliteStore
from aggregator.web import LiveServer
from core.messages import DECISIONS, SESSION_END_REASONS, CameraState, EndOfStream, decode, encode_session

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
    store = SqliteStore(tmp_path / "s.db")
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
    store = SqliteStore(tmp_path / "s.db")
    hub = _hub(tmp_path, store)
    for i in range(3):
        hub.window(score(i, 0.5), rx(i))
    store.close()
    store = SqliteStore(tmp_path / "s.db")
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
        assert status == 200 and json.loads(body) == {"ok": True, "ended": 1, "walkway": "main"}
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


def test_the_last_windows_crops_reach_the_state_and_the_crops_route(tmp_path):
    import cv2
    import numpy as np

    from core.messages import Preview

    def preview(view: str, seq: int, kind: str, grey: int) -> Preview:
        jpeg = cv2.imencode(".jpg", np.full((16, 128, 3), grey, np.uint8))[1].tobytes()
        return Preview(view=view, seq=seq, capture_mono_ns=seq, width=128, height=16, box_xyxy=None, track_id=None,
                       jpeg=jpeg, preview_width=128, preview_height=16, kind=kind)

    clock = [rx(4)]
    live = LiveState(chart_windows=50, clock_ns=lambda: clock[0])
    hub = AggregatorHub(AggregatorConfig(), store=None, metrics=AggregatorMetrics(), live=live, now_ns=lambda: 0)
    assert live.snapshot()["crops"] == {"front": None, "side": None}
    hub.window(score(3, 0.7), rx(3))
    hub.preview(preview("front", 3, "crops", 200), rx(3))
    hub.preview(preview("side", 3, "crops", 100), rx(3))
    hub.preview(preview("front", 77, "frame", 50), rx(3))  # a camera frame keeps to the camera panel
    state = live.snapshot()
    assert state["crops"]["front"] == {"window": 3, "width": 128, "height": 16, "age_s": 1.0, "stale": False}
    assert state["crops"]["side"]["window"] == 3 and state["cameras"]["front"]["preview"]["seq"] == 77
    assert state["chart"][-1]["window"] == 3  # the page's caption takes the window's verdict from here
    server = LiveServer(live, "127.0.0.1", 0)
    try:
        status, body = _get(f"{server.url}api/crops/side.jpg")
        assert status == 200 and int(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).mean()) == 100
        status, body = _get(f"{server.url}api/preview/front.jpg")
        assert status == 200 and int(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).mean()) == 50
        assert _get(f"{server.url}api/crops/top.jpg")[0] == 404
        clock[0] = rx(10)
        assert json.loads(_get(f"{server.url}api/state")[1])["crops"]["front"]["stale"] is True
    finally:
        server.close()


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
    for expected in ('dualgait_windows_total{validity="valid",walkway="main"} 1.0',
                     'dualgait_windows_total{validity="skew",walkway="main"} 1.0',
                     'dualgait_window_frames_total{view="front",walkway="main"} 2.0',
                     'dualgait_stage_seconds_count{stage="model",walkway="main"} 2.0',
                     'dualgait_window_latency_seconds_bucket{le="0.25",walkway="main"} 2.0',
                     'dualgait_window_latency_seconds_bucket{le="0.1",walkway="main"} 1.0',
                     'dualgait_sessions_started_total{walkway="main"} 1.0',
                     'dualgait_sessions_ended_total{reason="end_of_stream",walkway="main"} 1.0',
                     'dualgait_session_open{walkway="main"} 0.0',
                     'dualgait_camera_send_drops_total{view="front",walkway="main"} 3.0',
                     'dualgait_camera_frames_sent_total{view="front",walkway="main"} 120.0',
                     'dualgait_camera_state{state="reconnecting",view="front",walkway="main"} 1.0',
                     'dualgait_inference_seq_gaps_total{view="side",walkway="main"} 4.0',
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


# ---------------------------------------------------------------------------- several walkways


def _two_walkways(hub: AggregatorHub, windows: int = 3) -> list[str]:
    """Interleaved windows of walkway A (stream a-1, p 0.9, 0.8, ...) and B (stream b-1, p 0.1, 0.2, ...)."""
    lines = []
    for i in range(windows):
        for walkway, stream, p in (("A", "a-1", 0.9 - 0.1 * i), ("B", "b-1", 0.1 + 0.1 * i)):
            lines += hub.window(score(i, p, stream=stream, walkway=walkway), rx(i)).lines
    return lines


def test_single_walkway_console_lines_have_no_prefix(tmp_path):
    hub = _hub(tmp_path)
    lines = hub.window(score(0, 0.5), rx(0)).lines + hub.camera(CameraState(view="front", state="connected")).lines
    assert lines[0] == "session 1 started (stream stream-1)" and lines[1].startswith("window   0")
    assert lines[2].startswith("camera front: connected")
    out = hub.end_of_stream(EndOfStream(source="inference"))
    assert out.summary["walkway"] == "main" and "walkways" not in out.summary and hub.all_streams_ended
    assert out.lines[-1].startswith("NOTE:")


def test_two_walkways_interleaved_keep_their_own_sessions(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    hub = _hub(tmp_path, store)
    lines = _two_walkways(hub)
    # the first window came before B was seen: unprefixed; from then on every line names its walkway
    assert lines[:3] == ["session 1 started (stream a-1)", lines[1], "[B] session 2 started (stream b-1)"]
    assert lines[1].startswith("window   0") and lines[3].startswith("[B] window   0")
    assert all(line.startswith(("[A] ", "[B] ")) for line in lines[2:])
    assert not any("ended" in line for line in lines)  # neither walkway ended the other's session
    assert store.open_sessions() == [(1, "A"), (2, "B")]
    assert store.get_session(1)["cumulative_p_asd"] == pytest.approx(0.8)
    assert store.get_session(2)["cumulative_p_asd"] == pytest.approx(0.2)
    assert [w["walkway"] for w in store.windows(2)] == ["B"] * 3
    out = hub.camera(CameraState(view="side", state="stalled", walkway="B"))
    assert out.lines[0].startswith("[B] camera side: stalled")
    # the end of A's stream ends A's session only; summary.json holds each walkway's summary
    out = hub.end_of_stream(EndOfStream(source="inference", walkway="A"))
    assert [(u.walkway, u.session_id, u.end_reason) for u in out.updates] == [("A", 1, "end_of_stream")]
    assert out.lines[0].startswith("[A] session 1 ended (end_of_stream): 3 valid of 3 windows; cumulative p_asd 0.800")
    assert out.lines[1] == "[A] summary: 3 valid of 3 windows; cumulative p_asd 0.800"
    assert list(out.summary["walkways"]) == ["A"] and out.summary["walkways"]["A"]["session"] == "a-1"
    assert not hub.all_streams_ended  # B's stream goes on
    assert store.open_sessions() == [(2, "B")]
    hub.window(score(3, 0.4, stream="b-1", walkway="B"), rx(3))
    summary = hub.stop_summary()  # the aggregator stops while B's stream goes on
    assert list(summary["walkways"]) == ["A", "B"] and summary["walkways"]["B"]["windows"] == 4
    assert summary["walkways"]["B"]["cumulative_p_asd"] == pytest.approx(0.25)
    assert summary["walkways"]["B"]["end_reason"] == "aggregator stopped" and hub.stop_summary() is None
    assert [r["walkway"] for r in hub.window(score(4, 0.4, stream="b-1", walkway="B"), rx(4)).records] == ["B"]
    hub.end_of_stream(EndOfStream(source="inference", walkway="B"))
    assert hub.all_streams_ended
    hub.window(score(0, 0.5, stream="a-2", walkway="A"), rx(5))  # A starts a new stream
    assert not hub.all_streams_ended


def test_restart_carries_on_with_the_open_session_of_each_walkway(tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    _two_walkways(_hub(tmp_path, store), windows=2)
    store.close()
    store = SqliteStore(tmp_path / "s.db")
    again = _hub(tmp_path, store, now_ns=rx(2))
    assert sorted(again.tracker.open_sessions) == ["A", "B"] and again.tracker.next_id == 3
    assert again.live.snapshot("B")["session"]["id"] == 2 and len(again.live.snapshot("A")["chart"]) == 2
    out = again.window(score(2, 0.3, stream="b-1", walkway="B"), rx(2))
    assert out.lines[0].startswith("[B] window   2")  # both walkways are known again: lines keep their prefix
    assert [(u.event, u.session_id) for u in out.updates] == [("window", 2)]
    assert store.get_session(2)["windows"] == 3 and store.get_session(2)["cumulative_p_asd"] == pytest.approx(0.2)
    assert store.get_session(1)["windows"] == 2


def test_live_api_and_operator_end_per_walkway(tmp_path):
    hub = _hub(tmp_path)
    _two_walkways(hub)
    hub.camera(CameraState(view="front", state="reconnecting", attempt=3, walkway="B", counters=COUNTERS))
    server = LiveServer(hub.live, "127.0.0.1", 0)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            hub.tick(rx(2), 0)
            time.sleep(0.02)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        state = json.loads(_get(f"{server.url}api/state")[1])  # default: the first walkway seen
        assert state["walkway"] == "A" and state["walkways"] == ["A", "B"]
        assert state["session"]["id"] == 1 and [c["p_asd"] for c in state["chart"]] == pytest.approx([0.9, 0.8, 0.7])
        assert state["cameras"]["front"]["state"] == "unknown"
        state = json.loads(_get(f"{server.url}api/state?walkway=B")[1])
        assert state["walkway"] == "B" and state["session"]["id"] == 2
        assert state["session"]["cumulative_p_asd"] == pytest.approx(0.2)
        assert state["cameras"]["front"]["lost"] and state["cameras"]["front"]["attempt"] == 3
        assert state["pipeline"]["windows"] == 6  # the pipeline panel counts every walkway
        status, body = _get(f"{server.url}api/state?walkway=nowhere")
        assert status == 404 and "unknown walkway" in json.loads(body)["error"]
        assert _get(f"{server.url}api/state?walkway=a%20b")[0] == 400
        assert _get(f"{server.url}api/preview/front.jpg?walkway=B")[0] == 404
        # operator end: several open, none named -> 409 naming them; then B by name, A as the only one left
        end = f"{server.url}api/session/end"
        operator = {"X-Dualgait-Operator": "1"}
        status, body = _get(end, headers=operator, data=b"{}")
        assert status == 409 and json.loads(body)["walkways"] == ["A", "B"]
        assert "several walkways have an open session (A, B)" in json.loads(body)["error"]
        status, body = _get(f"{end}?walkway=B", headers=operator, data=b"{}")
        assert status == 200 and json.loads(body) == {"ok": True, "ended": 2, "walkway": "B"}
        assert json.loads(_get(f"{server.url}api/state?walkway=B")[1])["session"]["end_reason"] == "operator"
        assert json.loads(_get(f"{server.url}api/state?walkway=A")[1])["session"]["status"] == "open"
        assert json.loads(_get(end, headers=operator, data=b"{}")[1]) == {"ok": True, "ended": 1, "walkway": "A"}
        assert json.loads(_get(f"{end}?walkway=B", headers=operator, data=b"{}")[1])["ended"] is None
    finally:
        stop.set()
        thread.join()
        server.close()


def test_metrics_carry_the_walkway(tmp_path):
    hub = _hub(tmp_path)
    _two_walkways(hub, windows=1)
    hub.camera(CameraState(view="side", state="connected", walkway="B", counters=COUNTERS))
    hub.end_of_stream(EndOfStream(source="inference", walkway="B", stats={"seq_gaps_front": 5}))
    port = hub.metrics.serve("127.0.0.1", 0)
    try:
        lines = set(_get(f"http://127.0.0.1:{port}/metrics")[1].decode().splitlines())
    finally:
        hub.metrics.close()
    for expected in ('dualgait_windows_total{validity="valid",walkway="A"} 1.0',
                     'dualgait_windows_total{validity="valid",walkway="B"} 1.0',
                     'dualgait_session_open{walkway="A"} 1.0', 'dualgait_session_open{walkway="B"} 0.0',
                     'dualgait_sessions_ended_total{reason="end_of_stream",walkway="B"} 1.0',
                     'dualgait_camera_frames_sent_total{view="side",walkway="B"} 120.0',
                     'dualgait_camera_state{state="connected",view="side",walkway="B"} 1.0',
                     'dualgait_inference_seq_gaps_total{view="front",walkway="B"} 5.0',
                     'dualgait_streams_ended_total{walkway="B"} 1.0'):
        assert expected in lines, expected
