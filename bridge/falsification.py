"""Run a hypothesis file against a store (or against per-run tables): every declared test on the quantity and on
each negative control, Holm's correction over each hypothesis's rows, verdicts (rules: :mod:`bridge.verdicts`),
and a tidy report that can be stored with ``put_result("verdict", ...)`` and rebuilt without recomputation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sympy
from scipy import stats

from bridge.hypothesis import Hypothesis, Kind, Over, Test, load_hypotheses
from bridge.prereg import PreregStatus, prereg_status
from bridge.stats import (
    CMIMethod,
    FitResult,
    OutOfSettingResult,
    PartialMethod,
    TestResult,
    adjust_pvalues,
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
from bridge.tables import StoreLike, hypothesis_table
from bridge.verdicts import ControlsTested, HypothesisVerdict, Verdict, beats_control, decide, evidence, judge
from theory._validation import check_positive_int

#: the spline design of the partial rank correlation (columns per confounder), when the runs allow it
SPLINE_DF = 4

COLUMNS = [
    "hypothesis", "test", "subject", "role", "environment", "statistic", "pvalue", "p_for", "p_against", "p_holm",
    "p_fdr_bh", "low", "high", "n", "outcome", "reason",
]  # fmt: skip
"""Columns of :meth:`FalsificationReport.to_frame`: ``pvalue`` is the test's own (two-sided where it has one);
``p_for``/``p_against`` are one-sided for/against the prediction (the subject's orientation for a control);
``p_holm`` is ``p_against`` Holm-corrected over the hypothesis's own rows (what decides "fail"); ``p_fdr_bh`` is
the same family Benjamini–Hochberg-adjusted (1995), descriptive only: which rows carry evidence against at a
false discovery rate α, never a verdict (it is never larger than ``p_holm``)."""


@dataclass(frozen=True)
class _Row:
    hypothesis: str
    test: Test
    subject: str
    role: str  # "quantity", "control" (the test on a control) or "comparison" (quantity vs control)
    environment: str
    result: TestResult
    direction: int = 1  # the direction the subject was tested in (a control's is its best orientation)


@dataclass(frozen=True)
class FalsificationReport:
    """All test rows and per-hypothesis verdicts of one falsification run."""

    tests: pd.DataFrame = field(compare=False)
    verdicts: tuple[HypothesisVerdict, ...]
    prereg: PreregStatus | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per test (:data:`COLUMNS`; a copy)."""
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
    h: Hypothesis, data: pd.DataFrame, subject: str, columns: list[str], level: float, margin: float | None, **kw
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
    return partial_rank_correlation(
        part, subject, h.outcome, confounders, method=method, spline_df=SPLINE_DF, groups=groups,
        confidence_level=level, margin=margin, **kw,
    )  # fmt: skip


def _run_tests(
    h: Hypothesis, table: pd.DataFrame, subject: str, role: str, seeds: _Seeds, n_resamples: int
) -> list[_Row]:
    """Every declared test of ``h`` with ``subject`` (the quantity or a control) as the explanatory column."""
    pred, out, rows = h.prediction, h.outcome, []
    steps = h.scope.over is Over.STEPS
    data = table.dropna(subset=[c for c in (subject, out) if c in table.columns]).reset_index(drop=True)
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

    def add(test: Test, result: TestResult, environment: str = "all") -> None:
        rows.append(_Row(h.name, test, subject, role, environment, result, sign))

    def rank_test(part: pd.DataFrame, g: np.ndarray | None) -> TestResult:
        if steps:
            return kendall_over_steps(
                part, subject, out, groups=g, direction=sign, confidence_level=level, margin=margin
            )
        return kendall_tau(part[subject], part[out], groups=g, confidence_level=level, margin=margin, **resampling())

    for test in h.tests:
        if test is Test.KENDALL:
            add(test, rank_test(data, groups))
            for env in envs:
                part = data[data[env_col].astype(str) == env].reset_index(drop=True)
                add(test, rank_test(part, _groups(part, axes, steps)), env)
        elif test is Test.PSI:
            psi = granulated_kendall(data, subject, out, axes, groups=groups, confidence_level=level, **resampling())
            add(test, psi)
        elif test in (Test.CMI, Test.CMI_PGDL):
            method = CMIMethod.JIANG if test is Test.CMI else CMIMethod.PGDL
            cmi = conditional_mutual_information(
                data, subject, out, axes, method=method, direction=sign, groups=groups, **resampling()
            )
            add(test, cmi)
        elif test is Test.ROBUST:
            add(test, robust_sign_error(oriented, "_q", out, axes, n_test=h.n_test))
        elif test is Test.PARTIAL:
            add(test, _partial(h, data, subject, columns, level, margin, **resampling()))
        elif test in (Test.FIT, Test.OUT_OF_SETTING):
            rows += _functional_rows(h, test, data, subject, role, axes)
        elif test is Test.EVENT and role == "quantity":
            lags = data["lag"].dropna() if "lag" in data.columns else pd.Series(dtype=float)
            if len(lags):
                add(test, event_lag_test(lags, tolerance=pred.tolerance, confidence_level=level))
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
    h: Hypothesis, test: Test, data: pd.DataFrame, subject: str, role: str, axes: list[str]
) -> list[_Row]:
    """``fit`` on the ``fit_on`` environment (every run if unset), or ``out_of_setting``: fitted on ``fit_on`` (the
    first environment if unset) and predicting each other one; configurations are the units. A law that cannot
    be tested gives an undefined row whose ``details["error"]`` says why."""
    pred, env_col = h.prediction, h.scope.environment
    expr, null = pred.expression, pred.null
    if role != "quantity":
        expr, null = _substitute(expr, h.quantity, subject), _substitute(null, h.quantity, subject)
    kind = FitResult if test is Test.FIT else OutOfSettingResult
    envs = sorted(data[env_col].astype(str).unique()) if env_col in data.columns else []

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
        rows.append(_Row(h.name, test, subject, role, env, result))
    return rows


