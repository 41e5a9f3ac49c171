"""Fitted functional predictions with bootstrap bands, computed once and saved in the store (kind
``"prediction"``) so that reports draw them without refitting.

The band at each grid point is the 2.5–97.5 percentile of the fitted curve over fits to bootstrap resamples of
whole configurations (Efron & Tibshirani 1993, percentile bootstrap), as in :func:`bridge.stats.fit_expression`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from bridge.hypothesis import Hypothesis, Kind
from bridge.stats import configuration_groups, fit_expression, predict
from bridge.tables import StoreLike, hypothesis_table
from theory._validation import check_positive_int

KIND = "prediction"
GRID = 60


def prediction_band(
    hypothesis: Hypothesis,
    table: pd.DataFrame,
    *,
    n_resamples: int = 200,
    random_state: int | None = 0,
) -> dict[str, Any] | None:
    """Fit ``hypothesis``'s functional form on its ``fit_on`` environment (all runs if unset) and return a JSON-ready
    dict: ``expression``, ``target``, ``variable`` (the quantity on the x axis), ``grid``, ``fit``, ``low``,
    ``high``, fitted ``params``, ``fit_on``, ``environment``; None when the form has no single explanatory column
    or the data do not allow a fit."""
    check_positive_int("n_resamples", n_resamples, owner="prediction_band")
    pred = hypothesis.prediction
    if pred.kind is not Kind.FUNCTIONAL:
        return None
    expr, env = pred.expression, hypothesis.scope.environment
    variables, _ = expr.split(table.columns)
    if len(variables) != 1:
        return None
    variable = variables[0]
    data = table.dropna(subset=[variable, expr.target])
    train = data if pred.fit_on is None or env not in data.columns else data[data[env].astype(str) == pred.fit_on]
    if len(train) < 3:
        return None
    axes = [a for a in hypothesis.scope.axes if a in train.columns]
    groups = np.asarray(configuration_groups(train, axes)) if axes else np.arange(len(train))
    p0 = dict(pred.p0)
    try:
        fitted = fit_expression(expr, train, method=pred.method, p0=p0, n_resamples=1, random_state=random_state)
    except (RuntimeError, ValueError, optimize.OptimizeWarning):
        return None
    lo, hi = float(data[variable].min()), float(data[variable].max())
    grid = pd.DataFrame({variable: np.linspace(lo, hi, GRID), expr.target: np.zeros(GRID)})
    rng = np.random.default_rng(random_state)
    labels = np.unique(groups)
    curves = []
    for _ in range(n_resamples):
        picked = rng.choice(labels, size=len(labels), replace=True)
        sample = pd.concat([train[groups == g] for g in picked], ignore_index=True)
        try:
            params = fit_expression(expr, sample, method=pred.method, p0=fitted.params, n_resamples=1).params
        except (RuntimeError, ValueError, optimize.OptimizeWarning):
            continue
        curves.append(predict(expr, params, grid))
    low, high = np.percentile(np.asarray(curves), [2.5, 97.5], axis=0) if curves else (np.full(GRID, np.nan),) * 2
    return {
        "hypothesis": hypothesis.name,
        "expression": expr.text,
        "target": expr.target,
        "variable": variable,
        "environment": env,
        "fit_on": pred.fit_on,
        "params": fitted.params,
        "grid": grid[variable].tolist(),
        "fit": predict(expr, fitted.params, grid).tolist(),
        "low": np.asarray(low).tolist(),
        "high": np.asarray(high).tolist(),
        "resamples": len(curves),
    }


def save_predictions(
    store: StoreLike, hypotheses: list[Hypothesis], *, n_resamples: int = 200, random_state: int | None = 0
) -> list[dict[str, Any]]:
    """:func:`prediction_band` of every functional hypothesis on its store table, saved with
    ``put_result("prediction", hypothesis name, ...)``; returns the saved payloads."""
    saved = []
    for h in hypotheses:
        band = prediction_band(h, hypothesis_table(store, h), n_resamples=n_resamples, random_state=random_state)
        if band is not None:
            store.put_result(KIND, h.name, band)
            saved.append(band)
    return saved
