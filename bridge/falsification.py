"""Run a hypothesis file against a store (or against per-run tables): every declared test on the quantity and on
each negative control, Holm's correction over each hypothesis's rows, verdicts (rules: :mod:`bridge.verdicts`),
and a tidy report that can be stored with ``put_result("verdict", ...)`` and rebuilt without recomputation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bridge._progress import progress
from bridge._rows import Memo, Row, Seeds, comparisons, run_tests
from bridge.hypothesis import Hypothesis, Kind, Over, Test, load_hypotheses
from bridge.prereg import PreregStatus, prereg_status
from bridge.stats import adjust_pvalues
from bridge.tables import StoreLike, hypothesis_table
from bridge.verdicts import (
    ControlsTested,
    HypothesisVerdict,
    Outcome,
    RowKey,
    Verdict,
    compare_with_control,
    decide,
    evidence,
    judge,
)
from theory._validation import check_positive_int

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

    def deciding_row(self, hypothesis: str) -> pd.Series | None:
        """The test row that decided ``hypothesis``'s verdict (``HypothesisVerdict.decided_by``), or None."""
        key = self.verdict(hypothesis).decided_by
        if key is None:
            return None
        t = self.tests
        match = t[(t["hypothesis"] == hypothesis) & (t["test"] == key.test) & (t["subject"] == key.subject)
                  & (t["role"] == key.role) & (t["environment"] == key.environment)]  # fmt: skip
        return match.iloc[0] if len(match) else None

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
                {
                    "hypothesis": v.hypothesis,
                    "verdict": v.verdict.value,
                    "reason": v.reason,
                    "decided_by": None if v.decided_by is None else asdict(v.decided_by),
                }
                for v in self.verdicts
            ],  # fmt: skip
            "prereg": None if self.prereg is None else dict(self.prereg.__dict__),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> FalsificationReport:
        tests = pd.DataFrame(payload["tests"], columns=COLUMNS)
        verdicts = tuple(
            HypothesisVerdict(v["hypothesis"], Verdict(v["verdict"]), v["reason"],
                              RowKey(**v["decided_by"]) if v.get("decided_by") else None)
            for v in payload["verdicts"]
        )  # fmt: skip
        prereg = PreregStatus(**payload["prereg"]) if payload.get("prereg") else None
        return cls(tests, verdicts, prereg)


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
    """Which declared controls can be compared with the quantity on these runs, and why the others cannot. A
    quantity is never its own control: a default control that is the quantity (the prime count tested as an
    explanation) is not one of the hypothesis's controls."""
    tested, untested = [], {}
    declared = tuple(c for c in h.controls if c != h.quantity)
    for control in declared:
        if control not in table.columns or table[control].isna().all():
            untested[control] = "not recorded on these runs"
        elif table[control].nunique() <= 1:
            # e.g. the parameter count of one architecture: it ranks nothing, so it cannot "do as well"
            untested[control] = "constant over these runs"
        else:
            tested.append(control)
    return ControlsTested(declared, tuple(tested), untested)


def _verdict(
    h: Hypothesis,
    rows: list[Row],
    p_holm: np.ndarray,
    controls: ControlsTested,
    judged_rows: dict[int, tuple],
) -> HypothesisVerdict:
    """Judge the hypothesis's rows (``judged_rows[i] = (outcome, reason)``) and decide its verdict: of several
    failing rows the one with the smallest Holm-adjusted p against (the strongest evidence against) decides."""
    own = [i for i, r in enumerate(rows) if r.hypothesis == h.name and r.role == "quantity"]
    judged = []
    for i in own:
        r = rows[i]
        j = judge(h, r.test, r.result, p_holm[i], r.environment)
        judged_rows[i] = (j.outcome.value, j.reason)
        judged.append((RowKey(r.test.value, r.subject, r.role, r.environment), j, p_holm[i]))
    strongest_first = sorted(judged, key=lambda item: item[2] if item[1].outcome is Outcome.FAIL else np.inf)
    judged = [(key, j) for key, j, _ in strongest_first]  # a stable sort: other rows keep their order
    ties = []
    for i, r in enumerate(rows):
        if r.hypothesis != h.name or r.role == "quantity" or r.environment != "all":
            continue
        if r.role == "control" and r.test is Test.KENDALL:
            continue  # judged through the paired "comparison" row
        own_row = next((rows[k] for k in own if rows[k].test is r.test and rows[k].environment == "all"), None)
        if own_row is None:
            continue
        better, shown = compare_with_control(r.test, own_row.result, r.result, h.prediction.direction, h.alpha)
        verb = "beats" if better else "is not shown to beat"
        judged_rows[i] = ("quantity better" if better else "control as good", f"{h.quantity} {verb} {r.subject} on "
                          f"{r.test.value}: {shown}")  # fmt: skip
        if not better:
            ties.append((RowKey(r.test.value, r.subject, r.role, r.environment), shown))
    declared = ", ".join(t.value for t in h.tests) or "none"
    return decide(
        h, judged, ties, controls, untested=f"none of its declared tests ({declared}) gave a row on these runs"
    )


def _skipped(h: Hypothesis, table: pd.DataFrame) -> str | None:
    """Why ``h`` cannot be tested on ``table`` at all (no run in scope, a column it needs absent, a ``fit_on``
    that names no environment), or None."""
    along = " along training" if h.scope.over is Over.STEPS else ""
    if not table.empty and (missing := _missing(h, table)):
        runs = table["run_id"].nunique() if "run_id" in table.columns else len(table)
        absent = [c for c in missing if c not in table.columns]
        how = "not recorded by any of them" if len(absent) == len(missing) else "missing (absent or all NaN)"
        return f"the runs in scope do not record {missing}{along}: {how} in the {runs} runs in scope"
    return _untestable(h, table)


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
    seeds, memo, rows, skipped, controls, plan = Seeds(random_state), Memo(), [], {}, {}, []
    for h in hypotheses:
        table = tables[h.name]
        if reason := _skipped(h, table):
            skipped[h.name] = reason
            continue
        controls[h.name] = _controls(h, table)
        plan += [(h, table, subject) for subject in (h.quantity, *controls[h.name].tested)]
    for h, table, subject in progress(plan, desc="falsify: tests per quantity and control", unit="subject"):
        if subject == h.quantity:
            rows += run_tests(h, table, subject, "quantity", seeds, n_resamples, memo)
        else:
            rows += run_tests(h, table, subject, "control", seeds, n_resamples, memo)
            rows += comparisons(h, table, subject, seeds, n_resamples, memo)
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
            verdicts.append(HypothesisVerdict(h.name, Verdict.INCONCLUSIVE, skipped[h.name].rstrip(".") + "."))
            continue
        own = ((frame["hypothesis"] == h.name) & (frame["role"] == "quantity")).to_numpy()
        for method in ("holm", "fdr_bh"):
            frame.loc[own, f"p_{method}"] = adjust_pvalues(frame.loc[own, "p_against"].to_numpy(float), method)
        verdicts.append(_verdict(h, rows, frame["p_holm"].to_numpy(), controls[h.name], judged_rows))
    frame["outcome"] = [judged_rows.get(i, ("", ""))[0] for i in range(len(frame))]
    frame["reason"] = [judged_rows.get(i, ("", ""))[1] for i in range(len(frame))]
    return FalsificationReport(frame, tuple(verdicts), prereg)


def _margin(hypotheses: Sequence[Hypothesis], row: Row) -> float | None:
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
