"""Functional predictions: fit a sympy expression to per-run data, bootstrap its parameters, compare it with a
declared null model, and predict out of setting (fit on one environment, predict another).

Fits use scipy (``curve_fit``, Levenberg-Marquardt; or ``least_squares(loss="huber")``, Huber 1964) because
statsmodels has no stable nonlinear least squares (REFERENCE.md §5). Parameter intervals resample whole
configurations (Efron & Tibshirani 1993, percentile bootstrap).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd
import sympy
from scipy import optimize, stats

from bridge import expressions
from bridge.stats._result import TestResult
from bridge.stats.rank import bootstrap_configurations
from theory._validation import check_option, check_positive_int


class FitMethod(StrEnum):
    """``CURVE_FIT`` (default): ordinary least squares via scipy ``curve_fit``.
    ``HUBER``: ``least_squares(loss="huber")`` with f_scale = 1.345 × the MAD scale of the OLS residuals."""

    CURVE_FIT = "curve_fit"
    HUBER = "huber"


@dataclass(frozen=True)
class Expression:
    """``target = rhs``: ``target`` names an outcome column, ``rhs`` a sympy expression of columns and parameters."""

    target: str
    rhs: sympy.Expr
    text: str

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(s.name for s in self.rhs.free_symbols))

    def split(self, columns: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(variables, parameters): symbols that are table columns, and the free parameters to fit."""
        columns = set(columns)
        return tuple(s for s in self.symbols if s in columns), tuple(s for s in self.symbols if s not in columns)


def parse_formula(text: str) -> sympy.Expr:
    """Parse a right-hand side such as ``"p_train - p_test"`` without evaluating the text (an allow-list walk of
    Python's ``ast``; see :mod:`bridge.expressions`); identifiers other than the functions in
    :data:`bridge.expressions.FUNCTIONS` and ``pi`` become plain symbols (so ``alpha``, ``E`` or ``Q`` are never
    sympy built-ins). Raises :class:`bridge.expressions.ExpressionError` (a ``ValueError``)."""
    return expressions.parse_formula(text)


def parse_expression(text: str) -> Expression:
    """Parse ``"target = rhs"`` (e.g. ``"t_grok = k*log(alpha)/wd"``) with :func:`parse_formula` for the rhs."""
    return Expression(*expressions.parse_equation(text), text)


@dataclass(frozen=True)
class FitResult(TestResult):
    """A fit: ``statistic`` = 1 − SSE/SSE_null, ``pvalue`` from the nested-model F-test (NaN when the model has no
    more parameters than the null), ``details["delta AIC"]`` = n log(SSE/SSE_null) + 2(k − k0) (Akaike 1974);
    :meth:`conf_int` gives the bootstrap interval of each parameter."""

    params: dict[str, float] = field(default_factory=dict, compare=False)
    param_low: dict[str, float] = field(default_factory=dict, compare=False)
    param_high: dict[str, float] = field(default_factory=dict, compare=False)

    def conf_int(self) -> pd.DataFrame:  # type: ignore[override]
        """Parameter intervals (statsmodels style): index = parameter, columns ``lower``, ``upper``."""
        return pd.DataFrame({"lower": self.param_low, "upper": self.param_high})


def _design(expr: Expression, frame: pd.DataFrame):
    variables, parameters = expr.split(frame.columns)
    if expr.target not in frame.columns:
        raise ValueError(f"The target {expr.target!r} of {expr.text!r} is not a column: {list(frame.columns)}.")
    f = sympy.lambdify([*parameters, *variables], expr.rhs, "numpy")
    x = np.vstack([frame[v].to_numpy(float) for v in variables]) if variables else np.zeros((0, len(frame)))
    return f, x, frame[expr.target].to_numpy(float), parameters


def _solve(f, x: np.ndarray, y: np.ndarray, n_params: int, method: FitMethod, p0: Sequence[float]) -> np.ndarray:
    def model(xd, *theta):
        return np.broadcast_to(np.asarray(f(*theta, *xd), dtype=float), y.shape)

    if n_params == 0:
        return np.zeros(0)
    theta, _ = optimize.curve_fit(model, x, y, p0=p0, maxfev=20000)
    if method is FitMethod.HUBER:
        resid = y - model(x, *theta)
        scale = 1.345 * stats.median_abs_deviation(resid, scale="normal") or 1.0
        theta = optimize.least_squares(lambda t: model(x, *t) - y, theta, loss="huber", f_scale=scale).x
    return np.asarray(theta, dtype=float)


def _fit(expr, frame, method, p0):
    f, x, y, params = _design(expr, frame)
    start = [float((p0 or {}).get(p, 1.0)) for p in params]
    theta = _solve(f, x, y, len(params), method, start)
    pred = np.broadcast_to(np.asarray(f(*theta, *x), dtype=float), y.shape)
    return theta, params, pred, y, f


def predict(expr: Expression, params: Mapping[str, float], frame: pd.DataFrame) -> np.ndarray:
    """Evaluate ``expr``'s right-hand side on ``frame`` with fitted ``params``."""
    f, x, y, names = _design(expr, frame)
    return np.broadcast_to(np.asarray(f(*[params[p] for p in names], *x), dtype=float), y.shape).copy()


def _as_fit_method(method) -> FitMethod:
    value = method.value if isinstance(method, FitMethod) else method
    return FitMethod(check_option("method", value, [m.value for m in FitMethod], owner="fit_expression"))


