"""Equivalence claims ("no difference larger than the margin"): two one-sided tests (Schuirmann 1987) via
statsmodels ``ttost_ind`` / ``ttost_paired``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttost_ind, ttost_paired

from bridge.stats._result import TestResult
from theory._validation import check_in_range


def tost(
    x1: Sequence[float],
    x2: Sequence[float],
    margin: float,
    *,
    paired: bool = False,
    alpha: float = 0.05,
) -> TestResult:
    """TOST of |mean(x1) − mean(x2)| < ``margin``: p = max of the two one-sided p-values.

    A small p supports equivalence. The interval is the (1 − 2α) confidence interval of the mean difference,
    which lies inside (−margin, margin) exactly when TOST rejects at level α. ``statistic`` is the difference.
    ``details["p outside margin"]`` = min of the one-sided t tests of "difference > margin" and "difference <
    −margin": below α exactly when the interval lies wholly outside (−margin, margin).
    """
    margin = check_in_range("margin", margin, 0, None, inclusive=(False, True), owner="tost")
    alpha = check_in_range("alpha", alpha, 0, 0.5, inclusive=(False, False), owner="tost")
    a, b = np.asarray(x1, dtype=float), np.asarray(x2, dtype=float)
    if min(len(a), len(b)) < 2 or (paired and len(a) != len(b)):
        raise ValueError(f"tost needs >= 2 values per group (and equal lengths when paired). Got {len(a)}, {len(b)}.")
    if paired:
        pvalue, (_, p_above_low, _), (_, p_below_high, _) = ttost_paired(a, b, -margin, margin)
        low, high = DescrStatsW(a - b).tconfint_mean(alpha=2 * alpha)
    else:
        pvalue, (_, p_above_low, _), (_, p_below_high, _) = ttost_ind(a, b, -margin, margin)
        low, high = CompareMeans(DescrStatsW(a), DescrStatsW(b)).tconfint_diff(alpha=2 * alpha, usevar="pooled")
    # H1 "outside the margin": the difference is above +margin or below -margin (the complements of TOST's tests)
    p_outside = float(min(1 - p_below_high, 1 - p_above_low))
    return TestResult(
        "TOST equivalence" + (" (paired)" if paired else ""),
        float(a.mean() - b.mean()),
        float(pvalue),
        len(a) + (0 if paired else len(b)),
        float(low),
        float(high),
        1 - 2 * alpha,
        {"margin": margin, "p outside margin": p_outside},
    )
