"""From test results to verdicts: each test row is judged pass / fail / inconclusive with a reason, then each
hypothesis is **supported**, **falsified** or **inconclusive**.

One rule for every test. A test **fails** only on significant evidence *against* the prediction; it **passes**
only on significant evidence *for* it, with a defined interval where the test has one; lack of evidence either
way is **inconclusive**. "Significant" is at the hypothesis's level α, one-sided in the predicted direction.
Seeds are nested in configurations (a configuration = one setting of ``scope.axes``): no p-value or interval
treats seeds of one configuration as independent units. Intervals are at confidence 1 − 2α, so that each bound
is a one-sided α-level bound (the TOST convention).

How the rows of one hypothesis combine (the row table is :data:`RULES`, printed by :func:`rules_table`):

- **falsified** when some row fails, where "fails" uses the p-values *against* the prediction Holm-corrected
  over all the hypothesis's own rows (tests × environments; Holm 1979). Several tests each failing at α would
  falsify a true explanation up to k times more often than α; Holm keeps the chance that a true hypothesis is
  falsified at most α whatever the dependence between its tests. The family is the hypothesis, not the
  report: a verdict is a claim about one hypothesis and must not change when unrelated hypotheses are added to
  the file (``benchmarks/calibration.py`` checks the rate by simulation).
  Every row enters with one p-value against: a row whose prediction can be contradicted in several ways (Ψ's
  axes, CMI's conditioning sets, the sign-error's environments, a law's lack of fit and each of its constraints)
  enters with the smallest of those p-values times their number (Bonferroni within the row, i.e. the first step
  of Holm over them), so a row's "fail" never rests on an uncorrected part of it.
- **supported** when every row passes and the quantity beats every negative control that could be tested.
  Each row's "for" p-value is used uncorrected: requiring *all* rows to pass is an intersection–union test
  (Berger 1982) whose level is at most α without correction.
- **inconclusive** otherwise; the reason names the first row or control that stood in the way.

Controls (Jeffares & van der Schaar 2025: a quantity no better than the prime count of its rounded weights
explains nothing): omitted ``controls`` means the defaults (``prime_count``, ``random_measure``,
``param_count``); ``controls = []`` opts out explicitly. The reason of a "supported" verdict always says which
controls were beaten, which could not be tested (not recorded, or constant over the runs) and whether the file
opted out, so a verdict never reads as having beaten controls that were not there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd

from bridge.hypothesis import Hypothesis, Test
from bridge.stats import FitResult, Side, paired_ratio_test
from bridge.stats._result import TestResult


class Outcome(StrEnum):
    """How one test came out for the claim."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Verdict(StrEnum):
    """The verdict on a hypothesis."""

    SUPPORTED = "supported"
    FALSIFIED = "falsified"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Rule:
    """One row of the rule table: when a test passes, fails or is inconclusive, on what statistic and unit."""

    test: str
    statistic: str
    unit: str
    passes: str
    fails: str
    inconclusive: str
    multiplicity: str


_HOLM = "fail: Holm over the hypothesis's rows; pass: none (all rows must pass)"
_OTHERWISE = "otherwise (not significant, or no interval excluding 0)"
_WRONG_SIGN = "Holm-corrected p_against < α: significantly of the wrong sign (with an equivalence margin m: below m)"

