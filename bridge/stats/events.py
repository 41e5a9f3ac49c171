"""Event orderings: does event A (e.g. p_test separating from p_train) come before event B (test accuracy
rising)? Per-run lag = step(B) − step(A); a sign test (statsmodels ``sign_test``, Dixon & Mood 1946) of
median lag > −tolerance, with the order-statistic confidence interval of the median over runs/seeds
(``scipy.stats.quantile_test``). Telescoping-model claim: Jeffares, Curth & van der Schaar 2024."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.descriptivestats import sign_test

from bridge.stats._result import TestResult
from theory._validation import check_in_range


def event_lag_test(lags: Sequence[float], *, tolerance: float = 0.0, confidence_level: float = 0.95) -> TestResult:
    """One-sided sign test of H1: median(lag) > −``tolerance`` (A precedes B, or trails it by < tolerance).

    ``statistic`` is the median lag; runs where either event never happened must be dropped by the caller
    (they are counted in ``details`` there). The interval is for the median lag. ``p_greater`` is ``pvalue``;
    ``p_less`` is the exact one-sided sign test (``scipy.stats.binomtest``) of the reverse, H1: median(lag) <
    −``tolerance`` (B comes first by more than the tolerance).

    Example:
        >>> round(event_lag_test([5, 7, 9, 3, 4, 8], tolerance=0).pvalue, 4)
        0.0156
    """
    tolerance = check_in_range("tolerance", tolerance, 0, None, owner="event_lag_test")
    check_in_range("confidence_level", confidence_level, 0, 1, inclusive=(False, False), owner="event_lag_test")
    lags = np.asarray(lags, dtype=float)
    if lags.ndim != 1 or len(lags) < 1 or not np.isfinite(lags).all():
        raise ValueError(f"The 'lags' parameter must be a non-empty 1-d finite array. Got {lags!r}.")
    m, p_two = sign_test(lags, mu0=-tolerance)
    pvalue = p_two / 2 if m > 0 else 1 - p_two / 2
    above, below = int((lags > -tolerance).sum()), int((lags < -tolerance).sum())  # ties at -tolerance dropped
    p_less = float(stats.binomtest(below, above + below, 0.5, alternative="greater").pvalue) if above + below else 1.0
    if len(lags) >= 2 and np.ptp(lags) > 0:
        ci = stats.quantile_test(lags, q=float(np.median(lags))).confidence_interval(confidence_level)
        low, high = float(ci.low), float(ci.high)
    else:
        low = high = float(np.median(lags))
    return TestResult(
        "Event ordering (sign test)",
        float(np.median(lags)),
        float(min(max(pvalue, 0.0), 1.0)),
        len(lags),
        low,
        high,
        confidence_level,
        {"tolerance": tolerance, "positive": above},
        p_greater=float(min(max(pvalue, 0.0), 1.0)),
        p_less=p_less,
    )
