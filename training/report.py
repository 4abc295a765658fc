"""Cross-validation report: metrics.json, a Table II-style table.md, confusion matrices and training curves.

Pictures are drawn with OpenCV (no matplotlib). Files written into the run folder DIR::

    DIR/metrics.json        per fold (window and participant level) and mean ± std over folds
    DIR/table.md            rows: variant; columns accuracy, precision, recall, F1 as mean ± std
    DIR/confusion.png       confusion matrix summed over the folds' validation windows
    DIR/curves.png          validation loss of every fold per epoch
    DIR/fold{k}/confusion.png, DIR/fold{k}/curves.png   the same per fold
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from training.metrics import METRICS, summarize_folds

__all__ = ["draw_confusion", "draw_curves", "format_mean_std", "table_markdown", "write_report"]

_HEADERS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1"}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BLACK, _GREY, _LIGHT = (0, 0, 0), (120, 120, 120), (225, 225, 225)
# BGR colours of the curves: train (blue), validation (orange), accuracy (green), F1 (purple), more folds
_COLOURS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (189, 103, 148), (40, 39, 214), (75, 86, 140),
            (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23)]


def format_mean_std(value: Mapping[str, float], digits: int = 3) -> str:
    return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}"


def table_markdown(rows: Mapping[str, Mapping[str, Any]], *, title: str = "") -> str:
    """A markdown table like the paper's Table II: one row per variant, metrics as mean ± std."""
    lines = [f"{title}\n" if title else ""]
    lines.append("| Model | " + " | ".join(_HEADERS[m] for m in METRICS) + " |")
    lines.append("| --- | " + " | ".join("---" for _ in METRICS) + " |")
    for name, summary in rows.items():
        lines.append(f"| {name} | " + " | ".join(format_mean_std(summary[m]) for m in METRICS) + " |")
    return "\n".join(lines).lstrip("\n") + "\n"


def _text(img: np.ndarray, text: str, org: tuple[int, int], *, scale: float = 0.45, colour=_BLACK,
          thickness: int = 1, centre: bool = False) -> None:
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    x, y = org
    if centre:
        x, y = x - w // 2, y + h // 2
    cv2.putText(img, text, (int(x), int(y)), _FONT, scale, colour, thickness, cv2.LINE_AA)


