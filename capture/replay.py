"""Compatibility names for code written before capture was split (training/ and inference.calibration use them).

New code imports from :mod:`capture.sources` and :mod:`capture.pacing`.
"""

from __future__ import annotations

from capture.pacing import Pacer, start_instant_mono_ns
from capture.sources import DecodedFrame, FileSource, SourceError

VideoFileSource = FileSource

__all__ = ["DecodedFrame", "Pacer", "SourceError", "VideoFileSource", "start_instant_mono_ns"]