def fit_expression(
    expression: Expression | str,
    frame: pd.DataFrame,
    *,
    null: Expression | str | None = None,
    method: FitMethod | str = FitMethod.CURVE_FIT,
    groups: Sequence[int] | None = None,
    n_resamples: int = 199,
    confidence_level: float = 0.95,
    p0: Mapping[str, float] | None = None,
    random_state: int | None = None,
) -> FitResult:
    """Fit ``expression`` (e.g. ``"test_error = a + b*p_test + c*p_test**2"``) and test it against ``null``.

    ``null`` defaults to ``target = c`` (a constant). Goodness of fit: R²_rel = 1 − SSE/SSE_null and the F-test
    F = ((SSE_null − SSE)/(k − k0)) / (SSE/(n − k)), valid when the null is nested in the model.
    """
    expr = parse_expression(expression) if isinstance(expression, str) else expression
    null_expr = parse_expression(null) if isinstance(null, str) else null
    null_expr = null_expr or parse_expression(f"{expr.target} = c_null")
    method = _as_fit_method(method)
    check_positive_int("n_resamples", n_resamples, owner="fit_expression")
    theta, names, pred, y, _ = _fit(expr, frame, method, p0)
    theta0, names0, pred0, _, _ = _fit(null_expr, frame, method, p0)
    sse, sse0 = float(np.sum((y - pred) ** 2)), float(np.sum((y - pred0) ** 2))
    n, k, k0 = len(y), len(names), len(names0)
    pvalue = np.nan
    if k > k0 and n > k and sse > 0:
        f_stat = ((sse0 - sse) / (k - k0)) / (sse / (n - k))
        pvalue = float(stats.f.sf(f_stat, k - k0, n - k))
    groups = np.arange(n) if groups is None else np.asarray(groups)

    f, x, _, _ = _design(expr, frame)

    def refit(counts: np.ndarray) -> np.ndarray:
        out = np.full((len(counts), len(names)), np.nan)
        for b, c in enumerate(counts):
            rows = np.repeat(np.arange(n), c.astype(int))
            try:
                out[b] = _solve(f, x[:, rows], y[rows], len(names), method, theta)
            except (RuntimeError, ValueError, optimize.OptimizeWarning):
                continue
        return out

    low = high = np.full(len(names), np.nan)
    if names:
        low, high = bootstrap_configurations(
            refit,
            groups,
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            method="percentile",
            random_state=random_state,
        )
    details = {name: float(v) for name, v in zip(names, theta, strict=True)}
    with np.errstate(divide="ignore"):
        delta_aic = n * np.log(sse / sse0) + 2 * (k - k0) if sse0 > 0 else np.nan
    details.update({"SSE": sse, "SSE null": sse0, "delta AIC": float(delta_aic), "null": null_expr.text})
    details["configurations"] = len(np.unique(groups))
    return FitResult(
        f"Fit of {expr.text}",
        1.0 - sse / sse0 if sse0 > 0 else np.nan,
        pvalue,
        n,
        confidence_level=confidence_level,
        details=details,
        params=dict(zip(names, map(float, theta), strict=True)),
        param_low=dict(zip(names, np.broadcast_to(low, len(names)).astype(float).tolist(), strict=True)),
        param_high=dict(zip(names, np.broadcast_to(high, len(names)).astype(float).tolist(), strict=True)),
    )


def predict_out_of_setting(
    expression: Expression | str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    null: Expression | str | None = None,
    method: FitMethod | str = FitMethod.CURVE_FIT,
    n_resamples: int = 999,
    confidence_level: float = 0.95,
    random_state: int | None = None,
) -> TestResult:
    """Fit the expression and the null on ``train``; predict ``test``; compare squared errors (the paper's "what
    does it predict beyond this setup"). ``statistic`` = MSE_model / MSE_null on ``test`` (< 1: the theory wins);
    p-value of the one-sided Wilcoxon signed-rank test that the null's squared errors are larger; percentile
    bootstrap interval of the ratio over test runs."""
    expr = parse_expression(expression) if isinstance(expression, str) else expression
    null_expr = parse_expression(null) if isinstance(null, str) else null
    null_expr = null_expr or parse_expression(f"{expr.target} = c_null")
    method = _as_fit_method(method)
    theta, names, *_ = _fit(expr, train, method, None)
    theta0, names0, *_ = _fit(null_expr, train, method, None)
    y = test[expr.target].to_numpy(float)
    e_model = (y - predict(expr, dict(zip(names, theta, strict=True)), test)) ** 2
    e_null = (y - predict(null_expr, dict(zip(names0, theta0, strict=True)), test)) ** 2
    diff = e_null - e_model
    pvalue = float(stats.wilcoxon(diff, alternative="greater").pvalue) if np.any(diff != 0) else 1.0
    low = high = np.nan
    if len(y) >= 3:
        ci = stats.bootstrap(
            (e_model, e_null),
            lambda a, b, axis: a.mean(axis=axis) / b.mean(axis=axis),
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            method="percentile",
            rng=np.random.default_rng(random_state),
        ).confidence_interval
        low, high = float(ci.low), float(ci.high)
    return TestResult(
        f"Out-of-setting prediction of {expr.text}",
        float(e_model.mean() / e_null.mean()) if e_null.mean() > 0 else np.inf,
        pvalue,
        len(y),
        low,
        high,
        confidence_level,
        {"MSE": float(e_model.mean()), "MSE null": float(e_null.mean()), "null": null_expr.text},
    )
