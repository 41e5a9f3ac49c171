"""Functional predictions: fit a sympy expression (a law) to per-run data, test it against a declared null model
and against pure error on configurations, judge declared parameter constraints, and predict out of setting (fit
on one environment, predict another).

Fits use scipy (``leastsq``: MINPACK's Levenberg-Marquardt, what ``curve_fit`` runs; or
``least_squares(loss="huber")``, Huber 1964) because statsmodels has no stable nonlinear least squares
(REFERENCE.md §5); parameters that the runs do not identify raise :class:`NotIdentifiedError`. Seeds are nested
in configurations, so every test and interval treats configurations as the units (:mod:`bridge.stats.adequacy`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
import pandas as pd
import sympy
from scipy import optimize, stats

from bridge import expressions
from bridge.stats._result import TestResult
from bridge.stats.adequacy import configuration_means, lack_of_fit, nested_f_test, paired_ratio_test
from bridge.stats.constraints import Constraint, ConstraintCheck
from bridge.stats.nested import bootstrap_configurations
from theory._validation import check_in_range, check_option, check_positive_int


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


class IntervalMethod(StrEnum):
    """Parameter intervals. ``CONFIGURATION_T`` (default): Wald interval on configuration means,
    θ̂ ± t_{m−k} · sqrt(diag(s² (J̄ᵀJ̄)⁻¹)), with J̄ the m × k configuration-mean Jacobian of the law at θ̂ and
    s² = Σ_c ē_c²/(m − k) (Bates & Watts 1988, ch. 2): exact for a law linear in its parameters fitted to a
    balanced design, whatever the configuration-level variance. ``BOOTSTRAP``: percentile bootstrap resampling
    whole configurations (Efron & Tibshirani 1993), which undercovers with few configurations."""

    CONFIGURATION_T = "configuration_t"
    BOOTSTRAP = "bootstrap"


@dataclass(frozen=True)
class FitResult(TestResult):
    """A law fitted to runs, tested on configurations (:mod:`bridge.stats.adequacy`).

    ``statistic`` = R²_rel = 1 − SSE/SSE_null over runs (descriptive); ``pvalue``: the law's gain over the null
    on configuration means (nested F test; a paired t test of squared configuration-mean residuals when the law
    has no more parameters than the null); ``lack_of_fit``: the F test against pure error from replicate seeds;
    ``constraints``: each declared constraint judged on its parameter's interval; :meth:`conf_int` gives the
    parameter intervals; ``configuration_residuals``: ē_c per configuration (compared with a control's).
    """

    params: dict[str, float] = field(default_factory=dict, compare=False)
    param_low: dict[str, float] = field(default_factory=dict, compare=False)
    param_high: dict[str, float] = field(default_factory=dict, compare=False)
    lack_of_fit: TestResult | None = field(default=None, compare=False)
    constraints: tuple[ConstraintCheck, ...] = field(default=(), compare=False)
    configuration_residuals: pd.Series | None = field(default=None, compare=False)

    def conf_int(self) -> pd.DataFrame:  # type: ignore[override]
        """Parameter intervals (statsmodels style): index = parameter, columns ``lower``, ``upper``."""
        return pd.DataFrame({"lower": self.param_low, "upper": self.param_high})


@dataclass(frozen=True)
class OutOfSettingResult(TestResult):
    """Out-of-setting accuracy (:func:`predict_out_of_setting`): the geometric-mean MSE ratio law/null over the test
    configurations, its paired t test and interval; ``losses`` holds each configuration's mean squared error of
    the law (``model``) and of the null (``null``)."""

    losses: pd.DataFrame | None = field(default=None, compare=False)


@lru_cache(maxsize=256)
def _compiled(rhs: sympy.Expr, parameters: tuple[str, ...], variables: tuple[str, ...]):
    """The law and its Jacobian in the parameters as numpy functions of (*parameters, *variables)."""
    symbols = [sympy.Symbol(s) for s in (*parameters, *variables)]
    jacobian = [sympy.diff(rhs, sympy.Symbol(p)) for p in parameters]
    return sympy.lambdify(symbols, rhs, "numpy"), sympy.lambdify(symbols, jacobian, "numpy")


def _design(expr: Expression, frame: pd.DataFrame):
    variables, parameters = expr.split(frame.columns)
    if expr.target not in frame.columns:
        raise ValueError(f"The target {expr.target!r} of {expr.text!r} is not a column: {list(frame.columns)}.")
    f, jac = _compiled(expr.rhs, parameters, variables)
    x = np.vstack([frame[v].to_numpy(float) for v in variables]) if variables else np.zeros((0, len(frame)))
    return f, jac, x, frame[expr.target].to_numpy(float), parameters


class NotIdentifiedError(RuntimeError):
    """The law's parameters are not identified on these runs: no more runs than parameters, or a rank-deficient
    Jacobian at the fit (fewer distinct values of its variables than parameters, a parameter it does not depend
    on there); any least-squares solution is then one of many."""


def _identified(jac, theta: np.ndarray, x: np.ndarray, n: int) -> str | None:
    """Why the parameters at ``theta`` are not identified on ``n`` runs with variables ``x``, or None: the rank of
    the n × k Jacobian J = ∂f/∂θ at θ̂ (numpy's default tolerance, max(n, k)·eps·σ_max, as scipy's curve_fit uses
    for its covariance) must be k, and n > k."""
    k = len(theta)
    if n <= k:
        return f"{n} runs for {k} parameters leave no residual degree of freedom"
    with np.errstate(all="ignore"):
        rows = np.column_stack([np.broadcast_to(np.asarray(d, dtype=float), (n,)) for d in jac(*theta, *x)])
    if not np.all(np.isfinite(rows)):
        return "the law's Jacobian is not finite at the fitted parameters"
    rank = int(np.linalg.matrix_rank(rows))
    return None if rank == k else f"its Jacobian at the fit has rank {rank} < {k} parameters"


def _solve(f, jac, x: np.ndarray, y: np.ndarray, n_params: int, method: FitMethod, p0: Sequence[float]) -> np.ndarray:
    """Least squares: MINPACK's Levenberg–Marquardt (``scipy.optimize.leastsq``, what ``curve_fit`` runs), then a
    Huber refit if asked. Raises :class:`NotIdentifiedError` when the parameters are not identified
    (:func:`_identified`), ``RuntimeError`` when there is no optimum."""

    def model(xd, *theta):
        return np.broadcast_to(np.asarray(f(*theta, *xd), dtype=float), y.shape)

    if n_params == 0:
        return np.zeros(0)
    try:
        theta, _, _, message, ier = optimize.leastsq(lambda t: model(x, *t) - y, p0, full_output=True, maxfev=20000)
    except (ValueError, TypeError) as err:  # the law is not finite at the start values, or fewer runs than parameters
        raise RuntimeError(f"least squares from p0 = {list(p0)}: {err}") from None
    if ier not in (1, 2, 3, 4):
        raise RuntimeError(f"no optimum from p0 = {list(p0)}: {message}")
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    if why := _identified(jac, theta, x, len(y)):
        raise NotIdentifiedError(f"the parameters are not identified on these runs: {why}")
    if method is FitMethod.HUBER:
        resid = y - model(x, *theta)
        scale = 1.345 * stats.median_abs_deviation(resid, scale="normal") or 1.0
        theta = optimize.least_squares(lambda t: model(x, *t) - y, theta, loss="huber", f_scale=scale).x
    return np.asarray(theta, dtype=float)


def _fit(expr, frame, method, p0):
    f, jac, x, y, params = _design(expr, frame)
    start = [float((p0 or {}).get(p, 1.0)) for p in params]
    with np.errstate(all="ignore"):  # a law undefined somewhere is reported below, not warned about
        theta = _solve(f, jac, x, y, len(params), method, start)
        pred = np.broadcast_to(np.asarray(f(*theta, *x), dtype=float), y.shape)
    if not np.all(np.isfinite(pred)):
        fitted = dict(zip(params, theta.round(6).tolist(), strict=True))
        raise RuntimeError(f"{expr.text} is not finite on every run at the fitted parameters {fitted}")
    return theta, params, pred, y


def fit_parameters(
    expression: Expression | str,
    frame: pd.DataFrame,
    *,
    method: FitMethod | str = FitMethod.CURVE_FIT,
    p0: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The least-squares parameters of a law on ``frame`` (the solver of :func:`fit_expression`, without its null,
    tests or intervals; e.g. to redraw a fitted law on resampled runs). Raises ``RuntimeError`` when the law has
    no optimum or is not finite on these runs, :class:`NotIdentifiedError` (a ``RuntimeError``) when its
    parameters are not identified on them.

    Example:
        >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [3.0, 5.0, 7.0]})
        >>> {k: round(v, 6) for k, v in fit_parameters("y = a + b*x", frame).items()}
        {'a': 1.0, 'b': 2.0}
    """
    expr = parse_expression(expression) if isinstance(expression, str) else expression
    theta, names, *_ = _fit(expr, frame, _as_fit_method(method), p0)
    return dict(zip(names, map(float, theta), strict=True))


def predict(expr: Expression, params: Mapping[str, float], frame: pd.DataFrame) -> np.ndarray:
    """Evaluate ``expr``'s right-hand side on ``frame`` with fitted ``params``."""
    f, _, x, y, names = _design(expr, frame)
    return np.broadcast_to(np.asarray(f(*[params[p] for p in names], *x), dtype=float), y.shape).copy()


def _as_fit_method(method) -> FitMethod:
    value = method.value if isinstance(method, FitMethod) else method
    return FitMethod(check_option("method", value, [m.value for m in FitMethod], owner="fit_expression"))


def _parse(expression, null) -> tuple[Expression, Expression]:
    expr = parse_expression(expression) if isinstance(expression, str) else expression
    null_expr = parse_expression(null) if isinstance(null, str) else null
    return expr, null_expr or parse_expression(f"{expr.target} = c_null")


def _groups(groups: Sequence | None, n: int) -> np.ndarray:
    groups = np.arange(n) if groups is None else np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"The 'groups' parameter must hold one label per run ({n}). Got shape {groups.shape}.")
    return groups