def draw_confusion(matrix: Sequence[Sequence[int]], *, title: str = "") -> np.ndarray:
    """2x2 confusion matrix [[TN, FP], [FN, TP]] as a BGR picture: counts and row percentages."""
    m = np.asarray(matrix, dtype=np.int64).reshape(2, 2)
    cell, left, top = 150, 150, 70
    img = np.full((top + 2 * cell + 60, left + 2 * cell + 30, 3), 255, np.uint8)
    if title:
        _text(img, title, (img.shape[1] // 2, 22), scale=0.55, centre=True)
    names = ("non-ASD", "ASD")
    for i in range(2):
        total = int(m[i].sum())
        for j in range(2):
            frac = m[i, j] / total if total else 0.0
            shade = 255 - round(200 * frac)
            colour = (255, shade, shade) if i == j else (shade, shade, 255)
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), colour, -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), _GREY, 1)
            ink = (255, 255, 255) if frac > 0.6 else _BLACK
            _text(img, str(int(m[i, j])), (x0 + cell // 2, y0 + cell // 2 - 12), scale=0.9, colour=ink,
                  thickness=2, centre=True)
            _text(img, f"{100 * frac:.1f}%", (x0 + cell // 2, y0 + cell // 2 + 22), colour=ink, centre=True)
        _text(img, f"true {names[i]}", (8, top + i * cell + cell // 2 + 5))
        _text(img, f"pred {names[i]}", (left + i * cell + cell // 2, top - 14), centre=True)
    _text(img, "rows: true class, columns: predicted; % of the row", (left - 120, top + 2 * cell + 35),
          scale=0.4, colour=_GREY)
    return img


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=10 * mag)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + 1e-9 * step:
        if t >= lo - 1e-9 * step:
            ticks.append(round(t, 10))
        t += step
    return ticks


def _panel(img: np.ndarray, box: tuple[int, int, int, int], series: Sequence[tuple[str, Sequence[float], tuple]],
           *, y_range: tuple[float, float] | None, title: str, marker_x: int | None = None) -> None:
    """Line plot of ``series`` (label, values per epoch 1..n, colour) inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    px0, py0, px1, py1 = x0 + 55, y0 + 46, x1 - 10, y1 - 40
    n = max((len(v) for _, v, _ in series), default=0)
    values = [float(x) for _, v, _ in series for x in v if x is not None and math.isfinite(float(x))]
    lo, hi = y_range if y_range else ((min(values), max(values)) if values else (0.0, 1.0))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    if not y_range:
        pad = 0.05 * (hi - lo)
        lo, hi = lo - pad, hi + pad
    _text(img, title, ((x0 + x1) // 2, y0 + 10), scale=0.5, centre=True)

    def xy(epoch: float, value: float) -> tuple[int, int]:
        fx = (epoch - 1) / max(1, n - 1)
        fy = (value - lo) / (hi - lo)
        return round(px0 + fx * (px1 - px0)), round(py1 - fy * (py1 - py0))

    for t in _nice_ticks(lo, hi):
        _, y = xy(1, t)
        cv2.line(img, (px0, y), (px1, y), _LIGHT, 1)
        _text(img, f"{t:g}", (x0 + 4, y + 4), scale=0.38, colour=_GREY)
    step = max(1, math.ceil(n / 10))
    for e in range(1, n + 1, step):
        x, _ = xy(e, lo)
        cv2.line(img, (x, py1), (x, py1 + 4), _GREY, 1)
        _text(img, str(e), (x, py1 + 14), scale=0.38, colour=_GREY, centre=True)
    _text(img, "epoch", ((px0 + px1) // 2, py1 + 30), scale=0.4, colour=_GREY, centre=True)
    cv2.rectangle(img, (px0, py0), (px1, py1), _GREY, 1)
    if marker_x is not None and 1 <= marker_x <= n:
        x, _ = xy(marker_x, lo)
        for y in range(py0, py1, 8):
            cv2.line(img, (x, y), (x, min(y + 4, py1)), _GREY, 1)
        _text(img, "best", (x + 4, py0 + 12), scale=0.38, colour=_GREY)
    legend_x = px0
    for label, vals, colour in series:  # legend: one row above the plot
        pts = [xy(i + 1, float(v)) for i, v in enumerate(vals) if v is not None and math.isfinite(float(v))]
        if len(pts) > 1:
            cv2.polylines(img, [np.asarray(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 3, colour, -1, cv2.LINE_AA)
        cv2.line(img, (legend_x, py0 - 12), (legend_x + 20, py0 - 12), colour, 2)
        _text(img, label, (legend_x + 25, py0 - 8), scale=0.4, colour=colour)
        legend_x += 35 + cv2.getTextSize(label, _FONT, 0.4, 1)[0][0]


def draw_curves(history: Sequence[Mapping[str, float]], *, title: str = "",
                best_epoch: int | None = None) -> np.ndarray:
    """Training curves of one fold: train/validation loss, and validation accuracy/F1, per epoch."""
    img = np.full((380, 960, 3), 255, np.uint8)
    if title:
        _text(img, title, (480, 14), scale=0.55, centre=True)
    losses = [("train loss", [h["train_loss"] for h in history], _COLOURS[0]),
              ("val loss", [h["val_loss"] for h in history], _COLOURS[1])]
    scores = [("val accuracy", [h["val_accuracy"] for h in history], _COLOURS[2]),
              ("val F1", [h["val_f1"] for h in history], _COLOURS[3])]
    _panel(img, (0, 24, 480, 380), losses, y_range=None, title="loss (BCE)", marker_x=best_epoch)
    _panel(img, (480, 24, 960, 380), scores, y_range=(0.0, 1.0), title="validation (windows)", marker_x=best_epoch)
    return img


def _draw_fold_losses(folds: Sequence[Mapping[str, Any]], title: str) -> np.ndarray:
    img = np.full((380, 640, 3), 255, np.uint8)
    series = [(f"fold {f['fold']}", [h["val_loss"] for h in f["history"]], _COLOURS[(i + 1) % len(_COLOURS)])
              for i, f in enumerate(folds)]
    _panel(img, (0, 10, 640, 380), series, y_range=None, title=title)
    return img


def _write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")


def write_report(out_dir: str | Path, *, variant: str, folds: Sequence[Mapping[str, Any]],
                 info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the report of one cross-validated run; returns what metrics.json holds.

    ``folds``: one mapping per fold with ``fold`` (1..K), ``best_epoch``, ``window`` and ``participant``
    (each from :func:`training.metrics.binary_metrics`), and ``history`` (per epoch: ``train_loss``,
    ``val_loss``, ``val_accuracy``, ``val_f1``). ``info``: provenance copied into metrics.json.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folds = sorted(folds, key=lambda f: f["fold"])
    summary = {level: summarize_folds([f[level] for f in folds]) for level in ("window", "participant")}
    report = {
        "variant": variant,
        "positive_class": "ASD",
        "std": "population standard deviation over folds (ddof=0)",
        "levels": {"window": "every validation window scored alone (as the paper's Table II)",
                   "participant": "mean p_asd over a participant's validation windows, threshold 0.5"},
        **dict(info or {}),
        "mean_std": summary,
        "folds": [{k: v for k, v in f.items() if k not in ("history", "predictions")} for f in folds],
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    k = len(folds)
    synthetic = bool((info or {}).get("synthetic"))
    note = ("\n> Trained and validated on **synthetic** walks: these numbers say nothing about real patients.\n"
            if synthetic else "")
    text = (table_markdown({variant: summary["window"]},
                           title=f"Validation windows, mean ± std over {k} participant-wise folds (ASD positive)")
            + "\n" + table_markdown({variant: summary["participant"]},
                                    title="Per participant (mean p_asd of its windows), mean ± std over folds")
            + note)
    (out / "table.md").write_text(text, encoding="utf-8")

    _write_png(out / "confusion.png", draw_confusion(summary["window"]["confusion"],
                                                     title=f"{variant}: validation windows, {k} folds"))
    _write_png(out / "curves.png", _draw_fold_losses(folds, f"{variant}: validation loss per fold"))
    for f in folds:
        fold_dir = out / f"fold{f['fold']}"
        _write_png(fold_dir / "confusion.png", draw_confusion(f["window"]["confusion"],
                                                              title=f"{variant} fold {f['fold']}: validation windows"))
        _write_png(fold_dir / "curves.png", draw_curves(f["history"], title=f"{variant} fold {f['fold']}",
                                                        best_epoch=f.get("best_epoch")))
    return report
