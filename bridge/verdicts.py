"""From test results to verdicts: each test row is judged pass / fail / inconclusive with a reason, then each
hypothesis is **supported**, **falsified** or **inconclusive**.

Rules (α is the hypothesis's level; p-values are Holm-corrected across every quantity test of the report):
- any failed test falsifies (the reason names the test and the environment);
- "supported" needs every test to pass *and* the quantity to do better than every negative control on every
  test that has a control comparison (Jeffares & van der Schaar 2025: a quantity no better than the prime
  count of its rounded weights explains nothing);
- everything else is inconclusive (the reason names the first test or control that stood in the way).
"""

from __future__ import annotations

from dataclasses import dataclass
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
class Judgement:
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class HypothesisVerdict:
    """The verdict on one hypothesis with its one-sentence reason."""

    hypothesis: str
    verdict: Verdict
    reason: str


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _where(environment: str) -> str:
    return "" if environment == "all" else f" in environment {environment}"


def _aligned_interval(result: TestResult, direction: int) -> tuple[float, float]:
    low, high = result.conf_int()
    return (low, high) if direction > 0 else (-high, -low)


def judge(
    hypothesis: Hypothesis,
    test: Test,
    result: TestResult,
    p_corrected: float,
    environment: str = "all",
) -> Judgement:
    """Judge one test of the hypothesis's own quantity (see the module docstring for the rules)."""
    a, s, where = hypothesis.alpha, hypothesis.prediction.direction, _where(environment)
    q = hypothesis.quantity
    stat, p = result.statistic, p_corrected
    if test is Test.FIT:
        return _judge_fit(a, result, p)
    if test is Test.OUT_OF_SETTING:
        return _judge_out_of_setting(a, result, p, where)
    if not np.isfinite(stat):
        return Judgement(Outcome.INCONCLUSIVE, f"{test.value}{where} is undefined on these runs")
    if test is Test.KENDALL:
        low, high = _aligned_interval(result, s)
        margin = hypothesis.equivalence_margin or 0.0
        if p < a and s * stat > 0 and not low <= 0:
            return Judgement(Outcome.PASS, f"Kendall tau{where} = {_fmt(stat)} (p = {_fmt(p)})")
        if high < margin and (p < a or margin > 0):
            return Judgement(
                Outcome.FAIL,
                f"Kendall tau{where} = {_fmt(stat)} has its interval [{_fmt(result.low)}, {_fmt(result.high)}] "
                f"{'on the wrong side of 0' if high < 0 else f'below the margin {margin:g}'}",
            )
        if p < a and s * stat <= 0:  # significant, but against the prediction; no interval excluding 0
            interval = (
                f"its interval [{_fmt(result.low)}, {_fmt(result.high)}] includes 0"
                if np.isfinite(result.low) and np.isfinite(result.high)
                else "it has no configuration interval (too few configurations)"
            )
            reason = f"Kendall tau{where} = {_fmt(stat)} has the wrong sign (p = {_fmt(p)}) but {interval}"
            return Judgement(Outcome.INCONCLUSIVE, reason)
        return Judgement(Outcome.INCONCLUSIVE, f"Kendall tau{where} = {_fmt(stat)} is not significant (p = {_fmt(p)})")
    if test is Test.PSI:
        if s * stat > 0:
            return Judgement(Outcome.PASS, f"granulated Psi = {_fmt(stat)}")
        return Judgement(Outcome.INCONCLUSIVE, f"granulated Psi = {_fmt(stat)} has the wrong sign")
    if test in (Test.CMI, Test.CMI_PGDL):
        return Judgement(Outcome.PASS if stat > 0 else Outcome.INCONCLUSIVE, f"{test.value} = {_fmt(stat)}")
    if test is Test.ROBUST:
        worst = result.details.get("worst environment", "?")
        if stat < 0.5:
            return Judgement(Outcome.PASS, f"robust sign-error {_fmt(stat)} < 0.5")
        return Judgement(Outcome.FAIL, f"robust sign-error {_fmt(stat)} is no better than a coin flip (worst: {worst})")
    if test is Test.PARTIAL:
        given = ", ".join(hypothesis.confounders) or "nothing"
        if p < a and s * stat > 0:
            return Judgement(Outcome.PASS, f"partial rank correlation given {given} = {_fmt(stat)} (p = {_fmt(p)})")
        marginal = result.details.get("marginal p", 1.0) < a and s * result.details.get("marginal r", 0.0) > 0
        if marginal or (p < a and s * stat < 0):
            return Judgement(
                Outcome.FAIL,
                f"{q} tracks {hypothesis.outcome} only through {given}: partial rank correlation {_fmt(stat)} "
                f"(p = {_fmt(p)})",
            )
        return Judgement(Outcome.INCONCLUSIVE, f"partial rank correlation {_fmt(stat)} is not significant")
    if test is Test.EVENT:
        tol = hypothesis.prediction.tolerance
        if p < a:
            return Judgement(Outcome.PASS, f"median lag {_fmt(stat)} steps > -{tol:g} (sign test p = {_fmt(p)})")
        if result.high < -tol:
            return Judgement(Outcome.FAIL, f"the second event comes first: median lag {_fmt(stat)} steps")
        return Judgement(Outcome.INCONCLUSIVE, f"the event order is not significant (p = {_fmt(p)})")
    # TOST
    m = hypothesis.equivalence_margin
    if p < a:
        return Judgement(Outcome.PASS, f"TOST shows |difference| < {m:g} (p = {_fmt(p)})")
    if result.low > m or result.high < -m:
        return Judgement(Outcome.FAIL, f"the difference {_fmt(stat)} lies outside the margin {m:g}")
    return Judgement(Outcome.INCONCLUSIVE, f"equivalence within {m:g} is not shown (p = {_fmt(p)})")