def _wald_intervals(expr, frame, theta, residuals, groups, confidence_level):
    """(low, high, tails) of the configuration-t intervals (:class:`IntervalMethod`); ``tails(i, bound)`` gives the
    one-sided p-values of H1 "parameter i is above the bound" and "below it"."""
    _, jac, x, y, names = _design(expr, frame)
    rows = np.column_stack([np.broadcast_to(np.asarray(d, dtype=float), y.shape) for d in jac(*theta, *x)])
    jbar = pd.DataFrame(rows).groupby(groups, sort=True).mean().to_numpy()
    ebar = configuration_means(residuals, groups).to_numpy()
    m, k = jbar.shape
    if m <= k or np.linalg.matrix_rank(jbar) < k:
        return np.full(k, np.nan), np.full(k, np.nan), lambda i, bound: (np.nan, np.nan)
    se = np.sqrt(np.diag(np.sum(ebar**2) / (m - k) * np.linalg.inv(jbar.T @ jbar)))
    half = stats.t.ppf(0.5 + confidence_level / 2, m - k) * se

    def tails(i: int, bound: float) -> tuple[float, float]:
        if not se[i] > 0:
            return (np.nan, np.nan)
        t = (theta[i] - bound) / se[i]
        return float(stats.t.sf(t, m - k)), float(stats.t.cdf(t, m - k))

    return theta - half, theta + half, tails


