"""Offline scoring (``dualgait score``), the naive baseline and ``dualgait bench e2e`` on a 3-s pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualgait.cli import main
from offline.score import ReplayClock, decoded_pair

SMALL = ["--set", "inference.crop.input_px=112"]  # a quarter of the model's work: the tests check the path


def test_decoded_pair_hands_over_both_views_in_capture_time_order(short_pair) -> None:
    frames = list(decoded_pair(*short_pair, queue_frames=4))
    assert len(frames) == 150
    times = [f.capture_mono_ns for f in frames]
    assert times == sorted(times)
    assert [f.view for f in frames[:4]] == ["front", "side", "front", "side"]
    assert frames[-1].seq == 74 and frames[-1].capture_mono_ns == pytest.approx(74 * 40_000_000, abs=1_000_000)


def test_decoded_pair_reports_an_unreadable_file(tmp_path: Path, short_pair) -> None:
    from capture.sources import SourceError

    with pytest.raises(SourceError, match="video not found"):
        list(decoded_pair(short_pair[0], str(tmp_path / "missing.mp4")))


def test_replay_clock_runs_on_the_recording_timeline() -> None:
    clock = ReplayClock()
    clock.mark(5_000_000_000)
    assert 5_000_000_000 <= clock() < 5_500_000_000


def test_score_command_prints_and_writes_the_live_output(short_pair, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scored"
    assert main(["score", *short_pair, "--untrained", "--output", str(out), *SMALL]) == 0
    text = capsys.readouterr().out
    assert text.count("window ") >= 3 and "untrained model: scores are meaningless" in text
    assert "x real time)" in text.splitlines()[-1]
    records = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
    assert [r["window"] for r in records] == [0, 1, 2]
    assert sum(r["valid"] for r in records) >= 2
    assert all(set(r["timings_ms"]) >= {"detect", "crop", "wait", "model", "publish"} for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["offline"]["frames"] == 150 and summary["offline"]["speed_x_real_time"] > 0
    assert summary["valid_windows"] == sum(r["valid"] for r in records)
    assert summary["end_reason"] == "end of recording" and "error" not in summary


def test_score_command_saves_what_it_scored(short_pair, tmp_path: Path, capsys) -> None:
    """--save-video: an annotated MP4 per view (the 24 sampled frames of 3 windows, at 8 fps, in the recording's
    628 x 628) and one contact sheet per window (header + 2 rows of 8 crops of 112 px)."""
    import cv2

    from inference.annotate import SHEET_HEADER_PX

    out = tmp_path / "seen"
    assert main(["score", *short_pair, "--untrained", "--quiet", "--save-video", str(out), *SMALL]) == 0
    assert f"wrote annotated videos and 3 window contact sheets to {out}" in capsys.readouterr().out
    for view in ("front", "side"):
        cap = cv2.VideoCapture(str(out / f"{view}.mp4"))
        assert cap.isOpened()
        size = (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cap.get(cv2.CAP_PROP_FPS))
        frames = 0
        while cap.read()[0]:
            frames += 1
        assert (frames, size) == (24, (628, 628, 8.0)), view
    sheets = sorted((out / "windows").iterdir())
    assert [p.name for p in sheets] == ["window_0000.png", "window_0001.png", "window_0002.png"]
    assert all(cv2.imread(str(p)).shape == (SHEET_HEADER_PX + 2 * 112, 8 * 112, 3) for p in sheets)


def test_save_video_folder_that_cannot_be_written_is_one_line(short_pair, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for command in (["score", *short_pair, "--untrained"], ["run"]):
        assert main([*command, "--save-video", str(blocker / "videos")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"dualgait {command[0]}: error: cannot write the video folder")
        assert "choose another with --save-video DIR" in err[0]


def test_score_command_missing_video_is_one_line(tmp_path: Path, short_pair, capsys) -> None:
    assert main(["score", short_pair[0], str(tmp_path / "nope.mp4"), "--untrained"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dualgait score: error: side video not found: {tmp_path / 'nope.mp4'}"]


def test_naive_baseline_runs_yolo_on_every_frame(short_pair) -> None:
    from bench.naive import run_naive
    from dualgait.config import load_config

    cfg = load_config(None, ["inference.crop.input_px=112"])
    windows = list(run_naive(cfg, *short_pair, pace=False))
    assert [w.window for w in windows] == [0, 1, 2]
    assert all(w.valid and 0.0 <= w.p_asd <= 1.0 for w in windows)
    assert all(w.timings_ms["detect"] > 0 and w.timings_ms["model"] > 0 for w in windows)


def test_bench_e2e_writes_json_and_markdown_with_every_stage(short_pair, tmp_path: Path) -> None:
    """Both modes, the 'before' arms and both baselines, briefly: the report holds percentiles per stage, the
    peak RSS of every process and the targets."""
    out = tmp_path / "e2e.json"
    args = ["bench", "e2e", "--output", str(out), "--front", short_pair[0], "--side", short_pair[1],
            "--duration-s", "5", "--baseline-duration-s", "3", "--offline-passes", "1", *SMALL]
    assert main(args) == 0
    report = json.loads(out.read_text())
    results = report["results"]
    assert set(results) == {"offline", "offline_before", "naive_offline", "realtime", "realtime_before",
                            "naive_realtime"}
    assert results["offline"]["windows"] == 3 and results["naive_offline"]["windows"] == 3
    assert results["offline_before"]["windows"] == 3 and "torch-cpu-bf16" in results["offline_before"]["model"]
    rt = results["realtime"]
    assert rt["pipeline_exit"] == 0 and rt["windows"] >= 3
    assert set(rt["peak_rss_mb"]) == {"capture-front", "capture-side", "inference", "aggregator"}
    assert all(mb > 20 for mb in rt["peak_rss_mb"].values())
    assert results["realtime_before"]["pipeline_exit"] == 0
    assert set(rt["stages_ms"]) == {"receive", "pair", "detect", "crop", "wait", "model", "publish"}
    assert rt["latency_ms"]["p95"] > 0 and rt["stages_ms"]["detect"]["p50"] > 0
    assert set(report["targets"]) == {"realtime_p95_latency_ms", "realtime_keeps_up", "realtime_receive_lag_p99_ms",
                                      "offline_speed_x_real_time", "offline_vs_naive"}
    md = out.with_suffix(".md").read_text()
    assert "| end to end |" in md and "naive baseline" in md and report["meta"]["machine"]["cores_available"] >= 1


def test_bench_walkways_compares_batched_with_one_at_a_time(short_pair, tmp_path: Path) -> None:
    """1 and 2 walkways over 2.5 s of the pair: the same windows either way, batch statistics that add up."""
    out = tmp_path / "walkways.json"
    args = ["bench", "walkways", "--output", str(out), "--front", short_pair[0], "--side", short_pair[1],
            "--walkways", "2,1", "--duration-s", "2.5", *SMALL]
    assert main(args) == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [r["walkways"] for r in rows] == [1, 2]
    assert report["peak_rss_mb"] > 100  # the models are loaded in this process
    for row in rows:
        n, one, bat = row["walkways"], row["one_at_a_time"], row["batched"]
        assert one["windows"] == bat["windows"] == 2 * n  # 2.5 s: two windows per walkway
        assert one["walkway_seconds"] == bat["walkway_seconds"] == pytest.approx(2.5 * n, abs=0.05)
        assert row["ratio"] == pytest.approx(bat["walkway_s_per_s"] / one["walkway_s_per_s"], rel=1e-2)
        batching = bat["batching"]
        # every valid window went through the model once, in some batch; every detection in some call
        sizes = batching["model_batch_sizes"]  # JSON: {"batch size": calls}
        assert sum(int(k) * v for k, v in sizes.items()) == batching["model_windows"] == bat["windows_valid"]
        assert batching["detect_samples"] >= batching["detect_calls"] >= 1
        assert bat["latency_ms"]["p50"] > 0
    md = out.with_suffix(".md").read_text()
    assert "| 2 |" in md and "Most walkways kept in real time" in md


def test_bench_e2e_realtime_with_two_walkways_reports_each(short_pair, tmp_path: Path) -> None:
    """Six processes (four captures) in real time for 4 s: both walkways' windows arrive, counted apart."""
    out = tmp_path / "e2e2.json"
    args = ["bench", "e2e", "--output", str(out), "--front", short_pair[0], "--side", short_pair[1],
            "--modes", "realtime", "--no-baseline", "--walkways", "2", "--duration-s", "4", *SMALL]
    assert main(args) == 0
    rt = json.loads(out.read_text())["results"]["realtime"]
    assert rt["walkways"] == 2 and rt["windows_expected"] == 6 and rt["pipeline_exit"] == 0
    assert set(rt["per_walkway"]) == {"main", "w1"}
    assert all(w["windows"] >= 2 for w in rt["per_walkway"].values())
    assert sum(w["windows"] for w in rt["per_walkway"].values()) == rt["windows"]