#: the per-test rule table (module docstring); ``p_for``/``p_against`` are one-sided, in the predicted direction
RULES: tuple[Rule, ...] = (
    Rule("kendall", "Kendall τ_b over runs (Jiang 2020)",
         "configuration: permutations move configurations with their seeds, shuffle seeds within one; bootstrap "
         "resamples configurations (BCa, else percentile)",
         "p_for < α and the interval is defined and excludes 0 on the predicted side", _WRONG_SIGN, _OTHERWISE,
         _HOLM),
    Rule('kendall, over = "steps"', "mean over configurations of the per-run τ along training",
         "configuration: per-run τ averaged over its seeds; t test over configurations",
         "p_for < α and the t interval excludes 0 on the predicted side", _WRONG_SIGN, _OTHERWISE, _HOLM),
    Rule("psi", "granulated Kendall Ψ = mean of ψ_i over axes (Jiang 2020)",
         "configuration: permutations within strata of the other axes; configuration bootstrap",
         "every ψ_i significant (p_for = max_i p_i < α) and Ψ's interval excludes 0",
         "Holm-corrected p_against < α, p_against = Bonferroni over axes: some ψ_i of the wrong sign",
         _OTHERWISE, _HOLM),
    Rule("cmi, cmi_pgdl", "signed conditional MI, min over conditioning sets S (Jiang 2020; PGDL 2020)",
         "configuration: permutations within strata of θ_S",
         "every Î_S significantly positive (p_for = max_S p_S < α); no interval",
         "Holm-corrected p_against < α, p_against = Bonferroni over S: some Î_S significantly negative",
         "otherwise (unsigned MI cannot pass)", _HOLM),
    Rule("robust_sign_error (opt-in: not a default test)",
         "max over environments of the weighted sign-error (Dziugaite 2020); p90, mean",
         "environment: U-statistic Hoeffding bound over run pairs, k = min seeds of its two configurations; "
         "environments with ESS < 12 left out",
         "every environment significantly below 1/2 (p_for = max < α; needs 2^-k < α: k >= 5 at 5%; passed for "
         "0-25% of true drivers over 3-12 configurations × 2-10 seeds, benchmarks/calibration.py)",
         "Holm-corrected p_against < α, p_against = Holm's first step over environments: some environment "
         "significantly above 1/2 (never the max itself)", "otherwise", _HOLM),
    Rule("partial_rank", "partial rank correlation given the confounders",
         "configuration: Freedman–Lane permutation with configuration blocks; configuration bootstrap",
         "p_for < α and the interval is defined and excludes 0 on the predicted side",
         _WRONG_SIGN + "; never on non-significance or on the marginal correlation", _OTHERWISE, _HOLM),
    Rule("fit", "the law fitted on `fit_on` (every run if unset): R²_rel against its null (descriptive); gain F "
         "test on configuration means; lack-of-fit F test against pure error; declared constraints",
         "configuration: configuration-mean residuals for the gain and the Wald t intervals (at 1 − 2α); pure "
         "error from the replicate seeds of each configuration",
         "the gain p < α, the lack of fit testable (configurations > parameters, replicate seeds) with p >= α, "
         "and every constraint's interval on its side (its p_for < α); p_for = the largest of these p-values",
         "Holm-corrected p_against < α, p_against = Bonferroni over the lack-of-fit p and each constraint's "
         "one-sided p for the wrong side (min × their number)",
         "otherwise (no gain shown, lack of fit untestable, or significant at α only before correction, or a "
         "constraint's interval straddling its bound)", _HOLM),
    Rule("out_of_setting", "geometric-mean MSE ratio law/null, fitted on `fit_on`, per other environment",
         "configuration of the predicted environment: paired t test of log(MSE/MSE_null) over them",
         "p_for < α: the law's MSE significantly below the null's (its ratio interval below 1)",
         "Holm-corrected p_against < α: the law's MSE significantly above the null's", "otherwise", _HOLM),
    Rule("event_order", "mean lag step(B) − step(A): the mean over configurations of their mean lag",
         "configuration: each configuration's lags averaged over its seeds; one-sample t test over configurations "
         "(exact sign test when they do not vary; runs when the sweep is one configuration)",
         "p_for < α: the mean lag is above −tolerance (its t interval's lower bound too)",
         "Holm-corrected p_against < α: the mean lag is below −tolerance (B first)",
         "otherwise", _HOLM),
    Rule("tost", "difference of means between two levels (TOST, Schuirmann 1987)",
         "configuration: each level's values averaged within their configuration, pooled two-sample t over the "
         "configuration means (paired by seed if declared: the configuration means of the differences, "
         "one-sample t); runs when each level is one configuration",
         "TOST p_for < α: the (1 − 2α) interval inside ±margin",
         "Holm-corrected p_against < α: min of the one-sided t tests of difference > margin and < −margin (the "
         "(1 − 2α) interval wholly outside ±margin)", "otherwise", _HOLM),
    Rule("verdict", "all rows of the hypothesis", "its rows'",
         "supported: every row passes and every tested control is beaten (Kendall: the interval of "
         "τ(quantity) − |τ(control)| lies above 0)", "falsified: some row fails",
         "inconclusive: otherwise; the reason names what stood in the way and which controls were (not) tested",
         "Holm within the hypothesis over every row's p_against (a row with several: min × their number); "
         "intersection–union (support)"),
)  # fmt: skip