def _bootstrap_intervals(expr, frame, theta, method, groups, n_resamples, confidence_level, random_state):
    """(low, high, tails, skipped) of the percentile intervals over configuration resamples; a resample that does
    not identify the parameters or has no optimum is skipped (its draw is NaN) and counted in ``skipped``."""
    f, jac, x, y, names = _design(expr, frame)
    skipped: dict[str, int] = {}

    def refit(counts: np.ndarray) -> np.ndarray:
        out = np.full((len(counts), len(names)), np.nan)
        for b, c in enumerate(counts):
            rows = np.repeat(np.arange(len(y)), c.astype(int))
            try:
                out[b] = _solve(f, jac, x[:, rows], y[rows], len(names), method, theta)
            except NotIdentifiedError:
                skipped["not identified"] = skipped.get("not identified", 0) + 1
            except RuntimeError:
                skipped["no optimum"] = skipped.get("no optimum", 0) + 1
        return out

    interval = bootstrap_configurations(
        refit, groups, n_resamples=n_resamples, confidence_level=confidence_level, method="percentile",
        random_state=random_state,
    )  # fmt: skip
    draws = None if interval.distribution is None else np.asarray(interval.distribution, dtype=float)
    draws = None if draws is None else draws.reshape(len(names), -1)

    def tails(i: int, bound: float) -> tuple[float, float]:  # e.g. above: (1 + #{θ* <= bound}) / (1 + B)
        finite = np.array([]) if draws is None else draws[i][np.isfinite(draws[i])]
        if not len(finite):
            return (np.nan, np.nan)
        return tuple((1 + int(np.sum(side))) / (1 + len(finite)) for side in (finite <= bound, finite >= bound))

    low, high = interval
    low, high = np.broadcast_to(low, len(names)).astype(float), np.broadcast_to(high, len(names)).astype(float)
    return low, high, tails, skipped


