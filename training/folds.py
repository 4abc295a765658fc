"""Participant-wise, class-stratified K-fold cross-validation.

Every participant lies in the validation part of exactly one fold and never in the training and
validation parts of the same fold (the paper's own code split by date folders or at random, so one
person could be in both). Folds are drawn with scikit-learn's ``StratifiedGroupKFold`` over
participants (shuffled, seeded), so each fold gets about the same share of ASD participants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from core.configtools import ConfigError

__all__ = ["Fold", "make_folds", "participant_labels"]


@dataclass(frozen=True, slots=True)
class Fold:
    index: int  # 1..K
    train: tuple[str, ...]  # participant ids, sorted
    val: tuple[str, ...]


def participant_labels(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """participant id -> label (1: ASD, 0: non-ASD) from (participant, label) pairs, e.g. one per recording.

    Raises:
        ConfigError: a participant has recordings with both labels.
    """
    labels: dict[str, int] = {}
    for participant, label in pairs:
        seen = labels.setdefault(participant, int(label))
        if seen != int(label):
            raise ConfigError(f"participant {participant!r} has recordings labelled both ASD and non-ASD; "
                              "a participant must have one label")
    return labels


def make_folds(labels: Mapping[str, int], *, folds: int, seed: int) -> list[Fold]:
    """K participant-disjoint folds, stratified by label; the same inputs always give the same folds.

    Raises:
        ConfigError: fewer participants of a class than folds (a fold would validate on no one of it).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    ids = sorted(labels)
    y = np.asarray([labels[p] for p in ids], dtype=np.int64)
    counts = {"ASD": int((y == 1).sum()), "non-ASD": int((y == 0).sum())}
    short = [name for name, n in counts.items() if n < folds]
    if short:
        raise ConfigError(f"{folds}-fold cross-validation needs at least {folds} participants of each class; "
                          f"the data has {counts['ASD']} ASD and {counts['non-ASD']} non-ASD participants "
                          f"with usable windows (use fewer --folds or more participants)")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    out = []
    for k, (train_idx, val_idx) in enumerate(splitter.split(np.zeros((len(ids), 1)), y, groups=ids), start=1):
        out.append(Fold(k, tuple(sorted(ids[i] for i in train_idx)), tuple(sorted(ids[i] for i in val_idx))))
    return out
