"""Rank agreement between a quantity and an outcome: Kendall τ with configuration-level BCa intervals, and Ψ.

Kendall τ follows Jiang et al. 2020 ("Fantastic generalization measures and where to find them"); the bootstrap
resamples whole configurations (every seed of a hyperparameter setting together), because seeds of one setting
are not independent draws of the hyperparameter distribution.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy import stats

from bridge.stats._result import TestResult
from theory._validation import check_in_range, check_option, check_positive_int

ALTERNATIVES = ("two-sided", "greater", "less")


class BootstrapMethod(StrEnum):
    """Interval methods of :func:`scipy.stats.bootstrap`; default ``BCA`` (bias-corrected and accelerated)."""

    BCA = "BCa"
    PERCENTILE = "percentile"
    BASIC = "basic"


def as_method(method: BootstrapMethod | str) -> BootstrapMethod:
    """Validate a bootstrap method name (or member) and return the member."""
    value = method.value if isinstance(method, BootstrapMethod) else method
    return BootstrapMethod(check_option("method", value, [m.value for m in BootstrapMethod]))


def configuration_groups(frame: pd.DataFrame, axes: Sequence[str]) -> np.ndarray:
    """Integer label per row: rows sharing every value of ``axes`` (one configuration, all its seeds) share it."""
    missing = [a for a in axes if a not in frame.columns]
    if missing:
        raise ValueError(f"The 'axes' parameter names columns {missing} that the table lacks: {list(frame.columns)}.")
    if not axes:
        return np.arange(len(frame))
    return frame.groupby(list(axes), sort=True, dropna=False).ngroup().to_numpy()


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.kendalltau(x, y).statistic)


def weighted_tau(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Kendall τ_b of the data in which run a appears ``counts[b, a]`` times, for every resample b at once.

    With S_x = sign(x_a − x_b): τ_b = cᵀ(S_x∘S_y)c / sqrt(cᵀ|S_x|c · cᵀ|S_y|c); repeated runs are tied pairs
    (sign 0), exactly as scipy.stats.kendalltau counts them on the expanded data.
    """
    sx, sy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
    counts = np.atleast_2d(counts).astype(float)

    def form(m: np.ndarray) -> np.ndarray:
        return np.einsum("bi,ij,bj->b", counts, m, counts)

    with np.errstate(invalid="ignore", divide="ignore"):
        return form(sx * sy) / np.sqrt(form(np.abs(sx)) * form(np.abs(sy)))


def bootstrap_configurations(
    statistic, groups: np.ndarray, *, n_resamples: int, confidence_level: float, method, random_state
) -> tuple:
    """Bootstrap interval of ``statistic(counts)`` when whole configurations are resampled with replacement.

    ``counts`` is (B, n_runs): how often each run appears in each resample (all runs of a drawn configuration
    appear together); ``statistic`` returns (B,) or (B, k). NaNs when fewer than 3 configurations or when the
    bootstrap distribution is degenerate (BCa undefined).
    """
    _, codes = np.unique(groups, return_inverse=True)
    n_groups = int(codes.max()) + 1
    if n_groups < 3:
        return (np.nan, np.nan)

    def on_configurations(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        flat = idx.reshape(-1, idx.shape[-1]).astype(int)
        per_config = np.zeros((flat.shape[0], n_groups))
        np.add.at(per_config, (np.arange(flat.shape[0])[:, None], flat), 1.0)
        out = np.asarray(statistic(per_config[:, codes]))  # (B,) or (B, k); scipy wants (k, ...) for vectors
        return out.reshape(idx.shape[:-1]) if out.ndim == 1 else out.T.reshape(-1, *idx.shape[:-1])

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)  # degenerate resamples give a NaN interval
        res = stats.bootstrap(
            (np.arange(n_groups),),
            on_configurations,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            method=as_method(method).value,
            rng=np.random.default_rng(random_state),
        )
    return (res.confidence_interval.low, res.confidence_interval.high)


