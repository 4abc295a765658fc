"""Identity continuity of the locked patient: does the track still show the same person?

A stage without sockets, fed the locked patient's box and frame once per *detected* sample, per view. In a
busy scene a tracker can hand one track id from one person to another during an occlusion (two walkers
crossing); the track id stays, the person changes. :class:`IdentityMonitor` compares each sighting's
appearance with the track's earlier sightings and reports a jump when they differ by more than
``PatientConfig.identity_max_distance``; the pipeline then marks the sample (its windows are invalid,
``identity_changed``) and releases the lock so that it decides afresh.

The appearance signature (:func:`signature`) is a colour histogram of two bands of the box, the trunk (shirt)
and the thighs (trousers), so that both colours count. A band's pixels fall into ``GREY_BINS`` brightness bins
when they have little colour (grey, black, white clothes: their hue is noise) and into ``HUE_BINS`` x 2
hue-saturation bins otherwise, shared between neighbouring bins near an edge. The distance of two signatures
is the mean over the bands of the Bhattacharyya distance of their histograms (0: the same colours, 1: no colour
in common). It ignores shape and pose, so it holds when the patient turns, walks towards the camera or changes
size; it cannot tell two people dressed alike apart, and the background inside the box counts too (a swap
between two people seen against the same wall is measured on their clothes alone only where they fill the box).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["IdentityCheck", "IdentityMonitor", "signature", "signature_distance"]

HUE_BINS = 12  # hue bins of coloured pixels (each split into low and high saturation)
GREY_BINS = 4  # brightness bins of pixels with little colour
# OpenCV HSV (0..255) ramps from grey to coloured: saturation (below: grey, white, black clothes) and value (a
# dark pixel's hue is noise); linear in between. Every edge is soft (a pixel is shared between neighbouring bins
# by its distance to their centres), so a colour near a bin edge does not flip bins from one sample to the next
CHROMA_S = (16.0, 48.0)
CHROMA_V = (16.0, 48.0)
SATURATION_CENTRES = (64.0, 192.0)  # of the low and the high saturation bin
BINS = GREY_BINS + 2 * HUE_BINS  # per band
# the two bands of the box counted, fractions of its height from the top: trunk (shirt) and thighs (trousers);
# the head and the feet are left out. The whole width counts: a narrower column misses the trunk in a side
# view, where the stride and a swinging arm move the box's centre off the body
UPPER_Y = (0.15, 0.5)
LOWER_Y = (0.5, 0.8)
SAMPLE_H_PX = 64  # the box is resampled to this height (aspect kept) before counting: cost and noise independent
#                   of the person's size in the frame


def _ramp(x: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    return np.clip((x - lo_hi[0]) / (lo_hi[1] - lo_hi[0]), 0.0, 1.0)


def _band_histogram(bgr: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 BGR -> (BINS,) float32 histogram summing to 1 (soft binning)."""
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]  # hue 0..179, saturation and value 0..255
    chroma = _ramp(s, CHROMA_S) * _ramp(v, CHROMA_V)  # (N,) 0: grey .. 1: coloured
    grey = np.clip(v * GREY_BINS / 256 - 0.5, 0, GREY_BINS - 1)  # in bins, centres at integers
    g0 = np.floor(grey).astype(np.int64)
    g1, g_frac = np.minimum(g0 + 1, GREY_BINS - 1), grey - g0
    hue = h * HUE_BINS / 180 - 0.5  # circular
    u0 = np.floor(hue).astype(np.int64)
    h_frac, u1 = hue - u0, (u0 + 1) % HUE_BINS
    u0 %= HUE_BINS
    high = _ramp(s, SATURATION_CENTRES)
    index = [g0, g1, GREY_BINS + 2 * u0, GREY_BINS + 2 * u0 + 1, GREY_BINS + 2 * u1, GREY_BINS + 2 * u1 + 1]
    weight = [(1 - chroma) * (1 - g_frac), (1 - chroma) * g_frac, chroma * (1 - h_frac) * (1 - high),
              chroma * (1 - h_frac) * high, chroma * h_frac * (1 - high), chroma * h_frac * high]
    counts = np.bincount(np.concatenate(index), weights=np.concatenate(weight), minlength=BINS)
    return (counts / max(1e-6, float(counts.sum()))).astype(np.float32)