def _judge_fit(alpha: float, result: TestResult, p: float) -> Judgement:
    """fit passes iff the law beats the null significantly (on configuration means, ``p`` as corrected across the
    report), shows no significant lack of fit (testable: df >= 1 both ways; its own p at α) and every declared
    constraint's interval (at 1 − α) lies on the declared side; fails iff significant lack of fit or a
    constraint's interval lies wholly on the wrong side; else inconclusive."""
    if "error" in result.details:
        return Judgement(Outcome.INCONCLUSIVE, result.details["error"])
    lof = getattr(result, "lack_of_fit", None)
    checks = getattr(result, "constraints", ())
    if lof is not None and lof.pvalue < alpha:
        df = (lof.details["df lack of fit"], lof.details["df pure error"])
        return Judgement(
            Outcome.FAIL,
            f"the configuration means depart from the law beyond seed noise (lack-of-fit F{df} = "
            f"{_fmt(lof.statistic)}, p = {_fmt(lof.pvalue)})",
        )
    wrong = [c for c in checks if c.side is Side.WRONG]
    if wrong:
        return Judgement(Outcome.FAIL, f"the constraint {wrong[0].describe()}")
    gain = f"R2_rel = {_fmt(result.statistic)}, p = {_fmt(p)} on configuration means"
    if not np.isfinite(p):
        return Judgement(Outcome.INCONCLUSIVE, f"the law's gain over the null is untestable: {result.details['gain']}")
    if not p < alpha:
        return Judgement(Outcome.INCONCLUSIVE, f"the law's gain over the null is not significant ({gain})")
    if lof is None or not np.isfinite(lof.pvalue):
        why = lof.details.get("untestable", "not computed") if lof is not None else "not computed"
        return Judgement(Outcome.INCONCLUSIVE, f"it beats the null ({gain}), but its lack of fit is untestable: {why}")
    undecided = [c for c in checks if c.side is not Side.RIGHT]
    if undecided:
        return Judgement(Outcome.INCONCLUSIVE, f"it beats the null ({gain}), but {undecided[0].describe()}")
    held = "".join(f"; {c.constraint.text} holds (interval [{_fmt(c.low)}, {_fmt(c.high)}])" for c in checks)
    return Judgement(
        Outcome.PASS, f"the law beats the null ({gain}) with no lack of fit (p = {_fmt(lof.pvalue)}){held}"
    )