def kendall_tau(
    x: Sequence[float],
    y: Sequence[float],
    *,
    groups: Sequence[int] | None = None,
    alternative: str = "two-sided",
    n_resamples: int = 999,
    confidence_level: float = 0.95,
    method: BootstrapMethod | str = BootstrapMethod.BCA,
    random_state: int | None = None,
) -> TestResult:
    """Kendall τ_b between ``x`` (a quantity) and ``y`` (an outcome) over runs, with a bootstrap interval.

    τ = (concordant − discordant) / sqrt((n0 − n1)(n0 − n2)) (scipy.stats.kendalltau; Jiang et al. 2020).
    The p-value is scipy's, which treats runs as independent; the interval resamples whole configurations
    (``groups``: one label per run, e.g. from :func:`configuration_groups`; None = each run its own group).

    Example:
        >>> kendall_tau([1, 2, 3, 4], [1, 3, 2, 4], n_resamples=99, random_state=0).statistic
        0.6666666666666669
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"The 'x' and 'y' parameters must be 1-d of equal length. Got shapes {x.shape}, {y.shape}.")
    check_option("alternative", alternative, ALTERNATIVES, owner="kendall_tau")
    check_positive_int("n_resamples", n_resamples, owner="kendall_tau")
    check_in_range("confidence_level", confidence_level, 0, 1, inclusive=(False, False), owner="kendall_tau")
    method = as_method(method)
    groups = np.arange(len(x)) if groups is None else np.asarray(groups)
    if groups.shape != x.shape:
        raise ValueError(f"The 'groups' parameter must have one label per run ({len(x)}). Got {groups.shape}.")
    res = stats.kendalltau(x, y, alternative=alternative)
    low, high = bootstrap_configurations(
        lambda counts: weighted_tau(x, y, counts),
        groups,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        method=method,
        random_state=random_state,
    )
    return TestResult(
        "Kendall tau (configuration bootstrap)",
        float(res.statistic),
        float(res.pvalue),
        len(x),
        float(low),
        float(high),
        confidence_level,
        {"configurations": len(np.unique(groups)), "alternative": alternative, "interval": method.value},
    )


def kendall_tau_difference(
    x: Sequence[float],
    control: Sequence[float],
    y: Sequence[float],
    *,
    direction: int = 1,
    groups: Sequence[int] | None = None,
    n_resamples: int = 999,
    confidence_level: float = 0.95,
    method: BootstrapMethod | str = BootstrapMethod.BCA,
    random_state: int | None = None,
) -> TestResult:
    """How much better ``x`` ranks ``y`` than a control does: D = direction·τ(x, y) − |τ(control, y)|.

    A control may track the outcome with either sign, so its |τ| is the bar to clear. The interval resamples
    configurations jointly for both τ (paired); D's lower bound > 0 means ``x`` does better than the control.
    """
    x, c, y = (np.asarray(v, dtype=float) for v in (x, control, y))
    if not (x.shape == c.shape == y.shape):
        raise ValueError(f"'x', 'control' and 'y' must have equal lengths. Got {x.shape}, {c.shape}, {y.shape}.")
    check_option("direction", direction, (1, -1), owner="kendall_tau_difference")
    groups = np.arange(len(x)) if groups is None else np.asarray(groups)

    def diff(counts: np.ndarray) -> np.ndarray:
        return direction * weighted_tau(x, y, counts) - np.abs(weighted_tau(c, y, counts))

    low, high = bootstrap_configurations(
        diff,
        groups,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        method=method,
        random_state=random_state,
    )
    observed = float(diff(np.ones(len(x)))[0])
    return TestResult(
        "Kendall tau difference vs control", observed, np.nan, len(x), float(low), float(high), confidence_level
    )


def granulated_kendall(frame: pd.DataFrame, quantity: str, outcome: str, axes: Sequence[str]) -> TestResult:
    """Granulated Kendall coefficient Ψ (Jiang et al. 2020, eq. 4).

    For each axis i, ψ_i = mean over every setting of the other axes of τ(quantity, outcome) over the runs in
    which only θ_i (and the seed) varies; Ψ = mean_i ψ_i. Settings with fewer than two distinct θ_i values, or
    an undefined τ, are skipped. ``details`` holds each ψ_i.
    """
    for col in (quantity, outcome, *axes):
        if col not in frame.columns:
            raise ValueError(f"granulated_kendall: column {col!r} is not in the table: {list(frame.columns)}.")
    if not axes:
        raise ValueError("The 'axes' parameter of granulated_kendall must name at least one axis. Got [].")
    psi: dict[str, float] = {}
    for axis in axes:
        others = [a for a in axes if a != axis]
        cells = frame.groupby(others, dropna=False) if others else [(None, frame)]
        taus = [
            _tau(cell[quantity].to_numpy(float), cell[outcome].to_numpy(float))
            for _, cell in cells
            if cell[axis].nunique() >= 2
        ]
        taus = [t for t in taus if np.isfinite(t)]
        psi[f"psi[{axis}]"] = float(np.mean(taus)) if taus else np.nan
    defined = [v for v in psi.values() if np.isfinite(v)]
    value = float(np.mean(defined)) if defined else np.nan
    return TestResult("Granulated Kendall Psi (Jiang 2020)", value, np.nan, len(frame), details=psi)
