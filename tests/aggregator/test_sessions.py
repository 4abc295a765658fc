"""Tests for walk sessions (aggregator/sessions.py): start, end by time-out / operator / new stream or walk."""

from __future__ import annotations

import pytest
from agg_helpers import T0, S, rx, score

from aggregator.config import SessionConfig
from aggregator.sessions import AmbiguousWalkway, SessionTracker, session_summary
from aggregator.stats import NOT_ENOUGH_DATA


def _tracker(**cfg) -> SessionTracker:
    return SessionTracker(SessionConfig(**{"gone_timeout_s": 3.0, "min_valid_windows": 3, **cfg}),
                          wall_clock_ns=lambda: 42)


def _kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_session_starts_only_when_the_patient_is_seen_in_both_views():
    tracker = _tracker()
    assert tracker.window(score(0, code="patient_missing", visible=(8, 0)), rx(0)) == []
    assert tracker.window(score(1, code="too_few_frames", visible=(0, 0)), rx(1)) == []
    assert tracker.current is None and tracker.outside_windows == 2
    events = tracker.window(score(2, code="patient_missing", visible=(3, 2)), rx(2))  # seen, though invalid
    assert _kinds(events) == ["started", "window"]
    session = events[0].session
    assert session.id == 1 and session.stream == "stream-1" and session.started_wall_ns == 42
    assert events[1].record["t_s"] == 0.0 and events[1].record["index"] == 0


def test_cumulative_interval_and_decision_per_window():
    tracker = _tracker()
    scores = [score(0, 0.8), score(1, 0.9), score(2, code="skew"), score(3, 0.85)]
    records = [tracker.window(s, rx(s.window))[-1].record for s in scores]
    assert [r["decision"] for r in records[:3]] == [NOT_ENOUGH_DATA] * 3
    assert records[0]["cumulative_p_asd"] == pytest.approx(0.8) and records[0]["ci_low"] is None
    assert records[2]["valid"] is False and records[2]["valid_windows"] == 2  # invalid: unchanged count
    last = records[3]
    assert last["valid_windows"] == 3 and last["cumulative_p_asd"] == pytest.approx(0.85)
    assert last["decision"] == "asd_like" and last["ci_low"] < 0.85 < last["ci_high"]
    summary = session_summary(tracker.current, tracker.cfg)
    assert summary["windows"] == 4 and summary["invalid_by_reason"] == {"skew": 1}
    assert summary["status"] == "open" and summary["decision_text"].startswith("ASD-like")
    assert summary["notes"][0].startswith("research tool")


def test_gone_on_the_capture_clock_when_windows_show_nobody():
    """Windows keep coming but none sees the patient: the session ends once the gap exceeds the time-out."""
    tracker = _tracker(gone_timeout_s=3.0)
    tracker.window(score(0, 0.5), rx(0))
    for i in (1, 2, 3):  # 1..3 s after the last sighting (t_end of window 0 = 0.875 s)
        events = tracker.window(score(i, code="patient_missing", visible=(0, 0)), rx(i))
        assert _kinds(events) == ["window"], i
    events = tracker.window(score(4, code="patient_missing", visible=(0, 0)), rx(4))
    assert _kinds(events) == ["ended"]
    assert events[0].session.end_reason == "gone" and events[0].session.windows == 4
    assert tracker.current is None
    events = tracker.window(score(5, 0.4), rx(5))  # back: a new session
    assert _kinds(events) == ["started", "window"] and events[0].session.id == 2


def test_gone_on_the_receive_clock_when_nothing_arrives():
    tracker = _tracker(gone_timeout_s=3.0)
    tracker.window(score(0, 0.5), rx(0))
    assert tracker.tick(rx(0) + 3 * S) == []
    events = tracker.tick(rx(0) + 3 * S + 1)
    assert _kinds(events) == ["ended"] and events[0].session.end_reason == "gone"
    assert tracker.tick(rx(0) + 10 * S) == []


