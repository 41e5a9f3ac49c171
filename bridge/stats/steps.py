"""Claims along training: does a quantity track the outcome within each run, over its recorded steps?

The prime-count argument of the position paper (Jeffares & van der Schaar 2025) is about a quantity tracking the
outcome *along training*. Per run r, τ_r = Kendall τ_b(q(t), y(t)) over the run's recorded steps t (Jiang et al.
2020's τ, within a run). Seeds are nested in configurations, so runs are first averaged within their
configuration, τ̄_g = mean of τ_r over the seeds of g, and the G configuration means are the units: a one-sample
t test of mean τ̄_g = 0 (Student 1908; :func:`scipy.stats.ttest_1samp`) with its t interval. When every τ̄_g is
equal (no spread: the t test is undefined) the exact sign test over configurations is used instead (p = 2^-G on
the side of the common value).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bridge.stats._result import TestResult
from bridge.stats.nested import two_sided
from theory._validation import check_in_range, check_option

#: a run needs this many recorded steps for its τ
MIN_STEPS = 3


def per_run_tau(frame: pd.DataFrame, quantity: str, outcome: str, *, run: str = "run_id") -> pd.Series:
    """Kendall τ_b of ``quantity`` and ``outcome`` over the recorded steps of each run (NaN: fewer than
    :data:`MIN_STEPS` steps, or a constant series)."""
    for col in (quantity, outcome, run):
        if col not in frame.columns:
            raise ValueError(f"per_run_tau: column {col!r} is not in the table: {list(frame.columns)}.")

    def tau(part: pd.DataFrame) -> float:
        part = part.dropna(subset=[quantity, outcome])
        if len(part) < MIN_STEPS:
            return np.nan
        return float(stats.kendalltau(part[quantity].to_numpy(float), part[outcome].to_numpy(float)).statistic)

    return frame.groupby(run, sort=True)[[quantity, outcome]].apply(tau).rename("tau")


def _configuration_means(frame: pd.DataFrame, per_run: pd.Series, run: str, groups: Sequence | None) -> pd.Series:
    labels = frame[run] if groups is None else pd.Series(np.asarray(groups), index=frame.index)
    if len(labels) != len(frame):
        raise ValueError(f"The 'groups' parameter must have one label per row ({len(frame)}). Got {len(labels)}.")
    config = pd.DataFrame({"run": frame[run].to_numpy(), "config": labels.to_numpy()}).drop_duplicates()
    if config["run"].duplicated().any():
        raise ValueError("The 'groups' parameter must give every row of a run the same configuration.")
    config["tau"] = config["run"].map(per_run)
    return config.dropna(subset=["tau"]).groupby("config")["tau"].mean()


def _t_test(values: np.ndarray, confidence_level: float) -> tuple[float, float, float, float]:
    """(p_greater, p_less, low, high) of the mean of ``values`` against 0."""
    g = len(values)
    if g < 2:
        return (np.nan, np.nan, np.nan, np.nan)
    mean = float(values.mean())
    if np.ptp(values) == 0:  # no spread: the exact sign test over configurations
        side = 0.5**g if mean != 0 else 1.0
        return (side if mean > 0 else 1.0, side if mean < 0 else 1.0, mean, mean)
    p_greater = float(stats.ttest_1samp(values, 0.0, alternative="greater").pvalue)
    p_less = float(stats.ttest_1samp(values, 0.0, alternative="less").pvalue)
    half = stats.t.ppf((1 + confidence_level) / 2, g - 1) * values.std(ddof=1) / np.sqrt(g)
    return (p_greater, p_less, mean - half, mean + half)


def kendall_over_steps(
    frame: pd.DataFrame,
    quantity: str,
    outcome: str,
    *,
    run: str = "run_id",
    groups: Sequence | None = None,
    control: str | None = None,
    direction: int = 1,
    confidence_level: float = 0.95,
    margin: float | None = None,
) -> TestResult:
    """Mean over configurations of the per-run Kendall τ along training, tested over configurations.

    ``frame`` is long: one row per (run, step). ``groups`` labels each row's configuration (None: every run its
    own). With ``control`` the statistic is D = direction·τ̄(quantity) − s·τ̄(control), per configuration, where
    s = sign of the control's mean τ̄ (a control may track the outcome with either sign); D's interval lying
    above 0 means the quantity tracks the outcome better than the control. ``details`` counts runs and
    configurations and holds the mean per-run τ; with an equivalence ``margin`` m, the one-sided t-test p-values
    of H1: mean < m and H1: mean > −m.

    Example:
        >>> steps = pd.DataFrame({"run_id": ["a"] * 4 + ["b"] * 4, "q": [1, 2, 3, 4] * 2, "y": [1, 2, 4, 3] * 2})
        >>> round(kendall_over_steps(steps, "q", "y").statistic, 3)
        0.667
    """
    check_option("direction", direction, (1, -1), owner="kendall_over_steps")
    check_in_range("confidence_level", confidence_level, 0, 1, inclusive=(False, False), owner="kendall_over_steps")
    taus = per_run_tau(frame, quantity, outcome, run=run)
    means = _configuration_means(frame, taus, run, groups)
    name = "Kendall tau along training (per-run tau, configuration means, t test)"
    details: dict[str, object] = {
        "runs": int(taus.notna().sum()),
        "runs without a tau": int(taus.isna().sum()),
        "configurations": len(means),
        "mean per-run tau": float(taus.mean()) if taus.notna().any() else np.nan,
    }
    if control is not None:
        control_means = _configuration_means(frame, per_run_tau(frame, control, outcome, run=run), run, groups)
        both = pd.concat([means, control_means], axis=1, keys=["q", "c"]).dropna()
        sign = np.sign(both["c"].mean()) or 1.0
        means = direction * both["q"] - sign * both["c"]
        name = f"Kendall tau along training, difference vs control {control}"
        details["control mean tau"] = float(both["c"].mean()) if len(both) else np.nan
    values = means.to_numpy(float)
    p_greater, p_less, low, high = _t_test(values, confidence_level)
    if margin is not None:
        check_in_range("margin", margin, 0, None, inclusive=(False, True), owner="kendall_over_steps")
        details["p below margin"] = _t_test(values - margin, confidence_level)[1]
        details["p above -margin"] = _t_test(values + margin, confidence_level)[0]
    return TestResult(
        name,
        float(values.mean()) if len(values) else np.nan,
        two_sided(p_greater, p_less) if np.isfinite(p_greater) else np.nan,
        len(values),
        low,
        high,
        confidence_level,
        details,
        p_greater,
        p_less,
    )
