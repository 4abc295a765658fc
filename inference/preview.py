"""Camera previews for the live view: a downscaled JPEG of a frame with the patient's box, and of the last
window's model input per view (its crops in a row, the live view's crops panel). Stages without sockets. At
most ``rate_hz`` per view, on the frames' capture clock; previews are for the screen only and are never
written to disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core.messages import MAX_PREVIEW_BYTES, MAX_PREVIEW_SIDE_PX, Frame, Preview, WindowScore
from inference.config import PreviewConfig
from inference.samples import ProcessedSample

if TYPE_CHECKING:
    from inference.pipeline import PendingWindow


def encode_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` as a JPEG of at most MAX_PREVIEW_BYTES: the quality is lowered for a noisy image until it fits."""
    while True:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("preview JPEG encoding failed")
        if len(buf) <= MAX_PREVIEW_BYTES or quality <= 10:
            return buf
        quality = max(10, quality - 20)


class PreviewThrottle:
    """``offer(frame, patient_box, track_id) -> Preview | None``: a preview when the view is due one."""

    def __init__(self, rate_hz: float, width_px: int, *, jpeg_quality: int = 70) -> None:
        PreviewConfig(rate_hz=rate_hz, width_px=width_px, jpeg_quality=jpeg_quality)  # same checks
        self.period_ns = int(1e9 / rate_hz)
        self.width_px = width_px
        self.jpeg_quality = jpeg_quality
        self._last_ns: dict[str, int] = {}

    @classmethod
    def from_config(cls, cfg: PreviewConfig) -> PreviewThrottle | None:
        """None when previews are disabled."""
        return cls(cfg.rate_hz, cfg.width_px, jpeg_quality=cfg.jpeg_quality) if cfg.enabled else None

    def offer(self, frame: Frame, patient_box: Sequence[float] | None, track_id: int | None = None
              ) -> Preview | None:
        last = self._last_ns.get(frame.view)
        if last is not None and 0 <= frame.capture_mono_ns - last < self.period_ns:
            return None
        self._last_ns[frame.view] = frame.capture_mono_ns
        image = frame.image if frame.image.ndim == 3 else cv2.cvtColor(frame.image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        pw = min(self.width_px, w)
        ph = max(1, min(MAX_PREVIEW_SIDE_PX, round(h * pw / w)))
        small = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_AREA) if (pw, ph) != (w, h) else image
        buf = encode_jpeg(small, self.jpeg_quality)
        box = None
        if patient_box is not None:
            x1, y1, x2, y2 = (float(v) for v in patient_box)
            x1, x2 = max(0.0, min(x1, w)), max(0.0, min(x2, w))
            y1, y2 = max(0.0, min(y1, h)), max(0.0, min(y2, h))
            box = (x1, y1, x2, y2) if x1 < x2 and y1 < y2 else None
        return Preview(view=frame.view, seq=frame.seq, capture_mono_ns=frame.capture_mono_ns, width=w, height=h,
                       box_xyxy=box, track_id=track_id if box is not None else None, jpeg=buf.tobytes(),
                       preview_width=pw, preview_height=ph)


class CropsPreview:
    """The live view's crops panel: a pipeline observer that turns each finished window into one preview per view
    (``kind`` "crops"): the crops of the window in a row, each ``tile_px`` square (at most MAX_PREVIEW_SIDE_PX
    wide in all), the model's exact input for a scored window, the crops made (dark where none) for another.
    At most ``rate_hz`` per view on the windows' end times; the process loop publishes :meth:`take`."""

    def __init__(self, rate_hz: float, *, frames: int, jpeg_quality: int = 70, tile_px: int = 128) -> None:
        self.period_ns = int(1e9 / rate_hz)
        self.frames = frames
        self.jpeg_quality = jpeg_quality
        self.tile_px = max(16, min(tile_px, MAX_PREVIEW_SIDE_PX // max(1, frames)))
        self._last_ns: int | None = None
        self._out: list[Preview] = []

    @classmethod
    def from_config(cls, cfg: PreviewConfig, *, frames: int) -> CropsPreview | None:
        """None when previews or the crops panel are disabled."""
        return cls(cfg.rate_hz, frames=frames, jpeg_quality=cfg.jpeg_quality) if cfg.enabled and cfg.crops else None

    def sample(self, session: str, sample: ProcessedSample, images: Mapping[str, np.ndarray]) -> None:
        pass  # the frames are not needed: only the windows' crops

    def end(self, session: str) -> None:
        pass

    def window(self, pending: PendingWindow, score: WindowScore) -> None:
        from inference.annotate import contact_sheet, window_tiles

        if self._last_ns is not None and 0 <= pending.end_ns - self._last_ns < self.period_ns:
            return
        self._last_ns = pending.end_ns
        views = list(pending.clips) if pending.clips is not None else list(pending.owner.views)
        for view, tiles in window_tiles(pending, views, self.frames).items():
            strip = contact_sheet({view: tiles}, [], tile_px=self.tile_px, header_px=0)
            buf = encode_jpeg(strip, self.jpeg_quality)
            h, w = strip.shape[:2]
            self._out.append(Preview(view=view, seq=score.window, capture_mono_ns=max(0, pending.end_ns), width=w,
                                     height=h, box_xyxy=None, track_id=None, jpeg=buf.tobytes(), preview_width=w,
                                     preview_height=h, walkway=score.walkway, kind="crops"))

    def take(self) -> list[Preview]:
        """The previews made since the last call (oldest first)."""
        out, self._out = self._out, []
        return out
