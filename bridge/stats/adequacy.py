"""Configuration-level tests for a functional law fitted to runs whose seeds are nested in configurations.

A configuration (one setting of the hyperparameter axes) is the unit of inference: its seeds share whatever
makes that configuration's true mean deviate from any law, so runs are never independent units. With residuals
``e`` of a fitted law, ``ē_c`` the mean residual of configuration ``c`` (``n_c`` runs, ``m`` configurations,
``n`` runs, ``k`` law parameters):

- lack of fit against pure error (Draper & Smith 1998, §2.1; the ``anova_lm`` comparison of the law with the
  saturated one-mean-per-configuration model): F = [Σ_c n_c ē_c² / (m − k)] / [Σ (e − ē_c)² / (n − m)];
- the gain over a nested null on configuration means: F = [(S0 − S)/(k − k0)] / [S/(m − k)], S = Σ_c ē_c²,
  exact for a law linear in its parameters with a balanced design whatever the configuration-level variance;
- a paired comparison of two per-configuration losses over configurations: the t test of their differences
  with Fieller's (1954) interval of their ratio, or of their log ratios with the geometric-mean ratio's
  interval; either interval, when bounded, contains 1 exactly when the two-sided t test does not reject.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bridge.stats._result import TestResult
from bridge.stats.rank import ALTERNATIVES
from theory._validation import check_in_range, check_option


def configuration_means(values: Sequence[float], groups: Sequence) -> pd.Series:
    """Mean of ``values`` per configuration label (index: the sorted labels)."""
    values, groups = np.asarray(values, dtype=float), np.asarray(groups)
    if values.shape != groups.shape:
        raise ValueError(
            f"The 'values' and 'groups' parameters must have equal shapes. Got {values.shape}, {groups.shape}."
        )
    return pd.Series(values).groupby(groups, sort=True).mean()


def lack_of_fit(residuals: Sequence[float], groups: Sequence, n_params: int) -> TestResult:
    """Lack-of-fit F test of a law with ``n_params`` parameters against pure error from replicate seeds.

    With runs whose law variables are constant within a configuration this is exactly statsmodels' ``anova_lm``
    of the law against ``C(configuration)``; when they vary between seeds, the law's residuals are split into
    their configuration means (lack of fit) and the scatter around them (pure error), with approximate degrees
    of freedom (simulated size 0.048-0.050 at α = 0.05 with 3-6 configurations and seed-level jitter in the
    variable, 20,000 sweeps each). Untestable (NaN statistic, ``details["untestable"]`` says why) with fewer than
    ``n_params + 1`` configurations or without replicate seeds.

    Example:
        >>> lack_of_fit([0.1, -0.1, 0.2, -0.2, 0.1, -0.1], [0, 0, 1, 1, 2, 2], n_params=2).statistic
        0.0
    """
    e, groups = np.asarray(residuals, dtype=float), np.asarray(groups)
    means = configuration_means(e, groups)
    m, n = len(means), len(e)
    ss_lof = float(np.sum(pd.Series(e).groupby(groups).count() * means**2))
    ss_pe = float(np.sum((e - means.loc[groups].to_numpy()) ** 2))
    df_lof, df_pe = m - n_params, n - m
    details: dict = {"df lack of fit": df_lof, "df pure error": df_pe, "configurations": m, "parameters": n_params}
    if df_lof < 1:
        details["untestable"] = f"{m} configurations leave no degree of freedom for a law with {n_params} parameters"
    elif df_pe < 1:
        details["untestable"] = "no configuration has replicate seeds (no pure error)"
    elif ss_pe <= 0:
        details["untestable"] = "replicate seeds agree exactly (zero pure error)"
    if "untestable" in details:
        return TestResult("Lack of fit against pure error", np.nan, np.nan, n, details=details)
    f_stat = (ss_lof / df_lof) / (ss_pe / df_pe)
    details.update({"SS lack of fit": ss_lof, "SS pure error": ss_pe})
    pvalue = float(stats.f.sf(f_stat, df_lof, df_pe))
    return TestResult("Lack of fit against pure error", f_stat, pvalue, n, details=details)


def nested_f_test(
    residuals: Sequence[float], null_residuals: Sequence[float], groups: Sequence, n_params: int, n_null_params: int
) -> TestResult:
    """F test of a law against a nested null on configuration-mean residuals (module docstring); the statistic is
    F, NaN when ``n_params <= n_null_params`` or with fewer than ``n_params + 1`` configurations."""
    law, null = configuration_means(residuals, groups), configuration_means(null_residuals, groups)
    m, dfn = len(law), n_params - n_null_params
    s, s0 = float(np.sum(law**2)), float(np.sum(null**2))
    details = {"df": (dfn, m - n_params), "configurations": m}
    if dfn < 1 or m - n_params < 1 or s <= 0:
        return TestResult("Law against null on configuration means", np.nan, np.nan, m, details=details)
    f_stat = ((s0 - s) / dfn) / (s / (m - n_params))
    return TestResult(
        "Law against null on configuration means", f_stat, float(stats.f.sf(f_stat, dfn, m - n_params)), m,
        details=details,
    )  # fmt: skip


def fieller_interval(a: np.ndarray, b: np.ndarray, confidence_level: float = 0.95) -> tuple[float, float]:
    """Fieller's (1954) interval for E[a]/E[b] from paired samples: {ρ : (ā − ρb̄)² ≤ t² s²(a − ρb)/m}, with t the
    two-sided t_{m−1} quantile. When b̄ is not significantly away from 0 the set is unbounded (the whole line or
    two rays) and its hull (−inf, inf) is returned."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    m = len(a)
    if m < 2:
        return (np.nan, np.nan)
    q = stats.t.ppf(0.5 + confidence_level / 2, m - 1) ** 2 / m
    cov = np.cov(a, b, ddof=1)
    mean_a, mean_b = a.mean(), b.mean()
    qa, qb, qc = mean_b**2 - q * cov[1, 1], -2 * (mean_a * mean_b - q * cov[0, 1]), mean_a**2 - q * cov[0, 0]
    disc = qb**2 - 4 * qa * qc
    if qa <= 0 or disc < 0:
        return (-np.inf, np.inf)
    root = np.sqrt(disc)
    return (float((-qb - root) / (2 * qa)), float((-qb + root) / (2 * qa)))


