"""Binary classification metrics with ASD as the positive class, and their mean ± std over folds.

The paper's own code took non-ASD as the positive class (labels from sorted folder names) and
averaged metrics per batch; here they are computed once over all windows of a fold, ASD = 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["METRICS", "binary_metrics", "confusion_matrix", "mean_std", "summarize_folds"]

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1")


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int]) -> list[list[int]]:
    """[[TN, FP], [FN, TP]]: rows are the true class (non-ASD, ASD), columns the predicted one (sklearn's layout)."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels, y_pred {p.size}")
    if not (np.isin(t, (0, 1)).all() and np.isin(p, (0, 1)).all()):
        raise ValueError("labels must be 0 (non-ASD) or 1 (ASD)")
    return [[int(((t == 0) & (p == 0)).sum()), int(((t == 0) & (p == 1)).sum())],
            [int(((t == 1) & (p == 0)).sum()), int(((t == 1) & (p == 1)).sum())]]


def binary_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, object]:
    """Accuracy, precision, recall, F1 (ASD positive; 0 where undefined, as sklearn's zero_division=0),
    the confusion matrix and the number of samples."""
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred)
    n = tn + fp + fn + tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"accuracy": (tp + tn) / n if n else 0.0, "precision": precision, "recall": recall, "f1": f1,
            "confusion": [[tn, fp], [fn, tp]], "n": n}


def mean_std(values: Iterable[float]) -> dict[str, float]:
    """Mean and population standard deviation (ddof=0, as numpy's ``std``) of per-fold values."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no values")
    return {"mean": float(arr.mean()), "std": float(arr.std())}


def summarize_folds(per_fold: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """Per metric mean ± std over folds, and the confusion matrices summed over folds."""
    out: dict[str, object] = {name: mean_std(float(m[name]) for m in per_fold) for name in METRICS}  # type: ignore[arg-type]
    total = np.zeros((2, 2), dtype=np.int64)
    for m in per_fold:
        total += np.asarray(m["confusion"], dtype=np.int64)
    out["confusion"] = total.tolist()
    out["folds"] = len(per_fold)
    return out
