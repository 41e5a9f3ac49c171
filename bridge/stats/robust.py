"""Robust sign-error of a quantity over coupled-run environments (Dziugaite et al. 2020, "In search of robust
measures of generalization").

An environment is a pair of configurations differing in exactly one hyperparameter; its samples are the pairs of
runs (one per configuration, every seed combination). Sign-error ℓ = (1 − sign(ΔC) sign(Δg)) / 2. A pair whose
outcome difference could be Monte-Carlo noise of an n-point test set gets little weight: Hoeffding gives
w = [max(0, 1 − 2 exp(−2 n (|Δg|/2)²))]², and the pair is kept with weight (w − 1/2)₊ (REFERENCE.md §5).
Environment loss Σwℓ / Σw, kept when its effective sample size (Σw)² / Σw² >= ``min_ess`` (12 in the paper).
The robust error is the maximum over kept environments; a value >= 0.5 is no better than a coin flip.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from bridge.stats._result import TestResult
from theory._validation import check_in_range, check_positive_int


def hoeffding_weight(delta_g: np.ndarray, n_test: int | None) -> np.ndarray:
    """(w − 1/2)₊ with w = [max(0, 1 − 2 exp(−2 n (|Δg|/2)²))]²; with ``n_test=None`` every pair with Δg ≠ 0 gets 1."""
    delta_g = np.abs(np.asarray(delta_g, dtype=float))
    if n_test is None:
        return (delta_g > 0).astype(float)
    w = np.maximum(0.0, 1.0 - 2.0 * np.exp(-2.0 * n_test * (delta_g / 2.0) ** 2)) ** 2
    return np.maximum(w - 0.5, 0.0)


def sign_error_environments(
    frame: pd.DataFrame, quantity: str, outcome: str, axes: Sequence[str], *, n_test: int | None
) -> pd.DataFrame:
    """One row per environment: ``axis``, ``environment`` (the two configurations), ``loss``, ``ess``, ``pairs``."""
    rows = []
    for axis in axes:
        others = [a for a in axes if a != axis]
        cells = frame.groupby(others, dropna=False) if others else [((), frame)]
        for key, cell in cells:
            by_value = {v: part for v, part in cell.groupby(axis, sort=True)}
            for v1, v2 in combinations(by_value, 2):
                a, b = by_value[v1], by_value[v2]
                dc = a[quantity].to_numpy(float)[:, None] - b[quantity].to_numpy(float)[None, :]
                dg = a[outcome].to_numpy(float)[:, None] - b[outcome].to_numpy(float)[None, :]
                loss = (1.0 - np.sign(dc) * np.sign(dg)) / 2.0
                w = hoeffding_weight(dg, n_test).ravel()
                total = w.sum()
                fixed = ", ".join(f"{o}={k}" for o, k in zip(others, np.atleast_1d(key), strict=False))
                rows.append(
                    {
                        "axis": axis,
                        "environment": f"{axis}: {v1} vs {v2}" + (f" ({fixed})" if fixed else ""),
                        "loss": float(w @ loss.ravel() / total) if total > 0 else np.nan,
                        "ess": float(total**2 / (w @ w)) if total > 0 else 0.0,
                        "pairs": int(w.size),
                    }
                )
    return pd.DataFrame(rows, columns=["axis", "environment", "loss", "ess", "pairs"])


def robust_sign_error(
    frame: pd.DataFrame,
    quantity: str,
    outcome: str,
    axes: Sequence[str],
    *,
    n_test: int | None = None,
    min_ess: float = 12.0,
) -> TestResult:
    """Robust sign-error (max over environments) with, per hyperparameter, the max, 90th percentile and mean.

    ``n_test`` is the test-set size behind ``outcome`` (an error rate) for the Hoeffding weights; None gives
    every pair with a non-zero outcome difference weight 1. ``statistic`` is the robust error (NaN when no
    environment reaches ``min_ess``); ``details`` names the worst environment and the per-axis summaries.
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
    return TestResult(
        "Robust sign-error (Dziugaite 2020)", float(losses.max()), np.nan, int(kept["pairs"].sum()), details=details
    )
