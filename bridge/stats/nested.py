"""Inference with seeds nested in configurations: the configuration, not the run, is the unit.

A configuration (one setting of the hyperparameter axes) is run with several seeds; the seeds of one setting
share everything but their randomness, so they are not independent draws. Two tools respect that:

- **Permutation nulls with exchangeability blocks** (Winkler et al. 2014, "Permutation inference for the general
  linear model", NeuroImage 92): whole configurations are exchanged with all their seeds (among configurations
  with as many runs, and only inside a stratum when strata are given), and seeds are shuffled inside a
  configuration. The null is "the outcome is independent of the quantity" with configurations exchangeable as
  blocks; run-level shuffles that move one seed away from its siblings are never drawn. When the group of such
  permutations has at most ``n_resamples`` members it is enumerated (exact p-values, p = #{T* ≥ T} / |G|);
  otherwise p = (1 + #{T* ≥ T}) / (1 + B) over B random members (Phipson & Smyth 2010).
- **Configuration bootstrap**: configurations are resampled with replacement, each with all its seeds; the
  interval is BCa (Efron 1987, via :func:`scipy.stats.bootstrap`) and falls back to the percentile interval of
  the same resamples when BCa is undefined (a degenerate or partly undefined bootstrap distribution). The
  returned :class:`Interval` says which interval it is, or why there is none (fewer than 3 configurations).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import permutations, product

import numpy as np
import pandas as pd
from scipy import stats

from theory._validation import check_option

#: fewer configurations than this give no bootstrap interval
MIN_CONFIGURATIONS = 3
#: share of the bootstrap resamples whose statistic must be defined for a percentile interval
MIN_DEFINED_SHARE = 0.5


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
    """Integer label per row: rows sharing every value of ``axes`` (one configuration, all its seeds) share it.
    With no axes every row is its own configuration."""
    missing = [a for a in axes if a not in frame.columns]
    if missing:
        raise ValueError(f"The 'axes' parameter names columns {missing} that the table lacks: {list(frame.columns)}.")
    if not axes:
        return np.arange(len(frame))
    codes = np.column_stack([pd.factorize(frame[a], sort=True, use_na_sentinel=False)[0] for a in axes])
    return np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1)


def check_resamples(n_resamples: int, owner: str) -> int:
    """``n_resamples`` must be an int >= 0; 0 asks for the statistic alone (no p-value, no interval)."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 0:
        raise ValueError(f"The 'n_resamples' parameter of {owner} must be an int >= 0. Got {n_resamples!r} instead.")
    return n_resamples


def _codes(labels: Sequence, n: int, name: str) -> np.ndarray:
    labels = np.arange(n) if labels is None else np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"The {name!r} parameter must have one label per run ({n}). Got shape {labels.shape}.")
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


@dataclass(frozen=True)
class Permutations:
    """Index arrays ``index`` (B, n): permutation b moves the value of run ``index[b, i]`` to run i.
    ``exact``: the whole group was enumerated (B = its size, identity included)."""

    index: np.ndarray
    exact: bool

    def pvalues(self, observed: float, null: np.ndarray) -> tuple[float, float]:
        """One-sided p-values (greater, less) of ``observed`` against the permutation distribution ``null``."""
        null = np.asarray(null, dtype=float)
        null = null[np.isfinite(null)]  # permutations under which the statistic is undefined do not count
        if not np.isfinite(observed) or len(null) == 0:
            return (math.nan, math.nan)
        tol = 1e-12 * max(1.0, abs(observed))
        above, below = int(np.sum(null >= observed - tol)), int(np.sum(null <= observed + tol))
        if self.exact:
            return (max(above, 1) / len(null), max(below, 1) / len(null))
        return ((1 + above) / (1 + len(null)), (1 + below) / (1 + len(null)))


def two_sided(p_greater: float, p_less: float) -> float:
    """The two-sided p-value of two one-sided ones: min(1, 2 min(p_greater, p_less)); NaN if either is."""
    if not (np.isfinite(p_greater) and np.isfinite(p_less)):
        return math.nan
    return float(min(1.0, 2.0 * min(p_greater, p_less)))


def nested_permutations(
    groups: Sequence[int] | None,
    n_resamples: int,
    *,
    strata: Sequence | None = None,
    random_state: int | np.random.Generator | None = None,
) -> Permutations:
    """Permutations of runs that exchange whole configurations (``groups``: one label per run) with their seeds
    among configurations of equal size in the same stratum, and shuffle seeds within each configuration.

    ``strata`` (one label per run, constant within a configuration) restricts which configurations may be
    exchanged (e.g. those sharing the other hyperparameters). None for ``groups``: every run is its own
    configuration (plain permutations).
    """
    n = len(groups) if groups is not None else len(strata) if strata is not None else 0
    codes = _codes(groups, n, "groups")
    strata_codes = np.zeros(n, dtype=int) if strata is None else _codes(strata, n, "strata")
    members = [np.flatnonzero(codes == g) for g in range(int(codes.max()) + 1 if n else 0)]
    config_stratum = []
    for runs in members:
        labels = np.unique(strata_codes[runs])
        if len(labels) != 1:
            raise ValueError("The 'strata' parameter must be constant within each configuration of 'groups'.")
        config_stratum.append(int(labels[0]))
    classes: dict[tuple[int, int], list[int]] = {}
    for g, runs in enumerate(members):
        classes.setdefault((config_stratum[g], len(runs)), []).append(g)
    size = math.prod(math.factorial(len(c)) for c in classes.values())
    size *= math.prod(math.factorial(len(runs)) for runs in members)
    rng = np.random.default_rng(random_state)
    if n_resamples == 0:
        return Permutations(np.empty((0, n), dtype=np.int64), exact=False)
    if size <= n_resamples:
        return Permutations(_enumerate(members, list(classes.values()), n), exact=True)
    index = np.empty((n_resamples, n), dtype=np.int64)
    for configs in classes.values():
        k, m = len(configs), len(members[configs[0]])
        block = np.stack([members[g] for g in configs])  # (k, m): the runs of each configuration
        target = np.argsort(rng.random((n_resamples, k)), axis=1)  # configuration t takes the values of target
        within = np.argsort(rng.random((n_resamples, k, m)), axis=2)
        moved = np.take_along_axis(block[target], within, axis=2)  # (B, k, m)
        index[:, block.reshape(-1)] = moved.reshape(n_resamples, k * m)
    return Permutations(index, exact=False)