@pytest.mark.parametrize("precision", ["auto", "int8"])
def test_int8_calibration_on_a_truncated_recording(monkeypatch, caplog, tmp_path: Path, precision: str) -> None:
    """A recording that stops decoding before the calibration's windows: under auto a warning without the file
    name (scoring then reports the file), for an explicit int8 the error."""
    import offline.clips
    from capture.sources import SourceError
    from dualgait.config import load_config
    from dualgait.score import prepare_engine

    def truncated(*_args, **_kwargs) -> None:
        raise SourceError("video is truncated or corrupt: decoding stopped after frame 3 of 380: /x/patient.mp4")

    monkeypatch.setattr(offline.clips, "ensure_int8_engine", truncated)
    cfg = load_config(None, [f"inference.model.precision={precision}"])
    pair = [tmp_path / "front.mp4", tmp_path / "side.mp4"]
    for path in pair:
        path.write_bytes(b"")  # calibration_pair only looks for the files
    if precision == "int8":
        with pytest.raises(SourceError, match="truncated"):
            prepare_engine(cfg, *map(str, pair))
        return
    with caplog.at_level("WARNING", logger="dualgait.score"):
        prepare_engine(cfg, *map(str, pair))
    assert [r.getMessage() for r in caplog.records] == [
        "int8 calibration not possible: the recording stopped decoding before enough windows; the model runs in fp32"]