def rules_table() -> pd.DataFrame:
    """:data:`RULES` as a frame (one row per test), e.g. for a report or ``print(rules_table().to_string())``."""
    return pd.DataFrame([r.__dict__ for r in RULES])


def rules_markdown() -> str:
    """:data:`RULES` as a Markdown table (the README's falsification section shows exactly this text)."""
    frame = rules_table()
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.to_numpy()]
    return "\n".join(lines)


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class RowKey:
    """One test row of a hypothesis: its test, subject, role (``quantity``, ``control``, ``comparison``) and
    environment; unique within the hypothesis (the columns of the same names in the test table)."""

    test: str
    subject: str
    role: str
    environment: str = "all"

    def describe(self) -> str:
        where = "" if self.environment == "all" else f" in {self.environment}"
        return f"{self.test} ({self.role} {self.subject}{where})"


@dataclass(frozen=True)
class HypothesisVerdict:
    """The verdict on one hypothesis with its one-sentence reason and the row that decided it (``decided_by``):
    the first failing row of a falsified hypothesis, the row or control comparison that stood in the way of an
    inconclusive one; None when every row was needed (supported: all passed, an intersection–union test) or when
    no row could be computed (the reason says what was missing)."""

    hypothesis: str
    verdict: Verdict
    reason: str
    decided_by: RowKey | None = None


@dataclass(frozen=True)
class ControlsTested:
    """Which declared controls were compared with the quantity, and why the others were not."""

    declared: tuple[str, ...]
    tested: tuple[str, ...] = ()
    untested: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.declared:
            return "no negative control was declared (the file sets controls = []), so it was compared with none"
        skipped = "; ".join(f"{c} ({why})" for c, why in self.untested.items())
        if not self.tested:
            return f"it was compared with no negative control: {skipped}"
        beaten = f"beat the controls {', '.join(self.tested)} on every test they ran"
        return beaten + (f"; not tested: {skipped}" if skipped else "")


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def p_for_text(p: float) -> str:
    """How a reason quotes a row's one-sided p-value for the prediction (uncorrected: support is an
    intersection–union test)."""
    return f"raw p for = {_fmt(p)}"


def p_against_text(p: float) -> str:
    """How a reason quotes a row's p-value against the prediction, Holm-adjusted within the hypothesis."""
    return f"Holm-adjusted p against = {_fmt(p)}"


def _where(environment: str) -> str:
    return "" if environment == "all" else f" in environment {environment}"


def _aligned_interval(result: TestResult, direction: int) -> tuple[float, float]:
    low, high = result.conf_int()
    return (low, high) if direction > 0 else (-high, -low)


def evidence(test: Test, result: TestResult, direction: int, margin: float | None = None) -> tuple[float, float]:
    """One-sided ``(p_for, p_against)`` of a result for a prediction in ``direction`` (+1 increasing, −1
    decreasing): see :data:`RULES`. With an equivalence ``margin``, Kendall's and the partial correlation's
    p-value against is that of "below the margin". A row with several p-values against (Ψ's axes, CMI's
    conditioning sets, the sign-error's environments, a law's lack of fit and constraints) gives their minimum
    times their number (Bonferroni within the row), and a row that must meet several conditions to pass gives
    the largest of their p-values for it; NaN where the row has none."""
    d = result.details
    margin = margin if test in (Test.KENDALL, Test.PARTIAL) else None
    if test in (Test.KENDALL, Test.PSI, Test.PARTIAL):
        if direction > 0:
            against = d.get("p below margin") if margin else d.get("p any less", result.p_less)
            return result.p_greater, float(np.nan if against is None else against)
        against = d.get("p above -margin") if margin else d.get("p any greater", result.p_greater)
        return result.p_less, float(np.nan if against is None else against)
    if test in (Test.CMI, Test.CMI_PGDL):  # computed signed, in the predicted direction
        return result.p_greater, float(d.get("p any less", result.p_less))
    if test is Test.ROBUST:
        return result.p_less, float(d.get("p any greater", np.nan))
    if test is Test.FIT:
        return _law_evidence(result)
    if test in (Test.OUT_OF_SETTING, Test.EVENT):  # the law predicts better / the lag is above -tolerance
        return (result.p_less, result.p_greater) if test is Test.OUT_OF_SETTING else (result.p_greater, result.p_less)
    if test is Test.TOST:
        return result.pvalue, float(d.get("p outside margin", np.nan))
    return result.pvalue, np.nan