def _check(c: Constraint, names, params, low, high, tails) -> ConstraintCheck:
    """``c`` judged on its parameter: interval, and the one-sided p-values for and against the declared side."""
    above, below = tails(names.index(c.parameter), c.bound)
    p_for, p_against = (above, below) if c.op in (">", ">=") else (below, above)
    return ConstraintCheck(c, params[c.parameter], low[c.parameter], high[c.parameter], p_for, p_against)


def fit_expression(
    expression: Expression | str,
    frame: pd.DataFrame,
    *,
    null: Expression | str | None = None,
    method: FitMethod | str = FitMethod.CURVE_FIT,
    groups: Sequence | None = None,
    constraints: Sequence[Constraint | str] = (),
    interval: IntervalMethod | str = IntervalMethod.CONFIGURATION_T,
    n_resamples: int = 199,
    confidence_level: float = 0.95,
    p0: Mapping[str, float] | None = None,
    random_state: int | None = None,
) -> FitResult:
    """Fit ``expression`` (e.g. ``"test_error = a + b*p_test + c*p_test**2"``) to runs and test it on configurations.

    ``groups`` labels each run's configuration (None: every run its own, so no replicate seeds); ``null``
    defaults to ``target = c_null``. Returns R²_rel = 1 − SSE/SSE_null, the gain over the null on configuration
    means, the lack-of-fit F test against pure error (:mod:`bridge.stats.adequacy`), parameter intervals
    (``interval``: :class:`IntervalMethod`; ``n_resamples``/``random_state`` for the bootstrap) and each
    ``constraints`` entry judged on its parameter's interval. The F tests assume the null is nested in the law;
    with ``method="huber"`` they are approximate.

    Example:
        >>> frame = pd.DataFrame({"x": [1.0, 1, 2, 2, 3, 3, 4, 4], "y": [1.1, 0.9, 2.1, 1.9, 2.9, 3.2, 4.1, 3.8]})
        >>> res = fit_expression("y = a + b*x", frame, groups=frame["x"], constraints=["b > 0"])
        >>> round(res.params["b"], 2), res.constraints[0].side.value, res.lack_of_fit.pvalue > 0.05
        (0.99, 'right', True)
    """
    expr, null_expr = _parse(expression, null)
    method = _as_fit_method(method)
    interval = IntervalMethod(check_option("interval", str(interval), [i.value for i in IntervalMethod],
                                           owner="fit_expression"))  # fmt: skip
    check_positive_int("n_resamples", n_resamples, owner="fit_expression")
    check_in_range("confidence_level", confidence_level, 0, 1, inclusive=(False, False), owner="fit_expression")
    constraints = tuple(c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints)
    theta, names, pred, y = _fit(expr, frame, method, p0)
    for c in constraints:
        if c.parameter not in names:
            raise ValueError(
                f"The constraint {c.text!r} names {c.parameter!r}, which is not a free parameter of {expr.text!r} "
                f"on this table (parameters: {list(names)})."
            )
    _, names0, pred0, _ = _fit(null_expr, frame, method, p0)
    n, k, k0 = len(y), len(names), len(names0)
    groups = _groups(groups, n)
    resid, resid0 = y - pred, y - pred0
    sse, sse0 = float(resid @ resid), float(resid0 @ resid0)
    if k > k0:
        gain = nested_f_test(resid, resid0, groups, k, k0)
    else:  # not nested: is the law's squared configuration-mean residual smaller than the null's?
        squared, squared0 = configuration_means(resid, groups) ** 2, configuration_means(resid0, groups) ** 2
        gain = paired_ratio_test(squared, squared0, alternative="less", name="Squared configuration residuals")
    skipped: dict[str, int] = {}
    if interval is IntervalMethod.BOOTSTRAP:
        low, high, tails, skipped = _bootstrap_intervals(
            expr, frame, theta, method, groups, n_resamples, confidence_level, random_state
        )
    else:
        low, high, tails = _wald_intervals(expr, frame, theta, resid, groups, confidence_level)
    params = dict(zip(names, map(float, theta), strict=True))
    param_low = dict(zip(names, map(float, low), strict=True))
    param_high = dict(zip(names, map(float, high), strict=True))
    checks = tuple(_check(c, names, params, param_low, param_high, tails) for c in constraints)
    with np.errstate(divide="ignore"):
        delta_aic = n * np.log(sse / sse0) + 2 * (k - k0) if sse0 > 0 else np.nan
    lof = lack_of_fit(resid, groups, k)
    details = {**params, "SSE": sse, "SSE null": sse0, "delta AIC": float(delta_aic), "null": null_expr.text}
    m = len(np.unique(groups))
    details.update({"gain test": gain.name, "gain statistic": gain.statistic, "configurations": m})
    if not np.isfinite(gain.pvalue):
        details["gain"] = (
            f"{m} configurations leave no degree of freedom for a law with {k} parameters"
            if m <= k
            else "the law reproduces every configuration mean exactly (no configuration-level residual)"
        )
    details.update({"lack-of-fit F": lof.statistic, "lack-of-fit p": lof.pvalue})
    if skipped:
        what = ", ".join(f"{count} {why}" for why, count in skipped.items())
        details["bootstrap"] = f"{sum(skipped.values())} of {n_resamples} resamples skipped ({what})"
    return FitResult(
        f"Fit of {expr.text}",
        1.0 - sse / sse0 if sse0 > 0 else np.nan,
        gain.pvalue,
        n,
        confidence_level=confidence_level,
        details=details,
        params=params,
        param_low=param_low,
        param_high=param_high,
        lack_of_fit=lof,
        constraints=checks,
        configuration_residuals=configuration_means(resid, groups),
    )


