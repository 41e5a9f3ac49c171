"""Simulated sweeps with a known functional truth, for calibrating the ``fit`` verdict (issue 10, item 5).

A sweep over ``n_configs`` weight decays (log-spaced over one decade, 1e-2 to 1e-1) with ``n_seeds`` seeds
each. The recorded quantity ``q`` lands near each configuration's weight decay with a configuration-level random
effect shared by its seeds and a small seed-level jitter: q = wd · exp(v_c + η), v_c ~ N(0, 0.3²),
η ~ N(0, 0.05²). The outcome:

- ``"true"``: test_error = 0.3 + 0.05 log q + ε (the law :data:`TRUE_LAW` holds for every configuration);
- ``"wrong"``: the same data, tested against :data:`WRONG_LAW` (linear in q; the issue's wrong law);
- ``"null"``: test_error = 0.3 + u_c + ε, no dependence on q, tested against :data:`TRUE_LAW`;

with seed noise ε ~ N(0, σ²), σ = 0.02, and configuration random effects u_c ~ N(0, τ²) added to the outcome
for every truth (``tau``; by default σ for the null and 0 for the laws). A configuration random effect in the
outcome is a departure of that configuration's mean from the law, which the lack-of-fit test is built to
detect: with ``tau > 0`` a "true" law is no longer true configuration by configuration, and the rate at which
it is falsified is the lack-of-fit test's power against that heterogeneity.

Use from a benchmark (``sys.path`` must hold ``tests/bridge``)::

    from synthetic_laws import law_verdict_rates
    law_verdict_rates("null", n_configs=6, n_seeds=3, n_sims=400, random_state=0)
    # -> {"supported": ..., "falsified": ..., "inconclusive": ..., "se at alpha": ..., "old supported": ...}
"""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
from scipy import stats

from bridge import Verdict, falsify_tables, parse_hypotheses

SIGMA = 0.02
TRUE_LAW = "test_error = a + b*log(q)"
WRONG_LAW = "test_error = a + b*q"
TRUTHS = ("true", "wrong", "null")


def simulate_law_runs(
    truth: str, n_configs: int, n_seeds: int, *, tau: float | None = None, random_state: int | None = None
) -> pd.DataFrame:
    """One simulated sweep (module docstring): columns weight_decay, seed, q, test_error, one row per run."""
    if truth not in TRUTHS:
        raise ValueError(f"The 'truth' parameter must be one of {TRUTHS}. Got {truth!r} instead.")
    tau = (SIGMA if truth == "null" else 0.0) if tau is None else tau
    rng = np.random.default_rng(random_state)
    wd = np.repeat(np.geomspace(1e-2, 1e-1, n_configs), n_seeds)
    config = np.repeat(np.arange(n_configs), n_seeds)
    q = wd * np.exp(rng.normal(0, 0.3, n_configs)[config] + rng.normal(0, 0.05, len(wd)))
    mean = 0.3 + (0.0 if truth == "null" else 0.05 * np.log(q))
    error = mean + rng.normal(0, tau, n_configs)[config] + rng.normal(0, SIGMA, len(wd))
    return pd.DataFrame({"weight_decay": wd, "seed": np.tile(np.arange(n_seeds), n_configs), "q": q,
                         "test_error": error})  # fmt: skip


def law_hypothesis(truth: str, *, alpha: float = 0.05):
    """The hypothesis tested on ``truth``'s data: :data:`WRONG_LAW` for "wrong", else :data:`TRUE_LAW`."""
    law = WRONG_LAW if truth == "wrong" else TRUE_LAW
    text = f"""
alpha = {alpha}
controls = []
[[hypothesis]]
name = "{truth}"
quantity = "q"
outcome = "test_error"
tests = ["fit"]
scope = {{ axes = ["weight_decay"] }}
[hypothesis.prediction]
kind = "functional"
expression = "{law}"
null = "test_error = a"
"""
    return parse_hypotheses(text)[0]


def old_rule_supported(r2_rel: float, n_runs: int, alpha: float = 0.05) -> bool:
    """The fit rule before issue 10 for a 2-parameter law against a constant: R²_rel > 0 and the run-level F test
    F = R²_rel / ((1 − R²_rel)/(n − 2)) significant, seeds counted as independent units."""
    if not 0 < r2_rel < 1:
        return bool(r2_rel >= 1)
    return bool(stats.f.sf(r2_rel / ((1 - r2_rel) / (n_runs - 2)), 1, n_runs - 2) < alpha)


def law_verdict_rates(
    truth: str,
    n_configs: int,
    n_seeds: int,
    *,
    n_sims: int = 200,
    tau: float | None = None,
    alpha: float = 0.05,
    random_state: int = 0,
) -> dict[str, float]:
    """Run the real engine (:func:`bridge.falsify_tables`) on ``n_sims`` simulated sweeps (seeds ``random_state``,
    ``random_state + 1``, ...) and return the rate of each verdict, the Monte-Carlo s.e. of a rate equal to α
    (``"se at alpha"``: the calibration targets read rate <= α + 2 s.e.) and, for comparison, the rate at which
    the old rule (:func:`old_rule_supported`) would have said "supported" (``"old supported"``)."""
    hypothesis = law_hypothesis(truth, alpha=alpha)
    counts = dict.fromkeys((v.value for v in Verdict), 0)
    old = 0
    gc.freeze()  # statsmodels' Holm calls gc.collect() each time: ~0.15 s with sympy's caches, ~0 once frozen
    try:
        for i in range(n_sims):
            runs = simulate_law_runs(truth, n_configs, n_seeds, tau=tau, random_state=random_state + i)
            report = falsify_tables([hypothesis], {truth: runs}, random_state=i)
            counts[report.verdict(truth).verdict.value] += 1
            old += old_rule_supported(float(report.to_frame()["statistic"].iloc[0]), len(runs), alpha)
    finally:
        gc.unfreeze()
    rates = {key: value / n_sims for key, value in counts.items()}
    return {**rates, "se at alpha": float(np.sqrt(alpha * (1 - alpha) / n_sims)), "old supported": old / n_sims}
