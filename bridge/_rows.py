"""The test rows of one hypothesis on its per-run table: every declared test of the quantity or of a negative
control, and the comparisons of the quantity with each control (Kendall's paired difference), with seeds nested
in configurations; :mod:`bridge.falsification` turns the rows into verdicts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import sympy
from scipy import stats

from bridge.hypothesis import Hypothesis, Kind, Over, Test
from bridge.stats import (
    CMIMethod,
    FitResult,
    OutOfSettingResult,
    PartialMethod,
    TestResult,
    conditional_mutual_information,
    configuration_groups,
    event_lag_test,
    fit_expression,
    granulated_kendall,
    kendall_over_steps,
    kendall_tau,
    kendall_tau_difference,
    partial_rank_correlation,
    per_run_tau,
    predict_out_of_setting,
    robust_sign_error,
    tost,
)

#: the spline design of the partial rank correlation (columns per confounder), when the runs allow it
SPLINE_DF = 4
_RANK_TESTS = (Test.KENDALL, Test.PSI, Test.CMI, Test.CMI_PGDL, Test.PARTIAL, Test.ROBUST)


@dataclass(frozen=True)
class Row:
    hypothesis: str
    test: Test
    subject: str
    role: str  # "quantity", "control" (the test on a control) or "comparison" (quantity vs control)
    environment: str
    result: TestResult
    direction: int = 1  # the direction the subject was tested in (a control's is its best orientation)


class Seeds:
    def __init__(self, random_state: int | None) -> None:
        self.rng = np.random.default_rng(random_state)

    def __call__(self) -> int:
        return int(self.rng.integers(2**31))


def _hash(column: pd.Series | np.ndarray) -> bytes:
    """The values of one column or array, hashed (cells that pandas cannot hash, e.g. list-valued parameters, by
    their repr)."""
    series = pd.Series(np.asarray(column).ravel()) if isinstance(column, np.ndarray) else column
    try:
        return pd.util.hash_pandas_object(series, index=False).to_numpy().tobytes()
    except TypeError:
        return pd.util.hash_pandas_object(series.map(repr), index=False).to_numpy().tobytes()


def _fingerprint(value: Any) -> Any:
    """A hashable summary of a test's argument: the values of tables and arrays (hashed), else the value."""
    if isinstance(value, pd.DataFrame):
        return ("frame", tuple(value.columns), tuple(_hash(value[c]) for c in value.columns))
    if isinstance(value, pd.Series):
        return ("series", _hash(value))
    if isinstance(value, np.ndarray):
        return ("array", value.shape, _hash(value))
    if isinstance(value, list | tuple):
        return tuple(_fingerprint(v) for v in value)
    return value


class Memo:
    """Resampling tests computed once per falsification run: a call with the same data and options as an earlier
    one (e.g. the same control comparison in two hypotheses of one file) returns the earlier result, whatever its
    resampling seed, so the report shows one interval for one test."""

    def __init__(self) -> None:
        self.results: dict[Any, TestResult] = {}

    def __call__(self, test: Callable[..., TestResult], *args: Any, **kwargs: Any) -> TestResult:
        options = tuple((k, _fingerprint(v)) for k, v in sorted(kwargs.items()) if k != "random_state")
        key = (test.__module__, test.__qualname__, _fingerprint(args), options)
        if key not in self.results:
            self.results[key] = test(*args, **kwargs)
        return self.results[key]


def _constant_why(data: pd.DataFrame, columns: Sequence[str]) -> str | None:
    """Why a rank statistic of ``columns`` is undefined on ``data``: too few runs, or a constant column; None if
    neither. A claim along training has one row per run and recorded step, and is counted so."""
    if len(data) < 2:
        has = "has" if len(data) == 1 else "have"
        return f"{len(data)} of the runs in scope {has} values (a rank statistic needs at least 2)"
    along = "step" in data.columns and "run_id" in data.columns
    rows = f"{len(data)} recorded steps of {data['run_id'].nunique()} runs" if along else f"{len(data)} runs"
    for c in columns:
        values = data[c].dropna().unique() if c in data.columns else []
        if len(values) == 1:
            return f"{c} is constant (= {values[0]:.4g}) over the {rows} with values"
    return None


def _absent(table: pd.DataFrame, columns: Sequence[str]) -> str:
    """Which of ``columns`` have no value in how many runs of ``table`` ("" if none)."""
    counts = {c: int(table[c].isna().sum()) for c in dict.fromkeys(columns) if c in table.columns}
    missing = [f"{c} has no value in {k} of the {len(table)} runs in scope" for c, k in counts.items() if k]
    return "; ".join(missing)


