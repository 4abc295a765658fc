"""Tests for ScoreAggregator and summary_lines (aggregator/scoring.py): cumulative score, records, lines, summary."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from aggregator.scoring import NOT_CLINICAL_NOTE, UNTRAINED_NOTE, ScoreAggregator, summary_lines
from core.messages import CameraState, EndOfStream, WindowScore

S = 1_000_000_000


def _score(window: int, p_asd: float | None = 0.5, *, session: str = "walk-1", reason: str | None = None,
           latency_ms: float = 50.0, untrained: bool = False, model: str = "late fusion (test weights)",
           p_front: float | None = None, p_side: float | None = None, stride_s: float = 1.0) -> WindowScore:
    valid = reason is None
    start_ns = 100 * S + round(window * stride_s * S)
    return WindowScore(
        session=session, window=window, frames={"front": [8 * window], "side": [8 * window + 1]},
        t_start_mono_ns=start_ns, t_end_mono_ns=start_ns + 875_000_000,
        t_start_wall_ns=1_700_000_000 * S + (start_ns - 100 * S), valid=valid, reason=reason,
        reason_code=None if valid else "patient_missing", walk=0 if valid else None,
        p_asd=p_asd if valid else None,
        p_front=(p_asd if p_front is None else p_front) if valid else None,
        p_side=(p_asd if p_side is None else p_side) if valid else None,
        view_weights=None, visible={"front": 8, "side": 8 if valid else 3}, max_skew_ms=2.0, timings_ms={"model": 12.0},
        latency_ms=latency_ms, model=model, untrained=untrained, duration_s=1.0, stride_s=stride_s,
    )


def test_cumulative_is_mean_over_valid_windows_only():
    """valid 0.2, invalid, valid 0.6 -> cumulative 0.4; invalid windows never count."""
    agg = ScoreAggregator()
    r0, _ = agg.update(_score(0, 0.2))
    r1, _ = agg.update(_score(1, reason="no patient: side 3/8"))
    r2, _ = agg.update(_score(2, 0.6))
    assert r0["cumulative_p_asd"] == pytest.approx(0.2)
    assert r1["cumulative_p_asd"] == pytest.approx(0.2)  # unchanged by the invalid window
    assert r2["cumulative_p_asd"] == pytest.approx(0.4)
    assert [r["valid_windows_so_far"] for r in (r0, r1, r2)] == [1, 1, 2]


def test_cumulative_is_none_before_any_valid_window():
    """Only invalid windows so far: no cumulative score (not 0)."""
    agg = ScoreAggregator()
    record, _ = agg.update(_score(0, reason="gap: 3 samples missing"))
    assert record["cumulative_p_asd"] is None
    assert agg.finish(None)["cumulative_p_asd"] is None


def test_record_fields():
    """A record carries the window's identity, validity, probabilities, cumulative score and latency."""
    agg = ScoreAggregator()
    agg.update(_score(0, 0.3))
    record, _ = agg.update(_score(1, 0.7, p_front=0.6, p_side=0.8, latency_ms=61.5))
    assert record["session"] == "walk-1"
    assert record["window"] == 1
    assert record["valid"] is True
    assert record["reason"] is None
    assert record["p_asd"] == 0.7
    assert record["p_front"] == 0.6
    assert record["p_side"] == 0.8
    assert record["cumulative_p_asd"] == pytest.approx(0.5)
    assert record["latency_ms"] == 61.5
    assert record["t_start_s"] == 1.0  # relative to the session's first window
    assert record["frames"] == {"front": [8], "side": [9]}
    assert record["model"] == "late fusion (test weights)"
    assert record["untrained"] is False


def test_invalid_record_fields():
    """An invalid window's record keeps its reason and null probabilities."""
    agg = ScoreAggregator()
    record, line = agg.update(_score(4, reason="no patient: front 2/8"))
    assert record["valid"] is False
    assert record["reason"] == "no patient: front 2/8"
    assert (record["p_asd"], record["p_front"], record["p_side"]) == (None, None, None)
    assert "no patient: front 2/8" in line
    assert "invalid" in line


def test_console_line_of_valid_window():
    """The line shows window number, p_asd, per-view scores, cumulative score and latency."""
    agg = ScoreAggregator()
    _, line = agg.update(_score(3, 0.25, p_front=0.125, p_side=0.375, latency_ms=42.4))
    assert line.startswith("window   3")
    assert "p_asd 0.250" in line
    assert "front 0.125" in line and "side 0.375" in line
    assert "cumulative 0.250 over 1 s" in line
    assert "latency 42 ms" in line
    assert UNTRAINED_NOTE not in line


