"""A small grid of the calibration benchmark (benchmarks/calibration.py) with fixed seeds: its error targets
hold, and the simulated sweeps have the structure the benchmark claims."""

import numpy as np
import pandas as pd
import pytest

from bridge import parse_hypotheses
from bridge.calibration import LAW_KINDS, RANK_KINDS, Design, calibrate, hypothesis_file, power, simulate, summarize


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


def test_every_kind_parses_including_the_functional_law_hook():
    hypotheses = parse_hypotheses(hypothesis_file(RANK_KINDS + LAW_KINDS))
    assert [h.name for h in hypotheses] == [k.name for k in RANK_KINDS + LAW_KINDS]
    assert all(h.controls for h in hypotheses[: len(RANK_KINDS)])  # the default controls apply


def test_small_grid_meets_the_error_targets():
    """3 and 6 configurations x 3 seeds, 6 replications each (fixed seeds: the same data every run)."""
    kinds = [k for k in RANK_KINDS if k.name != "true driver, all rank tests"]
    raw = calibrate([Design(3, 3), Design(6, 3)], kinds, reps=6, n_resamples=99)
    summary = summarize(raw)
    assert len(summary) == 2 * len(kinds) and summary["holds"].all(), summary
    pooled = raw.groupby("kind")["wrong"].mean()
    assert (pooled <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 12)).all()
    rates = summary.set_index(["configs", "kind"])
    assert rates.loc[(6, "wrong sign"), "falsified"] > 0.5  # power, reported in the benchmark
    rows = summary[["supported", "falsified", "inconclusive"]].sum(axis=1)
    assert rows.to_numpy() == pytest.approx(1.0)


def test_power_for_a_planned_design():
    result = power(6, 3, reps=3, tests=["kendall"], n_resamples=49)
    assert result.design == Design(6, 3) and result.reps == 3
    assert result.supported + result.falsified + result.inconclusive == pytest.approx(1.0)
    assert result.supported > 0 and result.se(0.5) == pytest.approx(np.sqrt(0.25 / 3))