def _explained(result: TestResult, data: pd.DataFrame, columns: Sequence[str], absent: str = "") -> TestResult:
    """``result`` with ``details["why"]`` saying why its statistic is undefined (when it is and nothing says so):
    too few runs with values or a constant column, and which columns had no value in how many runs."""
    if np.isfinite(result.statistic) or "why" in result.details:
        return result
    why = "; ".join(filter(None, [_constant_why(data, columns), absent]))
    return replace(result, details={**result.details, "why": why}) if why else result


def _substitute(expr, old: str, new: str):
    """The expression with the quantity's symbol replaced by a control's (controls get the same functional form)."""
    return replace(expr, rhs=expr.rhs.subs(sympy.Symbol(old), sympy.Symbol(new)), text=expr.text.replace(old, new))


def kendall_tau_sign(x: pd.Series, y: pd.Series) -> float:
    """Kendall τ without a p-value or interval (orients controls)."""
    return float(stats.kendalltau(x.to_numpy(float), y.to_numpy(float)).statistic)


def _orientation(h: Hypothesis, data: pd.DataFrame, subject: str, role: str) -> int:
    """The predicted direction for the quantity; for a control the sign with which it tracks the outcome best
    (over runs, or of its mean per-run τ along steps), +1 when undefined (e.g. a constant control)."""
    if role == "quantity" or subject not in data.columns or len(data) < 2:
        return h.prediction.direction
    if h.scope.over is Over.STEPS:
        tau = float(per_run_tau(data, subject, h.outcome).mean())
    else:
        tau = kendall_tau_sign(data[subject], data[h.outcome])
    return int(np.sign(tau)) if np.isfinite(tau) and tau != 0 else 1


def _group_columns(h: Hypothesis, data: pd.DataFrame) -> tuple[list[str], str | None, list[str]]:
    """(axes present, environment column if it splits the runs, configuration columns)."""
    axes = [a for a in h.scope.axes if a in data.columns]
    env_col = h.scope.environment if h.scope.environment in data.columns else None
    many = env_col is not None and data[env_col].nunique() > 1
    return axes, env_col if many else None, axes + ([env_col] if many and env_col not in axes else [])


def _groups(frame: pd.DataFrame, columns: list[str], steps: bool) -> np.ndarray | None:
    """Configuration label per row (None: every run its own configuration)."""
    if columns:
        return configuration_groups(frame, columns)
    return frame["run_id"].to_numpy() if steps and "run_id" in frame.columns else None


def _partial(
    h: Hypothesis,
    data: pd.DataFrame,
    subject: str,
    columns: list[str],
    level: float,
    margin: float | None,
    memo: Memo,
    **kw,
) -> TestResult:
    """The partial rank correlation, with the spline design when the runs allow it, else the rank design."""
    confounders = [c for c in h.confounders if c in data.columns and c != subject]
    part = data.dropna(subset=confounders).reset_index(drop=True)
    k_spline, k_rank = 1 + SPLINE_DF * len(confounders), 1 + len(confounders)
    method = PartialMethod.SPLINE if len(part) - 1 - k_spline >= 2 else PartialMethod.RANK
    if len(part) - 1 - k_rank < 2:
        why = f"{len(part)} runs are too few for {len(confounders)} confounders"
        return TestResult("Partial rank correlation", np.nan, np.nan, len(part), details={"why": why})
    groups = _groups(part, columns, False)
    return memo(
        partial_rank_correlation, part, subject, h.outcome, confounders, method=method, spline_df=SPLINE_DF,
        groups=groups, confidence_level=level, margin=margin, **kw,
    )  # fmt: skip