def test_console_line_is_unchanged_for_the_default_one_second_stride():
    """With 1-s windows every second (the default) the line is exactly what it always was."""
    agg = ScoreAggregator()
    agg.update(_score(0, 0.25))
    agg.update(_score(1, reason="no patient: side 3/8"))
    _, line = agg.update(_score(2, 0.75, latency_ms=42.4))
    assert line == ("window   2  t=  2.0s  p_asd 0.750 (front 0.750, side 0.750)  cumulative 0.500 over 2 s  "
                    "latency 42 ms")


def test_times_and_over_n_s_follow_a_half_second_stride():
    """inference.window.stride_s 0.5: t= steps by 0.5 s and "over N s" counts 0.5 s per valid window (the old
    1-s assumption said "over 1 s", "over 2 s", "over 3 s" after the same windows)."""
    agg = ScoreAggregator()
    lines, records = [], []
    for window in range(5):
        invalid = "no patient: side 3/8" if window == 2 else None
        record, line = agg.update(_score(window, 0.5, reason=invalid, stride_s=0.5))
        lines.append(line)
        records.append(record)
    assert [re.search(r"t= *[0-9.]+s", line)[0] for line in lines] == [
        "t=  0.0s", "t=  0.5s", "t=  1.0s", "t=  1.5s", "t=  2.0s"]
    assert [r["t_start_s"] for r in records] == [0.0, 0.5, 1.0, 1.5, 2.0]
    overs = [re.search(r"over [0-9.]+ s", line) for line in lines]
    assert [m[0] if m else None for m in overs] == ["over 0.5 s", "over 1 s", None, "over 1.5 s", "over 2 s"]
    assert lines[2].startswith("window   2  t=  1.0s  invalid")  # an invalid window adds no time
    assert all((r["duration_s"], r["stride_s"]) == (1.0, 0.5) for r in records)


def test_untrained_model_is_flagged_on_every_line():
    """Scores of an untrained model are marked meaningless on the console, valid or not."""
    agg = ScoreAggregator()
    _, valid_line = agg.update(_score(0, 0.5, untrained=True))
    _, invalid_line = agg.update(_score(1, reason="no patient: side 0/8", untrained=True))
    assert "untrained model: scores are meaningless" in valid_line
    assert "untrained model: scores are meaningless" in invalid_line


def test_finish_summary():
    """finish() counts windows, valid windows, reasons by kind, and reports latency percentiles."""
    agg = ScoreAggregator()
    agg.update(_score(0, 0.2, latency_ms=10.0))
    agg.update(_score(1, reason="no patient: front 3/8", latency_ms=20.0))
    agg.update(_score(2, reason="no patient: side 1/8", latency_ms=30.0))
    agg.update(_score(3, reason="gap: 2 samples missing", latency_ms=40.0))
    agg.update(_score(4, 0.6, latency_ms=50.0))
    eos = EndOfStream(source="inference", reason="end of recording", stats={"samples": 40.0})
    summary = agg.finish(eos)
    assert summary["session"] == "walk-1"
    assert summary["windows"] == 5
    assert summary["valid_windows"] == 2
    assert summary["cumulative_p_asd"] == pytest.approx(0.4)
    assert summary["model"] == "late fusion (test weights)"
    assert summary["untrained"] is False
    assert summary["invalid_reasons"] == {"no patient": 2, "gap": 1}
    # nearest-rank on 5 sorted values: p50 -> index 2, p95 -> index round(3.8) = 4
    assert summary["latency_ms"] == {"p50": 30.0, "p95": 50.0, "max": 50.0, "mean": 30.0}
    assert summary["end_reason"] == "end of recording"
    assert summary["inference_stats"] == {"samples": 40.0}
    assert summary["notes"] == [NOT_CLINICAL_NOTE]


def test_finish_notes_untrained_only_when_untrained():
    """The untrained note is in the summary exactly when the model is untrained."""
    trained = ScoreAggregator()
    trained.update(_score(0, 0.5))
    assert UNTRAINED_NOTE not in trained.finish(None)["notes"]
    untrained = ScoreAggregator()
    untrained.update(_score(0, 0.5, untrained=True))
    summary = untrained.finish(None)
    assert UNTRAINED_NOTE in summary["notes"]
    assert NOT_CLINICAL_NOTE in summary["notes"]
    assert summary["untrained"] is True


def test_finish_without_eos_or_windows():
    """finish(None) with nothing received gives an empty but well-formed summary."""
    summary = ScoreAggregator().finish(None)
    assert summary["windows"] == 0
    assert summary["valid_windows"] == 0
    assert summary["cumulative_p_asd"] is None
    assert summary["latency_ms"] == {"p50": None, "p95": None, "max": None, "mean": None}
    assert summary["end_reason"] == "aggregator stopped"
    assert summary["inference_stats"] == {}
    lines = summary_lines(summary)
    assert lines[0] == "summary: 0 valid of 0 windows; cumulative p_asd   -  "


