"""Preprocessing through the live pipeline code (true boxes), the cache, and `dualgait train` end to end."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.configtools import ConfigError
from dualgait.config import load_config
from inference.models import load_checkpoint
from training.config import TrainingConfig
from training.data import TrueBoxTracker, cache_key, load_windows, read_boxes, window_config
from training.manifest import ManifestRow, write_manifest
from training.train import add_train_args, run_train

SIZE = 96


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _walk(path: Path, *, shade: int, frames: int = 75, with_boxes: bool = True, seed: int = 0) -> Path:
    """A 3-s, 25-fps clip of a bright or dark block 'walking' across a grey floor, and its true-boxes CSV."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (SIZE, SIZE))
    lines = ["frame,x1,y1,x2,y2"]
    for i in range(frames):
        img = np.full((SIZE, SIZE, 3), 110, np.uint8)
        x = 10 + i // 2
        h = 56 + int(rng.integers(0, 4))
        cv2.rectangle(img, (x, 20), (x + 19, 20 + h - 1), (shade, shade, shade), -1)
        writer.write(img)
        if with_boxes:
            lines.append(f"{i},{x},20,{x + 20},{20 + h}")
    writer.release()
    boxes = path.with_suffix(".csv")
    boxes.write_text("\n".join(lines) + "\n")
    return boxes


def _row(tmp: Path, pid: str, asd: bool, *, with_boxes: bool = True, notes: str = "synthetic") -> ManifestRow:
    shade = 235 if asd else 20
    bf = _walk(tmp / f"{pid}_front.mp4", shade=shade, with_boxes=with_boxes, seed=hash(pid) % 100)
    bs = _walk(tmp / f"{pid}_side.mp4", shade=shade, with_boxes=with_boxes, seed=hash(pid) % 100 + 1)
    return ManifestRow(pid, "ASD" if asd else "non-ASD", "test", tmp / f"{pid}_front.mp4", tmp / f"{pid}_side.mp4",
                       bf, bs, notes=notes)


def _args(manifest: Path, out: Path, *extra: str) -> argparse.Namespace:
    parser = add_train_args(argparse.ArgumentParser())
    return parser.parse_args(["--manifest", str(manifest), "--output", str(out), "--width", "8", "--input-px", "32",
                              "--device", "cpu", "--cache-dir", str(out.parent / "cache"), *extra])


def test_true_box_tracker_protocol():
    """track(image) answers the box of the frame that image was registered as (track 1); unknown images: none."""
    tracker = TrueBoxTracker({0: (1, 2, 30, 40), 2: (5, 5, 9, 9)})
    frames = [np.zeros((48, 48, 3), np.uint8) for _ in range(3)]
    for i, img in enumerate(frames):
        tracker.expect(img, i)
    people = tracker.track(frames[2])
    assert len(people) == 1 and people[0].box_xyxy == (5, 5, 9, 9) and people[0].track_id == 1
    assert tracker.track(frames[1]) == []  # registered, no box in that frame
    assert tracker.track(np.zeros((48, 48, 3), np.uint8)) == []  # never registered
    assert (tracker.frames_seen, tracker.frames_with_box, tracker.frames_unknown) == (3, 1, 1)
    del frames, img
    assert tracker._pending == {}  # weak references: nothing kept alive
    tracker.reset()


