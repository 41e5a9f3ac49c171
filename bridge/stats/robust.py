"""Robust sign-error of a quantity over coupled-run environments (Dziugaite et al. 2020, "In search of robust
measures of generalization").

An environment is a pair of configurations differing in exactly one hyperparameter; its samples are the pairs of
runs (one per configuration, every seed combination). Sign-error ℓ = (1 − sign(ΔC) sign(Δg)) / 2. A pair whose
outcome difference could be Monte-Carlo noise of an n-point test set gets little weight: Hoeffding gives
w = [max(0, 1 − 2 exp(−2 n (|Δg|/2)²))]², and the pair is kept with weight (w − 1/2)₊ (REFERENCE.md §5).
Environment loss Σwℓ / Σw, kept when its effective sample size (Σw)² / Σw² >= ``min_ess`` (12 in the paper).
The robust error is the maximum over kept environments, reported with the 90th percentile and the mean.

These are descriptive figures: with a few seeds per configuration, a maximum over ~100 environments of 16 run
pairs each is far above 0.5 even for a quantity that drives the outcome. Decisions use a confidence bound per
environment. Its run pairs share runs (every seed of one configuration meets every seed of the other) and the
seeds are the only randomness once the two configurations are fixed, so the environment's pair mean is a
two-sample U-statistic: Hoeffding (1963, §5) bounds its tail as that of a mean of k = min(m_a, m_b) independent
terms, P(Ū − E Ū >= t) <= exp(−k KL(E Ū + t ‖ E Ū)) (the Chernoff–Hoeffding relative-entropy form). The kernel
is h = w'ℓ + (1 − w')/2, w' = the pair's weight scaled to [0, 1]: pairs whose outcome difference could be test-set
noise count as coin flips, so E h < 1/2 exactly when the weighted sign-error E[wℓ]/E[w] is below 1/2. Per
environment, p_below = exp(−k KL(h̄ ‖ 1/2)) when h̄ < 1/2 (else 1), p_above likewise. The robust error is
significantly below 1/2 when every kept environment is (p = max p_below: an intersection–union test, Berger
1982); some environment is significantly above 1/2 when Holm over the kept environments rejects (p = E · min
p_above, Holm's first step).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import rel_entr

from bridge.stats._result import TestResult
from bridge.stats.nested import configuration_groups
from theory._validation import check_in_range, check_positive_int


def hoeffding_weight(delta_g: np.ndarray, n_test: int | None) -> np.ndarray:
    """(w − 1/2)₊ with w = [max(0, 1 − 2 exp(−2 n (|Δg|/2)²))]²; with ``n_test=None`` every pair with Δg ≠ 0 gets 1."""
    delta_g = np.abs(np.asarray(delta_g, dtype=float))
    if n_test is None:
        return (delta_g > 0).astype(float)
    w = np.maximum(0.0, 1.0 - 2.0 * np.exp(-2.0 * n_test * (delta_g / 2.0) ** 2)) ** 2
    return np.maximum(w - 0.5, 0.0)


def chernoff_pvalue(mean: np.ndarray, k: np.ndarray, side: str) -> np.ndarray:
    """exp(−k KL(mean ‖ 1/2)) where ``mean`` lies on ``side`` ("below"/"above") of 1/2, else 1: the p-value bound of
    a mean of k independent [0, 1] terms (or a two-sample U-statistic with k = min sample size) against 1/2."""
    mean, k = np.asarray(mean, dtype=float), np.asarray(k, dtype=float)
    kl = rel_entr(mean, 0.5) + rel_entr(1.0 - mean, 0.5)
    on_side = mean < 0.5 if side == "below" else mean > 0.5
    return np.where(on_side, np.exp(-k * kl), 1.0)


def sign_error_environments(
    frame: pd.DataFrame, quantity: str, outcome: str, axes: Sequence[str], *, n_test: int | None
) -> pd.DataFrame:
    """One row per environment: ``axis``, ``environment`` (the two configurations), ``loss`` (Dziugaite's weighted
    sign-error), ``ess``, ``pairs``, ``h`` (the pair mean with uncertain pairs as coin flips), ``k`` (the smaller
    configuration's seed count) and the bounds ``p_below``/``p_above`` of ``h`` against 1/2."""
    top = 0.5 if n_test is not None else 1.0  # the largest pair weight
    q, g = frame[quantity].to_numpy(float), frame[outcome].to_numpy(float)
    rows = []
    for axis in axes:
        others = [a for a in axes if a != axis]
        values, value_codes = np.unique(frame[axis].to_numpy(), return_inverse=True)
        cells = configuration_groups(frame, others) if others else np.zeros(len(frame), dtype=int)
        for cell in np.unique(cells):
            in_cell = cells == cell
            fixed = ", ".join(f"{o}={frame[o].to_numpy()[in_cell][0]}" for o in others)
            present = np.unique(value_codes[in_cell])
            runs = {v: np.flatnonzero(in_cell & (value_codes == v)) for v in present}
            for v1, v2 in combinations(present, 2):
                a, b = runs[v1], runs[v2]
                dc = q[a][:, None] - q[b][None, :]
                dg = g[a][:, None] - g[b][None, :]
                loss = ((1.0 - np.sign(dc) * np.sign(dg)) / 2.0).ravel()
                w = hoeffding_weight(dg, n_test).ravel()
                total = w.sum()
                rows.append(
                    {
                        "axis": axis,
                        "environment": f"{axis}: {values[v1]} vs {values[v2]}" + (f" ({fixed})" if fixed else ""),
                        "loss": float(w @ loss / total) if total > 0 else np.nan,
                        "ess": float(total**2 / (w @ w)) if total > 0 else 0.0,
                        "pairs": int(w.size),
                        "h": float(np.mean((w / top) * loss + (1.0 - w / top) / 2.0)),
                        "k": min(len(a), len(b)),
                    }
                )
    out = pd.DataFrame(rows, columns=["axis", "environment", "loss", "ess", "pairs", "h", "k"])
    out["p_below"] = chernoff_pvalue(out["h"].to_numpy(float), out["k"].to_numpy(float), "below")
    out["p_above"] = chernoff_pvalue(out["h"].to_numpy(float), out["k"].to_numpy(float), "above")
    return out


def robust_sign_error(
    frame: pd.DataFrame,
    quantity: str,
    outcome: str,
    axes: Sequence[str],
    *,
    n_test: int | None = None,
    min_ess: float = 12.0,
) -> TestResult:
    """Robust sign-error (max over environments) with, per hyperparameter, the max, 90th percentile and mean,
    and the per-environment bounds that decide (see the module docstring).

    ``n_test`` is the test-set size behind ``outcome`` (an error rate) for the Hoeffding weights; None gives
    every pair with a non-zero outcome difference weight 1. ``statistic`` is the robust error (NaN when no
    environment reaches ``min_ess``). ``p_less`` = ``pvalue``: every kept environment's sign-error is below
    1/2 (max of p_below); ``p_greater``: every one is above; ``details["p any greater"]``: some environment is
    above 1/2 (Holm's first step over the kept environments). ``details`` also names the worst environment, the
    per-axis summaries and how many environments are individually below/above 1/2 at 5%.
    """
    for col in (quantity, outcome, *axes):
        if col not in frame.columns:
            raise ValueError(f"robust_sign_error: column {col!r} is not in the table: {list(frame.columns)}.")
    if not axes:
        raise ValueError("The 'axes' parameter of robust_sign_error must name at least one axis. Got [].")
    check_positive_int("n_test", n_test, allow_none=True, owner="robust_sign_error")
    check_in_range("min_ess", min_ess, 0, None, owner="robust_sign_error")
    envs = sign_error_environments(frame, quantity, outcome, axes, n_test=n_test)
    kept = envs[(envs["ess"] >= min_ess) & envs["loss"].notna()]
    details: dict[str, object] = {"environments kept": len(kept), "environments": len(envs)}
    for axis, part in kept.groupby("axis", sort=False):
        losses = part["loss"].to_numpy()
        details[f"{axis}: max"] = float(losses.max())
        details[f"{axis}: p90"] = float(np.percentile(losses, 90))
        details[f"{axis}: mean"] = float(losses.mean())
    if kept.empty:
        return TestResult("Robust sign-error (Dziugaite 2020)", np.nan, np.nan, 0, details=details)
    worst = kept.loc[kept["loss"].idxmax()]
    details["worst environment"] = worst["environment"]
    losses = kept["loss"].to_numpy()
    details["all: p90"] = float(np.percentile(losses, 90))
    details["all: mean"] = float(losses.mean())
    p_below, p_above = kept["p_below"].to_numpy(), kept["p_above"].to_numpy()
    details["environments below 1/2 at 5%"] = int((p_below < 0.05).sum())
    details["environments above 1/2 at 5%"] = int((p_above < 0.05).sum())
    details["p any greater"] = float(min(1.0, len(kept) * p_above.min()))
    details["seeds per configuration (min)"] = int(kept["k"].min())
    return TestResult(
        "Robust sign-error (Dziugaite 2020; Hoeffding U-statistic bound per environment)",
        float(losses.max()),
        float(p_below.max()),
        int(kept["pairs"].sum()),
        details=details,
        p_greater=float(p_above.max()),
        p_less=float(p_below.max()),
    )
