"""See what was scored: an annotated video per view and a contact sheet per window (``--save-video DIR``).

A stage without sockets, attached to an :class:`inference.pipeline.InferencePipeline` as an observer (its
``observers`` list, empty by default: nothing is kept or drawn unless recording is on). Modelled on
Ultralytics' ``save=True`` and DeepStream's on-screen display, drawn with OpenCV:

- ``front.mp4``, ``side.mp4`` (``mp4v``): the frames the pipeline sampled, at the sample rate (8 per second by
  default: the detector sees only those, so the video plays in real time at 8 fps). Every person's box thin and
  grey with its track id, the locked patient's thick in amber ("patient #id"; on a sample the detector skipped,
  the patient's interpolated box alone, noted in the banner), and a banner: view, window index, sample in
  the window, time, and the window's verdict: ``p_asd`` (marked when the model is untrained or the synthetic demo
  model) or the reason code and reason it was not scored. A sample is written once its first window is
  finished, so its frame carries that window's verdict;
- ``windows/window_NNNN.png``: the window's model input, one row per view (``front`` above ``side``), one
  column per sample: the exact crops the model saw (``PendingWindow.clips``) for a scored window, else the
  crops the pipeline made (a dark tile where it found no patient), under a header with the verdict.

Drawing and encoding run on one background thread (a bounded queue: a slow disk holds the pipeline back rather
than growing memory). A write that fails (disk full, unwritable folder) is logged once and stops the recording;
scoring goes on, and :attr:`VideoRecorder.error` says what happened.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from core.messages import WindowScore
from inference.detector import Detection
from inference.samples import ProcessedSample

if TYPE_CHECKING:
    from inference.pipeline import InferencePipeline, PendingWindow

log = logging.getLogger(__name__)

__all__ = ["PATIENT_BGR", "PERSON_BGR", "SHEET_HEADER_PX", "FrameMarks", "VideoRecorder", "attach_recorders",
           "contact_sheet", "draw_frame", "verdict_text", "window_tiles"]

PATIENT_BGR = (0, 200, 255)  # amber: the locked patient
PERSON_BGR = (170, 170, 170)  # grey: everyone else
TEXT_BGR = (255, 255, 255)
BANNER_BGR = {None: (60, 60, 60), True: (40, 110, 40), False: (40, 40, 150)}  # pending, scored, not scored
MISSING_TILE_BGR = (35, 35, 35)
SHEET_HEADER_PX = 48  # contact sheet: two lines of text above the grid of crops
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def verdict_text(score: WindowScore) -> str:
    """The window's verdict in one line: its p_asd (and what kind of model gave it) or why it was not scored."""
    if not score.valid or score.p_asd is None:
        reason = (score.reason or "").strip()
        return f"not scored: {score.reason_code or 'invalid'}" + (f" ({reason})" if reason else "")
    kind = (" - untrained model, meaningless" if score.untrained
            else " - synthetic demo model, not clinical" if score.synthetic else "")
    return f"p_asd {score.p_asd:.3f}{kind}"


@dataclass(frozen=True, slots=True)
class FrameMarks:
    """What is drawn on one sampled frame (a snapshot: the sample objects keep changing after)."""

    people: tuple[Detection, ...]
    patient: Detection | None
    lines: tuple[str, ...]  # banner text, top to bottom
    valid: bool | None  # banner colour: the window scored, not scored, or not known


def _text_scale(height_px: int) -> tuple[float, int]:
    scale = max(0.4, min(1.2, height_px / 900))
    return scale, 1 if scale < 0.8 else 2


def _label(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float,
           thickness: int, *, min_y: int = 0) -> None:
    """``text`` on a filled box of ``colour`` whose bottom-left is at (x, y), kept inside the image and below
    ``min_y`` (the banner)."""
    (w, h), base = cv2.getTextSize(text, _FONT, scale, thickness)
    x = max(0, min(x, image.shape[1] - w - 4))
    y = max(min_y + h + base + 2, y)
    cv2.rectangle(image, (x, y - h - base - 2), (x + w + 4, y), colour, cv2.FILLED)
    dark = sum(colour) > 382
    cv2.putText(image, text, (x + 2, y - base), _FONT, scale, (0, 0, 0) if dark else TEXT_BGR, thickness,
                cv2.LINE_AA)


