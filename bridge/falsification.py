"""Run a hypothesis file against a store (or against per-run tables): every declared test on the quantity and on
each negative control, multiple-testing corrections across the report, verdicts, and a tidy report that can be
stored with ``put_result("verdict", ...)`` and rebuilt without recomputation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sympy
from scipy import stats

from bridge.hypothesis import Hypothesis, Kind, Test, load_hypotheses
from bridge.prereg import PreregStatus, prereg_status
from bridge.stats import (
    CMIMethod,
    FitResult,
    OutOfSettingResult,
    TestResult,
    adjust_pvalues,
    conditional_mutual_information,
    configuration_groups,
    event_lag_test,
    fit_expression,
    granulated_kendall,
    kendall_tau,
    kendall_tau_difference,
    partial_rank_correlation,
    predict_out_of_setting,
    robust_sign_error,
    tost,
)
from bridge.tables import StoreLike, hypothesis_table
from bridge.verdicts import HypothesisVerdict, Verdict, beats_control, decide, judge
from theory._validation import check_positive_int

COLUMNS = [
    "hypothesis", "test", "subject", "role", "environment", "statistic", "pvalue", "p_holm", "p_fdr_bh",
    "low", "high", "n", "outcome", "reason",
]  # fmt: skip


@dataclass(frozen=True)
class _Row:
    hypothesis: str
    test: Test
    subject: str
    role: str  # "quantity", "control" (the test on a control) or "comparison" (quantity vs control)
    environment: str
    result: TestResult


@dataclass(frozen=True)
class FalsificationReport:
    """All test rows and per-hypothesis verdicts of one falsification run."""

    tests: pd.DataFrame = field(compare=False)
    verdicts: tuple[HypothesisVerdict, ...]
    prereg: PreregStatus | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per test: hypothesis, test, subject, role, environment, statistic, pvalue, p_holm, p_fdr_bh,
        low, high, n, outcome, reason (a copy)."""
        return self.tests.copy()

    def verdict_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"hypothesis": v.hypothesis, "verdict": v.verdict.value, "reason": v.reason} for v in self.verdicts]
        )

    def verdict(self, hypothesis: str) -> HypothesisVerdict:
        for v in self.verdicts:
            if v.hypothesis == hypothesis:
                return v
        raise KeyError(f"No hypothesis {hypothesis!r} in this report: {[v.hypothesis for v in self.verdicts]}.")

    def summary(self) -> str:
        """The verdict table as text (what ``unitheory falsify`` prints)."""
        lines = [self.prereg.describe()] if self.prereg else []
        width = max([len(v.hypothesis) for v in self.verdicts] + [10])
        lines.append(f"{'hypothesis':<{width}}  {'verdict':<12}  reason")
        lines += [f"{v.hypothesis:<{width}}  {v.verdict.value:<12}  {v.reason}" for v in self.verdicts]
        return "\n".join(lines)

    def to_payload(self) -> dict[str, Any]:
        """JSON-ready content for ``put_result("verdict", ...)``; :meth:`from_payload` rebuilds the report."""
        tests = self.tests.astype(object).where(self.tests.notna(), None)
        return {
            "tests": tests.to_dict(orient="records"),
            "verdicts": [
                {"hypothesis": v.hypothesis, "verdict": v.verdict.value, "reason": v.reason} for v in self.verdicts
            ],
            "prereg": None if self.prereg is None else dict(self.prereg.__dict__),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> FalsificationReport:
        tests = pd.DataFrame(payload["tests"], columns=COLUMNS)
        verdicts = tuple(
            HypothesisVerdict(v["hypothesis"], Verdict(v["verdict"]), v["reason"]) for v in payload["verdicts"]
        )
        prereg = PreregStatus(**payload["prereg"]) if payload.get("prereg") else None
        return cls(tests, verdicts, prereg)


class _Seeds:
    def __init__(self, random_state: int | None) -> None:
        self.rng = np.random.default_rng(random_state)

    def __call__(self) -> int:
        return int(self.rng.integers(2**31))


def _substitute(expr, old: str, new: str):
    """The expression with the quantity's symbol replaced by a control's (controls get the same functional form)."""
    return replace(expr, rhs=expr.rhs.subs(sympy.Symbol(old), sympy.Symbol(new)), text=expr.text.replace(old, new))


def kendall_tau_sign(x: pd.Series, y: pd.Series) -> float:
    """Kendall τ without a p-value or interval (orients controls)."""
    return float(stats.kendalltau(x.to_numpy(float), y.to_numpy(float)).statistic)


def _run_tests(
    h: Hypothesis, table: pd.DataFrame, subject: str, role: str, seeds: _Seeds, n_resamples: int
) -> list[_Row]:
    """Every declared test of ``h`` with ``subject`` (the quantity or a control) as the explanatory column."""
    pred, out, rows = h.prediction, h.outcome, []
    data = table.dropna(subset=[c for c in (subject, out) if c in table.columns])
    axes = [a for a in h.scope.axes if a in data.columns]
    env_col = h.scope.environment if h.scope.environment in data.columns else None
    envs = sorted(data[env_col].astype(str).unique()) if env_col else []
    group_axes = axes + ([env_col] if env_col and len(envs) > 1 and env_col not in axes else [])
    groups = configuration_groups(data, group_axes) if group_axes else None
    # a control may track the outcome with either sign: orient it the way it does best
    sign = pred.direction
    if role != "quantity" and subject in data.columns and len(data) > 1:
        tau = kendall_tau_sign(data[subject], data[out])  # NaN for a constant control (e.g. a fixed param count)
        sign = int(np.sign(tau)) if np.isfinite(tau) and tau != 0 else 1
    oriented = data.assign(_q=sign * data[subject]) if subject in data.columns else data

    def add(test: Test, result: TestResult, environment: str = "all") -> None:
        rows.append(_Row(h.name, test, subject, role, environment, result))

    for test in h.tests:
        if test is Test.KENDALL:
            add(
                test,
                kendall_tau(data[subject], data[out], groups=groups, n_resamples=n_resamples, random_state=seeds()),
            )
            for env in envs if len(envs) > 1 else []:
                part = data[data[env_col].astype(str) == env]
                g = configuration_groups(part, axes) if axes else None
                add(
                    test,
                    kendall_tau(part[subject], part[out], groups=g, n_resamples=n_resamples, random_state=seeds()),
                    env,
                )
        elif test is Test.PSI:
            add(test, granulated_kendall(data, subject, out, axes))
        elif test in (Test.CMI, Test.CMI_PGDL):
            method = CMIMethod.JIANG if test is Test.CMI else CMIMethod.PGDL
            add(test, conditional_mutual_information(data, subject, out, axes, method=method))
        elif test is Test.ROBUST:
            add(test, robust_sign_error(oriented, "_q", out, axes, n_test=h.n_test))
        elif test is Test.PARTIAL:
            confounders = [c for c in h.confounders if c in data.columns and c != subject]
            add(test, partial_rank_correlation(data.dropna(subset=confounders), subject, out, confounders))
        elif test in (Test.FIT, Test.OUT_OF_SETTING):
            rows += _functional_rows(h, test, data, subject, role, axes, envs)
        elif test is Test.EVENT and role == "quantity":
            lags = data["lag"].dropna() if "lag" in data.columns else pd.Series(dtype=float)
            if len(lags):
                add(test, event_lag_test(lags, tolerance=pred.tolerance))
        elif test is Test.TOST and role == "quantity":
            var, (first, second) = pred.variable, pred.levels
            a, b = data.loc[data[pred.by] == first], data.loc[data[pred.by] == second]
            if pred.paired:  # pair runs of the two levels by seed (and every other axis in scope)
                keys = [k for k in ("seed", *axes) if k in data.columns and k != pred.by]
                both = a.merge(b, on=keys, suffixes=("_a", "_b"))
                a, b = both.rename(columns={f"{var}_a": var})[[var]], both.rename(columns={f"{var}_b": var})[[var]]
            add(test, tost(a[var], b[var], h.equivalence_margin, paired=pred.paired, alpha=h.alpha))
    return rows


def _configuration_labels(data: pd.DataFrame, axes: Sequence[str], environment: str | None) -> np.ndarray:
    """One label per run naming its configuration by its environment and axis values (without axes: the run's
    own row label, so seeds cannot be told apart), so that a law's per-configuration losses line up with a
    control's even when their runs in scope differ."""
    if not axes:
        return data.index.to_numpy()
    columns = [environment, *axes] if environment in data.columns and environment not in axes else list(axes)
    return np.array([" | ".join(map(str, row)) for row in data[columns].itertuples(index=False)])


def _functional_rows(
    h: Hypothesis, test: Test, data: pd.DataFrame, subject: str, role: str, axes: list[str], envs: list[str]
) -> list[_Row]:
    """``fit`` on the ``fit_on`` environment (every run if unset), or ``out_of_setting``: fitted on ``fit_on`` (the
    first environment if unset) and predicting each other one; configurations are the units. A law that cannot
    be tested gives an undefined row whose ``details["error"]`` says why."""
    pred, env_col = h.prediction, h.scope.environment
    expr, null = pred.expression, pred.null
    if role != "quantity":
        expr, null = _substitute(expr, h.quantity, subject), _substitute(null, h.quantity, subject)
    kind = FitResult if test is Test.FIT else OutOfSettingResult

    def undefined(environment: str, n: int, reason: str) -> _Row:
        result = kind(test.value, np.nan, np.nan, n, details={"error": reason})
        return _Row(h.name, test, subject, role, environment, result)

    def runs_in(env: str) -> pd.DataFrame:
        return data[data[env_col].astype(str) == env]

    if test is Test.OUT_OF_SETTING and len(envs) < 2:
        return [undefined("all", 0, f"the runs in scope hold {len(envs)} {env_col!r} environment: none to predict")]
    train_env = pred.fit_on if pred.fit_on is not None or test is Test.FIT else envs[0]
    train = data if train_env is None else runs_in(train_env)  # fit without fit_on pools every environment
    parts = [("all", train)] if test is Test.FIT else [(env, runs_in(env)) for env in envs if env != train_env]
    rows, level, p0 = [], 1 - h.alpha, dict(pred.p0)
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
        rows.append(_Row(h.name, test, subject, role, env, result))
    return rows


def _comparisons(h: Hypothesis, table: pd.DataFrame, control: str, seeds: _Seeds, n_resamples: int) -> list[_Row]:
    if Test.KENDALL not in h.tests:
        return []
    data = table.dropna(subset=[h.quantity, control, h.outcome])
    axes = [a for a in h.scope.axes if a in data.columns]
    result = kendall_tau_difference(
        data[h.quantity], data[control], data[h.outcome], direction=h.prediction.direction,
        groups=configuration_groups(data, axes) if axes else None, n_resamples=n_resamples, random_state=seeds(),
    )  # fmt: skip
    return [_Row(h.name, Test.KENDALL, control, "comparison", "all", result)]


def _missing(h: Hypothesis, table: pd.DataFrame) -> list[str]:
    needed = [h.outcome] if h.prediction.kind in (Kind.EVENT, Kind.EQUIVALENCE) else [h.quantity, h.outcome]
    if h.prediction.kind is Kind.EQUIVALENCE:
        needed += [h.prediction.variable, h.prediction.by]
    return [c for c in needed if c not in table.columns or table[c].isna().all()]


def _untestable(h: Hypothesis, table: pd.DataFrame) -> str | None:
    """Why a functional law cannot be fitted where it says (``fit_on`` names no environment of the runs), or None."""
    fit_on, env = h.prediction.fit_on, h.scope.environment
    if h.prediction.kind is not Kind.FUNCTIONAL or fit_on is None:
        return None
    present = sorted(table[env].dropna().astype(str).unique()) if env in table.columns else []
    if fit_on not in present:
        return f"fit_on = {fit_on!r} names no environment of the runs in scope ({env!r} values: {present})"
    return None


def falsify_tables(
    hypotheses: Sequence[Hypothesis],
    tables: Mapping[str, pd.DataFrame],
    *,
    n_resamples: int = 999,
    random_state: int | None = 0,
    prereg: PreregStatus | None = None,
) -> FalsificationReport:
    """Falsify ``hypotheses`` on per-run tables (``tables[h.name]``, e.g. synthetic ones, or those built by
    :func:`bridge.tables.hypothesis_table`). ``n_resamples`` sets every bootstrap's size."""
    check_positive_int("n_resamples", n_resamples, owner="falsify_tables")
    absent = [h.name for h in hypotheses if h.name not in tables]
    if absent:
        raise ValueError(f"falsify_tables: no table for hypotheses {absent}; tables are given for {sorted(tables)}.")
    seeds, rows, skipped = _Seeds(random_state), [], {}
    for h in hypotheses:
        table = tables[h.name]
        missing = _missing(h, table)
        if missing or table.empty:
            skipped[h.name] = f"the runs in scope do not record {missing or 'anything'}"
            continue
        if reason := _untestable(h, table):
            skipped[h.name] = reason
            continue
        rows += _run_tests(h, table, h.quantity, "quantity", seeds, n_resamples)
        for control in h.controls:
            # a control constant over the runs in scope (e.g. the parameter count of one architecture) ranks
            # nothing: it cannot "do as well" as the quantity, so it is left out like an unrecorded one
            if control in table.columns and table[control].nunique() > 1 and control != h.quantity:
                rows += _run_tests(h, table, control, "control", seeds, n_resamples)
                rows += _comparisons(h, table, control, seeds, n_resamples)
    frame = pd.DataFrame(
        [{"hypothesis": r.hypothesis, "test": r.test.value, "subject": r.subject, "role": r.role,
          "environment": r.environment, "statistic": r.result.statistic, "pvalue": r.result.pvalue,
          "low": r.result.low, "high": r.result.high, "n": r.result.n} for r in rows],
        columns=[c for c in COLUMNS if c not in ("p_holm", "p_fdr_bh", "outcome", "reason")],
    )  # fmt: skip
    own = (frame["role"] == "quantity").to_numpy()
    for method in ("holm", "fdr_bh"):
        frame[f"p_{method}"] = np.nan
        frame.loc[own, f"p_{method}"] = adjust_pvalues(frame.loc[own, "pvalue"].to_numpy(float), method)
    outcome, reason = [""] * len(rows), [""] * len(rows)
    p_holm = frame["p_holm"].to_numpy()
    verdicts = []
    for h in hypotheses:
        if h.name in skipped:
            verdicts.append(HypothesisVerdict(h.name, Verdict.INCONCLUSIVE, skipped[h.name] + "."))
            continue
        idx = [i for i, r in enumerate(rows) if r.hypothesis == h.name and r.role == "quantity"]
        judged = []
        for i in idx:
            r = rows[i]
            j = judge(h, r.test, r.result, p_holm[i], r.environment)
            outcome[i], reason[i] = j.outcome.value, j.reason
            judged.append((r.test.value, r.environment, j))
        ties = []
        for i, r in enumerate(rows):
            if r.hypothesis != h.name or r.role == "quantity" or r.environment != "all":
                continue
            if r.role == "control" and r.test is Test.KENDALL:
                continue  # judged through the paired "comparison" row
            own_row = next((rows[k] for k in idx if rows[k].test is r.test and rows[k].environment == "all"), None)
            if own_row is None:
                continue
            better = beats_control(r.test, own_row.result, r.result, h.prediction.direction)
            outcome[i] = "quantity better" if better else "control as good"
            reason[i] = f"{h.quantity} {'beats' if better else 'does no better than'} {r.subject} on {r.test.value}"
            if not better:
                ties.append((r.test.value, r.subject))
        verdicts.append(decide(h, judged, ties))
    frame["outcome"], frame["reason"] = outcome, reason
    return FalsificationReport(frame[COLUMNS], tuple(verdicts), prereg)


def falsify(
    hypotheses: str | Path | Sequence[Hypothesis],
    store: StoreLike,
    *,
    n_resamples: int = 999,
    random_state: int | None = 0,
) -> FalsificationReport:
    """Test a hypothesis file (or parsed hypotheses) on the runs of ``store``; with a file, the report also
    says whether it was preregistered before the runs it is tested on (:func:`bridge.prereg.prereg_status`)."""
    parsed = hypotheses if not isinstance(hypotheses, str | Path) else load_hypotheses(hypotheses)
    tables = {h.name: hypothesis_table(store, h) for h in parsed}
    status = None
    if isinstance(hypotheses, str | Path):
        tested = pd.concat([t for t in tables.values() if len(t)] or [pd.DataFrame({"started_at": []})])
        status = prereg_status(hypotheses, store, tested.drop_duplicates("run_id") if "run_id" in tested else tested)
    return falsify_tables(parsed, tables, n_resamples=n_resamples, random_state=random_state, prereg=status)