def _comparisons(h: Hypothesis, table: pd.DataFrame, control: str, seeds: _Seeds, n_resamples: int) -> list[_Row]:
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
        result = kendall_tau_difference(
            data[h.quantity],
            data[control],
            data[h.outcome],
            direction=direction,
            groups=groups,
            n_resamples=n_resamples,
            confidence_level=level,
            random_state=seeds(),
        )
    return [_Row(h.name, Test.KENDALL, control, "comparison", "all", result, direction)]


def _missing(h: Hypothesis, table: pd.DataFrame) -> list[str]:
    needed = [h.outcome] if h.prediction.kind in (Kind.EVENT, Kind.EQUIVALENCE) else [h.quantity, h.outcome]
    if h.prediction.kind is Kind.EQUIVALENCE:
        needed += [h.prediction.variable, h.prediction.by]
    return [c for c in needed if c not in table.columns or table[c].isna().all()]


def _untestable(h: Hypothesis, table: pd.DataFrame) -> str | None:
    """Why ``h`` cannot be tested on these runs, or None: no run is in scope, ``scope.axes`` names a column no run
    in scope has (its configurations, the units of inference, cannot be formed), or a functional law's ``fit_on``
    names no environment of the runs."""
    if table.empty:
        scope = {"specs": list(h.scope.specs), "phenomena": list(h.scope.phenomena)}
        where = "; ".join(f"scope.{key} = {names}" for key, names in scope.items() if names)
        return f"no run of the store is in scope{f' ({where})' if where else ''}"
    absent = [a for a in h.scope.axes if a not in table.columns or table[a].isna().all()]
    if absent:
        return f"scope.axes names {absent}, which no run in scope has, so its configurations cannot be formed"
    fit_on, env = h.prediction.fit_on, h.scope.environment
    if h.prediction.kind is not Kind.FUNCTIONAL or fit_on is None:
        return None
    present = sorted(table[env].dropna().astype(str).unique()) if env in table.columns else []
    if fit_on not in present:
        return f"fit_on = {fit_on!r} names no environment of the runs in scope ({env!r} values: {present})"
    return None


def _controls(h: Hypothesis, table: pd.DataFrame) -> ControlsTested:
    """Which declared controls can be compared with the quantity on these runs, and why the others cannot."""
    tested, untested = [], {}
    for control in h.controls:
        if control == h.quantity:
            untested[control] = "it is the quantity itself"
        elif control not in table.columns or table[control].isna().all():
            untested[control] = "not recorded on these runs"
        elif table[control].nunique() <= 1:
            # e.g. the parameter count of one architecture: it ranks nothing, so it cannot "do as well"
            untested[control] = "constant over these runs"
        else:
            tested.append(control)
    return ControlsTested(h.controls, tuple(tested), untested)