def test_read_boxes_errors(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("frame,x1,y1,x2,y2\n0,1,2,3,4\n\n3,1,1,5,6\n")
    assert read_boxes(path) == {0: (1.0, 2.0, 3.0, 4.0), 3: (1.0, 1.0, 5.0, 6.0)}
    path.write_text("frame,x1,y1,x2,y2\n0,1,2,x,4\n")
    with pytest.raises(ConfigError, match=r"b\.csv:2: expected frame,x1,y1,x2,y2 numbers"):
        read_boxes(path)
    path.write_text("f,a,b,c,d\n")
    with pytest.raises(ConfigError, match="header must be frame,x1,y1,x2,y2"):
        read_boxes(path)


def test_windows_from_true_boxes_and_cache(tmp_path, caplog):
    """The live pipeline cuts 1-s windows of crops around the true boxes; the second read comes from the cache,
    and changing the crop size or touching a video makes a new cache entry."""
    cfg = load_config()
    tcfg = TrainingConfig(input_px=32)
    row = _row(tmp_path, "p1", asd=True)
    caplog.set_level(logging.INFO, logger="training.data")
    (rec,) = load_windows([row], cfg, tcfg, cache_dir=tmp_path / "cache", progress=False)
    assert rec.participant_id == "p1" and rec.label == 1 and not rec.meta["cached"]
    assert 2 <= len(rec) <= 3
    assert rec.clips["front"].shape == (len(rec), 8, 32, 32, 3) and rec.clips["side"].dtype == np.uint8
    centre = rec.clips["front"][:, :, 8:24, 14:18]  # inside the block: its bright shade
    assert centre.mean() > 200
    assert rec.clips["front"][:, :, :, :4].max() == 0  # black padding left of the (tall, narrow) box
    assert any("true boxes" in r.message for r in caplog.records)
    assert any(f"p1_front.mp4 + p1_side.mp4 (p1, ASD): {len(rec)} windows" in r.message for r in caplog.records)

    (again,) = load_windows([row], cfg, tcfg, cache_dir=tmp_path / "cache", progress=False)
    assert again.meta["cached"] and isinstance(again.clips["front"], np.memmap)
    np.testing.assert_array_equal(np.asarray(again.clips["front"]), rec.clips["front"])

    key = cache_key(row, window_config(cfg, tcfg))
    assert key != cache_key(row, window_config(cfg, TrainingConfig(input_px=48)))
    os.utime(row.front, ns=(1_000_000_000, 1_000_000_000))
    assert key != cache_key(row, window_config(cfg, tcfg))


def test_frames_must_match_live_windows():
    with pytest.raises(ConfigError, match=r"training\.frames \(4\) must equal inference\.window\.frames \(8\)"):
        window_config(load_config(), TrainingConfig(frames=4))


def test_manifest_without_usable_windows_is_one_line_error(tmp_path, caplog):
    """No recording yields a window (no boxes at all): a warning per recording and a one-line error."""
    rows = [_row(tmp_path, "p1", asd=True, with_boxes=False), _row(tmp_path, "p2", asd=False, with_boxes=False)]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    caplog.set_level(logging.WARNING, logger="training.data")
    with pytest.raises(ConfigError, match="the manifest's 2 recordings yielded no usable window") as info:
        run_train(_args(manifest, tmp_path / "run"), load_config())
    assert "\n" not in str(info.value)
    assert sum("no usable window" in r.message for r in caplog.records) == 2


def test_bad_manifest_is_one_line_error(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("participant_id,label,subcategory,front,side\np1,maybe,,a.mp4,b.mp4\n")
    with pytest.raises(ConfigError, match=r"m\.csv:2: bad label 'maybe'") as info:
        run_train(_args(manifest, tmp_path / "run"), load_config())
    assert "\n" not in str(info.value)


def test_train_end_to_end(tmp_path, caplog):
    """`dualgait train` on four tiny recorded walks: 2 folds, checkpoints with provenance, report, resume."""
    rows = [_row(tmp_path, f"p{i}", asd=i < 2) for i in range(4)]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    out = tmp_path / "run"
    caplog.set_level(logging.INFO)
    assert run_train(_args(manifest, out, "--folds", "2", "--epochs-max", "2", "--lr", "0.001"), load_config()) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["synthetic"] is True and len(metrics["folds"]) == 2
    assert metrics["training"]["width"] == 8 and metrics["manifest"] == str(manifest.resolve())
    assert (out / "table.md").read_text().startswith("Validation windows, mean ± std over 2 participant-wise folds")
    for k in (1, 2):
        ckpt = load_checkpoint(out / f"fold{k}" / "best.pt")
        assert (ckpt.spec.variant, ckpt.spec.input_px, ckpt.spec.width, ckpt.spec.frames) == ("late", 32, 8, 8)
        assert ckpt.meta["synthetic"] is True and ckpt.meta["fold"] == k
        assert ckpt.meta["manifest"] == str(manifest.resolve())
        assert (out / f"fold{k}" / "curves.png").is_file()
    assert (out / "train.log").read_text().count("fold 1 epoch 1") == 1

    with pytest.raises(ConfigError, match="already holds a training run; pass --resume"):
        run_train(_args(manifest, out, "--folds", "2", "--epochs-max", "2"), load_config())
    assert run_train(_args(manifest, out, "--folds", "2", "--epochs-max", "2", "--lr", "0.001", "--resume"),
                     load_config()) == 0
    assert "finished earlier" in (out / "train.log").read_text()
    with pytest.raises(ConfigError, match="holds a run with other settings"):
        run_train(_args(manifest, out, "--folds", "2", "--epochs-max", "2", "--resume"), load_config())  # other lr