def _law_evidence(result: TestResult) -> tuple[float, float]:
    """A fit's ``(p_for, p_against)``: for, the largest of the gain's p and each constraint's p for its side (all
    must hold); against, Bonferroni over the lack-of-fit p and each constraint's p for the wrong side."""
    lof = getattr(result, "lack_of_fit", None)
    checks = getattr(result, "constraints", ())
    p_for = max([result.pvalue, *(c.p_for for c in checks)], key=lambda p: np.inf if np.isnan(p) else p)
    against = [p for p in [np.nan if lof is None else lof.pvalue, *(c.p_against for c in checks)] if np.isfinite(p)]
    return float(p_for), float(min(1.0, len(against) * min(against))) if against else np.nan


def _interval_text(result: TestResult) -> str:
    how = result.details.get("interval", "")
    note = f", {how}" if how and how != "BCa" else ""
    return f"[{_fmt(result.low)}, {_fmt(result.high)}{note}]"


def _correlation(
    name: str, result: TestResult, p_for: float, p_against: float, alpha: float, direction: int, margin, where: str
) -> Judgement:
    """The shared rule of Kendall τ (over runs or steps), Ψ and the partial rank correlation."""
    stat = result.statistic
    if p_against < alpha:
        what = f"significantly below the margin {margin:g}" if margin else "significantly of the wrong sign"
        return Judgement(Outcome.FAIL, f"{name}{where} = {_fmt(stat)} is {what} ({p_against_text(p_against)})")
    low, high = _aligned_interval(result, direction)
    defined = bool(np.isfinite(low) and np.isfinite(high))
    if p_for < alpha and defined and low > 0:
        return Judgement(Outcome.PASS, f"{name}{where} = {_fmt(stat)} {_interval_text(result)} ({p_for_text(p_for)})")
    if p_for < alpha and not defined:
        why = result.details.get("interval", "no interval")
        return Judgement(
            Outcome.INCONCLUSIVE,
            f"{name}{where} = {_fmt(stat)} is significant ({p_for_text(p_for)}) but has no interval: {why}",
        )
    if p_for < alpha:
        return Judgement(
            Outcome.INCONCLUSIVE,
            f"{name}{where} = {_fmt(stat)} is significant ({p_for_text(p_for)}) but "
            f"its interval {_interval_text(result)} includes 0",
        )
    return Judgement(
        Outcome.INCONCLUSIVE,
        f"{name}{where} = {_fmt(stat)} is not significant ({p_for_text(p_for)}; {p_against_text(p_against)})",
    )