def _verdict(
    h: Hypothesis, rows: list[_Row], p_holm: np.ndarray, controls: ControlsTested, judged_rows: dict[int, tuple]
) -> HypothesisVerdict:
    """Judge the hypothesis's rows (``judged_rows[i] = (outcome, reason)``) and decide its verdict."""
    own = [i for i, r in enumerate(rows) if r.hypothesis == h.name and r.role == "quantity"]
    judged = []
    for i in own:
        r = rows[i]
        j = judge(h, r.test, r.result, p_holm[i], r.environment)
        judged_rows[i] = (j.outcome.value, j.reason)
        judged.append((r.test.value, r.environment, j))
    ties = []
    for i, r in enumerate(rows):
        if r.hypothesis != h.name or r.role == "quantity" or r.environment != "all":
            continue
        if r.role == "control" and r.test is Test.KENDALL:
            continue  # judged through the paired "comparison" row
        own_row = next((rows[k] for k in own if rows[k].test is r.test and rows[k].environment == "all"), None)
        if own_row is None:
            continue
        better = beats_control(r.test, own_row.result, r.result, h.prediction.direction, h.alpha)
        verb = "beats" if better else "is not shown to beat"
        judged_rows[i] = ("quantity better" if better else "control as good", f"{h.quantity} {verb} {r.subject} on "
                          f"{r.test.value}")  # fmt: skip
        if not better:
            ties.append((r.test.value, r.subject))
    return decide(h, judged, ties, controls)


def falsify_tables(
    hypotheses: Sequence[Hypothesis],
    tables: Mapping[str, pd.DataFrame],
    *,
    n_resamples: int = 999,
    random_state: int | None = 0,
    prereg: PreregStatus | None = None,
) -> FalsificationReport:
    """Falsify ``hypotheses`` on per-run tables (``tables[h.name]``, e.g. synthetic ones, or those built by
    :func:`bridge.tables.hypothesis_table`; one row per run and step for a claim over steps). ``n_resamples``
    sets every bootstrap's and permutation null's size. Rules: :mod:`bridge.verdicts`."""
    check_positive_int("n_resamples", n_resamples, owner="falsify_tables")
    absent = [h.name for h in hypotheses if h.name not in tables]
    if absent:
        raise ValueError(f"falsify_tables: no table for hypotheses {absent}; tables are given for {sorted(tables)}.")
    seeds, rows, skipped, controls = _Seeds(random_state), [], {}, {}
    for h in hypotheses:
        table = tables[h.name]
        missing = _missing(h, table)
        if missing and not table.empty:
            along = " along training" if h.scope.over is Over.STEPS else ""
            skipped[h.name] = f"the runs in scope do not record {missing}{along}"
            continue
        if reason := _untestable(h, table):
            skipped[h.name] = reason
            continue
        rows += _run_tests(h, table, h.quantity, "quantity", seeds, n_resamples)
        controls[h.name] = _controls(h, table)
        for control in controls[h.name].tested:
            rows += _run_tests(h, table, control, "control", seeds, n_resamples)
            rows += _comparisons(h, table, control, seeds, n_resamples)
    records = []
    for r in rows:
        p_for, p_against = evidence(r.test, r.result, r.direction, _margin(hypotheses, r))
        records.append(
            {
                "hypothesis": r.hypothesis,
                "test": r.test.value,
                "subject": r.subject,
                "role": r.role,
                "environment": r.environment,
                "statistic": r.result.statistic,
                "pvalue": r.result.pvalue,
                "p_for": p_for,
                "p_against": p_against,
                "p_holm": np.nan,
                "p_fdr_bh": np.nan,
                "low": r.result.low,
                "high": r.result.high,
                "n": r.result.n,
                "outcome": "",
                "reason": "",
            }
        )
    frame = pd.DataFrame(records, columns=COLUMNS)
    verdicts, judged_rows = [], {}
    for h in hypotheses:
        if h.name in skipped:
            verdicts.append(HypothesisVerdict(h.name, Verdict.INCONCLUSIVE, skipped[h.name] + "."))
            continue
        own = ((frame["hypothesis"] == h.name) & (frame["role"] == "quantity")).to_numpy()
        for method in ("holm", "fdr_bh"):
            frame.loc[own, f"p_{method}"] = adjust_pvalues(frame.loc[own, "p_against"].to_numpy(float), method)
        verdicts.append(_verdict(h, rows, frame["p_holm"].to_numpy(), controls[h.name], judged_rows))
    frame["outcome"] = [judged_rows.get(i, ("", ""))[0] for i in range(len(frame))]
    frame["reason"] = [judged_rows.get(i, ("", ""))[1] for i in range(len(frame))]
    return FalsificationReport(frame, tuple(verdicts), prereg)


def _margin(hypotheses: Sequence[Hypothesis], row: _Row) -> float | None:
    h = next(h for h in hypotheses if h.name == row.hypothesis)
    return h.equivalence_margin if row.role == "quantity" and h.prediction.kind is Kind.RANK else None


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