def predict_out_of_setting(
    expression: Expression | str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    null: Expression | str | None = None,
    method: FitMethod | str = FitMethod.CURVE_FIT,
    groups: Sequence | None = None,
    p0: Mapping[str, float] | None = None,
    confidence_level: float = 0.95,
) -> OutOfSettingResult:
    """Fit the law and the null on ``train`` and predict ``test`` (the paper's "what does it predict beyond this
    setup"), with the test configurations as units (``groups``: one label per ``test`` run; None: each run).

    Per configuration c: MSE_c and MSE_null,c over its seeds. ``statistic`` = exp(mean_c log(MSE_c/MSE_null,c)),
    the geometric-mean ratio (< 1: the law predicts better; scale-free, so configurations whose errors differ
    in scale count alike); ``pvalue``: two-sided paired t test of the log ratios over configurations, ``p_less`` /
    ``p_greater`` its one-sided versions (the law predicts better / worse); interval: the ratio's t interval (it
    excludes 1 exactly when p < 1 − ``confidence_level``).
    """
    expr, null_expr = _parse(expression, null)
    method = _as_fit_method(method)
    theta, names, *_ = _fit(expr, train, method, p0)
    theta0, names0, *_ = _fit(null_expr, train, method, p0)
    y = test[expr.target].to_numpy(float)
    groups = _groups(groups, len(y))
    e_model = (y - predict(expr, dict(zip(names, theta, strict=True)), test)) ** 2
    e_null = (y - predict(null_expr, dict(zip(names0, theta0, strict=True)), test)) ** 2
    losses = pd.DataFrame({"model": configuration_means(e_model, groups), "null": configuration_means(e_null, groups)})
    res = paired_ratio_test(losses["model"], losses["null"], log=True, confidence_level=confidence_level)
    p_less, p_greater = (
        paired_ratio_test(losses["model"], losses["null"], log=True, alternative=side).pvalue
        for side in ("less", "greater")
    )
    details = {**res.details, "MSE": float(e_model.mean()), "MSE null": float(e_null.mean()), "null": null_expr.text}
    return OutOfSettingResult(
        f"Out-of-setting prediction of {expr.text}", res.statistic, res.pvalue, len(y), res.low, res.high,
        confidence_level, details, p_greater=p_greater, p_less=p_less, losses=losses,
    )  # fmt: skip
