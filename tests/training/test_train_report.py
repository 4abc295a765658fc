"""The cross-validation report: metrics.json, table.md (Table II shape) and the pictures."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from training.metrics import binary_metrics
from training.report import draw_confusion, draw_curves, table_markdown, write_report


def _fold(k: int, y_true, y_pred, participant_true, participant_pred, losses):
    history = [{"epoch": e + 1, "train_loss": t, "val_loss": v, "val_accuracy": 0.5 + 0.1 * e, "val_f1": 0.4}
               for e, (t, v) in enumerate(losses)]
    return {"fold": k, "best_epoch": int(np.argmin([v for _, v in losses])) + 1,
            "window": binary_metrics(y_true, y_pred), "participant": binary_metrics(participant_true, participant_pred),
            "history": history, "predictions": {"probs": [0.1] * len(y_true)}}


@pytest.fixture
def folds():
    return [
        # TP 2, FN 1, FP 0, TN 3: acc 5/6, prec 1, rec 2/3, F1 0.8
        _fold(1, [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 0], [1, 0], [(0.7, 0.69), (0.6, 0.65), (0.5, 0.66)]),
        # TP 1, FN 1, FP 1, TN 1: acc 0.5, prec 0.5, rec 0.5, F1 0.5
        _fold(2, [1, 1, 0, 0], [1, 0, 1, 0], [1, 0], [0, 0], [(0.7, 0.7), (0.65, 0.68)]),
    ]


def test_report_numbers(tmp_path, folds):
    """metrics.json holds per-fold metrics and mean ± std; table.md shows them like Table II."""
    report = write_report(tmp_path, variant="late", folds=list(reversed(folds)), info={"synthetic": False})
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data == json.loads(json.dumps(report))
    assert [f["fold"] for f in data["folds"]] == [1, 2]
    assert "history" not in data["folds"][0] and "predictions" not in data["folds"][0]
    window = data["mean_std"]["window"]
    assert window["accuracy"]["mean"] == pytest.approx((5 / 6 + 0.5) / 2)
    assert window["accuracy"]["std"] == pytest.approx(np.std([5 / 6, 0.5]))
    assert window["precision"] == pytest.approx({"mean": 0.75, "std": 0.25})
    assert window["recall"]["mean"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert window["f1"] == pytest.approx({"mean": 0.65, "std": 0.15})
    assert window["confusion"] == [[4, 1], [2, 3]]
    assert data["mean_std"]["participant"]["accuracy"] == pytest.approx({"mean": 0.75, "std": 0.25})
    assert data["variant"] == "late" and data["positive_class"] == "ASD"

    table = (tmp_path / "table.md").read_text()
    assert "| Model | Accuracy | Precision | Recall | F1 |" in table
    assert "| late | 0.667 ± 0.167 | 0.750 ± 0.250 | 0.583 ± 0.083 | 0.650 ± 0.150 |" in table
    assert "synthetic" not in table


def test_report_pictures(tmp_path, folds):
    """Confusion matrices and training curves are written as PNGs, overall and per fold."""
    write_report(tmp_path, variant="slow", folds=folds, info={"synthetic": True})
    for name in ("confusion.png", "curves.png", "fold1/confusion.png", "fold1/curves.png", "fold2/curves.png"):
        img = cv2.imread(str(tmp_path / name))
        assert img is not None and img.ndim == 3 and img.shape[0] > 200, name
        assert img.std() > 5, f"{name} is blank"
    assert "**synthetic**" in (tmp_path / "table.md").read_text()


def test_confusion_picture_shades_cells():
    """The diagonal cell of a perfect class is darker than an empty off-diagonal cell."""
    img = draw_confusion([[10, 0], [0, 5]], title="t")
    assert img.shape == (430, 480, 3)
    tn_cell = img[70 + 10:70 + 40, 150 + 10:150 + 40]  # top-left corner area of the TN cell, no text
    fp_cell = img[70 + 10:70 + 40, 300 + 10:300 + 40]
    assert tn_cell.mean() < fp_cell.mean()


def test_curves_single_epoch_and_table_rows():
    """One epoch still draws; the table takes several variants as rows."""
    img = draw_curves([{"train_loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.5, "val_f1": 0.5}], best_epoch=1)
    assert img.shape == (380, 960, 3)
    s = {m: {"mean": 0.5, "std": 0.0} for m in ("accuracy", "precision", "recall", "f1")}
    text = table_markdown({"early": s, "late": s})
    lines = text.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| early", "| late"]
    assert text.count("0.500 ± 0.000") == 8