def judge(
    hypothesis: Hypothesis,
    test: Test,
    result: TestResult,
    p_against: float = np.nan,
    environment: str = "all",
) -> Judgement:
    """Judge one test of the hypothesis's own quantity (:data:`RULES`). ``p_against`` is the row's p-value against
    the prediction, Holm-corrected over the hypothesis's rows (NaN: none)."""
    a, s, where = hypothesis.alpha, hypothesis.prediction.direction, _where(environment)
    margin = hypothesis.equivalence_margin
    stat = result.statistic
    p_for = evidence(test, result, s, margin)[0]
    p_for, p_against = (1.0 if not np.isfinite(v) else v for v in (p_for, p_against))
    if test is Test.FIT:
        return _judge_fit(a, result, p_against)
    if test is Test.OUT_OF_SETTING:
        return _judge_out_of_setting(a, result, p_for, p_against, where)
    if not np.isfinite(stat):
        why = result.details.get("why")
        return Judgement(
            Outcome.INCONCLUSIVE, f"{test.value}{where} is undefined on these runs" + (f": {why}" if why else "")
        )
    if test is Test.KENDALL:
        return _correlation("Kendall tau", result, p_for, p_against, a, s, margin, where)
    if test is Test.PSI:
        return _correlation("granulated Psi", result, p_for, p_against, a, s, None, where)
    if test is Test.PARTIAL:
        given = ", ".join(hypothesis.confounders) or "nothing"
        return _correlation(f"partial rank correlation given {given}", result, p_for, p_against, a, s, margin, where)
    if test in (Test.CMI, Test.CMI_PGDL):
        signed = f"signed {test.value}{where} = {_fmt(stat)}"
        return _by_evidence(
            p_for, p_against, a,
            against=f"{signed}: the quantity tracks the outcome the other way ({p_against_text(p_against)})",
            supports=f"{signed} ({p_for_text(p_for)})",
            neither=f"{signed} is not significant ({p_for_text(p_for)})",
        )  # fmt: skip
    if test is Test.ROBUST:
        worst = result.details.get("worst environment", "?")
        figures = (
            f"robust sign-error {_fmt(stat)} (p90 {_fmt(result.details.get('all: p90', np.nan))}, mean "
            f"{_fmt(result.details.get('all: mean', np.nan))}, {result.details.get('environments kept')} "
            f"environments)"
        )
        return _by_evidence(
            p_for, p_against, a,
            against=f"{figures}: some environment is significantly worse than a coin flip "
                    f"(worst: {worst}; {p_against_text(p_against)})",
            supports=f"{figures}: every environment is significantly better than a coin flip ({p_for_text(p_for)})",
            neither=f"{figures}: not every environment is shown to beat a coin flip ({p_for_text(p_for)}; worst: "
                    f"{worst})",
        )  # fmt: skip
    if test is Test.EVENT:
        tol = hypothesis.prediction.tolerance
        lags = f"mean lag {_fmt(stat)} steps {_units(result)}"
        if gaps := result.details.get("runs without a lag"):
            lags += f" ({gaps})"
        return _by_evidence(
            p_for, p_against, a,
            against=f"the second event comes first by more than {tol:g} steps: {lags} ({p_against_text(p_against)})",
            supports=f"{lags} > -{tol:g} ({p_for_text(p_for)})",
            neither=f"{lags}: the event order is not significant ({p_for_text(p_for)}; {p_against_text(p_against)})",
        )  # fmt: skip
    # TOST
    m, units = hypothesis.equivalence_margin, _units(result)
    return _by_evidence(
        p_for, p_against, a,
        against=f"the difference {_fmt(stat)} lies significantly outside the margin {m:g} {units} "
                f"({p_against_text(p_against)})",
        supports=f"TOST shows |difference| < {m:g} {units} ({p_for_text(p_for)})",
        neither=f"equivalence within {m:g} is not shown {units} (difference {_fmt(stat)}; {p_for_text(p_for)})",
    )  # fmt: skip


def _by_evidence(
    p_for: float, p_against: float, alpha: float, *, against: str, supports: str, neither: str
) -> Judgement:
    """The one rule for a test without an interval (module docstring): fail on significant evidence against the
    prediction, pass on significant evidence for it, else inconclusive; each text is that outcome's reason."""
    if p_against < alpha:
        return Judgement(Outcome.FAIL, against)
    if p_for < alpha:
        return Judgement(Outcome.PASS, supports)
    return Judgement(Outcome.INCONCLUSIVE, neither)


def _units(result: TestResult) -> str:
    """'over G configurations' or 'over n runs': the units of an event order's or an equivalence's test."""
    configurations = str(result.details.get("unit", "")).startswith("configuration")
    return f"over {result.n} {'configurations' if configurations else 'runs'}"