def test_sessions_are_kept_apart():
    """Windows of different sessions never mix in cumulative scores, counts or time origins."""
    agg = ScoreAggregator()
    agg.update(_score(0, 0.2, session="a"))
    record_b, _ = agg.update(_score(5, 0.8, session="b"))
    record_a, _ = agg.update(_score(1, 0.4, session="a"))
    assert record_b["cumulative_p_asd"] == pytest.approx(0.8)
    assert record_b["t_start_s"] == 0.0  # b's own first window
    assert record_a["cumulative_p_asd"] == pytest.approx(0.3)
    assert record_a["valid_windows_so_far"] == 2
    assert agg.streams["a"].windows == 2
    assert agg.streams["b"].windows == 1
    summary = agg.finish(None)  # the current (most recently updated) session
    assert summary["session"] == "a"
    assert summary["windows"] == 2
    assert summary["cumulative_p_asd"] == pytest.approx(0.3)


def test_summary_lines():
    """summary_lines reports counts, model, latency, invalid reasons, visibility and every note."""
    agg = ScoreAggregator()
    agg.update(_score(0, 0.2, untrained=True, model="late fusion (untrained)"))
    agg.update(_score(1, reason="no patient: side 1/8", untrained=True, model="late fusion (untrained)"))
    eos = EndOfStream(source="inference", stats={"samples": 16, "visible_front": 16, "visible_side": 9})
    lines = summary_lines(agg.finish(eos))
    assert lines[0] == "summary: 1 valid of 2 windows; cumulative p_asd 0.200"
    assert lines[1] == "model: late fusion (untrained)"
    assert lines[2].startswith("latency")
    assert "invalid windows: no patient x1" in lines
    assert "patient found in 16/16 front and 9/16 side samples" in lines
    assert f"NOTE: {UNTRAINED_NOTE}" in lines
    assert f"NOTE: {NOT_CLINICAL_NOTE}" in lines


def test_synthetic_model_is_labelled_on_every_line_and_in_the_summary():
    """Scores of a model trained on simulated walkers say so on each line and in the summary notes."""
    agg = ScoreAggregator()
    _, line = agg.update(replace(_score(0, 0.9), synthetic=True))
    _, invalid = agg.update(replace(_score(1, reason="no patient: side 0/8"), synthetic=True))
    assert "[model trained on simulated walkers]" in line and "[model trained on simulated walkers]" in invalid
    summary = agg.finish(None)
    assert summary["synthetic"] is True
    assert any("simulated walkers" in note for note in summary["notes"])
    assert "NOTE: model trained on simulated walkers only" in "\n".join(summary_lines(summary))


def test_walkways_are_kept_apart_in_records_and_summaries():
    """Records name their walkway; an end of stream summarises its own walkway's stream and cameras."""
    agg = ScoreAggregator()
    record_a, _ = agg.update(replace(_score(0, 0.2, session="a"), walkway="A"))
    agg.update(replace(_score(0, 0.8, session="b"), walkway="B"))
    agg.camera_event(CameraState(view="front", state="stalled", walkway="B"))
    agg.camera_event(CameraState(view="front", state="connected", walkway="A"))
    assert record_a["walkway"] == "A"
    summary = agg.finish(EndOfStream(source="inference", walkway="B"))
    assert (summary["walkway"], summary["session"], summary["cumulative_p_asd"]) == ("B", "b", 0.8)
    assert summary["camera_states"] == {"front": "stalled"}
    assert [e["walkway"] for e in summary["camera_events"]] == ["B"]
    assert agg.finish(None, "A")["session"] == "a" and agg.finish(None)["session"] == "b"  # None: the latest


def test_a_window_without_frames_is_placed_by_its_index_and_stride():
    """No frame, no capture time (t_start 0): its t= comes from the window index, never from 0 - t0, which put
    it about -100 s back; a stream whose first window has no frame still times the later ones from capture."""
    def frameless(window: int) -> WindowScore:
        score = _score(window, reason="no frames in either view", stride_s=0.5)
        score.t_start_mono_ns = score.t_end_mono_ns = 0
        score.frames = {"front": [], "side": []}
        return score

    agg = ScoreAggregator()
    records = [agg.update(_score(0, 0.3, stride_s=0.5))[0], agg.update(frameless(1))[0],
               agg.update(_score(2, 0.5, stride_s=0.5))[0]]
    assert [r["t_start_s"] for r in records] == [0.0, 0.5, 1.0]
    late = ScoreAggregator()
    first, line = late.update(frameless(4))
    assert first["t_start_s"] == 0.0 and "t=  0.0s" in line
    assert [late.update(_score(k, 0.5, stride_s=0.5))[0]["t_start_s"] for k in (5, 6)] == [0.5, 1.0]
