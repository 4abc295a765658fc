"""Training windows from a manifest, cut by the live pipeline's own code, cached on disk.

Each recorded front/side pair goes through :func:`offline.clips.recording_clips`: the same
pairing, 8 Hz sampling, YOLO tracking, crop and window rules as the live path, with the crop resized
to ``training.input_px`` (no train/serve skew). A window is kept only where the live pipeline would
score it (patient visible in both views in ``min_visible_frames`` samples).

Where a manifest row names true boxes (``boxes_front``/``boxes_side``, e.g. from the synthetic
walker), a :class:`TrueBoxTracker` stands in for the YOLO tracker of that view; everything else is
the same pipeline.

Cache: one ``<key>.npz`` per recording pair in ``training.cache_dir``, holding ``front`` and ``side``
(N, T, input_px, input_px, 3) uint8 BGR crops and a ``meta`` JSON string. The key hashes the video (and
boxes) paths, sizes and modification times, the detector weights' file stats and the detector, crop
and window settings, so changing any of them re-runs the preprocessing. The arrays are stored
uncompressed and memory-mapped when read, so a data set larger than RAM still trains.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import os
import struct
import sys
import time
import weakref
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from core.configtools import ConfigError, with_overrides
from core.messages import VIEWS
from inference.detector import Detection
from training.config import TrainingConfig
from training.manifest import ManifestRow

if TYPE_CHECKING:
    from dualgait.config import DualgaitConfig  # the app's whole config: a type only
    from inference.detector import ViewTracker

log = logging.getLogger(__name__)

__all__ = [
    "CACHE_VERSION",
    "RecordingWindows",
    "TrueBoxTracker",
    "WindowDataset",
    "cache_key",
    "load_recording",
    "load_windows",
    "read_boxes",
    "window_config",
]

CACHE_VERSION = 1


# --------------------------------------------------------------------------- true boxes


def read_boxes(path: str | os.PathLike[str]) -> dict[int, tuple[float, float, float, float]]:
    """A true-boxes CSV (header ``frame,x1,y1,x2,y2``; 0-based frame index, pixels) -> frame -> box.

    Raises:
        ConfigError: one line naming the file and line.
    """
    path = Path(path)
    boxes: dict[int, tuple[float, float, float, float]] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [c.strip() for c in next(reader, [])]
            if header != ["frame", "x1", "y1", "x2", "y2"]:
                raise ConfigError(f"{path}:1: boxes file header must be frame,x1,y1,x2,y2, got {','.join(header)}")
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                try:
                    frame = int(values[0])
                    x1, y1, x2, y2 = (float(v) for v in values[1:5])
                    if len(values) != 5:
                        raise ValueError
                except (ValueError, IndexError):
                    raise ConfigError(f"{path}:{reader.line_num}: expected frame,x1,y1,x2,y2 numbers, "
                                      f"got {','.join(values)}") from None
                if frame < 0 or not (x2 > x1 and y2 > y1):
                    raise ConfigError(f"{path}:{reader.line_num}: bad box (frame >= 0, x2 > x1, y2 > y1 needed)")
                boxes[frame] = (x1, y1, x2, y2)
    except OSError as exc:
        raise ConfigError(f"cannot read boxes file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: boxes file is not UTF-8 text") from None
    return boxes


class TrueBoxTracker:
    """Stands in for the YOLO tracker of one view with known boxes.

    Same protocol (:class:`inference.detector.ViewTracker`): ``track(image) -> people`` (here the one
    true box, track id 1) and ``reset()``. The pipeline hands
    the tracker only the image of each sampled frame, so the frame index is looked up from the image
    object: :meth:`expect` registers every decoded image with its index (a weak reference, nothing is
    kept alive). Counts frames seen and frames with a box, for the log.
    """

    def __init__(self, boxes: Mapping[int, tuple[float, float, float, float]], *, name: str = "") -> None:
        self.boxes = dict(boxes)
        self.name = name
        self._pending: dict[int, tuple[weakref.ref[np.ndarray], int]] = {}
        self.frames_seen = 0
        self.frames_with_box = 0
        self.frames_unknown = 0

    def expect(self, image: np.ndarray, index: int) -> None:
        """Register a decoded frame's image before it enters the pipeline."""
        key = id(image)
        self._pending[key] = (weakref.ref(image, self._forget), index)

    def _forget(self, ref: weakref.ref[np.ndarray]) -> None:  # the image was freed: its id may be reused
        for key, (known, _index) in list(self._pending.items()):
            if known is ref:
                del self._pending[key]

    def track(self, image: np.ndarray) -> list[Detection]:
        entry = self._pending.get(id(image))
        self.frames_seen += 1
        if entry is None or entry[0]() is not image:
            self.frames_unknown += 1
            return []
        box = self.boxes.get(entry[1])
        if box is None:
            return []
        self.frames_with_box += 1
        return [Detection(box, 1.0, 1)]

    def reset(self) -> None:
        """Nothing to forget: the boxes belong to the recording."""