def run_tests(
    h: Hypothesis, table: pd.DataFrame, subject: str, role: str, seeds: Seeds, n_resamples: int, memo: Memo
) -> list[Row]:
    """Every declared test of ``h`` with ``subject`` (the quantity or a control) as the explanatory column."""
    pred, out, rows = h.prediction, h.outcome, []
    steps = h.scope.over is Over.STEPS
    data = table.dropna(subset=[c for c in (subject, out) if c in table.columns]).reset_index(drop=True)
    absent = "" if steps else _absent(table, [out, subject])
    axes, env_col, columns = _group_columns(h, data)
    envs = sorted(data[env_col].astype(str).unique()) if env_col else []
    groups = _groups(data, columns, steps)
    sign = _orientation(h, data, subject, role)
    level = 1 - 2 * h.alpha  # each bound of the interval is a one-sided level-alpha bound
    margin = h.equivalence_margin if role == "quantity" and pred.kind is Kind.RANK else None

    def resampling() -> dict[str, int]:
        # a control's own rank tests only need their statistics (beats_control): its p-values decide nothing
        return {"n_resamples": n_resamples if role == "quantity" else 0, "random_state": seeds()}

    oriented = data.assign(_q=sign * data[subject]) if subject in data.columns else data

    def add(test: Test, result: TestResult, environment: str = "all", part: pd.DataFrame = data) -> None:
        if test in _RANK_TESTS:
            result = _explained(result, part, [out, subject], absent)
        rows.append(Row(h.name, test, subject, role, environment, result, sign))

    def rank_test(part: pd.DataFrame, g: np.ndarray | None) -> TestResult:
        if steps:
            return kendall_over_steps(
                part, subject, out, groups=g, direction=sign, confidence_level=level, margin=margin
            )
        return memo(
            kendall_tau, part[subject], part[out], groups=g, confidence_level=level, margin=margin, **resampling()
        )

    for test in h.tests:
        if test is Test.KENDALL:
            add(test, rank_test(data, groups))
            for env in envs:
                part = data[data[env_col].astype(str) == env].reset_index(drop=True)
                add(test, rank_test(part, _groups(part, axes, steps)), env, part)
        elif test is Test.PSI:
            psi = memo(
                granulated_kendall, data, subject, out, axes, groups=groups, confidence_level=level, **resampling()
            )
            add(test, psi)
        elif test in (Test.CMI, Test.CMI_PGDL):
            method = CMIMethod.JIANG if test is Test.CMI else CMIMethod.PGDL
            cmi = memo(
                conditional_mutual_information, data, subject, out, axes, method=method, direction=sign,
                groups=groups, **resampling(),
            )  # fmt: skip
            add(test, cmi)
        elif test is Test.ROBUST:
            add(test, robust_sign_error(oriented, "_q", out, axes, n_test=h.n_test))
        elif test is Test.PARTIAL:
            add(test, _partial(h, data, subject, columns, level, margin, memo, **resampling()))
        elif test in (Test.FIT, Test.OUT_OF_SETTING):
            rows += _functional_rows(h, test, data, subject, role, axes)
        elif test is Test.EVENT and role == "quantity":  # the lags need the event steps only, not the quantity
            timed = table.dropna(subset=["lag"]).reset_index(drop=True) if "lag" in table.columns else table.iloc[:0]
            gaps = _event_gaps(h, table)
            if len(timed):  # configurations are the units (the runs when there are no axes)
                g = _groups(timed, _group_columns(h, timed)[2], False)
                result = event_lag_test(timed["lag"], groups=g, tolerance=pred.tolerance, confidence_level=level)
                add(test, replace(result, details={**result.details, "runs without a lag": gaps}) if gaps else result)
            else:
                why = gaps + ", so no run has both events and no lag can be measured" if gaps else "no lag"
                add(test, TestResult("Event ordering", np.nan, np.nan, 0, details={"why": why}))
        elif test is Test.TOST and role == "quantity":
            var, (first, second) = pred.variable, pred.levels
            within = [c for c in columns if c != pred.by]  # a configuration, but for the compared level
            labelled = data.assign(_config=configuration_groups(data, within)) if within else data
            a, b = labelled.loc[data[pred.by] == first], labelled.loc[data[pred.by] == second]
            if pred.paired:  # pair runs of the two levels by seed within their configuration
                keys = [k for k in ("seed", "_config") if k in labelled.columns]
                both = a.merge(b, on=keys, suffixes=("_a", "_b"))
                a, b = both.rename(columns={f"{var}_a": var}), both.rename(columns={f"{var}_b": var})
            labels = (a["_config"], None if pred.paired else b["_config"]) if within else (None, None)
            add(test, tost(a[var], b[var], h.equivalence_margin, groups1=labels[0], groups2=labels[1],
                           paired=pred.paired, alpha=h.alpha))  # fmt: skip
    return rows


def _event_gaps(h: Hypothesis, table: pd.DataFrame) -> str:
    """Which event of ``h``'s event-order prediction never occurred in how many runs of ``table`` ("" if both
    occurred in every run)."""
    n, pred = len(table), h.prediction
    if "first_step" not in table.columns or "second_step" not in table.columns:
        return f"the {n} runs in scope have no event steps (the columns first_step and second_step are absent)"
    return "; ".join(
        f"the {which} event ({event.text} {'>' if event.above else '<'} {event.threshold:g}) never occurred in {k} "
        f"of the {n} runs"
        for which, event, column in (("first", pred.first, "first_step"), ("second", pred.second, "second_step"))
        if (k := int(table[column].isna().sum()))
    )