def test_operator_end_and_new_stream_and_new_walk():
    tracker = _tracker()
    tracker.window(score(0, 0.5), rx(0))
    ended = tracker.end("operator")
    assert _kinds(ended) == ["ended"] and ended[0].session.end_reason == "operator"
    assert tracker.end("operator") == []  # nothing open
    tracker.window(score(1, 0.5, walk=0), rx(1))
    events = tracker.window(score(2, 0.5, walk=1), rx(2))
    assert _kinds(events) == ["ended", "started", "window"]
    assert events[0].session.end_reason == "new_walk" and events[1].session.walk == 1
    events = tracker.window(score(3, 0.5, walk=1, stream="stream-2"), rx(3))
    assert _kinds(events) == ["ended", "started", "window"] and events[0].session.end_reason == "new_stream"
    assert events[1].session.stream == "stream-2" and events[1].session.id == 4
    with pytest.raises(ValueError):
        tracker.end("because")


def test_resume_carries_on_with_the_same_scores_and_ids():
    tracker = _tracker()
    for i, p in enumerate([0.2, 0.4, 0.6]):
        tracker.window(score(i, p), rx(i))
    session = tracker.current
    again = _tracker()
    again.resume(session, rx(3))
    assert again.next_id == 2
    record = again.window(score(3, 0.8), rx(3))[-1].record
    assert record["index"] == 3 and record["valid_windows"] == 4
    assert record["cumulative_p_asd"] == pytest.approx(0.5) and record["t_s"] == 3.0
    assert again.current.last_seen_mono_ns == T0 + 3 * S + 875_000_000


def test_a_window_without_frames_is_placed_after_the_previous_one():
    """Inference sends t_start_mono_ns 0 for a window with no frame at all; it must not land at a negative time."""
    from dataclasses import replace

    tracker = _tracker()
    tracker.window(score(0, 0.5), rx(0))
    tracker.window(score(1, 0.5), rx(1))
    empty = replace(score(3, code="too_few_frames", visible=(0, 0)), t_start_mono_ns=0, t_end_mono_ns=0)
    record = tracker.window(empty, rx(3))[-1].record
    assert record["t_s"] == 3.0 and record["index"] == 2
    assert tracker.current.last_seen_mono_ns == T0 + S + 875_000_000  # not moved by the empty window


def test_session_times_follow_a_half_second_stride():
    """inference.window.stride_s 0.5: the windows' t_s step by 0.5 s, their records carry the window's duration
    and stride, and a window without frames is placed by index * stride (the old 1-s stride put window 3 at
    2.5 s, after window 1 at 0.5 s)."""
    tracker = _tracker()
    records = [tracker.window(score(i, 0.5, stride_s=0.5), rx(i))[-1].record for i in range(2)]
    from dataclasses import replace

    empty = replace(score(3, code="too_few_frames", visible=(0, 0), stride_s=0.5), t_start_mono_ns=0,
                    t_end_mono_ns=0)
    records.append(tracker.window(empty, rx(3))[-1].record)
    records.append(tracker.window(score(4, 0.5, stride_s=0.5), rx(4))[-1].record)
    assert [r["t_s"] for r in records] == [0.0, 0.5, 1.5, 2.0]
    assert all((r["duration_s"], r["stride_s"]) == (1.0, 0.5) for r in records)


def test_window_duration_and_stride_are_stored_with_the_record():
    """The default 1-s windows every second: duration_s and stride_s 1.0 in the record (the export reads them)."""
    record = _tracker().window(score(0, 0.5), rx(0))[-1].record
    assert (record["duration_s"], record["stride_s"]) == (1.0, 1.0)


# ---------------------------------------------------------------------------- several walkways


def _ab(window: int, p_a: float, p_b: float, **kw):
    """Window ``window`` of walkway A (stream a-1) and of walkway B (stream b-1), in that order."""
    return (score(window, p_a, stream="a-1", walkway="A", **kw), score(window, p_b, stream="b-1", walkway="B", **kw))


def test_interleaved_walkways_get_their_own_sessions_and_scores():
    """Windows of two walkways arrive interleaved, each with its own stream id: neither ends the other's session
    (no new_stream), and each cumulative score is over its own windows only."""
    tracker = _tracker()
    kinds = []
    for i, (p_a, p_b) in enumerate([(0.9, 0.1), (0.8, 0.2), (0.7, 0.3)]):
        for s in _ab(i, p_a, p_b):
            kinds += _kinds(tracker.window(s, rx(i)))
    assert kinds == ["started", "window", "started", "window"] + ["window"] * 4
    a, b = tracker.open_sessions["A"], tracker.open_sessions["B"]
    assert (a.id, a.walkway, a.stream, a.windows) == (1, "A", "a-1", 3)
    assert (b.id, b.walkway, b.stream, b.windows) == (2, "B", "b-1", 3)
    assert a.score.mean == pytest.approx(0.8) and b.score.mean == pytest.approx(0.2)
    assert session_summary(a, tracker.cfg)["walkway"] == "A"
    with pytest.raises(ValueError, match="several walkways"):
        _ = tracker.current