def _enumerate(members: list[np.ndarray], classes: list[list[int]], n: int) -> np.ndarray:
    between = [list(permutations(range(len(c)))) for c in classes]
    within = [list(permutations(range(len(runs)))) for runs in members]
    rows = []
    for order in product(*between):
        for shuffles in product(*within):
            index = np.empty(n, dtype=np.int64)
            for configs, perm in zip(classes, order, strict=True):
                for t, s in enumerate(perm):
                    source = members[configs[s]]
                    index[members[configs[t]]] = source[list(shuffles[configs[s]])]
            rows.append(index)
    return np.array(rows, dtype=np.int64).reshape(len(rows), n)


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval and how it was obtained (``method``: "BCa", "percentile of ... (BCa undefined)", or
    why there is none). ``low``/``high`` are floats, or arrays for a vector statistic. Unpacks as
    ``low, high = interval``."""

    low: float | np.ndarray
    high: float | np.ndarray
    method: str
    distribution: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __iter__(self):
        return iter((self.low, self.high))

    def pvalue_below(self, value: float) -> float:
        """Bootstrap p-value of H1: "the (scalar) parameter is below ``value``": (1 + #{θ* >= value}) / (1 + B)
        over the defined resamples (the inversion of the percentile interval; NaN without resamples)."""
        if self.distribution is None:
            return math.nan
        finite = self.distribution[np.isfinite(self.distribution)]
        return (1 + int(np.sum(finite >= value))) / (1 + len(finite)) if len(finite) else math.nan

    def pvalue_above(self, value: float) -> float:
        """Bootstrap p-value of H1: "the (scalar) parameter is above ``value``" (see :meth:`pvalue_below`)."""
        if self.distribution is None:
            return math.nan
        finite = self.distribution[np.isfinite(self.distribution)]
        return (1 + int(np.sum(finite <= value))) / (1 + len(finite)) if len(finite) else math.nan

    @property
    def defined(self) -> bool:
        return bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))


def bootstrap_configurations(
    statistic: Callable[[np.ndarray], np.ndarray],
    groups: Sequence[int],
    *,
    n_resamples: int,
    confidence_level: float,
    method: BootstrapMethod | str = BootstrapMethod.BCA,
    random_state: int | np.random.Generator | None = None,
) -> Interval:
    """Bootstrap interval of ``statistic(counts)`` when whole configurations are resampled with replacement.

    ``counts`` is (B, n_runs): how often each run appears in each resample (all runs of a drawn configuration
    appear together); ``statistic`` returns (B,) or (B, k). Where ``method`` gives no finite interval (BCa on a
    degenerate distribution, or some resamples undefined), the percentile interval of the defined resamples
    is used if at least half of them are defined; otherwise that bound is NaN.
    """
    method = as_method(method)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    if n_resamples == 0 or n_groups < MIN_CONFIGURATIONS:
        probe = np.asarray(statistic(np.ones((1, len(codes)))))
        nan = np.full(probe.shape[1:], math.nan) if probe.ndim > 1 else math.nan
        why = "no resamples" if n_resamples == 0 else f"{n_groups} configurations; the bootstrap needs 3"
        return Interval(nan, nan, f"none ({why})")

    def on_configurations(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        flat = idx.reshape(-1, idx.shape[-1]).astype(int)
        per_config = np.zeros((flat.shape[0], n_groups))
        np.add.at(per_config, (np.arange(flat.shape[0])[:, None], flat), 1.0)
        out = np.asarray(statistic(per_config[:, codes]))  # (B,) or (B, k); scipy wants (k, ...) for vectors
        return out.reshape(idx.shape[:-1]) if out.ndim == 1 else out.T.reshape(-1, *idx.shape[:-1])

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)  # handled by the percentile fallback
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.bootstrap(
            (np.arange(n_groups),),
            on_configurations,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            method=method.value,
            rng=np.random.default_rng(random_state),
        )
    low = np.array(res.confidence_interval.low, dtype=float)
    high = np.array(res.confidence_interval.high, dtype=float)
    missing = ~(np.isfinite(low) & np.isfinite(high))
    note = method.value
    if missing.any():
        values = np.asarray(res.bootstrap_distribution, dtype=float).reshape(low.size, -1)
        tail, fallbacks = (1 - confidence_level) / 2, []
        for k in np.flatnonzero(missing.reshape(-1)):
            finite = values[k][np.isfinite(values[k])]
            if len(finite) >= MIN_DEFINED_SHARE * values.shape[1]:
                low.reshape(-1)[k], high.reshape(-1)[k] = np.quantile(finite, [tail, 1 - tail])
                fallbacks.append(len(finite))
        if fallbacks:
            note = f"percentile of {min(fallbacks)} defined resamples ({method.value} undefined)"
        if not (np.isfinite(low) & np.isfinite(high)).any():
            note = f"none (the statistic is undefined in most resamples, or {method.value} is)"
    distribution = np.asarray(res.bootstrap_distribution, dtype=float)
    if low.ndim == 0:
        return Interval(float(low), float(high), note, distribution)
    return Interval(low, high, note, distribution)