def _judge_fit(alpha: float, result: TestResult, p_against: float) -> Judgement:
    """fit fails iff the row's p against (Bonferroni over its lack-of-fit p and each constraint's wrong-side p,
    Holm-corrected over the hypothesis's rows: ``p_against``) is below α; passes iff the law beats the null on
    configuration means (its gain p < α), its lack of fit is testable and not significant at raw α, and every
    constraint's interval (at 1 − 2α) lies on the declared side; else inconclusive."""
    if "error" in result.details:
        return Judgement(Outcome.INCONCLUSIVE, result.details["error"])
    lof = getattr(result, "lack_of_fit", None)
    checks = getattr(result, "constraints", ())
    p = result.pvalue
    lof_p = np.nan if lof is None else lof.pvalue
    lof_text = "" if lof is None or not np.isfinite(lof_p) else (
        f"lack-of-fit F{(lof.details['df lack of fit'], lof.details['df pure error'])} = {_fmt(lof.statistic)}, "
        f"raw p against = {_fmt(lof_p)}"
    )  # fmt: skip
    if p_against < alpha:  # name the check with the smallest p against
        worst = min(checks, key=lambda c: c.p_against if np.isfinite(c.p_against) else np.inf, default=None)
        corrected = f"{p_against_text(p_against)}, after Bonferroni over the row's checks"
        if worst is not None and not worst.p_against >= (lof_p if np.isfinite(lof_p) else np.inf):
            return Judgement(Outcome.FAIL, f"the constraint {worst.describe()} ({corrected})")
        return Judgement(
            Outcome.FAIL, f"the configuration means depart from the law beyond seed noise ({lof_text}; {corrected})"
        )
    gain = f"R2_rel = {_fmt(result.statistic)}; gain over the null on configuration means: {p_for_text(p)}"
    if not np.isfinite(p):
        return Judgement(Outcome.INCONCLUSIVE, f"the law's gain over the null is untestable: {result.details['gain']}")
    if not p < alpha:
        return Judgement(Outcome.INCONCLUSIVE, f"the law's gain over the null is not significant ({gain})")
    if not np.isfinite(lof_p):
        why = lof.details.get("untestable", "not computed") if lof is not None else "not computed"
        return Judgement(Outcome.INCONCLUSIVE, f"it beats the null ({gain}), but its lack of fit is untestable: {why}")
    if lof_p < alpha:
        return Judgement(
            Outcome.INCONCLUSIVE,
            f"it beats the null ({gain}), but its lack of fit is significant at α ({lof_text}), though not after "
            f"Bonferroni over the row's checks and Holm ({p_against_text(p_against)})",
        )
    undecided = [c for c in checks if c.side is not Side.RIGHT]
    if undecided:
        return Judgement(Outcome.INCONCLUSIVE, f"it beats the null ({gain}), but {undecided[0].describe()}")
    held = "".join(f"; {c.constraint.text} holds (interval [{_fmt(c.low)}, {_fmt(c.high)}])" for c in checks)
    return Judgement(Outcome.PASS, f"the law beats the null ({gain}) with no lack of fit ({lof_text}){held}")


def _judge_out_of_setting(alpha: float, result: TestResult, p_for: float, p_against: float, where: str) -> Judgement:
    """out_of_setting passes iff the law's MSE is significantly below the null's (one-sided paired t test of the
    log ratios over the predicted environment's configurations, ``p_for`` < α), fails iff significantly above
    (``p_against``, Holm-corrected over the hypothesis's rows, < α); else inconclusive."""
    if "error" in result.details:
        return Judgement(Outcome.INCONCLUSIVE, f"out of setting{where}: {result.details['error']}")
    m = result.details.get("configurations")
    ratio = f"geometric-mean MSE/MSE_null = {_fmt(result.statistic)} (paired over {m} configurations"
    if p_against < alpha:
        return Judgement(
            Outcome.FAIL, f"out of setting{where} the law predicts worse than the null: {ratio}, "
            f"{p_against_text(p_against)})",
        )  # fmt: skip
    if p_for < alpha:
        return Judgement(
            Outcome.PASS,
            f"out of setting{where} the law predicts better than the null: {ratio}, {p_for_text(p_for)})",
        )
    return Judgement(
        Outcome.INCONCLUSIVE,
        f"out of setting{where} the law's gain is not significant: {ratio}, {p_for_text(p_for)}; "
        f"{p_against_text(p_against)})",
    )


def beats_control(test: Test, quantity: TestResult, control: TestResult, direction: int, alpha: float = 0.05) -> bool:
    """Whether the quantity does better than a control on ``test`` (:func:`compare_with_control`'s verdict)."""
    return compare_with_control(test, quantity, control, direction, alpha)[0]


