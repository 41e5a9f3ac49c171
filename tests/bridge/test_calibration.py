"""A small grid of the calibration benchmark (benchmarks/calibration.py) with fixed seeds: its error targets
hold, and the simulated sweeps have the structure the benchmark claims."""

import numpy as np
import pandas as pd
import pytest

from bridge import parse_hypotheses
from bridge.calibration import (
    KINDS,
    LAW_KINDS,
    RANK_KINDS,
    RANK_TESTS,
    Design,
    calibrate,
    hypothesis_file,
    power,
    simulate,
    summarize,
)
from bridge.hypothesis import DEFAULT_TESTS, Kind


def test_simulated_sweep_has_nested_effects_and_a_confounder():
    table = simulate(Design(12, 10), 0)
    assert len(table) == 120 and table.groupby("width")["seed"].nunique().eq(10).all()
    assert table["test_error"].between(0, 1).all()
    # configuration-level random effects: configuration means of the null quantity vary beyond seed noise
    means = table.groupby("width")["q_null"].mean()
    assert means.var() > 2 * table.groupby("width")["q_null"].var().mean() / 10
    # the confounder drives both the outcome and the confounded quantity
    assert table[["weight_norm", "q_confounded", "test_error"]].corr(method="spearman").min().min() > 0.4
    again = simulate(Design(12, 10), 0)
    pd.testing.assert_frame_equal(table, again)


def test_the_law_columns_follow_the_law_in_every_configuration():
    """loss = 0.3 + 0.05 log(q_law) + seed noise exactly (the configuration effects sit in q_law), and the null
    outcome has configuration effects but no dependence on q_law."""
    table = simulate(Design(12, 10), 1)
    residual = table["loss"] - 0.3 - 0.05 * np.log(table["q_law"])
    assert abs(residual.mean()) < 0.01 and residual.std() == pytest.approx(0.02, rel=0.2)
    assert residual.groupby(table["width"]).mean().abs().max() < 3 * 0.02 / np.sqrt(10)
    assert np.log(table["q_law"]).groupby(table["width"]).mean().diff().dropna().std() > 0.2  # configuration effects
    assert abs(table[["loss_null", "q_law"]].corr(method="spearman").iloc[0, 1]) < 0.3


def test_every_kind_parses_and_the_defaults_are_the_rank_kinds_tests():
    hypotheses = parse_hypotheses(hypothesis_file(RANK_KINDS + LAW_KINDS))
    assert [h.name for h in hypotheses] == list(KINDS)
    assert all(h.controls for h in hypotheses[: len(RANK_KINDS)])  # the default controls apply
    assert RANK_TESTS == tuple(t.value for t in DEFAULT_TESTS[Kind.RANK]) == KINDS["true driver, default tests"].tests
    assert "robust_sign_error" not in RANK_TESTS and "robust_sign_error" in KINDS["true driver, all rank tests"].tests


def test_small_grid_meets_the_error_targets():
    """3 and 6 configurations x 3 seeds, 6 replications each (fixed seeds: the same data every run)."""
    kinds = [k for k in RANK_KINDS + LAW_KINDS if k.name != "true driver, all rank tests"]
    raw = calibrate([Design(3, 3), Design(6, 3)], kinds, reps=6, n_resamples=99)
    summary = summarize(raw)
    assert len(summary) == 2 * len(kinds) and summary["holds"].all(), summary
    targeted = raw[raw["targeted"]]
    pooled = targeted.groupby("kind")["wrong"].mean()
    assert (pooled <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 12)).all()
    rates = summary.set_index(["configs", "kind"])
    assert rates.loc[(6, "wrong sign"), "falsified"] > 0.5  # power, reported in the benchmark
    assert not rates.loc[(6, "wrong law"), "targeted"]  # a want of power, not an error target
    rows = summary[["supported", "falsified", "inconclusive"]].sum(axis=1)
    assert rows.to_numpy() == pytest.approx(1.0)


def test_power_for_a_planned_design_of_any_kind():
    result = power(6, 3, reps=3, tests=["kendall"], n_resamples=49)
    assert result.design == Design(6, 3) and result.reps == 3 and result.kind == "true driver, default tests"
    assert result.supported + result.falsified + result.inconclusive == pytest.approx(1.0)
    assert result.power == result.supported > 0 and result.error == result.falsified
    assert result.se(0.5) == pytest.approx(np.sqrt(0.25 / 3))
    law = power(12, 5, kind="true law", reps=4)
    assert law.power == law.supported == 1.0
    wrong = power(12, 10, kind="wrong law", reps=4)
    assert wrong.power == wrong.falsified and wrong.error == wrong.supported
    assert np.isnan(power(3, 2, kind="null law", reps=2).power)
    with pytest.raises(ValueError, match="'kind' parameter of power must be one of 'true driver, default tests'"):
        power(3, 2, kind="true drivers")
