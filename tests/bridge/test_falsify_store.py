"""From a Store built from synthetic runs: tables, preregistration, the falsify API and the CLI."""

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from synthetic import RECORDED, synthetic_runs, write_store

from bridge import FalsificationReport, falsify, hypothesis_table, parse_hypotheses, prereg_status, preregister
from bridge.cli import main
from bridge.hypothesis import Scope
from bridge.tables import event_table, run_table, values_at
from empirics.store import Store

HYPOTHESES = """
[[hypothesis]]
name = "q-ranks-error"
quantity = "q"
outcome = "test_error"
confounders = ["weight_norm"]
tests = ["kendall", "partial_rank"]
scope = { specs = ["synthetic"], axes = ["width", "lr"] }
prediction = { kind = "rank" }

[[hypothesis]]
name = "p_test-separates-first"
quantity = "p_test"
outcome = "test_error"
scope = { specs = ["synthetic"] }
[hypothesis.prediction]
kind = "event_order"
first = { expression = "p_train - p_test", above = 0.1 }
second = { expression = "test_error", below = 0.5 }
tolerance = 0
"""


@pytest.fixture(scope="module")
def runs():
    return synthetic_runs("predictive", 0, n_seeds=3)


@pytest.fixture
def store(tmp_path, runs):
    with Store(tmp_path / "store") as s:
        write_store(s, runs, started_at="2026-01-01T00:00:00+00:00")
        write_store(s, synthetic_runs("noise", 1, n_seeds=1, spec="other", phenomenon="other"))
        yield s


def test_run_table_joins_parameters_outcomes_and_final_values(store, runs):
    table = run_table(store, RECORDED, scope=Scope(specs=("synthetic",)))
    assert len(table) == len(runs) and set(table["spec"]) == {"synthetic"}
    merged = table.merge(runs, on=["width", "lr", "seed"], suffixes=("", "_truth"))
    for name in (*RECORDED, "test_error"):
        assert merged[name].to_numpy() == pytest.approx(merged[f"{name}_truth"].to_numpy(), rel=1e-12)


def test_a_recorded_name_another_phenomenon_has_as_an_outcome_is_read_from_the_records(tmp_path, runs):
    """p_test is an outcome of one phenomenon (random features) and a record of another (the telescope): the table
    of the second reads its records, not the first's outcome column (NaN for its runs)."""
    from empirics.spec import RunConfig
    from empirics.store import RunResult

    with Store(tmp_path / "mixed") as s:
        write_store(s, runs)
        config = RunConfig("rff", "double_descent_rff", {"width": 1, "seed": 0}, (), (0,))
        s.write_run(RunResult(config, {"p_test": 123.0, "test_error": 0.1}, [(0, "train_loss", 1.0)], {},
                              "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00", 1.0))  # fmt: skip
        both = run_table(s, ["p_test"])
        synthetic = run_table(s, ["p_test"], scope=Scope(specs=("synthetic",)))
    assert both.set_index("spec").loc["rff", "p_test"] == 123.0  # an outcome keeps the outcome
    assert len(synthetic) == len(runs) and synthetic["p_test"].notna().all()
    assert both.loc[both["spec"] == "synthetic", "p_test"].tolist() == synthetic["p_test"].tolist()


def test_values_at_step_and_initial():
    records = pd.DataFrame(
        {"run_id": ["a"] * 4, "step": [0, 10, 20, 30], "quantity": ["q"] * 4, "value": [1.0, 2.0, 3.0, 4.0]}
    )
    assert values_at(records, 25)["q"].item() == 3.0
    assert values_at(records, "initial")["q"].item() == 1.0
    assert values_at(records, "final")["q"].item() == 4.0
    with pytest.raises(ValueError, match="'at' parameter"):
        values_at(records, "middle")


def test_values_at_an_event(store, runs):
    """q at the first step where p_test has separated from p_train (t_sep = 30 + 10 (seed mod 3))."""
    (_, h) = parse_hypotheses(HYPOTHESES)
    table = run_table(store, ["q"], at=h.prediction.first, scope=Scope(specs=("synthetic",)))
    merged = table.merge(runs, on=["width", "lr", "seed"], suffixes=("", "_truth"))
    t_sep = 30 + 10 * (merged["seed"] % 3)
    assert merged["q"].to_numpy() == pytest.approx((merged["q_truth"] * t_sep / 100).to_numpy(), rel=1e-12)
    assert "p_test" not in table.columns


def test_event_table_lags(store, runs):
    (_, h) = parse_hypotheses(HYPOTHESES)
    events = event_table(store, h.prediction.first, h.prediction.second, scope=h.scope)
    expected_first = 30 + 10 * (events["seed"] % 3)
    assert events["first_step"].to_numpy() == pytest.approx(expected_first.to_numpy())
    assert (events["lag"] == 20).all()


