"""User mistakes get one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import one_line_error, run_cli


def test_missing_video(tmp_path: Path) -> None:
    result = run_cli("demo", "--front", str(tmp_path / "nope.mp4"), "--output", str(tmp_path / "out"))
    one_line_error(result, "front video not found", "nope.mp4")


def test_unreadable_video(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("this is not a video")
    result = run_cli("capture", "--view", "front", "--source", str(bad), "--set", "endpoints.front=ipc:///nonexistent/x")
    one_line_error(result, "cannot open video", "bad.mp4")


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("inference:\n  window:\n    frams: 8\n", "inference.window.frams: unknown key"),
        ("capture:\n  speed: fast\n", "capture.speed: expected a number"),
        ("capture: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_config(tmp_path: Path, yaml_text: str, needle: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    one_line_error(run_cli("aggregate", "--config", str(config)), needle)


def test_missing_config_file(tmp_path: Path) -> None:
    one_line_error(run_cli("infer", "--config", str(tmp_path / "missing.yaml")), "config file not found")


def test_wrong_checkpoint(tmp_path: Path, assets: Path) -> None:
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"\x00\x01 truncated")
    weights = assets / "weights" / "yolo11n_int8_openvino_model"
    result = run_cli("infer", "--set", f"inference.model.weights={ckpt}",
                     "--set", f"inference.detector.weights={weights}")
    one_line_error(result, "cannot read checkpoint", "model.pt")


def test_missing_detector_weights(tmp_path: Path) -> None:
    result = run_cli("infer", "--set", f"inference.detector.weights={tmp_path / 'none'}")
    one_line_error(result, "detector weights not found")


# --------------------------------------------------------------------------- hostile input (issue 8), in-process
# The real CLI entry point, called in this process (no interpreter start per case): exit code 2 and exactly one
# line on stderr. Damaged files are made from the shared assets: cut or emptied copies (docs/hostile-input.md).


def _main_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    from dualgait.cli import main

    code = main([*args, "--log-level", "ERROR"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[:int(len(data) * fraction)])
    return dst


def _tiny_checkpoint(path: Path) -> Path:
    from inference.models.checkpoint import ModelSpec, save_checkpoint

    spec = ModelSpec(variant="late", input_px=32, frames=2, width=4)
    return save_checkpoint(path, spec.build(), spec)


TINY_MODEL = ("--set", "inference.crop.input_px=32", "--set", "inference.window.frames=2", "--set",
              "inference.window.min_visible_frames=1")


def test_truncated_video_is_reported_by_the_file_source(assets: Path, tmp_path: Path) -> None:
    from capture.sources import FileSource, SourceError

    whole = FileSource(assets / "videos" / "walk_front.mp4")
    assert sum(1 for _ in whole.frames()) == whole.frame_count == 380  # an intact file: no error
    for fraction, frames in ((0.5, 185), (0.9, 324)):
        source = FileSource(_cut(assets / "videos" / "walk_front.mp4", tmp_path / f"cut{fraction}.mp4", fraction))
        assert source.frame_count == 380  # the index at the start of the file survives the cut
        with pytest.raises(SourceError, match=rf"truncated or corrupt: decoding stopped after frame {frames} of 380"):
            sum(1 for _ in source.frames())


def test_corrupt_video_is_reported_by_decoded_pair(assets: Path, tmp_path: Path) -> None:
    """Bytes flipped in the middle of the stream: decoding stops early, the offline reader says so."""
    from capture.sources import SourceError
    from offline.score import decoded_pair

    data = bytearray((assets / "videos" / "walk_side.mp4").read_bytes())
    for at in range(50_000, len(data), 997):
        data[at] ^= 0x5A
    bad = tmp_path / "corrupt_side.mp4"
    bad.write_bytes(bytes(data))
    frames = 0
    with pytest.raises(SourceError, match=r"corrupt_side.mp4$"):
        for _ in decoded_pair(str(assets / "videos" / "walk_front.mp4"), str(bad)):
            frames += 1
    assert 0 < frames < 2 * 380


def test_score_unreadable_video_before_loading_models(assets: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    head = _cut(assets / "videos" / "walk_front.mp4", tmp_path / "head.mp4", 100 / 867_542)
    line = _main_error(capsys, "score", str(head), str(assets / "videos" / "walk_side.mp4"), "--untrained")
    assert line == f"dualgait score: error: cannot open video (unreadable or unknown format): {head}"


def test_score_truncated_video(assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = _cut(assets / "videos" / "walk_front.mp4", tmp_path / "front.mp4", 0.2)
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt")
    line = _main_error(capsys, "score", str(cut), str(assets / "videos" / "walk_side.mp4"), "--quiet",
                       "--set", f"inference.model.weights={ckpt}", *TINY_MODEL)
    assert re.fullmatch(r"dualgait score: error: video is truncated or corrupt: decoding stopped after frame \d+ "
                        rf"of 380 \(\d+\.\d of 15\.2 s\): {re.escape(str(cut))}", line), line


def test_score_truncated_video_keeps_the_windows_scored_before_the_cut(assets: Path, tmp_path: Path) -> None:
    """Issue 20: the real command on a recording cut mid-stream. walk_front.mp4 has its index (moov) at the start,
    so its first 30 % of bytes still open and decode 119 of the 380 frames the index declares (4.8 s), then the
    file source raises. The 5 windows scored before that are written, summary.json records the error, and the
    error is still one line with exit code 2. A tiny torch model: no int8 calibration or ONNX export here."""
    cut = _cut(assets / "videos" / "walk_front.mp4", tmp_path / "front.mp4", 0.3)
    out = tmp_path / "scored"
    result = run_cli("score", str(cut), str(assets / "videos" / "walk_side.mp4"), "--untrained",
                     "--output", str(out), "--set", "inference.model.engine=torch", *TINY_MODEL)
    line = one_line_error(result, "video is truncated or corrupt: decoding stopped after frame 119 of 380 "
                                  "(4.8 of 15.2 s)", str(cut))
    message = line.split("dualgait score: error: ", 1)[1]
    records = [json.loads(r) for r in (out / "windows.jsonl").read_text().splitlines()]
    assert [r["window"] for r in records] == [0, 1, 2, 3, 4]
    assert result.stdout.count("\nwindow ") + result.stdout.startswith("window ") == len(records)
    assert "scored 4.7 s of recording" in result.stdout and "before a decoding error" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["error"] == message
    assert summary["end_reason"] == f"decoding error: {message}"
    assert summary["windows"] == 5 and summary["valid_windows"] == sum(r["valid"] for r in records)
    assert 119 <= summary["offline"]["frames"] < 2 * 119 + 20  # the front's 119 and the side's up to the cut
    assert summary["offline"]["recording_s"] == pytest.approx(4.72, abs=0.05)


@pytest.mark.parametrize("fraction", [0.5, 64 / 1_250_000])
def test_score_truncated_checkpoint(assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    fraction: float) -> None:
    cut = _cut(_tiny_checkpoint(tmp_path / "tiny.pt"), tmp_path / "cut.pt", fraction)
    videos = assets / "videos"
    line = _main_error(capsys, "score", str(videos / "walk_front.mp4"), str(videos / "walk_side.mp4"),
                       "--set", f"inference.model.weights={cut}", *TINY_MODEL)
    assert line == (f"dualgait score: error: cannot read checkpoint {cut} (truncated or not a torch file?): "
                    "PytorchStreamReader failed reading zip archive: failed finding central directory")


ALIAS_BOMB = "capture:\n  speed: [" + ", ".join(
    [f"&{name} [" + ", ".join([f"*{prev}" if prev else "lol"] * 9) + "]"
     for prev, name in zip([None, *"abcdefgh"], "abcdefghi", strict=True)]) + "]\n"


@pytest.mark.parametrize(("content", "needle"), [
    (b"\xff\xfe\x00capture: 1\n", "is not UTF-8 text (byte 0)"),
    (b"capture:\n  speed: 1\ncapture:\n  speed: 2\n", "is not valid YAML (line 3, column 1): duplicate key 'capture'"),
    (b"capture:\n  speed: .nan\n", "capture.speed: expected a finite number, got nan"),
    (b"inference:\n  window:\n    stride_s: .inf\n", "inference.window.stride_s: expected a finite number, got inf"),
    (b"capture:\n\tspeed: 1\n", "is not valid YAML (line 2, column 1)"),
    (b"inference: !!python/object/apply:os.system [echo]\n", "is not valid YAML (line 1, column 12)"),
    (ALIAS_BOMB.encode(), "capture.speed: expected a number, got [['lol', 'lol', 'lol', 'lol', ...], [[...]"),
    (None, "cannot be read: Is a directory"),
])
def test_bad_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, needle: str) -> None:
    """Before: non-UTF-8 bytes gave a traceback, a 9x9 alias bomb (397 bytes) hung in repr() of the error,
    a duplicate key or .nan passed silently, a directory gave a bare '[Errno 21]'."""
    config = tmp_path / "bad.yaml"
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content)
    line = _main_error(capsys, "score", "nope-front.mp4", "nope-side.mp4", "--config", str(config))
    assert line.startswith("dualgait score: error: ") and needle in line, line
    assert len(line) < 300


def _damaged_export(assets: Path, tmp_path: Path, damage: str) -> Path:
    src = assets / "weights" / "yolo11n_int8_openvino_model"
    dst = tmp_path / "yolo11n_int8_openvino_model"
    dst.mkdir()
    if damage == "empty folder":
        return dst
    for name in ("metadata.yaml", "yolo11n.xml", "yolo11n.bin"):
        if not (damage == "no .bin" and name.endswith(".bin")):
            (dst / name).write_bytes((src / name).read_bytes())
    if damage == "truncated .bin":
        _cut(src / "yolo11n.bin", dst / "yolo11n.bin", 0.05)
    elif damage == "truncated .xml":
        _cut(src / "yolo11n.xml", dst / "yolo11n.xml", 0.05)
    return dst


@pytest.mark.parametrize(("damage", "problem"), [
    ("truncated .bin", "Incorrect weights in bin file!"),
    ("truncated .xml", "E"),  # "Error parsing element attribute at offset 33047" (the message depends on the cut)
    ("no .bin", "Can not open file"),
    ("empty folder", "no model file found there"),
])
def test_damaged_detector_weights(assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str,
                                  problem: str) -> None:
    """Exported detectors are read on their first prediction: that used to be the first frame of a run, with a
    multi-line OpenVINO RuntimeError (or a bare StopIteration for an empty folder)."""
    weights = _damaged_export(assets, tmp_path, damage)
    videos = assets / "videos"
    line = _main_error(capsys, "score", str(videos / "walk_front.mp4"), str(videos / "walk_side.mp4"), "--untrained",
                       "--set", f"inference.detector.weights={weights}")
    assert line.startswith(f"dualgait score: error: cannot load detector weights {weights}: {problem}"), line
