"""Tests for the cumulative score, its interval and the decision (aggregator/stats.py)."""

from __future__ import annotations

import math

import pytest

from aggregator.stats import (
    ASD_LIKE,
    NOT_ASD_LIKE,
    NOT_ENOUGH_DATA,
    UNCERTAIN,
    cumulative,
    lag1_autocorrelation,
    mean_interval,
)


def test_t_interval_matches_the_textbook_formula_without_autocorrelation():
    """Values 0.2, 0.4, 0.6: mean 0.4, s 0.2, t(0.975, 2) = 4.303 -> half-width 0.4969 (clipped at 0)."""
    mean, low, high, n_eff = mean_interval([0.2, 0.4, 0.6], 0.95, autocorrelation=False)
    assert mean == pytest.approx(0.4)
    half = 4.302652729911275 * 0.2 / math.sqrt(3)
    assert high == pytest.approx(min(1.0, 0.4 + half))
    assert low == 0.0  # 0.4 - 0.497 clipped to 0
    assert n_eff == 3.0


def test_interval_narrows_with_more_windows_and_has_the_level_asked_for():
    values = [0.6, 0.7, 0.65, 0.72, 0.58, 0.69, 0.61, 0.66]
    _, lo8, hi8, _ = mean_interval(values, 0.95, autocorrelation=False)
    _, lo16, hi16, _ = mean_interval(values * 2, 0.95, autocorrelation=False)
    _, lo80, hi80, _ = mean_interval(values, 0.80, autocorrelation=False)
    assert hi16 - lo16 < hi8 - lo8
    assert hi80 - lo80 < hi8 - lo8


def test_autocorrelated_windows_widen_the_interval():
    """A slow drift (consecutive windows move together) gives r1 > 0, a smaller n_eff and a wider interval."""
    drift = [0.3 + 0.02 * i for i in range(20)]
    assert lag1_autocorrelation(drift) > 0.5
    _, lo_iid, hi_iid, n_iid = mean_interval(drift, 0.95, autocorrelation=False)
    _, lo_ar, hi_ar, n_ar = mean_interval(drift, 0.95, autocorrelation=True)
    assert n_iid == 20.0 and n_ar < 10.0
    assert hi_ar - lo_ar > 1.5 * (hi_iid - lo_iid)


def test_alternating_windows_never_shrink_below_the_plain_interval():
    """Negative r1 is clamped to 0: the interval is never narrower than the independent one."""
    alt = [0.2, 0.8] * 5
    assert lag1_autocorrelation(alt) < 0
    assert mean_interval(alt, 0.95)[1:3] == mean_interval(alt, 0.95, autocorrelation=False)[1:3]


def test_no_interval_below_two_windows():
    assert mean_interval([], 0.95) == (None, None, None, None)
    assert mean_interval([0.7], 0.95) == (0.7, None, None, None)


def test_decision_waits_for_enough_valid_windows_then_follows_the_interval():
    high = [0.9, 0.92, 0.88, 0.91, 0.9]
    low = [0.1, 0.12, 0.08, 0.11, 0.1]
    mixed = [0.1, 0.9, 0.2, 0.8, 0.5]
    kw = {"level": 0.95, "min_valid_windows": 5, "threshold": 0.5, "autocorrelation": False}
    assert cumulative(high[:4], **kw).decision == NOT_ENOUGH_DATA
    assert cumulative(high, **kw).decision == ASD_LIKE
    assert cumulative(low, **kw).decision == NOT_ASD_LIKE
    assert cumulative(mixed, **kw).decision == UNCERTAIN
    c = cumulative(high, **kw)
    assert c.valid_windows == 5 and c.mean == pytest.approx(0.902)
    assert c.ci_low < c.mean < c.ci_high


def _coverage(phi: float, n: int, reps: int, autocorrelation: bool) -> float:
    """Share of AR(1) series (mean 0.5, coefficient phi) whose interval holds the true mean 0.5."""
    import numpy as np

    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(reps):
        e = rng.normal(0.0, 0.1, n + 50)
        x = np.zeros(n + 50)
        for i in range(1, n + 50):
            x[i] = phi * x[i - 1] + e[i]
        _, low, high, _ = mean_interval(list(0.5 + x[50:]), 0.95, autocorrelation=autocorrelation)
        hits += low <= 0.5 <= high
    return hits / reps


def test_coverage_is_near_nominal_and_the_correction_helps_on_correlated_windows():
    """Independent windows: both intervals cover about 95 %; AR(1) windows (phi 0.6, n 30): the plain interval
    covers about 68 %, the corrected one about 91 % (docs/aggregator.md has the full table)."""
    assert 0.92 <= _coverage(0.0, 30, 500, autocorrelation=False) <= 0.98
    assert 0.92 <= _coverage(0.0, 30, 500, autocorrelation=True) <= 0.99
    plain, corrected = _coverage(0.6, 30, 500, False), _coverage(0.6, 30, 500, True)
    assert plain < 0.8 and corrected > 0.85 and corrected - plain > 0.1
