"""Fitted functional predictions with bootstrap bands, computed once and saved in the store (kind
``"prediction"``) so that reports draw them without refitting.

The law is fitted on its ``fit_on`` environment (all runs in scope if unset) and evaluated on a grid over each
environment's own range of the explanatory variable: the fit where it was fitted, the prediction elsewhere.
The band at each grid point is the 2.5–97.5 percentile of the curve over fits to bootstrap resamples of whole
configurations of the fitted runs (Efron & Tibshirani 1993, percentile bootstrap), as in
:func:`bridge.stats.fit_expression`. A resample that does not identify the parameters (fewer distinct values of
the explanatory variable than parameters, or a singular fit) is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from bridge._progress import progress
from bridge.hypothesis import Hypothesis, Kind
from bridge.report._figures import log_scaled
from bridge.stats import Expression, FitMethod, configuration_groups, fit_parameters, predict
from bridge.tables import StoreLike, hypothesis_table
from theory._validation import check_positive_int

KIND = "prediction"
GRID = 60
MIN_CONFIGURATIONS = 3  #: as bridge.stats.rank.bootstrap_configurations: fewer give no interval


def _point_fit(expr: Expression, frame: pd.DataFrame, method: FitMethod, p0: dict[str, float]) -> dict[str, float]:
    """Least-squares parameters of ``expr`` on ``frame``; ``ValueError`` when they are not identified (fewer
    distinct values of the explanatory variable than parameters, or a rank-deficient Jacobian at the fit) or the
    fit has no optimum."""
    variables, names = expr.split(frame.columns)
    distinct = frame[list(variables)].drop_duplicates().shape[0]
    if distinct < len(names):
        raise ValueError(f"{distinct} distinct values of {', '.join(variables)} for {len(names)} parameters")
    try:
        return fit_parameters(expr, frame, method=method, p0=p0)
    except RuntimeError as err:  # NotIdentifiedError included
        raise ValueError(f"the fit did not converge or is singular ({err})") from None


def _grid(values: pd.Series) -> np.ndarray:
    """GRID points over the range of ``values``, log-spaced where the report draws a log axis."""
    lo, hi = float(values.min()), float(values.max())
    return np.geomspace(lo, hi, GRID) if log_scaled(values) else np.linspace(lo, hi, GRID)


def prediction_band(
    hypothesis: Hypothesis,
    table: pd.DataFrame,
    *,
    n_resamples: int = 200,
    random_state: int | None = 0,
) -> dict[str, Any] | None:
    """Fit ``hypothesis``'s functional form on its ``fit_on`` environment (all runs if unset) and return a JSON-ready
    dict: ``expression``, ``target``, ``variable`` (the explanatory column), ``environment``, ``fit_on``, fitted
    ``params``, ``resamples`` (bootstrap fits that identified the curve, of ``n_resamples``), ``note`` (why a curve
    or band is undefined, else None) and ``curves``: per environment its ``role`` (``"fit"`` or
    ``"prediction"``), ``n`` runs, ``grid``, ``fit``, ``low`` and ``high``. None when the form has no single
    explanatory column (nothing to draw on one axis)."""
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
    split = pred.fit_on is not None and env in data.columns
    train = data[data[env].astype(str) == pred.fit_on] if split else data
    payload: dict[str, Any] = {
        "hypothesis": hypothesis.name, "expression": expr.text, "target": expr.target, "variable": variable,
        "environment": env, "fit_on": pred.fit_on, "params": {}, "resamples": 0, "n_resamples": n_resamples,
        "note": None, "curves": [],
    }  # fmt: skip
    try:
        params = _point_fit(expr, train, pred.method, dict(pred.p0))
    except ValueError as err:
        where = f"the {len(train)} runs of {pred.fit_on}" if split else f"the {len(train)} runs in scope"
        payload["note"] = f"no curve: the parameters of {expr.text} are not identified on {where}: {err}."
        return payload
    parts = [(e, "fit" if e == pred.fit_on else "prediction", p) for e, p in data.groupby(data[env].astype(str))]
    parts = parts if split else [(None, "fit", data)]
    grids = [pd.DataFrame({variable: _grid(p[variable]), expr.target: np.zeros(GRID)}) for _, _, p in parts]
    axes = [a for a in hypothesis.scope.axes if a in train.columns]
    groups = np.asarray(configuration_groups(train, axes)) if axes else np.arange(len(train))
    draws, note = _bootstrap(
        lambda sample: _point_fit(expr, sample, pred.method, params), train, groups, n_resamples, random_state
    )
    payload.update(params=params, resamples=len(draws), note=note)
    for (environment, role, part), grid in zip(parts, grids, strict=True):
        curves = np.asarray([predict(expr, p, grid) for p in draws]) if draws else np.full((1, GRID), np.nan)
        low, high = np.percentile(curves, [2.5, 97.5], axis=0)
        payload["curves"].append({
            "environment": environment, "role": role, "n": len(part), "grid": grid[variable].tolist(),
            "fit": predict(expr, params, grid).tolist(), "low": low.tolist(), "high": high.tolist(),
        })  # fmt: skip
    return payload


def _bootstrap(
    refit: Callable[[pd.DataFrame], dict[str, float]],
    train: pd.DataFrame,
    groups: np.ndarray,
    n_resamples: int,
    random_state: int | None,
) -> tuple[list[dict[str, float]], str | None]:
    """Parameters refitted on ``n_resamples`` resamples of whole configurations, skipping those that do not identify
    them; with the note the report shows when the band is undefined or rests on fewer resamples."""
    labels = np.unique(groups)
    if len(labels) < MIN_CONFIGURATIONS:
        return [], f"no band: {len(labels)} configurations on the fitted runs, a bootstrap needs {MIN_CONFIGURATIONS}."
    rng = np.random.default_rng(random_state)
    draws = []
    for _ in range(n_resamples):
        picked = rng.choice(labels, size=len(labels), replace=True)
        sample = pd.concat([train[groups == g] for g in picked], ignore_index=True)
        try:
            draws.append(refit(sample))
        except ValueError:
            continue
    if not draws:
        return [], f"no band: none of the {n_resamples} resamples identified the parameters."
    skipped = n_resamples - len(draws)
    return draws, (f"{skipped} of {n_resamples} resamples did not identify the parameters and were skipped."
                   if skipped else None)  # fmt: skip


def save_predictions(
    store: StoreLike, hypotheses: Iterable[Hypothesis], *, n_resamples: int = 200, random_state: int | None = 0
) -> list[dict[str, Any]]:
    """:func:`prediction_band` of every functional hypothesis on its store table, saved with
    ``put_result("prediction", hypothesis name, ...)``; returns the saved payloads."""
    functional = [h for h in hypotheses if h.prediction.kind is Kind.FUNCTIONAL]
    saved = []
    for h in progress(functional, desc="prediction bands", unit="hypothesis"):
        band = prediction_band(h, hypothesis_table(store, h), n_resamples=n_resamples, random_state=random_state)
        if band is not None:
            store.put_result(KIND, h.name, band)
            saved.append(band)
    return saved
