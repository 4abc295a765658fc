"""Camera previews for the live view: a downscaled JPEG of a frame with the patient's box (a stage without
sockets). At most ``rate_hz`` per view, on the frames' capture clock; previews are for the screen only and
are never written to disk.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2

from core.messages import MAX_PREVIEW_BYTES, MAX_PREVIEW_SIDE_PX, Frame, Preview
from inference.config import PreviewConfig


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
        quality = self.jpeg_quality
        while True:
            ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise ValueError("preview JPEG encoding failed")
            if len(buf) <= MAX_PREVIEW_BYTES or quality <= 10:
                break
            quality = max(10, quality - 20)  # a noisy frame: lower the quality until it fits the bound
        box = None
        if patient_box is not None:
            x1, y1, x2, y2 = (float(v) for v in patient_box)
            x1, x2 = max(0.0, min(x1, w)), max(0.0, min(x2, w))
            y1, y2 = max(0.0, min(y1, h)), max(0.0, min(y2, h))
            box = (x1, y1, x2, y2) if x1 < x2 and y1 < y2 else None
        return Preview(view=frame.view, seq=frame.seq, capture_mono_ns=frame.capture_mono_ns, width=w, height=h,
                       box_xyxy=box, track_id=track_id if box is not None else None, jpeg=buf.tobytes(),
                       preview_width=pw, preview_height=ph)