# --------------------------------------------------------------------------- windows of one recording


def window_config(cfg: DualgaitConfig, tcfg: TrainingConfig) -> DualgaitConfig:
    """The live config with the crop resized to the training input; checks T against the live windows."""
    if tcfg.frames is not None and tcfg.frames != cfg.inference.window.frames:  # a TrainingConfig built alone
        raise ConfigError(f"training.frames ({tcfg.frames}) must equal inference.window.frames "
                          f"({cfg.inference.window.frames}): the live pipeline feeds the model windows of that length")
    return with_overrides(cfg, {"inference": {"crop": {"input_px": tcfg.input_px}}})


def _file_id(path: Path | None) -> list[Any] | None:
    if path is None:
        return None
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def _weights_id(weights: str) -> list[Any]:
    path = Path(weights).expanduser()
    if path.is_file():
        return [_file_id(path)]
    if path.is_dir():
        return [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns]
                for p in sorted(path.rglob("*")) if p.is_file()]
    return [str(path), "missing"]


def cache_key(row: ManifestRow, cfg: DualgaitConfig) -> str:
    """Hash of what the windows of ``row`` depend on (``cfg`` as returned by :func:`window_config`)."""
    icfg = cfg.inference
    detector_needed = row.boxes_front is None or row.boxes_side is None
    parts = {
        "version": CACHE_VERSION,
        "front": _file_id(row.front), "side": _file_id(row.side),
        "boxes_front": _file_id(row.boxes_front), "boxes_side": _file_id(row.boxes_side),
        "detector": asdict(icfg.detector) if detector_needed else None,
        "detector_weights": _weights_id(icfg.detector.weights) if detector_needed else None,
        "crop": asdict(icfg.crop), "window": asdict(icfg.window),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def extract_windows(row: ManifestRow, cfg: DualgaitConfig, *,
                    detector: Callable[[str], ViewTracker] | None = None) -> dict[str, np.ndarray]:
    """Run the live pipeline code on one recording: view -> (N, T, H, W, 3) uint8 BGR crops.

    ``detector(view)``: the YOLO tracker for a view without true boxes (default: a new one). Loading one
    costs about 0.4 s, so :func:`load_windows` reuses one per view; the pipeline resets it per recording.
    """
    from inference.detector import PerViewDetector, YoloViewTracker
    from offline.clips import recording_clips

    def new_detector(_view: str) -> ViewTracker:
        return YoloViewTracker(cfg.inference.detector)

    detector = detector or new_detector
    true_boxes = {"front": row.boxes_front, "side": row.boxes_side}
    trackers: dict[str, Any] = {
        view: (TrueBoxTracker(read_boxes(path), name=f"{row.participant_id} {view}") if path is not None
               else detector(view))
        for view, path in true_boxes.items()}

    def register(view: str, index: int, image: np.ndarray) -> None:
        if isinstance(trackers[view], TrueBoxTracker):
            trackers[view].expect(image, index)

    clips = recording_clips(cfg, str(row.front), str(row.side), max_windows=sys.maxsize,
                            detector=PerViewDetector(trackers), on_frame=register)
    for view, tracker in trackers.items():
        if isinstance(tracker, TrueBoxTracker):
            log.info("%s %s: true boxes from %s (box in %d of %d sampled frames)", row.participant_id, view,
                     true_boxes[view], tracker.frames_with_box, tracker.frames_seen)
    icfg = cfg.inference
    empty = (0, icfg.window.frames, icfg.crop.input_px, icfg.crop.input_px, 3)
    return {view: (np.stack([c[view] for c in clips]) if clips else np.zeros(empty, np.uint8)) for view in VIEWS}


# --------------------------------------------------------------------------- cache


def _npz_member(path: Path, name: str) -> np.ndarray:
    """One array of an uncompressed .npz, memory-mapped read-only (read into memory if compressed)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with np.load(path) as data:
            return data[name]
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError("bad zip local header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        offset = fh.tell()
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        clips = {view: _npz_member(path, view) for view in VIEWS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable cache file %s (%s); preprocessing again", path, exc)
        return None
    return clips


def _write_cache(path: Path, clips: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(dict(meta))), **{v: np.ascontiguousarray(clips[v]) for v in VIEWS})
    tmp.replace(path)


@dataclass(slots=True)
class RecordingWindows:
    """The windows of one recorded pair."""

    participant_id: str
    label: int  # 1: ASD, 0: non-ASD
    clips: dict[str, np.ndarray]  # view -> (N, T, H, W, 3) uint8 BGR (possibly memory-mapped)
    source: str = ""
    subcategory: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(next(iter(self.clips.values())).shape[0])


def load_recording(row: ManifestRow, cfg: DualgaitConfig, cache_dir: str | os.PathLike[str] | None, *,
                   detector: Callable[[str], ViewTracker] | None = None) -> RecordingWindows:
    """The windows of one manifest row, from the cache or by running the live pipeline code (then cached)."""
    key = cache_key(row, cfg)
    path = Path(cache_dir).expanduser() / f"{key}.npz" if cache_dir is not None else None
    clips = _read_cache(path) if path is not None and path.is_file() else None
    cached = clips is not None
    if clips is None:
        t0 = time.perf_counter()
        clips = extract_windows(row, cfg, detector=detector)
        meta = {"front": str(row.front), "side": str(row.side), "participant_id": row.participant_id,
                "windows": int(clips["front"].shape[0]), "seconds": round(time.perf_counter() - t0, 2),
                "true_boxes": [v for v in VIEWS if getattr(row, f"boxes_{v}") is not None]}
        if path is not None:
            _write_cache(path, clips, meta)
            clips = _read_cache(path) or clips
    source = f"{row.front.name} + {row.side.name}"
    return RecordingWindows(row.participant_id, int(row.is_asd), clips, source=source,
                            subcategory=row.subcategory, meta={"cache": str(path) if path else None, "cached": cached})


def load_windows(rows: Sequence[ManifestRow], cfg: DualgaitConfig, tcfg: TrainingConfig, *,
                 cache_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> list[RecordingWindows]:
    """Every manifest row's windows (cached). Logs the windows per recording, warns for recordings with none.

    Raises:
        ConfigError: the whole manifest yields no usable window.
    """
    from tqdm import tqdm

    wcfg = window_config(cfg, tcfg)
    cache = tcfg.cache_dir if cache_dir is None else cache_dir
    out: list[RecordingWindows] = []

    @functools.cache
    def detector(_view: str) -> ViewTracker:  # one per view, loaded on first use, reset by each recording's pipeline
        from inference.detector import YoloViewTracker

        return YoloViewTracker(wcfg.inference.detector)

    bar = tqdm(rows, desc="preprocess", unit="recording", disable=not progress, leave=False)
    for row in bar:
        rec = load_recording(row, wcfg, cache, detector=detector)
        how = "cached" if rec.meta["cached"] else "preprocessed"
        label = "ASD" if rec.label else "non-ASD"
        if len(rec) == 0:
            log.warning("%s (%s, %s): no usable window (the patient must be visible in both views in %d of %d "
                        "samples of a window); it is left out", rec.source, rec.participant_id, label,
                        wcfg.inference.window.min_visible_frames, wcfg.inference.window.frames)
        else:
            log.info("%s (%s, %s): %d windows (%s)", rec.source, rec.participant_id, label, len(rec), how)
        out.append(rec)
    total = sum(len(r) for r in out)
    if total == 0:
        raise ConfigError(f"the manifest's {len(rows)} recordings yielded no usable window (no recording shows "
                          "the patient in both views long enough; check the videos, boxes and inference.detector)")
    log.info("%d windows from %d of %d recordings", total, sum(1 for r in out if len(r)), len(out))
    return out


# --------------------------------------------------------------------------- torch dataset


class WindowDataset(Dataset):
    """Windows as model inputs: ``(clips, label, participant_id)`` per item.

    ``clips`` is a tuple with one ``(3, T, H, W)`` float32 tensor per view in ``views`` order,
    Kinetics-normalised RGB by :func:`inference.engines.base.preprocess` (what the live model runner
    feeds); ``label`` a float32 scalar tensor, 1 for ASD. ``participants`` (optional) keeps only the
    recordings of those participants (a fold's train or validation part).
    """

    def __init__(self, recordings: Sequence[RecordingWindows], *, views: Sequence[str] = VIEWS,
                 participants: Sequence[str] | None = None, augment: bool = False) -> None:
        keep = None if participants is None else set(participants)
        # training only: appearance augmentation (training.augment), drawn from torch's seeded RNG
        self.augment = augment
        self.recordings = [r for r in recordings if keep is None or r.participant_id in keep]
        self.views = tuple(views)
        self.index = [(i, w) for i, r in enumerate(self.recordings) for w in range(len(r))]
        self.labels = [self.recordings[i].label for i, _ in self.index]
        self.participant_ids = [self.recordings[i].participant_id for i, _ in self.index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, str]:
        from inference.engines.base import preprocess

        i, w = self.index[item]
        rec = self.recordings[i]
        raw = [np.asarray(rec.clips[v][w]) for v in self.views]  # (T, H, W, 3) uint8 BGR each
        if self.augment:
            from training.augment import augment_clip

            rng = np.random.default_rng(int(torch.randint(2**31 - 1, ())))
            raw = [augment_clip(clip, rng) for clip in raw]
        clips = tuple(torch.from_numpy(preprocess(clip)[0]) for clip in raw)
        return clips, torch.tensor(float(rec.label)), rec.participant_id
