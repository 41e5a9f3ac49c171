"""A small grid of the calibration benchmark (benchmarks/calibration.py) with fixed seeds: its error targets
hold, and the simulated sweeps have the structure the benchmark claims."""

import numpy as np
import pandas as pd
import pytest

from bridge import parse_hypotheses
from bridge.calibration import (
    EQUIVALENCE_KINDS,
    EVENT_KINDS,
    EVENT_TOLERANCE,
    KINDS,
    LAW_KINDS,
    LAW_SNR_PER_EFFECT,
    RANK_KINDS,
    RANK_TESTS,
    TAU_CEILING,
    Design,
    calibrate,
    configuration_tau,
    design_effect,
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
    hypotheses = parse_hypotheses(hypothesis_file(RANK_KINDS + LAW_KINDS + EVENT_KINDS + EQUIVALENCE_KINDS))
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


def test_effect_units_match_the_simulated_sweeps():
    """The configuration-level τ of the rank model and the law's signal-to-noise, measured on large simulated
    sweeps (configuration means over 200 seeds), agree with :func:`configuration_tau` and LAW_SNR_PER_EFFECT;
    design_effect inverts them."""
    effect = design_effect(Kind.RANK, 0.5)
    table = simulate(Design(300, 200, effect), 3)
    means = table.groupby("width")[["q_driver", "test_error"]].mean()
    assert means.corr(method="kendall").iloc[0, 1] == pytest.approx(0.5, abs=0.06)
    assert configuration_tau(effect) == pytest.approx(0.5, abs=1e-3)
    assert configuration_tau(0.5) < configuration_tau(1.0) < TAU_CEILING < configuration_tau(20.0) < 0.835
    with pytest.raises(ValueError, match="ceiling"):
        design_effect(Kind.RANK, 0.9)
    law = simulate(Design(400, 200, design_effect(Kind.FUNCTIONAL, 2.0)), 4)
    signal = law.groupby("width")["loss"].mean()
    noise = (law["loss"] - law.groupby("width")["loss"].transform("mean")).std()
    assert signal.std() / noise == pytest.approx(2.0, rel=0.1) and LAW_SNR_PER_EFFECT == pytest.approx(1.823, abs=1e-3)
    assert design_effect(Kind.EVENT, 0.7) == design_effect(Kind.EQUIVALENCE, 0.7) == 0.7


def test_event_and_equivalence_kinds():
    """The lag is centred effect standard deviations inside the tolerance (half its variance between
    configurations); the arms differ by nothing (y_equal) or by the margin (y_apart); more effect, more power."""
    table = simulate(Design(400, 20, 0.5), 5)
    lag = table["lag"] + EVENT_TOLERANCE
    assert lag.mean() == pytest.approx(0.5, abs=0.1) and lag.std() == pytest.approx(1.0, rel=0.1)
    between = lag.groupby(table["width"]).mean().var()
    assert between == pytest.approx(0.5 + 0.5 / 20, rel=0.25)
    assert (table["lag_null"] + EVENT_TOLERANCE).median() == pytest.approx(0.0, abs=0.1)
    arms = table.groupby("arm")[["y_equal", "y_apart"]].mean()
    assert arms["y_equal"].diff().iloc[1] == pytest.approx(0.0, abs=0.15)
    assert arms["y_apart"].diff().iloc[1] == pytest.approx(0.5, abs=0.15)
    weak, strong = (power(6, 5, e, kind="true order", reps=20) for e in (0.25, 1.5))
    assert weak.power < strong.power and strong.power > 0.8
    assert power(12, 5, 3.0, kind="true equivalence", reps=10).power > 0.5
    with pytest.raises(ValueError, match="margin is the design's effect"):
        hypothesis_file(EQUIVALENCE_KINDS, effect=0.0)