def test_session_ends_apply_within_one_walkway():
    tracker = _tracker(gone_timeout_s=3.0)
    for s in _ab(0, 0.5, 0.5, walk=0):
        tracker.window(s, rx(0))
    # new_walk on A only
    events = tracker.window(score(1, 0.5, stream="a-1", walkway="A", walk=1), rx(1))
    assert _kinds(events) == ["ended", "started", "window"] and events[0].session.walkway == "A"
    assert events[0].session.end_reason == "new_walk" and tracker.open_sessions["B"].id == 2
    # new_stream on B only
    events = tracker.window(score(2, 0.5, stream="b-2", walkway="B"), rx(2))
    assert _kinds(events) == ["ended", "started", "window"] and events[0].session.id == 2
    assert events[0].session.end_reason == "new_stream" and tracker.open_sessions["A"].id == 3
    # end of stream of A (inference names the walkway): B stays open
    events = tracker.end("end_of_stream", "A")
    assert [(e.session.walkway, e.session.end_reason) for e in events] == [("A", "end_of_stream")]
    assert list(tracker.open_sessions) == ["B"]
    assert tracker.end("end_of_stream", "A") == []  # nothing open on A any more


def test_gone_counts_per_walkway():
    """B keeps seeing its patient while A's has left: only A's session ends as gone (both clocks)."""
    tracker = _tracker(gone_timeout_s=3.0)
    for s in _ab(0, 0.5, 0.5):
        tracker.window(s, rx(0))
    for i in range(1, 5):  # A shows nobody, B its patient
        tracker.window(score(i, code="patient_missing", visible=(0, 0), stream="a-1", walkway="A"), rx(i))
        events = tracker.window(score(i, 0.5, stream="b-1", walkway="B"), rx(i))
        assert _kinds(events) == ["window"]
    assert list(tracker.open_sessions) == ["B"]
    events = tracker.tick(rx(4) + 3 * S + 1)  # then nothing arrives at all: B ends too
    assert [(e.session.walkway, e.session.end_reason) for e in events] == [("B", "gone")]
    events = tracker.window(score(9, 0.5, stream="a-1", walkway="A"), rx(9))
    assert _kinds(events) == ["started", "window"] and events[0].session.id == 3


def test_operator_end_names_the_walkway_when_several_are_open():
    tracker = _tracker()
    tracker.window(score(0, 0.5, stream="a-1", walkway="A"), rx(0))
    assert tracker.resolve_walkway(None) == "A"  # the only open one
    tracker.window(score(0, 0.5, stream="b-1", walkway="B"), rx(0))
    with pytest.raises(AmbiguousWalkway, match=r"several walkways have an open session \(A, B\)"):
        tracker.end("operator")
    events = tracker.end("operator", "B")
    assert [(e.session.walkway, e.session.end_reason) for e in events] == [("B", "operator")]
    assert tracker.end("operator", "B") == [] and tracker.end("operator", "nowhere") == []
    assert [e.session.walkway for e in tracker.end("operator")] == ["A"]  # the only one left
    assert tracker.resolve_walkway(None) is None


def test_resume_two_walkways():
    tracker = _tracker()
    for s in _ab(0, 0.2, 0.6):
        tracker.window(s, rx(0))
    again = _tracker()
    for session in tracker.open_sessions.values():
        again.resume(session, rx(1))
    assert again.next_id == 3 and set(again.open_sessions) == {"A", "B"}
    record = again.window(score(1, 0.4, stream="b-1", walkway="B"), rx(1))[-1].record
    assert record["session_id"] == 2 and record["walkway"] == "B" and record["index"] == 1
    assert record["cumulative_p_asd"] == pytest.approx(0.5)
