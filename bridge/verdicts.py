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

from bridge.hypothesis import Hypothesis, Test
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
    if test is Test.FIT:
        evidence = p < a if np.isfinite(p) else result.details.get("delta AIC", np.nan) < -2
        if stat > 0 and evidence:
            return Judgement(Outcome.PASS, f"the fit beats the null (R2_rel = {_fmt(stat)})")
        if stat <= 0:
            return Judgement(Outcome.FAIL, f"the fit does no better than the null (R2_rel = {_fmt(stat)})")
        return Judgement(Outcome.INCONCLUSIVE, f"the fit's gain over the null is not significant (p = {_fmt(p)})")
    if test is Test.OUT_OF_SETTING:
        if stat < 1 and p < a:
            return Judgement(Outcome.PASS, f"out of setting{where} MSE/MSE_null = {_fmt(stat)}")
        if stat >= 1:
            return Judgement(
                Outcome.FAIL, f"out of setting{where} it predicts no better than the null (MSE ratio {_fmt(stat)})"
            )
        return Judgement(Outcome.INCONCLUSIVE, f"out of setting{where} the gain is not significant (p = {_fmt(p)})")
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


def beats_control(test: Test, quantity: TestResult, control: TestResult, direction: int) -> bool:
    """Whether the quantity does better than a control on ``test``. For Kendall, ``control`` is the
    :func:`~bridge.stats.rank.kendall_tau_difference` result (its interval must lie above 0)."""
    if test is Test.KENDALL:
        return bool(control.low > 0)
    q, c = quantity.statistic, control.statistic
    if not np.isfinite(c):
        return True
    if test in (Test.PSI, Test.PARTIAL):
        return bool(direction * q > abs(c))
    if test is Test.ROBUST:
        return bool(q < c)
    if test is Test.OUT_OF_SETTING:
        return bool(q < c)
    return bool(q > c)  # CMI scores, fit R2_rel


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