def paired_ratio_test(
    loss: pd.Series,
    reference: pd.Series,
    *,
    log: bool = False,
    alternative: str = "two-sided",
    confidence_level: float = 0.95,
    name: str = "Paired loss ratio over configurations",
) -> TestResult:
    """Compare two per-configuration losses (Series indexed by configuration, aligned on their shared labels).

    ``log=False``: ``statistic`` = mean(loss)/mean(reference), ``pvalue`` from the one-sample t test of
    loss − reference (a Vuong 1989 comparison when the losses are squared residuals), Fieller's interval.
    ``log=True`` (scale-free, for losses that differ in scale between configurations): ``statistic`` =
    exp(mean log(loss/reference)), the geometric-mean ratio, with the t test and t interval of the log ratios.
    ``alternative="less"``: ``loss`` is smaller. NaN p-value with fewer than 2 shared configurations.

    Example:
        >>> a, b = pd.Series([1.0, 2.0, 0.5]), pd.Series([2.0, 4.0, 1.0])
        >>> paired_ratio_test(a, b, log=True, alternative="less").statistic
        0.5
    """
    check_option("alternative", alternative, ALTERNATIVES, owner="paired_ratio_test")
    check_in_range("confidence_level", confidence_level, 0, 1, inclusive=(False, False), owner="paired_ratio_test")
    shared = loss.index.intersection(reference.index)
    a, b = loss.loc[shared].to_numpy(float), reference.loc[shared].to_numpy(float)
    m = len(shared)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(a / b) if log else a - b
    pvalue, low, high = np.nan, np.nan, np.nan
    if m >= 2 and np.all(np.isfinite(d)):
        with warnings.catch_warnings():  # equal nonzero differences: t = ±inf, scipy's p is 0 or 1
            warnings.simplefilter("ignore", RuntimeWarning)
            pvalue = float(stats.ttest_1samp(d, 0.0, alternative=alternative).pvalue) if np.any(d) else 1.0
        if log:
            half = stats.t.ppf(0.5 + confidence_level / 2, m - 1) * d.std(ddof=1) / np.sqrt(m)
            low, high = float(np.exp(d.mean() - half)), float(np.exp(d.mean() + half))
        else:
            low, high = fieller_interval(a, b, confidence_level)
    if log:
        ratio = float(np.exp(d.mean())) if m and np.all(np.isfinite(d)) else np.nan
    else:
        ratio = float(a.mean() / b.mean()) if m and b.mean() > 0 else np.nan
    details = {"mean loss": np.mean(a) if m else np.nan, "mean reference": np.mean(b) if m else np.nan}
    details = {**{key: float(v) for key, v in details.items()}, "configurations": m, "log": log}
    return TestResult(name, ratio, pvalue, m, low, high, confidence_level, details)