def test_score_command_on_one_side_camera(short_pair, tmp_path: Path, capsys) -> None:
    """Single-view mode: ``--side FILE`` alone runs the pipeline on the side view with a single_side model; windows,
    summary, output and the annotated video hold the side view only."""
    import cv2

    from inference.annotate import SHEET_HEADER_PX

    out, seen = tmp_path / "scored", tmp_path / "seen"
    assert main(["score", "--side", short_pair[1], "--untrained", "--output", str(out), "--save-video", str(seen),
                 *SMALL]) == 0
    text = capsys.readouterr().out
    found = next(line for line in text.splitlines() if line.startswith("patient found in"))
    assert found.endswith(" side samples") and "front" not in found
    records = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
    assert [r["window"] for r in records] == [0, 1, 2] and sum(r["valid"] for r in records) >= 2
    assert all(r["visible"] == {"side": 8} and list(r["frames"]) == ["side"] for r in records if r["valid"])
    assert all(r["p_front"] is None and r["p_side"] is None for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"].startswith("single_side fusion") and summary["offline"]["frames"] == 75
    assert summary["inference_stats"]["frames_front"] == 0 and summary["inference_stats"]["frames_side"] == 75
    assert sorted(p.name for p in seen.iterdir()) == ["side.mp4", "windows"]  # no front video: no front camera
    sheets = sorted((seen / "windows").iterdir())
    assert len(sheets) == 3 and cv2.imread(str(sheets[0])).shape == (SHEET_HEADER_PX + 112, 8 * 112, 3)


@pytest.mark.parametrize(("args", "needle"), [
    (["{front}"], "give two recordings (FRONT SIDE), or one camera's with --side FILE or --front FILE"),
    (["{front}", "{side}", "--side", "{side}"], "give the recordings either as FRONT SIDE or with --front/--side"),
    (["--side", "{side}", "--set", "inference.model.variant=late"],
     "inference.model.variant late takes the front + side view(s) but the cameras are side"),
    (["--side", "{side}", "--set", "inference.model.weights={late}"],
     "the model takes the front + side view(s) but the cameras are side: a single-view model is needed"),
])
def test_score_command_views_mistakes_are_one_line(short_pair, capsys, args, needle) -> None:
    """A recording mix the command cannot take, or a model whose views are not the recording's: one line, exit 2,
    before any model loads (the late checkpoint is the shipped demo model)."""
    from training.demo_model import PACKAGED_DIR

    values = {"front": short_pair[0], "side": short_pair[1], "late": str(PACKAGED_DIR / "demo_model.pt")}
    assert main(["score", *(a.format(**values) for a in args)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dualgait score: error: ") and needle in err[0], err
