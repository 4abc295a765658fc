"""How often the live pipeline's person tracker finds the synthetic walker.

Runs ``inference.detector.YoloViewTracker`` (the shared YOLO model, one tracker per view, as in the live
pipeline) over every ``step``-th frame of a generated front/side pair and reports, per view, the fraction
of those frames in which a patient was found. Optionally also how well the found box matches the true
one (IoU), when true boxes are given.

    python -m training.synthetic.detect_rate DIR/manifest.csv [--step 3] [--limit 6]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core.messages import VIEWS


@dataclass(slots=True)
class DetectionRate:
    frames: dict[str, int] = field(default_factory=dict)  # frames looked at, per view
    found: dict[str, int] = field(default_factory=dict)  # frames with the patient found
    mean_iou: dict[str, float | None] = field(default_factory=dict)  # found box vs true box, when known

    def rate(self, view: str) -> float:
        return self.found[view] / self.frames[view] if self.frames.get(view) else 0.0

    def as_dict(self) -> dict[str, object]:
        return {"frames": self.frames, "found": self.found, "rate": {v: round(self.rate(v), 4) for v in self.frames},
                "mean_iou": self.mean_iou}


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def read_boxes(path: str | Path) -> dict[int, tuple[float, float, float, float]]:
    """A ``frame,x1,y1,x2,y2`` CSV -> frame -> box."""
    out: dict[int, tuple[float, float, float, float]] = {}
    for line in Path(path).read_text().splitlines()[1:]:
        if line.strip():
            i, x1, y1, x2, y2 = line.split(",")
            out[int(i)] = (float(x1), float(y1), float(x2), float(y2))
    return out


def detection_rate(front: str | Path, side: str | Path, *, step: int = 3, detector_cfg=None, trackers=None,
                   true_boxes: dict[str, dict[int, tuple[float, float, float, float]]] | None = None) -> DetectionRate:
    """Fraction of every ``step``-th frame in which the tracker finds the patient, per view.

    ``detector_cfg`` defaults to ``load_config().inference.detector`` (the live pipeline's tracker);
    ``trackers`` (view -> tracker with ``update``/``reset``) may be passed to reuse loaded models.
    """
    from capture.sources import FileSource

    if trackers is None:
        from inference.detector import YoloViewTracker

        if detector_cfg is None:
            from core.configtools import from_mapping
            from inference.config import DetectorConfig

            detector_cfg = from_mapping(DetectorConfig, {})
        trackers = {view: YoloViewTracker(detector_cfg) for view in VIEWS}
    result = DetectionRate()
    for view, path in (("front", front), ("side", side)):
        tracker = trackers[view]
        tracker.reset()
        source = FileSource(path)
        seen = found = 0
        ious: list[float] = []
        try:
            for frame in source.frames():
                if frame.index % step:
                    continue
                people = tracker.track(frame.image)  # the walker is alone: the tallest box is the patient
                patient = max(people, key=lambda d: d.box_xyxy[3] - d.box_xyxy[1], default=None)
                seen += 1
                if patient is not None:
                    found += 1
                    truth = (true_boxes or {}).get(view, {}).get(frame.index)
                    if truth is not None:
                        ious.append(_iou(patient.box_xyxy, truth))
        finally:
            source.close()
        result.frames[view] = seen
        result.found[view] = found
        result.mean_iou[view] = round(sum(ious) / len(ious), 4) if ious else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synthetic.detect_rate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", help="manifest of a generated data set")
    parser.add_argument("--step", type=int, default=3, help="look at every STEP-th frame")
    parser.add_argument("--limit", type=int, help="only the first LIMIT rows")
    parser.add_argument("--json", help="also write the per-walk results here")
    args = parser.parse_args(argv)
    from core.configtools import from_mapping
    from inference.config import DetectorConfig
    from inference.detector import YoloViewTracker, configure_ultralytics_env
    from training.manifest import read_manifest

    configure_ultralytics_env(Path(tempfile.gettempdir()) / "dualgait-ultralytics")
    rows = read_manifest(args.manifest)[: args.limit]
    cfg = from_mapping(DetectorConfig, {})
    trackers = {view: YoloViewTracker(cfg) for view in VIEWS}
    totals = {v: [0, 0] for v in VIEWS}
    report = []
    for row in rows:
        truth = {}
        if row.boxes_front:
            truth["front"] = read_boxes(row.boxes_front)
        if row.boxes_side:
            truth["side"] = read_boxes(row.boxes_side)
        rate = detection_rate(row.front, row.side, step=args.step, trackers=trackers, true_boxes=truth)
        for v in VIEWS:
            totals[v][0] += rate.found[v]
            totals[v][1] += rate.frames[v]
        report.append({"participant_id": row.participant_id, "label": row.label, **rate.as_dict()})
        print(f"{row.participant_id:10s} {row.label:8s} front {rate.rate('front'):.3f}  side {rate.rate('side'):.3f}"
              f"  iou {rate.mean_iou}", flush=True)
    overall = {v: totals[v][0] / max(1, totals[v][1]) for v in VIEWS}
    print(f"overall: front {overall['front']:.3f}  side {overall['side']:.3f}  ({len(rows)} walks, step {args.step})")
    if args.json:
        Path(args.json).write_text(json.dumps({"walks": report, "overall": overall}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