def compare_with_control(
    test: Test, quantity: TestResult, control: TestResult, direction: int, alpha: float = 0.05
) -> tuple[bool, str]:
    """Whether the quantity does better than a control on ``test``, and what the comparison showed (for the
    reason). For Kendall, ``control`` is the paired difference result D = direction·τ(quantity) − |τ(control)|
    (:func:`~bridge.stats.rank.kendall_tau_difference` or, along steps, :func:`~bridge.stats.steps.kendall_over_steps`
    with ``control``): its interval must be defined and lie above 0. A law must fit (or predict) significantly
    better than the same law in the control (one-sided at ``alpha``). Other tests compare the statistics (a
    control oriented the way it does best), which can only make support harder."""
    if test is Test.KENDALL:
        d = f"D = τ(quantity) − |τ(control)| = {_fmt(control.statistic)}"
        if not np.isfinite(control.statistic):
            why = control.details.get("why") or control.details.get("interval") or "no defined τ on these runs"
            return False, f"D = τ(quantity) − |τ(control)| is undefined: {why}"
        if not (np.isfinite(control.low) and np.isfinite(control.high)):
            return False, f"{d} has no interval: {control.details.get('interval', 'none')}"
        better = bool(control.low > 0)
        return better, f"{d}, interval {_interval_text(control)} {'lies above' if better else 'does not lie above'} 0"
    if test in (Test.FIT, Test.OUT_OF_SETTING):
        return _law_beats_control(quantity, control, alpha)
    q, c = quantity.statistic, control.statistic
    shown = f"{test.value} {_fmt(q)} for the quantity vs {_fmt(c)} for the control"
    if not np.isfinite(c):
        return True, f"{test.value} is undefined for the control"
    if test in (Test.PSI, Test.PARTIAL):
        return bool(direction * q > abs(c)), shown + " (|control| is the bar)"
    if test is Test.ROBUST:
        return bool(q < c), shown + " (lower is better)"
    return bool(q > c), shown  # CMI scores


def _law_beats_control(quantity: TestResult, control: TestResult, alpha: float) -> tuple[bool, str]:
    """The law in the quantity beats the same law in a control iff its per-configuration loss (squared mean
    residual for fit, MSE out of setting on the log scale) is significantly smaller: one-sided paired t test over
    the shared configurations at ``alpha``. A control whose law could not be fitted is beaten."""

    log = not isinstance(quantity, FitResult)  # out-of-setting MSEs differ in scale between configurations

    def loss(result: TestResult) -> pd.Series | None:
        if isinstance(result, FitResult):
            return None if result.configuration_residuals is None else result.configuration_residuals**2
        losses = getattr(result, "losses", None)
        return None if losses is None else losses["model"]

    mine, theirs = loss(quantity), loss(control)
    if mine is None or theirs is None:
        beaten = mine is not None
        return beaten, "the law could not be fitted in the control" if beaten else "the law could not be fitted"
    compared = paired_ratio_test(mine, theirs, log=log, alternative="less")
    what = "geometric-mean" if log else "mean"
    return bool(compared.pvalue < alpha), (
        f"{what} per-configuration loss ratio quantity/control = {_fmt(compared.statistic)} over "
        f"{compared.n} configurations, one-sided paired t test raw p = {_fmt(compared.pvalue)}"
    )


def decide(
    hypothesis: Hypothesis,
    judged: list[tuple[RowKey, Judgement]],
    controls_as_good: list[tuple[RowKey, str]],
    controls: ControlsTested | None = None,
    *,
    untested: str = "no test could be run on the runs in scope",
) -> HypothesisVerdict:
    """Combine the judged rows of the quantity and the ties with controls (``(row, what the comparison showed)``)
    into a verdict whose ``decided_by`` names the deciding row: the first failing row in the order given
    (:func:`bridge.falsification.falsify_tables` gives the strongest evidence against first), else the first
    inconclusive row, else the first tie; ``controls`` says which declared controls were tested (for an honest
    reason) and ``untested`` why no row could be judged, if none was."""
    name = hypothesis.name
    controls = controls or ControlsTested(hypothesis.controls, hypothesis.controls)
    if not judged:
        return HypothesisVerdict(name, Verdict.INCONCLUSIVE, untested.rstrip(".") + ".")
    for row, j in judged:
        if j.outcome is Outcome.FAIL:
            return HypothesisVerdict(name, Verdict.FALSIFIED, f"{row.test}: {j.reason}.", row)
    for row, j in judged:
        if j.outcome is Outcome.INCONCLUSIVE:
            return HypothesisVerdict(name, Verdict.INCONCLUSIVE, f"{row.test}: {j.reason}.", row)
    if controls_as_good:
        row, shown = controls_as_good[0]
        return HypothesisVerdict(
            name,
            Verdict.INCONCLUSIVE,
            f"{row.test}: {hypothesis.quantity} is not shown to do better than the control {row.subject} ({shown}), "
            "so it cannot be supported.",
            row,
        )
    tests = ", ".join(dict.fromkeys(row.test for row, _ in judged))
    return HypothesisVerdict(name, Verdict.SUPPORTED, f"{hypothesis.quantity} passed {tests}; {controls.describe()}.")
