"""What was scored, drawn (inference.annotate): boxes and banner on a frame, contact sheets, the recorder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from test_pipeline import FakeEngine, FakeTracker, _every_sample, _frames, _push_pairs

from core.messages import WindowScore
from inference.annotate import (
    BANNER_BGR,
    MISSING_TILE_BGR,
    PATIENT_BGR,
    PERSON_BGR,
    SHEET_HEADER_PX,
    FrameMarks,
    VideoRecorder,
    attach_recorders,
    contact_sheet,
    draw_frame,
    verdict_text,
)
from inference.detector import Detection, PerViewDetector
from inference.pipeline import InferencePipeline

PATIENT = Detection((40.0, 100.0, 100.0, 220.0), 0.9, 1)
OTHER = Detection((200.0, 100.0, 260.0, 220.0), 0.8, 2)


def _score(**kwargs) -> WindowScore:
    base = dict(session="s", window=3, frames={"front": [], "side": []}, t_start_mono_ns=0, t_end_mono_ns=0,
                t_start_wall_ns=0, valid=True, reason=None, reason_code=None, walk=0, p_asd=0.625, p_front=None,
                p_side=None, view_weights=None, visible={"front": 8, "side": 8}, max_skew_ms=0.0, timings_ms={},
                latency_ms=0.0, model="m", untrained=False, duration_s=1.0, stride_s=1.0)
    return WindowScore(**{**base, **kwargs})


def _is(image: np.ndarray, x: int, y: int, bgr: tuple[int, int, int]) -> bool:
    return tuple(int(v) for v in image[y, x]) == bgr


def test_the_patient_is_highlighted_and_the_other_person_is_not() -> None:
    frame = np.zeros((240, 320, 3), dtype=np.uint8)
    marks = FrameMarks(people=(PATIENT, OTHER), patient=PATIENT, lines=("front  window 3", "p_asd 0.625"), valid=True)
    out = draw_frame(frame, marks)
    assert out.shape == frame.shape and not frame.any()  # a copy: the pipeline's frame is untouched
    # the patient's four edges are amber, thick (2 px at 240 px high)
    for x, y in ((40, 160), (41, 160), (100, 160), (70, 220), (70, 219)):
        assert _is(out, x, y, PATIENT_BGR), (x, y)
    # the other person's edges are grey, 1 px, and no amber pixel lies on or inside its box
    for x, y in ((200, 160), (260, 160), (230, 220)):
        assert _is(out, x, y, PERSON_BGR), (x, y)
    assert not _is(out, 201, 160, PERSON_BGR)
    other = out[95:225, 195:265].reshape(-1, 3)
    assert not (other == PATIENT_BGR).all(axis=1).any()
    # the banner: the verdict's colour across the top, the frame below it untouched where nothing is drawn
    assert _is(out, 318, 2, BANNER_BGR[True])
    assert not out[120:200, 120:180].any()
    pending = draw_frame(frame, replace(marks, valid=False))
    assert _is(pending, 318, 2, BANNER_BGR[False])


def test_a_grey_frame_without_people_gets_only_the_banner() -> None:
    frame = np.full((120, 160), 7, dtype=np.uint8)
    out = draw_frame(frame, FrameMarks(people=(), patient=None, lines=("side  window 0",), valid=None))
    assert out.shape == (120, 160, 3)
    assert _is(out, 158, 2, BANNER_BGR[None]) and (out[60:] == 7).all()


def test_contact_sheet_is_one_row_of_crops_per_view_under_the_header() -> None:
    rng = np.random.default_rng(0)
    crops = {view: [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(8)] for view in ("front", "side")}
    rows: dict[str, list[np.ndarray | None]] = {view: list(tiles) for view, tiles in crops.items()}
    rows["side"][5] = None
    sheet = contact_sheet(rows, ["window 3  p_asd 0.625", "model input"], tile_px=32)
    assert sheet.shape == (SHEET_HEADER_PX + 2 * 32, 8 * 32, 3)
    grid = sheet[SHEET_HEADER_PX:]
    for r, view in enumerate(("front", "side")):
        for c in range(8):
            tile = grid[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32]
            if (view, c) == ("side", 5):
                assert _is(tile, 0, 0, MISSING_TILE_BGR)
            else:
                assert np.array_equal(tile, crops[view][c]), (view, c)
    assert sheet[:SHEET_HEADER_PX].any()  # the header's text


def test_verdict_says_what_model_scored_or_why_not() -> None:
    assert verdict_text(_score()) == "p_asd 0.625"
    assert verdict_text(_score(untrained=True)) == "p_asd 0.625 - untrained model, meaningless"
    assert verdict_text(_score(synthetic=True)) == "p_asd 0.625 - synthetic demo model, not clinical"
    invalid = _score(valid=False, p_asd=None, reason_code="patient_missing", reason="patient not found in 3/8")
    assert verdict_text(invalid) == "not scored: patient_missing (patient not found in 3/8)"


def _pipeline() -> InferencePipeline:
    clock = iter(range(10**12, 10**13, 1_000_000))
    trackers = {"front": FakeTracker(), "side": FakeTracker()}
    return InferencePipeline(_every_sample(), detector=PerViewDetector(trackers), engine=FakeEngine(),
                             clock_ns=lambda: next(clock))


def _frame_count(path: Path) -> tuple[int, int, int]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    n = 0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    while cap.read()[0]:
        n += 1
    cap.release()
    return n, *size


def test_recorder_writes_each_windows_samples_and_contact_sheet(tmp_path: Path) -> None:
    pipe = _pipeline()
    assert pipe.observers == []  # nothing is recorded unless a recorder is attached
    recorder = attach_recorders({"main": pipe}, tmp_path / "video", per_stream=False)["main"]
    front, side = _frames("front", 76), _frames("side", 76, hidden={3})  # window 0: no patient at its 2nd sample
    scores = _push_pairs(pipe, front, side, lambda seq: 1_000_000)
    pipe.end("test")
    recorder.close()
    assert recorder.error is None and [s.valid for s in scores] == [False, True, True]
    folder = tmp_path / "video"
    # 3 windows of 8 samples, at the sample rate, in the frames' size (48 x 64)
    assert _frame_count(folder / "front.mp4") == (24, 48, 64)
    assert _frame_count(folder / "side.mp4") == (24, 48, 64)
    assert cv2.VideoCapture(str(folder / "front.mp4")).get(cv2.CAP_PROP_FPS) == 8.0
    sheets = sorted(p.name for p in (folder / "windows").iterdir())
    assert sheets == ["window_0000.png", "window_0001.png", "window_0002.png"]
    sheet = cv2.imread(str(folder / "windows" / "window_0001.png"))
    assert sheet.shape == (SHEET_HEADER_PX + 2 * 224, 8 * 224, 3)
    # a scored window's sheet holds exactly the model's input (PNG is lossless)
    clips = pipe.engine.clips[0]
    for r, clip in enumerate(clips):
        for c in range(8):
            tile = sheet[SHEET_HEADER_PX + r * 224:SHEET_HEADER_PX + (r + 1) * 224, c * 224:(c + 1) * 224]
            assert np.array_equal(tile, clip[c]), (r, c)
    # the invalid window: its side sample without the patient is a "no crop" tile, the others are crops
    bad = cv2.imread(str(folder / "windows" / "window_0000.png"))
    assert bad.shape == sheet.shape
    side_tiles = [bad[SHEET_HEADER_PX + 224:, c * 224:(c + 1) * 224] for c in range(8)]
    assert [c for c, t in enumerate(side_tiles) if _is(t, 0, 0, MISSING_TILE_BGR)] == [1]


def test_each_live_stream_gets_its_own_folder(tmp_path: Path) -> None:
    pipe = _pipeline()
    recorder = VideoRecorder(tmp_path, sample_rate_hz=8.0, frames=8, per_stream=True)
    pipe.observers.append(recorder)
    sessions = []
    for _ in range(2):
        sessions.append(pipe.session)
        _push_pairs(pipe, _frames("front", 26), _frames("side", 26), lambda seq: 1_000_000)
        pipe.end("test")
        pipe.reset()
    recorder.close()
    assert recorder.takes == [tmp_path / s for s in sessions] and sessions[0] != sessions[1]
    for session in sessions:
        assert _frame_count(tmp_path / session / "front.mp4")[0] == 8
        assert (tmp_path / session / "windows" / "window_0000.png").is_file()


def test_crops_previews_are_each_windows_model_input_in_a_row() -> None:
    from inference.preview import CropsPreview

    pipe = _pipeline()
    crops = CropsPreview(2.0, frames=8)
    pipe.observers.append(crops)
    _push_pairs(pipe, _frames("front", 76), _frames("side", 76, hidden={3}), lambda seq: 1_000_000)
    previews = crops.take()
    assert crops.take() == []
    assert [(p.view, p.seq, p.kind) for p in previews] == [(v, w, "crops") for w in range(3) for v in ("front", "side")]
    assert {(p.preview_width, p.preview_height) for p in previews} == {(8 * 128, 128)}
    strip = cv2.imdecode(np.frombuffer(previews[2].jpeg, np.uint8), cv2.IMREAD_COLOR)  # window 1, front
    model_input = np.concatenate([cv2.resize(c, (128, 128), interpolation=cv2.INTER_AREA)
                                  for c in pipe.engine.clips[0][0]], axis=1)
    assert np.abs(strip.astype(int) - model_input).mean() < 12  # the same picture, up to JPEG
    # window 0 (no side patient at its 2nd sample): the side strip's 2nd tile is the dark "no crop" tile
    side0 = cv2.imdecode(np.frombuffer(previews[1].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(side0[2:20, 130:150].astype(int) - MISSING_TILE_BGR).max() < 12
    # at most rate_hz: at 0.5 Hz, every other (1-s) window
    pipe = _pipeline()
    slow = CropsPreview(0.5, frames=8)
    pipe.observers.append(slow)
    _push_pairs(pipe, _frames("front", 76), _frames("side", 76), lambda seq: 1_000_000)
    assert [p.seq for p in slow.take()] == [0, 0, 2, 2]


def test_samples_without_a_frame_pair_keep_the_videos_timeline(tmp_path: Path) -> None:
    pipe = _pipeline()
    recorder = attach_recorders({"main": pipe}, tmp_path, per_stream=False)["main"]
    front, side = _frames("front", 76), _frames("side", 76)
    gap = [f.seq for f in side if 28 <= f.seq < 40]  # the side camera drops half a second in window 1
    scores = []
    for frame in (f for pair in zip(front, side, strict=True) for f in pair if f.view == "front" or f.seq not in gap):
        scores += pipe.push(frame, received_ns=frame.capture_mono_ns + 1_000_000)
    pipe.end("test")
    recorder.close()
    assert [(s.window, s.reason_code) for s in scores] == [(0, None), (1, "too_few_frames"), (2, None)]
    assert _frame_count(tmp_path / "front.mp4")[0] == _frame_count(tmp_path / "side.mp4")[0] == 24


def test_several_walkways_get_a_folder_each(tmp_path: Path) -> None:
    pipes = {"main": _pipeline(), "east": _pipeline()}
    recorders = attach_recorders(pipes, tmp_path, per_stream=True)
    assert {w: r.folder for w, r in recorders.items()} == {"main": tmp_path / "main", "east": tmp_path / "east"}
    assert all(pipes[w].observers == [r] for w, r in recorders.items())
    for recorder in recorders.values():
        recorder.close()
