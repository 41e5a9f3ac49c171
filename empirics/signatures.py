"""Signatures of phenomena in tables of runs: is there a double-descent peak, where, and how sure are we."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from theory._validation import check_in_range, check_positive_int


def _peak_indices(curve: np.ndarray) -> tuple[int, int, int]:
    """(left minimum, peak, right minimum) indices of a curve ordered along its axis; -1 where absent.

    The peak is the point rising most above the running minimum to its left, max_a [m(a) − min_{a' < a} m(a')];
    the right minimum is the smallest value after it. A curve that never rises has no peak.
    """
    running_min = np.minimum.accumulate(curve)
    rise = np.r_[-np.inf, curve[1:] - running_min[:-1]]
    peak = int(np.argmax(rise))
    if rise[peak] <= 0 or peak == len(curve) - 1:
        return -1, -1, -1
    return int(np.argmin(curve[:peak])), peak, peak + 1 + int(np.argmin(curve[peak + 1 :]))


@dataclass(frozen=True)
class DoubleDescentSignature:
    """Where the seed-mean curve of ``outcome`` along ``axis`` peaks, and a test of the peak against the minimum
    on its right (Nakkiran et al. 2019's "rise, then fall again").

    Attributes:
        axis, outcome: the column names analysed.
        detected: a peak exists with a lower point on each side, and (with two or more seeds) the one-sided
            paired t-test of peak > right minimum has ``pvalue < alpha``; with one seed, the shape alone.
        peak, left_minimum, right_minimum: axis values (NaN without a peak).
        peak_interval: percentile bootstrap interval of the peak's axis value, resampling seeds.
        statistic: mean over seeds of outcome(peak) − outcome(right minimum).
        rise: mean over seeds of outcome(peak) − outcome(left minimum).
        pvalue: one-sided paired t-test over seeds of ``statistic > 0`` (NaN with one seed).
        differences: the per-seed differences behind ``statistic``.
    """

    axis: str
    outcome: str
    detected: bool
    peak: float
    left_minimum: float
    right_minimum: float
    peak_interval: tuple[float, float]
    statistic: float
    rise: float
    pvalue: float
    differences: tuple[float, ...]
    n_seeds: int
    alpha: float
    random_state: int

    def __iter__(self):
        return iter((self.statistic, self.pvalue))

    def conf_int(self, alpha: float | None = None) -> tuple[float, float]:
        """Percentile bootstrap interval (1 − alpha) over seeds of ``statistic`` (scipy.stats.bootstrap)."""
        alpha = self.alpha if alpha is None else check_in_range("alpha", alpha, 0, 1, inclusive=(False, False))
        if len(self.differences) < 2:
            return (float("nan"), float("nan"))
        res = stats.bootstrap(
            (np.asarray(self.differences),),
            np.mean,
            confidence_level=1 - alpha,
            method="percentile",
            random_state=self.random_state,
        )
        return (float(res.confidence_interval.low), float(res.confidence_interval.high))

    def summary(self, alpha: float | None = None) -> str:
        """One line: whether, where (with interval) and how high the peak is."""
        if np.isnan(self.peak):
            return f"{self.outcome} along {self.axis}: no peak ({self.n_seeds} seeds)"
        low, high = self.conf_int(alpha)
        return (
            f"{self.outcome} along {self.axis}: peak at {self.peak:g} "
            f"(bootstrap interval [{self.peak_interval[0]:g}, {self.peak_interval[1]:g}]), "
            f"{self.statistic:+.4g} [{low:.4g}, {high:.4g}] above the right minimum at {self.right_minimum:g}, "
            f"p = {self.pvalue:.3g}, {self.n_seeds} seeds: {'detected' if self.detected else 'not detected'}"
        )


def double_descent_signature(
    table: pd.DataFrame,
    axis: str,
    outcome: str,
    *,
    seed: str = "seed",
    alpha: float = 0.05,
    n_resamples: int = 2000,
    random_state: int = 0,
) -> DoubleDescentSignature:
    """Detect a double-descent peak of ``outcome`` along ``axis`` in a table of runs (Nakkiran et al. 2019).

    The curve is the mean over seeds of ``outcome`` per axis value (rows of one (axis, seed) cell are averaged;
    seeds missing any axis value are dropped). Its peak is the point rising most above the running minimum to
    its left; it is compared with the minimum on its right by a one-sided paired t-test over seeds
    (``scipy.stats.ttest_1samp`` on the differences). The peak's location gets a percentile bootstrap interval:
    resample seeds with replacement ``n_resamples`` times, locate the peak of each mean curve, take the
    alpha/2 and 1 − alpha/2 quantiles (as observed axis values).

    Args:
        table: one row per run (or per recorded step) with columns ``axis``, ``outcome`` and ``seed``,
            e.g. ``Store.runs()`` or records pivoted to wide form.
        axis: the swept column (width, n_features, n_train, step, ...); numeric.
        outcome: the column whose peak is sought (test_error, test_loss, ...).
        seed: the column identifying seeds.
        alpha: test level and 1 − confidence level of the intervals.
        n_resamples: bootstrap resamples.
        random_state: seed of the bootstrap.

    Raises:
        ValueError: for missing columns, fewer than three axis values, or bad options.

    Example:
        >>> df = pd.DataFrame({"width": [1, 2, 3, 4] * 2, "seed": [0] * 4 + [1] * 4,
        ...                    "test_error": [0.3, 0.5, 0.2, 0.1, 0.35, 0.6, 0.25, 0.1]})
        >>> double_descent_signature(df, "width", "test_error").peak
        2.0
    """
    for name in (axis, outcome, seed):
        if name not in table.columns:
            raise ValueError(f"The table has no column {name!r}; columns: {list(table.columns)}.")
    check_in_range("alpha", alpha, 0, 1, inclusive=(False, False), owner="double_descent_signature")
    check_positive_int("n_resamples", n_resamples, owner="double_descent_signature")
    wide = table.pivot_table(index=axis, columns=seed, values=outcome, aggfunc="mean").sort_index().dropna(axis=1)
    if wide.shape[0] < 3 or wide.shape[1] < 1:
        raise ValueError(
            f"double_descent_signature needs >= 3 axis values and >= 1 complete seed. Got {wide.shape[0]} axis "
            f"values and {wide.shape[1]} complete seeds instead."
        )
    values, curves = wide.index.to_numpy(dtype=float), wide.to_numpy(dtype=float)  # (axis, seeds)
    n_seeds = curves.shape[1]
    left, peak, right = _peak_indices(curves.mean(axis=1))
    nan = float("nan")
    if peak < 0:
        return DoubleDescentSignature(
            axis, outcome, False, nan, nan, nan, (nan, nan), nan, nan, nan, (), n_seeds, alpha, random_state
        )
    differences = curves[peak] - curves[right]
    pvalue = nan
    if n_seeds >= 2 and np.ptp(differences) <= 1e-12 * np.abs(differences).max(initial=0.0):
        pvalue = 0.0 if differences[0] > 0 else 1.0  # no spread: the t statistic is undefined
    elif n_seeds >= 2:
        pvalue = float(stats.ttest_1samp(differences, 0.0, alternative="greater").pvalue)
    rng = np.random.default_rng(random_state)
    draws = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    locations = [_peak_indices(curves[:, d].mean(axis=1))[1] for d in draws]
    located = values[[i for i in locations if i >= 0]]
    interval = (
        (
            float(np.quantile(located, alpha / 2, method="inverted_cdf")),
            float(np.quantile(located, 1 - alpha / 2, method="inverted_cdf")),
        )
        if located.size
        else (nan, nan)
    )
    detected = bool(differences.mean() > 0 and (n_seeds < 2 or pvalue < alpha))
    return DoubleDescentSignature(
        axis=axis,
        outcome=outcome,
        detected=detected,
        peak=float(values[peak]),
        left_minimum=float(values[left]),
        right_minimum=float(values[right]),
        peak_interval=interval,
        statistic=float(differences.mean()),
        rise=float((curves[peak] - curves[left]).mean()),
        pvalue=pvalue,
        differences=tuple(float(d) for d in differences),
        n_seeds=n_seeds,
        alpha=alpha,
        random_state=random_state,
    )