def _configuration_labels(data: pd.DataFrame, axes: Sequence[str], environment: str | None) -> np.ndarray:
    """One label per run naming its configuration by its environment and axis values (without axes: the run's
    own row label, so seeds cannot be told apart), so that a law's per-configuration losses line up with a
    control's even when their runs in scope differ."""
    if not axes:
        return data.index.to_numpy()
    columns = [environment, *axes] if environment in data.columns and environment not in axes else list(axes)
    return np.array([" | ".join(map(str, row)) for row in data[columns].itertuples(index=False)])


def _functional_rows(
    h: Hypothesis, test: Test, data: pd.DataFrame, subject: str, role: str, axes: list[str]
) -> list[Row]:
    """``fit`` on the ``fit_on`` environment (every run if unset), or ``out_of_setting``: fitted on ``fit_on`` (the
    first environment if unset) and predicting each other one; configurations are the units. A law that cannot
    be tested gives an undefined row whose ``details["error"]`` says why."""
    pred, env_col = h.prediction, h.scope.environment
    expr, null = pred.expression, pred.null
    if role != "quantity":
        expr, null = _substitute(expr, h.quantity, subject), _substitute(null, h.quantity, subject)
    kind = FitResult if test is Test.FIT else OutOfSettingResult
    envs = sorted(data[env_col].astype(str).unique()) if env_col in data.columns else []

    def undefined(environment: str, n: int, reason: str) -> Row:
        result = kind(test.value, np.nan, np.nan, n, details={"error": reason})
        return Row(h.name, test, subject, role, environment, result)

    def runs_in(env: str) -> pd.DataFrame:
        return data[data[env_col].astype(str) == env]

    if test is Test.OUT_OF_SETTING and len(envs) < 2:
        return [undefined("all", 0, f"the runs in scope hold {len(envs)} {env_col!r} environment: none to predict")]
    train_env = pred.fit_on if pred.fit_on is not None or test is Test.FIT else envs[0]
    train = data if train_env is None else runs_in(train_env)  # fit without fit_on pools every environment
    parts = [("all", train)] if test is Test.FIT else [(env, runs_in(env)) for env in envs if env != train_env]
    rows, level, p0 = [], 1 - 2 * h.alpha, dict(pred.p0)  # a constraint's bound is a one-sided α-level bound
    for env, part in parts:
        if len(train) == 0:
            rows.append(undefined(env, len(part), f"no run of {subject} in the fit_on environment {train_env!r}"))
            continue
        try:
            if test is Test.FIT:
                constraints = pred.constraints if role == "quantity" else ()
                result = fit_expression(
                    expr, train, null=null, method=pred.method, groups=_configuration_labels(train, axes, env_col),
                    constraints=constraints, p0=p0, confidence_level=level,
                )  # fmt: skip
            else:
                result = predict_out_of_setting(
                    expr, train, part, null=null, method=pred.method, groups=_configuration_labels(part, axes, env_col),
                    p0=p0, confidence_level=level,
                )  # fmt: skip
        except RuntimeError as err:  # no optimum, or a law that is not finite on these runs
            rows.append(undefined(env, len(part), f"the law could not be fitted: {err}"))
            continue
        rows.append(Row(h.name, test, subject, role, env, result))
    return rows


def comparisons(
    h: Hypothesis, table: pd.DataFrame, control: str, seeds: Seeds, n_resamples: int, memo: Memo
) -> list[Row]:
    if Test.KENDALL not in h.tests:
        return []
    steps = h.scope.over is Over.STEPS
    data = table.dropna(subset=[h.quantity, control, h.outcome]).reset_index(drop=True)
    groups = _groups(data, _group_columns(h, data)[2], steps)
    direction, level = h.prediction.direction, 1 - 2 * h.alpha
    if steps:
        result = kendall_over_steps(
            data, h.quantity, h.outcome, control=control, direction=direction, groups=groups, confidence_level=level
        )
    else:
        result = memo(
            kendall_tau_difference, data[h.quantity], data[control], data[h.outcome], direction=direction,
            groups=groups, n_resamples=n_resamples, confidence_level=level, random_state=seeds(),
        )  # fmt: skip
    result = _explained(result, data, [h.outcome, h.quantity, control])
    return [Row(h.name, Test.KENDALL, control, "comparison", "all", result, direction)]