def signature(image: np.ndarray, box_xyxy: tuple[float, float, float, float]) -> np.ndarray | None:
    """(2, BINS) float32: the upper and the lower band's colour histograms of the person in ``box_xyxy``.

    ``image``: (H, W, 3) uint8 BGR; ``box_xyxy`` in pixels. None when a band has (almost) no pixels inside the
    image.
    """
    frame_h_px, frame_w_px = image.shape[:2]
    x0, y0, x1, y1 = box_xyxy
    box_h_px = y1 - y0
    scale = SAMPLE_H_PX / max(1.0, box_h_px)
    c0, c1 = max(0, round(x0)), min(frame_w_px, round(x1))
    bands = []
    for top, bottom in (UPPER_Y, LOWER_Y):
        r0 = max(0, round(y0 + top * box_h_px))
        r1 = min(frame_h_px, round(y0 + bottom * box_h_px))
        if c1 - c0 < 2 or r1 - r0 < 2:
            return None
        size = (max(1, round((c1 - c0) * scale)), max(1, round((r1 - r0) * scale)))  # (w, h) for OpenCV
        bands.append(_band_histogram(cv2.resize(image[r0:r1, c0:c1], size, interpolation=cv2.INTER_AREA)))
    return np.stack(bands)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the bands of the Bhattacharyya distance of two (2, BINS) signatures: 0 (same) .. 1."""
    overlap = np.sqrt(a * b).sum(axis=1)  # (2,) Bhattacharyya coefficient per band
    return float(np.sqrt(np.clip(1.0 - overlap, 0.0, 1.0)).mean())


@dataclass(frozen=True, slots=True)
class IdentityCheck:
    track_id: int
    distance: float  # to the track's reference (0..1)
    jump: bool  # above the limit: the track now shows someone else


class IdentityMonitor:
    """One view's identity check of the locked track; :meth:`check` at each detected sighting, in time order.

    The reference is a running mean of the track's signatures: a new sighting moves it ``update_weight`` of the
    way, less the more it differs (none at ``max_distance``). Slow changes (the patient turning, nearing the
    camera, the light along the walkway) are followed; a change of person is not absorbed, even when the box
    slides from one person to the other over a few samples.
    """

    def __init__(self, max_distance: float, *, update_weight: float = 0.8) -> None:
        if not 0 < max_distance <= 1:
            raise ValueError("max_distance must be in (0, 1]")
        if not 0 < update_weight <= 1:
            raise ValueError("update_weight must be in (0, 1]")
        self.max_distance = max_distance
        self.update_weight = update_weight
        self.track_id: int | None = None
        self._reference: np.ndarray | None = None  # (2, BINS) float32

    @property
    def reference(self) -> np.ndarray | None:
        """(2, BINS) float32: the track's running-mean signature, None before its first sighting."""
        return self._reference

    def reset(self) -> None:
        """Forget the reference (the lock changed or was released, or the walk ended)."""
        self.track_id, self._reference = None, None

    def check(self, track_id: int, image: np.ndarray, box_xyxy: tuple[float, float, float, float]
              ) -> IdentityCheck | None:
        """Compare this sighting of ``track_id`` with the track's reference; None when there is nothing to compare
        (a new track: it becomes the reference, or no signature). A jump resets the monitor."""
        current = signature(image, box_xyxy)
        if track_id != self.track_id:
            self.reset()
            self.track_id = track_id
        if current is None:
            return None
        if self._reference is None:
            self._reference = current
            return None
        distance = signature_distance(self._reference, current)
        if distance > self.max_distance:
            self.reset()
            return IdentityCheck(track_id, distance, jump=True)
        weight = self.update_weight * (1 - distance / self.max_distance)
        self._reference = (1 - weight) * self._reference + weight * current
        return IdentityCheck(track_id, distance, jump=False)