def _wrap(text: str, width_px: int, scale: float, thickness: int) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width_px`` (a longer word stays whole)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and cv2.getTextSize(f"{lines[-1]} {word}", _FONT, scale, thickness)[0][0] <= width_px:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _fit(text: str, width_px: int, scale: float, thickness: int) -> str:
    """``text``, cut with "..." to fit ``width_px``."""
    while len(text) > 4 and cv2.getTextSize(text, _FONT, scale, thickness)[0][0] > width_px:
        text = text[:-4] + "..."
    return text


def draw_frame(image: np.ndarray, marks: FrameMarks) -> np.ndarray:
    """A copy of ``image`` (H, W, 3 or H, W uint8) with the people, the patient and the banner drawn (BGR).

    The boxes first, then the banner over the top of the frame (its lines wrapped to the frame's width), then
    the boxes' labels, kept below the banner."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    scale, thick = _text_scale(out.shape[0])
    box_px = max(2, round(out.shape[0] / 240))
    patient_id = marks.patient.track_id if marks.patient is not None else None
    labels: list[tuple[str, int, int, tuple[int, int, int], float, int]] = []
    for person in marks.people:
        if marks.patient is not None and person.track_id is not None and person.track_id == patient_id:
            continue  # drawn below, highlighted
        x1, y1, x2, y2 = (round(v) for v in person.box_xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), PERSON_BGR, 1, cv2.LINE_8)
        if person.track_id is not None:
            labels.append((f"#{person.track_id}", x1, y1, PERSON_BGR, scale * 0.7, 1))
    if marks.patient is not None:
        x1, y1, x2, y2 = (round(v) for v in marks.patient.box_xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), PATIENT_BGR, box_px, cv2.LINE_8)
        ident = "" if patient_id is None else f" #{patient_id}"
        labels.append((f"patient{ident}", x1, y1 - box_px, PATIENT_BGR, scale * 0.8, thick))
    banner_px = 0
    if marks.lines:
        lines = [part for line in marks.lines for part in _wrap(line, out.shape[1] - 12, scale, thick)]
        (_w, h), base = cv2.getTextSize("Ag", _FONT, scale, thick)
        line_px = h + base + 6
        banner_px = line_px * len(lines) + 4
        cv2.rectangle(out, (0, 0), (out.shape[1], banner_px), BANNER_BGR[marks.valid], cv2.FILLED)
        for i, line in enumerate(lines):
            cv2.putText(out, line, (6, (i + 1) * line_px - 4), _FONT, scale, TEXT_BGR, thick, cv2.LINE_AA)
    for text, x, y, colour, text_scale, text_thick in labels:
        _label(out, text, x, y, colour, text_scale, text_thick, min_y=banner_px)
    return out


def _tile(crop: np.ndarray | None, tile_px: int) -> np.ndarray:
    if crop is None:
        tile = np.full((tile_px, tile_px, 3), MISSING_TILE_BGR, dtype=np.uint8)
        cv2.putText(tile, "no crop", (max(2, tile_px // 2 - 30), tile_px // 2), _FONT, 0.45, TEXT_BGR, 1,
                    cv2.LINE_AA)
        return tile
    if crop.shape[:2] != (tile_px, tile_px):
        crop = cv2.resize(crop, (tile_px, tile_px), interpolation=cv2.INTER_AREA)
    return crop if crop.ndim == 3 else cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)


def contact_sheet(rows: Mapping[str, Sequence[np.ndarray | None]], lines: Sequence[str], *,
                  tile_px: int, header_px: int = SHEET_HEADER_PX) -> np.ndarray:
    """One row of tiles per view (in ``rows``' order), under a header of ``lines``: an image of
    ``header_px + len(rows) * tile_px`` by ``max columns * tile_px`` pixels; tiles are the crops unchanged
    when they are ``tile_px`` square, a dark "no crop" tile for None."""
    cols = max((len(tiles) for tiles in rows.values()), default=0)
    sheet = np.zeros((header_px + len(rows) * tile_px, max(1, cols) * tile_px, 3), dtype=np.uint8)
    for r, tiles in enumerate(rows.values()):
        for c, crop in enumerate(tiles):
            y = header_px + r * tile_px
            sheet[y:y + tile_px, c * tile_px:(c + 1) * tile_px] = _tile(crop, tile_px)
    scale = 0.5
    for i, line in enumerate(lines[:2]):
        cv2.putText(sheet, _fit(line, sheet.shape[1] - 12, scale, 1), (6, 18 + i * 22), _FONT, scale, TEXT_BGR, 1,
                    cv2.LINE_AA)
    return sheet


def window_tiles(pending: PendingWindow, views: Sequence[str], frames: int) -> dict[str, list[np.ndarray | None]]:
    """Each view's model input of the window: the clips the model got (scored window), else the crops made, by
    sample position (None where there is no crop)."""
    if pending.clips is not None:
        return {view: list(pending.clips[view]) for view in views if view in pending.clips}
    tiles: dict[str, list[np.ndarray | None]] = {view: [None] * frames for view in views}
    for sample in pending.present:
        col = sample.index - pending.first_sample
        if 0 <= col < frames:
            for view in views:
                tiles[view][col] = sample.crops.get(view)
    return tiles


def _marks(sample: ProcessedSample, view: str, head: str, verdict: str, valid: bool) -> FrameMarks:
    """What is drawn on ``view``'s frame of ``sample``: its people and patient, the banner and the sample's marks."""
    notes = [text for text, on in (
        (f"stale: {sample.stale}", sample.stale is not None),
        ("boxes interpolated (detector skipped this sample)", not sample.detected and sample.stale is None),
        (f"cut off: {sample.cut_off.get(view)}", view in sample.cut_off),
        ("identity changed", view in sample.identity_jump),
        ("lock contested", view in sample.contested)) if on]
    lines = (head, verdict, "; ".join(notes)) if notes else (head, verdict)
    return FrameMarks(people=tuple(sample.people.get(view, ())), patient=sample.patient.get(view), lines=lines,
                      valid=valid)


class _Worker:
    """One background thread running submitted calls in order; the first failure stops it (kept in ``error``)."""

    def __init__(self, name: str, max_jobs: int = 48) -> None:
        self.error: BaseException | None = None
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(maxsize=max_jobs)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.error is None:
            self._jobs.put((fn, args))

    def wait(self) -> None:
        """Until every submitted call has run."""
        self._jobs.join()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self.error is None:
                    fn, args = job
                    try:
                        fn(*args)
                    except Exception as exc:  # an OSError, or OpenCV's: recording stops, scoring goes on
                        self.error = exc
                        log.error("saving the annotated video stopped: %s", exc)
            finally:
                self._jobs.task_done()


class VideoRecorder:
    """Observer of one pipeline: its sampled frames -> ``<take>/front.mp4``, ``side.mp4``, ``windows/*.png``.

    ``folder``: where the files go; ``per_stream``: each stream (session) of the pipeline in its own subfolder
    named after the session (live pipelines see many streams; ``dualgait score`` sees one and writes to
    ``folder`` itself). ``sample_rate_hz``: the pipeline's samples per second (the videos' frame rate).
    """

    def __init__(self, folder: str | Path, *, sample_rate_hz: float, frames: int, per_stream: bool = False,
                 name: str = "annotate") -> None:
        self.folder = Path(folder)
        self.sample_rate_hz = sample_rate_hz
        self.frames = frames
        self.per_stream = per_stream
        self.takes: list[Path] = []  # the folders written, in order
        self._worker = _Worker(name)
        self._session: str | None = None
        self._images: dict[int, tuple[ProcessedSample, Mapping[str, np.ndarray]]] = {}
        self._written = -1  # last sample index written
        self._t0_ns: int | None = None
        self._writers: dict[str, cv2.VideoWriter] = {}  # the worker's, with each video's frame size
        self._sizes: dict[str, tuple[int, int]] = {}

    @property
    def error(self) -> BaseException | None:
        return self._worker.error

    @property
    def take(self) -> Path | None:
        """The folder of the stream being written (None before its first sample)."""
        return self.takes[-1] if self._session is not None else None

    # ------------------------------------------------------------------ observer side (pipeline thread)

    def sample(self, session: str, sample: ProcessedSample, images: Mapping[str, np.ndarray]) -> None:
        """A sample with a frame pair (kept until its first window is finished)."""
        if self.error is not None:
            return
        if session != self._session:
            self._start(session)
        if self._t0_ns is None:
            self._t0_ns = sample.t_mono_ns
        self._images[sample.index] = (sample, dict(images))

    def window(self, pending: PendingWindow, score: WindowScore) -> None:
        """A finished window: its samples' frames are drawn with its verdict, and its contact sheet made."""
        if self.error is not None or self._session is None:
            self._images.clear()
            return
        take = self.takes[-1]
        verdict = verdict_text(score)
        for index in range(max(self._written + 1, pending.first_sample), pending.first_sample + self.frames):
            head = f"window {score.window}  sample {index - pending.first_sample + 1}/{self.frames}"
            kept = self._images.get(index)
            if kept is None:  # no frame pair at this sample: a placeholder keeps the video's timeline
                for view in pending.owner.views:
                    marks = FrameMarks((), None, (f"{view}  {head}", verdict, "no frame pair at this sample"),
                                       score.valid)
                    self._worker.submit(self._write_blank, view, marks)
            else:
                sample, images = kept
                t_s = (sample.t_mono_ns - (self._t0_ns or 0)) / 1e9
                for view, image in images.items():
                    self._worker.submit(self._write_frame, take, view, image,
                                        _marks(sample, view, f"{view}  {head}  t {t_s:.2f} s", verdict, score.valid))
            self._written = index
        keep_from = max(self._written + 1, pending.first_sample)
        for index in [i for i in self._images if i < keep_from]:
            del self._images[index]
        views = list(pending.clips) if pending.clips is not None else list(pending.owner.views)
        tiles = window_tiles(pending, views, self.frames)
        last = pending.first_sample + self.frames - 1
        header = [f"window {score.window}  {verdict}",
                  f"model input: rows {', '.join(tiles)}; samples {pending.first_sample}-{last}"]
        self._worker.submit(self._write_sheet, take / "windows" / f"window_{score.window:04d}.png", tiles, header)

    def end(self, session: str) -> None:
        """The stream ended: its partial window's frames are dropped, the videos closed (waits for the writes)."""
        self._images.clear()
        if self._session is None:
            return
        self._worker.submit(self._close_writers)
        self._worker.wait()
        if self.error is None:
            log.info("annotated videos and window contact sheets of stream %s in %s", session, self.takes[-1])
        self._session = None

    def close(self) -> None:
        """End the current stream (if any) and stop the background thread."""
        if self._session is not None:
            self.end(self._session)
        self._worker.stop()

    def _start(self, session: str) -> None:
        if self._session is not None:
            self.end(self._session)
        self._session = session
        self.takes.append(self.folder / session if self.per_stream else self.folder)
        self._written, self._t0_ns = -1, None
        self._images.clear()

    # ------------------------------------------------------------------ worker side

    def _write_blank(self, view: str, marks: FrameMarks) -> None:
        """A black frame with ``marks`` in the view's video (none before its first frame: its size is unknown)."""
        if view in self._writers:
            width, height = self._sizes[view]
            self._writers[view].write(draw_frame(np.zeros((height, width, 3), dtype=np.uint8), marks))

    def _write_frame(self, take: Path, view: str, image: np.ndarray, marks: FrameMarks) -> None:
        frame = draw_frame(image, marks)
        writer = self._writers.get(view)
        if writer is None:
            take.mkdir(parents=True, exist_ok=True)
            path = take / f"{view}.mp4"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.sample_rate_hz,
                                     (frame.shape[1], frame.shape[0]))
            if not writer.isOpened():
                raise OSError(f"cannot write video {path} (OpenCV mp4v writer did not open)")
            self._writers[view] = writer
            self._sizes[view] = (frame.shape[1], frame.shape[0])
        size = self._sizes[view]
        if (frame.shape[1], frame.shape[0]) != size:  # the camera changed resolution: keep the video's
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        writer.write(frame)

    def _write_sheet(self, path: Path, tiles: Mapping[str, Sequence[np.ndarray | None]],
                     header: Sequence[str]) -> None:
        tile_px = next((t.shape[0] for row in tiles.values() for t in row if t is not None), 112)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), contact_sheet(tiles, header, tile_px=tile_px)):
            raise OSError(f"cannot write {path}")

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.release()
        self._writers.clear()
        self._sizes.clear()


def attach_recorders(pipelines: Mapping[str, InferencePipeline], folder: str | Path, *,
                     per_stream: bool) -> dict[str, VideoRecorder]:
    """A :class:`VideoRecorder` on each pipeline (walkway): ``folder`` itself for one walkway, else one subfolder
    per walkway. Returns walkway -> recorder (call ``close()`` on each at the end)."""
    recorders = {}
    for walkway, pipeline in pipelines.items():
        win = pipeline.cfg.window
        where = Path(folder).expanduser() if len(pipelines) == 1 else Path(folder).expanduser() / walkway
        recorder = VideoRecorder(where, sample_rate_hz=win.frames / win.duration_s, frames=win.frames,
                                 per_stream=per_stream, name=f"annotate-{walkway}")
        pipeline.observers.append(recorder)
        recorders[walkway] = recorder
    log.info("saving annotated videos and window contact sheets to %s", folder)
    return recorders
