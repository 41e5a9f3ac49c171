"""Equivalence claims ("no difference larger than the margin"): two one-sided tests (Schuirmann 1987) via
statsmodels ``ttost_ind`` / ``ttost_paired``.

Seeds are nested in configurations, and the runs of one configuration share its effect, so the configuration is
the unit: the values of each level are averaged within their configuration, and TOST compares the
configuration means, pooled two-sample t with G₁ + G₂ − 2 degrees of freedom (paired: the configuration means of
the paired differences, one-sample t with G − 1). When each level holds a single configuration (or no labels are
given) the runs are the units: the claim is then about those configurations, whose seeds are their independent
replicates.

Why not runs (the previous rule): with configuration effects TOST on the runs counted G·m correlated values as
independent, and a difference sitting exactly on the margin was "supported" in up to 27% of simulated sweeps
(3–12 configurations × 2–10 seeds, half the variance between configurations; target 0.094);
``benchmarks/nested_units.py`` compares the candidates in those regimes: largest size 0.045 for TOST on
configuration means, 0.27 on runs, 0.12 with a cluster-robust difference (G − 1 df) and 0.08 with ``MixedLM``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttost_ind, ttost_paired

from bridge.stats._result import TestResult
from theory._validation import check_in_range


def _labels(values: np.ndarray, groups: Sequence | None, name: str) -> np.ndarray:
    labels = np.arange(len(values)) if groups is None else np.asarray(groups)
    if labels.shape != values.shape:
        raise ValueError(f"The '{name}' parameter of tost must have one label per value ({len(values)}). "
                         f"Got shape {labels.shape} instead.")  # fmt: skip
    return labels


def _means(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return pd.Series(values).groupby(labels, sort=True).mean().to_numpy(float)


def tost(
    x1: Sequence[float],
    x2: Sequence[float],
    margin: float,
    *,
    groups1: Sequence | None = None,
    groups2: Sequence | None = None,
    paired: bool = False,
    alpha: float = 0.05,
) -> TestResult:
    """TOST of |mean(x1) − mean(x2)| < ``margin`` over configurations: p = max of the two one-sided p-values.

    ``groups1`` / ``groups2`` label the configuration of each value of ``x1`` / ``x2`` (None: each value its own);
    when ``paired``, x1[i] and x2[i] are a pair and ``groups1`` labels the pairs (``groups2`` must be None or
    equal). Units: module docstring. A small p supports equivalence. The interval is the (1 − 2α) confidence
    interval of the mean difference, which lies inside (−margin, margin) exactly when TOST rejects at level α.
    ``statistic`` is the difference of the units' means. ``details["p outside margin"]`` = min of the one-sided t
    tests of "difference > margin" and "difference < −margin": below α exactly when the interval lies wholly
    outside (−margin, margin).

    Example:
        >>> result = tost([0.1, 0.3, 1.1, 1.3], [0.2, 0.0, 1.0, 1.2], 1.0, groups1=[0, 0, 1, 1], paired=True)
        >>> round(result.statistic, 3), result.n, result.details["unit"]
        (0.1, 2, 'configuration mean')
    """
    margin = check_in_range("margin", margin, 0, None, inclusive=(False, True), owner="tost")
    alpha = check_in_range("alpha", alpha, 0, 0.5, inclusive=(False, False), owner="tost")
    a, b = np.asarray(x1, dtype=float), np.asarray(x2, dtype=float)
    if paired and len(a) != len(b):
        raise ValueError(f"The 'x1' and 'x2' parameters of tost must have equal lengths when paired. Got {len(a)}, "
                         f"{len(b)}.")  # fmt: skip
    if paired and groups2 is not None and not np.array_equal(np.asarray(groups1), np.asarray(groups2)):
        raise ValueError("The 'groups2' parameter of tost must be None or equal to 'groups1' when paired (one "
                         "label per pair).")  # fmt: skip
    g1 = _labels(a, groups1, "groups1")
    g2 = g1 if paired else _labels(b, groups2, "groups2")
    m1, m2 = _means(a, g1), _means(b, g2)
    labelled = groups1 is not None or groups2 is not None
    by_configuration = labelled and max(len(m1), len(m2)) > 1
    if by_configuration:
        a, b = m1, m2
    units = len(a) if paired else len(a) + len(b)
    if min(len(a), len(b)) < 1 or units < (2 if paired else 3):
        raise ValueError(f"tost needs >= 2 units (paired) or >= 3 units with one per level. Got {len(a)}, "
                         f"{len(b)}.")  # fmt: skip
    if paired:
        pvalue, (_, p_above_low, _), (_, p_below_high, _) = ttost_paired(a, b, -margin, margin)
        low, high = DescrStatsW(a - b).tconfint_mean(alpha=2 * alpha)
    else:
        pvalue, (_, p_above_low, _), (_, p_below_high, _) = ttost_ind(a, b, -margin, margin)
        low, high = CompareMeans(DescrStatsW(a), DescrStatsW(b)).tconfint_diff(alpha=2 * alpha, usevar="pooled")
    # H1 "outside the margin": the difference is above +margin or below -margin (the complements of TOST's tests)
    p_outside = float(min(1 - p_below_high, 1 - p_above_low))
    details = {
        "margin": margin,
        "p outside margin": p_outside,
        "unit": "configuration mean" if by_configuration else "run",
        "configurations": (len(m1),) if paired else (len(m1), len(m2)),
        "runs": len(x1) if paired else (len(x1), len(x2)),
        "df": units - (1 if paired else 2),
    }
    return TestResult(
        "TOST equivalence" + (" (paired)" if paired else "") + (" over configurations" if by_configuration else ""),
        float(a.mean() - b.mean()),
        float(pvalue),
        units,
        float(low),
        float(high),
        1 - 2 * alpha,
        details,
    )
