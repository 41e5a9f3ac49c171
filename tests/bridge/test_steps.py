"""Claims over training (scope.over = "steps"): per-run Kendall tau, configuration means, t test."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bridge import HypothesisFileError, Over, Verdict, falsify_tables, parse_hypotheses
from bridge.stats import kendall_over_steps, per_run_tau


def _steps() -> pd.DataFrame:
    """4 configurations x 2 seeds x 6 steps; q rises, y follows q with noise."""
    rows = []
    rng = np.random.default_rng(0)
    for config in range(4):
        for seed in range(2):
            y = np.arange(6.0) + rng.normal(0, 1.5, 6)
            for step in range(6):
                rows.append({"run_id": f"r{config}-{seed}", "config": config, "step": step, "q": float(step),
                             "y": y[step], "c": rng.normal()})  # fmt: skip
    return pd.DataFrame(rows)


def test_configuration_means_and_t_test_by_hand():
    frame = _steps()
    taus = per_run_tau(frame, "q", "y")
    expected_tau = {r: stats.kendalltau(p["q"], p["y"]).statistic for r, p in frame.groupby("run_id")}
    assert taus.to_dict() == pytest.approx(expected_tau)
    means = frame.drop_duplicates("run_id").assign(tau=lambda d: d["run_id"].map(taus)).groupby("config")["tau"].mean()
    res = kendall_over_steps(frame, "q", "y", groups=frame["config"], confidence_level=0.9)
    ref = stats.ttest_1samp(means, 0.0, alternative="greater")
    assert res.statistic == pytest.approx(means.mean()) and res.n == 4
    assert res.p_greater == pytest.approx(ref.pvalue)
    half = stats.t.ppf(0.95, 3) * means.std(ddof=1) / 2
    assert res.conf_int() == pytest.approx((means.mean() - half, means.mean() + half))
    # seeds are not units: one configuration mean per configuration, whatever the number of seeds
    assert kendall_over_steps(frame, "q", "y", groups=frame["config"]).n == 4
    assert kendall_over_steps(frame, "q", "y").n == 8  # no configurations given: every run its own


def test_no_spread_uses_the_exact_sign_test_and_controls_are_oriented():
    frame = _steps().assign(y=lambda d: d["q"])  # every run perfectly monotone: tau = 1 everywhere
    res = kendall_over_steps(frame, "q", "y", groups=frame["config"])
    assert res.statistic == pytest.approx(1.0) and res.p_greater == 0.5**4 and res.low == res.high
    mirrored = frame.assign(c=-frame["q"])  # a control tracking the outcome as well, with the other sign
    tie = kendall_over_steps(mirrored, "q", "y", groups=mirrored["config"], control="c")
    assert tie.statistic == pytest.approx(0.0) and not tie.low > 0
    noise = kendall_over_steps(frame, "q", "y", groups=frame["config"], control="c")
    assert noise.statistic > 0.5 and noise.low > 0


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ('over = "epochs"', r"scope\.over: must be one of \['runs', 'steps'\]"),
        ('over = "steps"\n[hypothesis.prediction]\nkind = "functional"\nexpression = "y = a*q"',
         "scope.over: 'steps' applies to a 'rank' prediction"),
    ],
)  # fmt: skip
def test_over_is_validated(edit, match):
    text = f'[[hypothesis]]\nname = "h"\nquantity = "q"\noutcome = "y"\n[hypothesis.scope]\n{edit}\n'
    if "prediction" not in edit:
        text += '[hypothesis.prediction]\nkind = "rank"\n'
    with pytest.raises(HypothesisFileError, match=match):
        parse_hypotheses(text)


def test_over_steps_defaults_and_refusals():
    base = '[[hypothesis]]\nname = "h"\nquantity = "q"\noutcome = "y"\n{extra}\nscope = {{ over = "steps" }}\n'
    base += 'prediction = {{ kind = "rank" }}\n'
    (h,) = parse_hypotheses(base.format(extra=""))
    assert h.scope.over is Over.STEPS and [t.value for t in h.tests] == ["kendall"]
    with pytest.raises(HypothesisFileError, match="'psi' does not apply to a rank prediction over steps"):
        parse_hypotheses(base.format(extra='tests = ["psi"]'))
    with pytest.raises(HypothesisFileError, match="hypothesis\\[0\\]\\.at: a claim over steps uses every"):
        parse_hypotheses(base.format(extra='at = "final"'))
    with pytest.raises(HypothesisFileError, match="margin is a correlation in \\(0, 1\\)"):
        parse_hypotheses(base.format(extra="equivalence_margin = 2.0"))


def test_a_claim_along_training_is_decided_within_runs():
    """Old rule: a rank claim was tested across runs at one step only. Here q tracks the error along training
    within every run (6 configurations x 3 seeds), while the final values across runs are unrelated: over runs
    the claim is not supported; over steps it is."""
    rng = np.random.default_rng(4)
    rows = []
    for config in range(6):
        for seed in range(3):
            level = rng.normal(0, 5)  # a run-level offset unrelated to the outcome's final value
            error = 1.0 / (1.0 + np.arange(8.0)) + rng.normal(0, 0.02, 8)
            for step in range(8):
                q = level + 10 * error[step] + rng.normal(0, 0.05)
                rows.append({"run_id": f"r{config}-{seed}", "width": config, "step": step, "q": q,
                             "test_error": error[step]})  # fmt: skip
    frame = pd.DataFrame(rows)
    text = (
        'controls = []\n[[hypothesis]]\nname = "h"\nquantity = "q"\noutcome = "test_error"\ntests = ["kendall"]\n'
        'scope = {{ axes = ["width"]{over} }}\nprediction = {{ kind = "rank", direction = "increasing" }}\n'
    )
    across = parse_hypotheses(text.format(over=""))
    final = frame[frame["step"] == 7].reset_index(drop=True)
    assert falsify_tables(across, {"h": final}, n_resamples=199).verdict("h").verdict is not Verdict.SUPPORTED
    along = parse_hypotheses(text.format(over=', over = "steps"'))
    verdict = falsify_tables(along, {"h": frame}, n_resamples=199).verdict("h")
    assert verdict.verdict is Verdict.SUPPORTED, verdict.reason