def test_preregistration_before_and_after_runs(tmp_path, store):
    path = tmp_path / "h.toml"
    path.write_text(HYPOTHESES)
    runs = store.runs()
    assert not prereg_status(path, store, runs).registered
    late = preregister(path, store, now=datetime(2026, 6, 1, tzinfo=UTC))
    status = prereg_status(path, store, runs)
    assert status.registered and status.before_runs is False and status.runs_before == len(runs)
    assert "after" in status.describe()
    assert preregister(path, store).registered_at == late.registered_at  # same content keeps the first time
    path.write_text(HYPOTHESES + "\n# edited\n")
    changed = prereg_status(path, store, runs)
    assert changed.changed and not changed.registered and "CHANGED" in changed.describe()
    preregister(path, store, now=datetime(2025, 1, 1, tzinfo=UTC))
    early = prereg_status(path, store, runs)
    assert early.before_runs is True and early.runs_before == 0


def test_falsify_api_on_store(tmp_path, store):
    path = tmp_path / "h.toml"
    path.write_text(HYPOTHESES)
    report = falsify(path, store, n_resamples=99)
    verdicts = report.verdict_frame().set_index("hypothesis")["verdict"]
    assert verdicts["q-ranks-error"] == "supported"
    assert verdicts["p_test-separates-first"] == "supported"
    frame = report.to_frame()
    assert {"p_for", "p_against", "p_holm", "outcome", "reason"} <= set(frame.columns)
    own = frame[frame["role"] == "quantity"]
    assert (own["p_holm"].dropna() >= own["p_against"].dropna()).all()
    assert report.prereg is not None and not report.prereg.registered
    table = hypothesis_table(store, report_hypothesis(path))
    assert set(table["spec"]) == {"synthetic"}


STEPS = """
[[hypothesis]]
name = "q-along-training"
quantity = "q"
outcome = "test_error"
{controls}
scope = {{ specs = ["synthetic"], axes = ["width", "lr"], over = "steps" }}
prediction = {{ kind = "rank", direction = "decreasing" }}
"""


def test_claims_over_steps_rank_within_runs(tmp_path, store):
    """Along training the recorded q grows while the recorded error drops (tests/bridge/synthetic.py), so
    within every run q tracks the error downwards; so does any control that grows with training (here the
    parameter count times step/100): the claim cannot beat it, the prime-count lesson."""
    table = hypothesis_table(store, parse_hypotheses(STEPS.format(controls=""))[0])
    assert {"run_id", "step", "q", "test_error", "width", "lr"} <= set(table.columns)
    assert len(table) == 36 * 11 and table.groupby("run_id")["step"].nunique().eq(11).all()
    path = tmp_path / "steps.toml"
    path.write_text(STEPS.format(controls=""))
    verdict = falsify(path, store, n_resamples=99).verdict("q-along-training")
    assert verdict.verdict.value == "inconclusive" and "control param_count" in verdict.reason
    path.write_text(STEPS.format(controls="controls = []"))
    report = falsify(path, store, n_resamples=99)
    row = report.to_frame().query("role == 'quantity'").iloc[0]
    assert row["statistic"] < -0.3 and row["n"] == 12 and row["outcome"] == "pass"  # 12 configurations
    assert report.verdict("q-along-training").verdict.value == "supported"


def report_hypothesis(path):
    return parse_hypotheses(path.read_text())[0]


def test_cli_prereg_and_falsify_write_results(tmp_path, store, capsys):
    path = tmp_path / "h.toml"
    path.write_text(HYPOTHESES)
    assert main(["prereg", str(path), "--store", str(store.path)]) == 0
    assert "preregistered h.toml" in capsys.readouterr().out
    assert main(["falsify", str(path), "--store", str(store.path), "--resamples", "99", "--tests"]) == 0
    out = capsys.readouterr().out
    assert "q-ranks-error" in out and "supported" in out and "p_holm" in out
    assert "after" in out  # registered now, after the runs were created
    (stored,) = Store(store.path).results("verdict")
    rebuilt = FalsificationReport.from_payload(json.loads(json.dumps(stored)))
    assert rebuilt.verdict("q-ranks-error").verdict.value == "supported"
    assert np.isclose(
        rebuilt.tests["statistic"].iloc[0], falsify(path, store, n_resamples=99).tests["statistic"].iloc[0]
    )


def test_cli_rejects_malformed_files(tmp_path, store, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(HYPOTHESES.replace('kind = "rank"', 'kind = "vibes"'))
    assert main(["prereg", str(path), "--store", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: hypothesis[0].prediction.kind: must be one of" in err
    assert store.results("prereg") == []
