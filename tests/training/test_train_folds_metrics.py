"""Participant-wise stratified folds, and metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

from core.configtools import ConfigError
from training.folds import make_folds, participant_labels
from training.metrics import binary_metrics, mean_std, summarize_folds


def _participants(n_asd: int = 8, n_non: int = 12) -> dict[str, int]:
    labels = {f"asd{i:02d}": 1 for i in range(n_asd)}
    labels.update({f"non{i:02d}": 0 for i in range(n_non)})
    return labels


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_folds_are_participant_disjoint_and_stratified(seed):
    """20 participants, 5 folds: every participant validates exactly once, never in train and val of a fold,
    and every fold holds about a fifth of each class."""
    labels = _participants()
    folds = make_folds(labels, folds=5, seed=seed)
    assert [f.index for f in folds] == [1, 2, 3, 4, 5]
    seen: list[str] = []
    for fold in folds:
        assert not set(fold.train) & set(fold.val)
        assert set(fold.train) | set(fold.val) == set(labels)
        n_asd = sum(labels[p] for p in fold.val)
        n_non = len(fold.val) - n_asd
        assert n_asd in (1, 2) and n_non in (2, 3), (n_asd, n_non)  # 8/5 and 12/5
        seen.extend(fold.val)
    assert sorted(seen) == sorted(labels)


def test_folds_reproducible_and_seeded():
    """Same seed, same folds (whatever the input order); another seed shuffles differently."""
    labels = _participants()
    reordered = dict(reversed(list(labels.items())))
    assert make_folds(labels, folds=5, seed=3) == make_folds(reordered, folds=5, seed=3)
    assert [f.val for f in make_folds(labels, folds=5, seed=3)] != [f.val for f in make_folds(labels, folds=5, seed=4)]


def test_participant_labels_mixed_is_an_error():
    """A participant's recordings must share one label; a mixed one is a one-line error naming it."""
    assert participant_labels([("a", 1), ("a", 1), ("b", 0)]) == {"a": 1, "b": 0}
    with pytest.raises(ConfigError, match="participant 'a' has recordings labelled both") as info:
        participant_labels([("a", 1), ("b", 0), ("a", 0)])
    assert "\n" not in str(info.value)


def test_too_few_participants_per_class():
    """K folds need K participants of each class."""
    with pytest.raises(ConfigError, match="needs at least 5 participants of each class; the data has 3 ASD"):
        make_folds(_participants(3, 10), folds=5, seed=0)


@pytest.mark.parametrize("seed", range(4))
def test_metrics_match_sklearn(seed):
    """Accuracy, precision, recall, F1 with ASD (1) positive, and the confusion matrix, equal sklearn's."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, 57)
    y_pred = np.where(rng.random(57) < 0.7, y_true, 1 - y_true)
    m = binary_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["precision"] == pytest.approx(precision_score(y_true, y_pred, pos_label=1))
    assert m["recall"] == pytest.approx(recall_score(y_true, y_pred, pos_label=1))
    assert m["f1"] == pytest.approx(f1_score(y_true, y_pred, pos_label=1))
    assert m["confusion"] == confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist()
    assert m["n"] == 57


def test_metrics_known_values_and_zero_division():
    """A hand-checked case, and no positive prediction: precision/F1 0 as sklearn's zero_division=0."""
    m = binary_metrics([1, 1, 1, 0, 0], [1, 0, 1, 1, 0])  # TP 2, FN 1, FP 1, TN 1
    assert m["confusion"] == [[1, 1], [1, 2]]
    assert (m["accuracy"], m["precision"], m["recall"], m["f1"]) == pytest.approx((0.6, 2 / 3, 2 / 3, 2 / 3))
    none = binary_metrics([1, 0, 0], [0, 0, 0])
    assert none["precision"] == precision_score([1, 0, 0], [0, 0, 0], zero_division=0) == 0.0
    assert none["f1"] == 0.0 and none["recall"] == 0.0


def test_mean_std_over_folds():
    """mean ± population std over folds; confusion matrices add up."""
    assert mean_std([0.5, 0.7, 0.9]) == pytest.approx({"mean": 0.7, "std": float(np.std([0.5, 0.7, 0.9]))})
    folds = [binary_metrics([1, 0], [1, 0]), binary_metrics([1, 0], [0, 0])]
    s = summarize_folds(folds)
    assert s["accuracy"] == pytest.approx({"mean": 0.75, "std": 0.25})
    assert s["f1"] == pytest.approx({"mean": 0.5, "std": 0.5})
    assert s["confusion"] == [[2, 0], [1, 1]] and s["folds"] == 2
