"""The cumulative score of a walk, its confidence interval and the decision (pure functions).

The cumulative score is the mean of ``p_asd`` over the walk's valid windows. Its interval is a Student-t
interval for that mean: ``mean ± t(level, n_eff - 1) · s / sqrt(n_eff)``, clipped to [0, 1].

What it is: the uncertainty of *this walk's mean window score* due to window-to-window variation.
What it is not: a probability that the patient has ASD, nor a statement about the model's error. Windows of
one walk are consecutive seconds of the same person and are not independent; with
``ci_autocorrelation`` the sample size is shrunk to an effective one, ``n_eff = n (1 - r1) / (1 + r1)``
with ``r1`` the lag-1 autocorrelation of the valid windows in order (clamped to [0, 0.95]; an AR(1)
approximation), which widens the interval when consecutive windows move together. It is still an
approximation, and nothing here has clinical validity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t

NOT_ENOUGH_DATA = "not_enough_data"
ASD_LIKE = "asd_like"
NOT_ASD_LIKE = "not_asd_like"
UNCERTAIN = "uncertain"
DECISION_TEXT = {
    NOT_ENOUGH_DATA: "not enough data",
    ASD_LIKE: "ASD-like gait (research screen)",
    NOT_ASD_LIKE: "no ASD-like gait (research screen)",
    UNCERTAIN: "uncertain: interval spans the threshold",
}
MAX_R1 = 0.95


@dataclass(slots=True, frozen=True)
class Cumulative:
    """The cumulative score of a walk and its decision."""

    valid_windows: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n_eff: float | None
    decision: str

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {"valid_windows": self.valid_windows, "cumulative_p_asd": self.mean, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "n_eff": self.n_eff, "decision": self.decision}


def lag1_autocorrelation(values: Sequence[float]) -> float:
    """Lag-1 autocorrelation of ``values`` in order (0 when it is undefined: fewer than 3 values or no spread)."""
    n = len(values)
    if n < 3:
        return 0.0
    mean = math.fsum(values) / n
    dev = [v - mean for v in values]
    denom = math.fsum(d * d for d in dev)
    if denom <= 0.0:
        return 0.0
    return math.fsum(dev[i] * dev[i + 1] for i in range(n - 1)) / denom


def mean_interval(values: Sequence[float], level: float, *, autocorrelation: bool = True
                  ) -> tuple[float | None, float | None, float | None, float | None]:
    """(mean, low, high, n_eff) of ``values``; the interval is None below two values."""
    n = len(values)
    if n == 0:
        return None, None, None, None
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None, None, None
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    n_eff = float(n)
    if autocorrelation:
        r1 = min(max(lag1_autocorrelation(values), 0.0), MAX_R1)
        n_eff = max(2.0, n * (1.0 - r1) / (1.0 + r1))
    half = float(student_t.ppf(0.5 + level / 2.0, n_eff - 1.0)) * sd / math.sqrt(n_eff)
    return mean, max(0.0, mean - half), min(1.0, mean + half), round(n_eff, 3)


def decide(valid_windows: int, low: float | None, high: float | None, mean: float | None, *,
           min_valid_windows: int, threshold: float) -> str:
    """"not enough data" below ``min_valid_windows``; else by where the interval lies against the threshold."""
    if valid_windows < min_valid_windows or mean is None or low is None or high is None:
        return NOT_ENOUGH_DATA
    if low >= threshold:
        return ASD_LIKE
    if high < threshold:
        return NOT_ASD_LIKE
    return UNCERTAIN


def cumulative(values: Sequence[float], *, level: float, min_valid_windows: int, threshold: float,
               autocorrelation: bool = True) -> Cumulative:
    """The cumulative score of the valid windows' ``p_asd`` (in order) and the decision."""
    mean, low, high, n_eff = mean_interval(values, level, autocorrelation=autocorrelation)
    decision = decide(len(values), low, high, mean, min_valid_windows=min_valid_windows, threshold=threshold)
    return Cumulative(valid_windows=len(values), mean=mean, ci_low=low, ci_high=high, n_eff=n_eff,
                      decision=decision)