def _judge_out_of_setting(alpha: float, result: TestResult, p: float, where: str) -> Judgement:
    """out_of_setting passes iff the law's MSE is significantly below the null's (paired over the out-of-setting
    configurations), fails iff significantly above; else inconclusive."""
    if "error" in result.details:
        return Judgement(Outcome.INCONCLUSIVE, f"out of setting{where}: {result.details['error']}")
    m = result.details.get("configurations")
    ratio = f"geometric-mean MSE/MSE_null = {_fmt(result.statistic)} (p = {_fmt(p)}, paired over {m} configurations)"
    if p < alpha and result.statistic < 1:
        return Judgement(Outcome.PASS, f"out of setting{where} the law predicts better than the null: {ratio}")
    if p < alpha and result.statistic > 1:
        return Judgement(Outcome.FAIL, f"out of setting{where} the law predicts worse than the null: {ratio}")
    return Judgement(Outcome.INCONCLUSIVE, f"out of setting{where} the law's gain is not significant: {ratio}")


def beats_control(test: Test, quantity: TestResult, control: TestResult, direction: int) -> bool:
    """Whether the quantity does better than a control on ``test``. For Kendall, ``control`` is the
    :func:`~bridge.stats.rank.kendall_tau_difference` result (its interval must lie above 0)."""
    if test is Test.KENDALL:
        return bool(control.low > 0)
    if test in (Test.FIT, Test.OUT_OF_SETTING):
        return _law_beats_control(quantity, control)
    q, c = quantity.statistic, control.statistic
    if not np.isfinite(c):
        return True
    if test in (Test.PSI, Test.PARTIAL):
        return bool(direction * q > abs(c))
    if test is Test.ROBUST:
        return bool(q < c)
    return bool(q > c)  # CMI scores


def _law_beats_control(quantity: TestResult, control: TestResult) -> bool:
    """The law in the quantity beats the same law in a control iff its per-configuration loss (squared mean
    residual for fit, MSE out of setting on the log scale) is significantly smaller: one-sided paired t test over
    the shared configurations at 1 − confidence level. A control whose law could not be fitted is beaten."""

    log = not isinstance(quantity, FitResult)  # out-of-setting MSEs differ in scale between configurations

    def loss(result: TestResult) -> pd.Series | None:
        if isinstance(result, FitResult):
            return None if result.configuration_residuals is None else result.configuration_residuals**2
        losses = getattr(result, "losses", None)
        return None if losses is None else losses["model"]

    mine, theirs = loss(quantity), loss(control)
    if mine is None or theirs is None:
        return mine is not None
    compared = paired_ratio_test(mine, theirs, log=log, alternative="less")
    return bool(compared.pvalue < 1 - quantity.confidence_level)


def decide(
    hypothesis: Hypothesis, judged: list[tuple[str, str, Judgement]], controls_as_good: list[tuple[str, str]]
) -> HypothesisVerdict:
    """Combine ``(test, environment, judgement)`` rows and ``(test, control)`` ties into a verdict."""
    name = hypothesis.name
    if not judged:
        return HypothesisVerdict(name, Verdict.INCONCLUSIVE, "no test could be run on the runs in scope")
    for test, _, j in judged:
        if j.outcome is Outcome.FAIL:
            return HypothesisVerdict(name, Verdict.FALSIFIED, f"{test}: {j.reason}.")
    for test, _, j in judged:
        if j.outcome is Outcome.INCONCLUSIVE:
            return HypothesisVerdict(name, Verdict.INCONCLUSIVE, f"{test}: {j.reason}.")
    if controls_as_good:
        test, control = controls_as_good[0]
        return HypothesisVerdict(
            name,
            Verdict.INCONCLUSIVE,
            f"{test}: the control {control} did as well as {hypothesis.quantity}, so it cannot be supported.",
        )
    tests = ", ".join(dict.fromkeys(t for t, _, _ in judged))
    return HypothesisVerdict(
        name, Verdict.SUPPORTED, f"{hypothesis.quantity} passed {tests} and beat every control present."
    )
