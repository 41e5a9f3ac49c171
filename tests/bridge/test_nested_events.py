"""Event orders and equivalences with configurations as their units (issue 10 items 2 and 8): on the boundary of
the claim, runs as units supported it far above α; configuration means hold α."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.descriptivestats import sign_test

from bridge import Verdict, falsify_tables, parse_hypotheses
from bridge.calibration import EQUIVALENCE_KINDS, EVENT_KINDS, EVENT_TOLERANCE, Design, calibrate, simulate, summarize
from bridge.stats import event_lag_test, tost

TARGET = 0.05 + 2 * np.sqrt(0.05 * 0.95 / 200)  # α + 2 s.e. over 200 sweeps


def _old_sign_test(lags: np.ndarray, tolerance: float) -> float:
    """The previous rule: one-sided sign test of the run lags' median against −tolerance."""
    m, p_two = sign_test(lags, mu0=-tolerance)
    return p_two / 2 if m > 0 else 1 - p_two / 2


def test_on_the_boundary_configurations_hold_alpha_where_runs_did_not():
    """6 configurations × 10 seeds, half the variance between configurations, 200 simulated sweeps (fixed seeds):
    an order whose mean lag is exactly −tolerance and an equivalence whose difference is exactly the margin."""
    old_order = new_order = old_equivalence = new_equivalence = 0
    for replication in range(200):
        sweep = simulate(Design(6, 10), replication)
        lags, width = sweep["lag_null"].to_numpy(), sweep["width"].to_numpy()
        old_order += _old_sign_test(lags, EVENT_TOLERANCE) < 0.05
        new_order += event_lag_test(lags, groups=width, tolerance=EVENT_TOLERANCE).p_greater < 0.05
        first, y = sweep["arm"].to_numpy() == 0, sweep["y_apart"].to_numpy()
        old_equivalence += tost(y[first], y[~first], 1.0).pvalue < 0.05
        new_equivalence += tost(y[first], y[~first], 1.0, groups1=width[first], groups2=width[~first]).pvalue < 0.05
    assert old_order / 200 > 2 * TARGET and old_equivalence / 200 > 2 * TARGET  # the old rules: 0.22 and 0.30
    assert new_order / 200 <= TARGET and new_equivalence / 200 <= TARGET


def test_falsify_gives_event_order_and_tost_their_configurations():
    rng = np.random.default_rng(4)
    config = np.repeat(np.arange(6), 4)
    lag = 30 + rng.normal(0, 5, 6)[config] + rng.normal(0, 1, 24)  # configuration effects
    runs = pd.DataFrame({"width": config, "seed": np.tile(np.arange(4), 6), "lag": lag, "q": rng.normal(size=24),
                         "y": rng.normal(size=24)})  # fmt: skip
    (order,) = parse_hypotheses(
        '[[hypothesis]]\nname = "order"\nquantity = "q"\noutcome = "y"\ncontrols = []\nscope = { axes = ["width"] }\n'
        '[hypothesis.prediction]\nkind = "event_order"\nfirst = { expression = "q", above = 0.0 }\n'
        'second = { expression = "y", below = 0.0 }\ntolerance = 10\n'
    )
    row = falsify_tables([order], {"order": runs}).to_frame().query("role == 'quantity'").iloc[0]
    means = runs.groupby("width")["lag"].mean()
    assert row["statistic"] == pytest.approx(means.mean())
    assert row["p_for"] == pytest.approx(event_lag_test(means, tolerance=10).p_greater)
    assert row["outcome"] == "pass" and "over 6 configurations" in row["reason"]
    # a paired equivalence over two optimisers, paired by seed within each width: the width is the unit
    pairs = pd.concat([runs.assign(opt="a", y=runs["y"]), runs.assign(opt="b", y=runs["y"] + rng.normal(0, 0.1, 24))])
    (same,) = parse_hypotheses(
        '[[hypothesis]]\nname = "same"\nquantity = "q"\noutcome = "y"\ncontrols = []\nequivalence_margin = 0.5\n'
        'scope = { axes = ["width", "opt"] }\n[hypothesis.prediction]\nkind = "equivalence"\nvariable = "y"\n'
        'by = "opt"\nlevels = ["a", "b"]\npaired = true\n'
    )
    report = falsify_tables([same], {"same": pairs})
    row = report.to_frame().query("role == 'quantity'").iloc[0]
    a, b = pairs[pairs["opt"] == "a"], pairs[pairs["opt"] == "b"]
    expected = tost(a["y"], b["y"], 0.5, groups1=a["width"], paired=True)
    assert expected.n == 6 and row["p_for"] == pytest.approx(expected.pvalue)
    assert report.verdict("same").verdict is Verdict.SUPPORTED and "over 6 configurations" in row["reason"]


def test_small_grid_of_the_order_and_equivalence_kinds_meets_the_error_targets():
    """The engine's path (hypothesis file, falsify_tables) at 3 × 10 and 12 × 2, 10 replications each."""
    raw = calibrate([Design(3, 10), Design(12, 2)], EVENT_KINDS + EQUIVALENCE_KINDS, reps=10)
    summary = summarize(raw)
    assert summary["holds"].all(), summary
    assert summary.set_index(["configs", "kind"]).loc[(12, "true order"), "supported"] >= 0.5
