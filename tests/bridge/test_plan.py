"""Power before runs (bridge.plan, bridge.power): the plan counts what a study actually runs, its power is the
calibration's for that design, ``--plan`` runs nothing, and a study's report shows the stored plan."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bridge.power as planned_power
from bridge.calibration import (
    EFFECT_CAP,
    Design,
    Power,
    Verdict,
    design_effect,
    power,
    rank_kind,
)
from bridge.cli import main
from bridge.hypothesis import HypothesisFileError, Kind, parse_hypotheses
from bridge.plan import StudyPlan, hypothesis_design, plan_hypotheses, planned_runs
from bridge.studies import Study, get_study, plan_study, run_study
from empirics.spec import load_spec
from empirics.store import Store

SPEC_A = """
name = "plan-a"
phenomenon = "double_descent_rff"
seeds = [0, 1, 2]
[params]
n_train = 120
n_test = 200
[sweep]
n_features = [30, 120, 480]
ridge_rule = ["fixed", "optimal"]
[record]
quantities = []
schedule = "log"
count = 1
[quick]
seeds = [0, 1]
"""

SPEC_B = """
name = "plan-b"
phenomenon = "double_descent_rff"
seeds = [0, 1, 2]
[params]
n_train = 100
n_test = 200
[sweep]
n_features = [40, 160]
[record]
quantities = []
schedule = "log"
count = 1
[quick]
seeds = [0, 1, 2]
"""

HYPOTHESES = """
controls = []
[[hypothesis]]
name = "one-spec"
quantity = "n_features"
outcome = "test_error"
tests = ["kendall"]
scope = { specs = ["plan-a"], axes = ["n_features"] }
prediction = { kind = "rank", direction = "decreasing" }
[hypothesis.power]
effect = 0.6

[[hypothesis]]
name = "two-environments"
quantity = "n_features"
outcome = "test_error"
tests = ["kendall"]
scope = { specs = ["plan-a", "plan-b"], axes = ["n_features"] }
prediction = { kind = "rank", direction = "decreasing" }

[[hypothesis]]
name = "law-on-b"
quantity = "n_features"
outcome = "test_error"
tests = ["fit"]
scope = { specs = ["plan-a", "plan-b"], axes = ["n_features"] }
[hypothesis.prediction]
kind = "functional"
expression = "test_error = a + b*log(n_features)"
fit_on = "plan-b"

[[hypothesis]]
name = "no-axes"
quantity = "p_test"
outcome = "test_error"
tests = ["kendall"]
scope = { specs = ["plan-b"] }
prediction = { kind = "rank" }
"""


def _study(tmp_path: Path) -> Study:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "plan-a.toml").write_text(SPEC_A)
    (tmp_path / "specs" / "plan-b.toml").write_text(SPEC_B)
    (tmp_path / "plan_study.toml").write_text(HYPOTHESES)
    return Study("plan-study", "a tiny study", ("plan-a", "plan-b"), directory=tmp_path)


def _counted(runs: pd.DataFrame, specs: list[str], columns: list[str]) -> tuple[int, int, int, int]:
    """(runs, configurations, fewest and most runs per configuration) of stored runs, counted with pandas alone."""
    part = runs[runs["spec"].isin(specs)]
    sizes = part.groupby(columns).size() if columns else pd.Series(1, index=part.index)
    return len(part), len(sizes), int(sizes.min()), int(sizes.max())


def test_plan_counts_what_a_quick_study_runs_and_the_report_shows_it(tmp_path: Path) -> None:
    study = _study(tmp_path)
    plan = plan_study(study, quick=True, reps=4)
    store, out = tmp_path / "store", tmp_path / "report"
    run_study(study, quick=True, store=store, output=out, n_resamples=49, power_reps=4, log=None)
    with Store(store, create=False) as db:
        runs = db.runs()
        (payload,) = db.results("plan")
    specs = [load_spec(p, quick=True) for p in study.spec_paths()]
    assert set(planned_runs(specs)["run_id"]) == set(runs["run_id"]) and plan.runs == len(runs) == 18
    expected = {  # (runs, configurations, fewest, most runs per configuration) from the stored runs
        "one-spec": _counted(runs, ["plan-a"], ["n_features"]),
        "two-environments": _counted(runs, ["plan-a", "plan-b"], ["n_features", "spec"]),
        "law-on-b": _counted(runs, ["plan-b"], ["spec", "n_features"]),
        "no-axes": _counted(runs, ["plan-b"], []),
    }
    for name, (n, configs, fewest, most) in expected.items():
        d = plan.get(name).design
        assert (d.runs, d.configurations, d.min_per_configuration, d.max_per_configuration) == (n, configs, fewest,
                                                                                               most), name  # fmt: skip
    assert expected["one-spec"] == (12, 3, 4, 4) and plan.get("one-spec").design.seeds == 2
    assert any("ridge_rule varies within configurations" in n for n in plan.get("one-spec").design.notes)
    both = plan.get("two-environments").design
    assert [(e.name, e.configurations, e.min_per_configuration) for e in both.environments] == [
        ("plan-a", 3, 4), ("plan-b", 2, 3)]  # fmt: skip
    assert "every run is its own unit" in " ".join(plan.get("no-axes").design.notes)
    # the stored plan is the plan, and the report reads it back
    stored = StudyPlan.from_payload(payload)
    assert payload["key"].startswith("plan_study.toml:") and stored.to_payload() == plan.to_payload()
    law = plan.get("law-on-b")
    assert law.power.power == 0 and law.power.source == "rule" and "cannot be supported" in law.line()
    report = (out / "report.md").read_text()
    assert "Design and power (planned before the runs)" in report
    for p in plan.hypotheses:
        assert p.line() in report
    verdicts = report.split("## Verdicts", 1)[1]
    assert "| power |" in verdicts and "under-powered" in verdicts


def test_plan_runs_nothing_and_opens_no_store(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"
    assert main(["study", "prime-control", "--plan", "--quick", "--store", str(store), "--power-reps", "3"]) == 0
    printed = capsys.readouterr().out
    assert "nothing was run" in printed and "hypotheses under-powered" in printed
    for h in plan_study("prime-control", quick=True, reps=3).hypotheses:
        assert h.hypothesis in printed
    assert not store.exists() and list(tmp_path.iterdir()) == []  # no store, no report folder
    assert main(["study", "lottery", "--plan", "--power-reps", "0"]) == 2
    assert "reps" in capsys.readouterr().err


def test_power_of_a_known_design_matches_a_fresh_simulation() -> None:
    """The plan's power (from the committed table, or simulated when the table lacks the cell) agrees with a
    direct simulation of other replications (start 1000) within three combined standard errors."""
    h = parse_hypotheses(HYPOTHESES)[0]  # kendall, no controls, τ 0.6 declared
    runs = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(21)],
            "spec": "plan-a",
            "phenomenon": "x",
            "n_features": np.repeat([10, 20, 40, 80, 160, 320, 640], 3),
            "seed": np.tile([0, 1, 2], 7),
        }
    )
    planned = planned_power.hypothesis_power(h, hypothesis_design(h, runs), reps=40)
    assert (planned.configs, planned.seeds, planned.effect) == (7, 3, round(design_effect(Kind.RANK, 0.6), 3))
    fresh = power(7, 3, planned.effect, kind=rank_kind(("kendall",), controls=(), confounder=False), reps=40,
                  start=1000)  # fmt: skip
    assert fresh.kind == planned.kind
    assert abs(planned.power - fresh.power) <= 3 * math.hypot(planned.se, fresh.se()) + 1e-9


def test_the_committed_table_agrees_with_a_fresh_simulation() -> None:
    """For each cheap calibration kind in the table, its most informative row (power nearest 1/2) is simulated
    again with 40 other replications."""
    table = pd.read_csv(planned_power.TABLE)
    assert list(table.columns) == planned_power.TABLE_COLUMNS and (table["reps"] >= 100).all()
    rates = table[["supported", "falsified", "inconclusive"]].sum(axis=1)
    assert np.allclose(rates, 1.0)
    cheap = {k.name: k for k in (rank_kind(("kendall",), controls=(), confounder=False),)}
    cheap |= {name: planned_power.KINDS[name] for name in ("true law", "true order")}
    checked = 0
    for name, kind in cheap.items():
        rows = table[table["kind"] == name]
        if rows.empty:
            continue
        row = rows.loc[(rows["supported"] - 0.5).abs().idxmin()]
        fresh = power(int(row["configs"]), int(row["seeds"]), float(row["effect"]), kind=kind, reps=40,
                      alpha=float(row["alpha"]), start=1000)  # fmt: skip
        se = math.hypot(math.sqrt(row["supported"] * (1 - row["supported"]) / row["reps"]), fresh.se())
        assert abs(fresh.supported - row["supported"]) <= 3 * se + 1e-9, (name, row.to_dict(), fresh)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize(
    ("power_table", "key", "reason"),
    [
        ("effekt = 0.3", "power.effekt", "unknown key (allowed: ['effect'])"),
        ("effect = 0.3\ntarget = 0.9", "power.target", "unknown key"),
        ("", "power.effect", "missing required key"),
        ("effect = 'large'", "power.effect", "expected a number"),
        ("effect = true", "power.effect", "expected a number"),
        ("effect = 1.2", "power.effect", "in (0, 1): a configuration-level Kendall τ"),
        ("effect = 0", "power.effect", "must be in (0, 1)"),
    ],
)
def test_bad_power_keys_are_refused_by_name(power_table: str, key: str, reason: str) -> None:
    text = HYPOTHESES.split('\n[[hypothesis]]\nname = "two-environments"')[0]
    text = text.replace("[hypothesis.power]\neffect = 0.6\n", f"[hypothesis.power]\n{power_table}\n")
    with pytest.raises(HypothesisFileError) as err:
        parse_hypotheses(text, source="mine.toml")
    assert str(err.value).startswith(f"mine.toml: hypothesis[0].{key}: ") and reason in str(err.value)


def test_power_table_of_a_law_must_be_positive_and_a_table() -> None:
    law = HYPOTHESES.split('[[hypothesis]]\nname = "law-on-b"')[1].split("[[hypothesis]]")[0]
    text = 'controls = []\n[[hypothesis]]\nname = "law-on-b"' + law
    assert parse_hypotheses(text + "[hypothesis.power]\neffect = 3.0\n")[0].effect == 3.0  # an SNR may exceed 1
    with pytest.raises(HypothesisFileError, match=r"hypothesis\[0\].power.effect: a 'functional' prediction's effect "
                                                  r"must be > 0, got -1"):  # fmt: skip
        parse_hypotheses(text + "[hypothesis.power]\neffect = -1\n")
    with pytest.raises(HypothesisFileError, match=r"hypothesis\[0\].power: expected a table"):
        parse_hypotheses(text.replace('tests = ["fit"]', 'tests = ["fit"]\npower = 2'))


@pytest.fixture
def fake_power(monkeypatch):
    """Replace the simulation with a record of the cells asked for: power = configurations / 10 (capped), halved
    when param_count is a control."""
    asked = []

    def fake(configs, seeds, effect, *, kind, reps, alpha, n_resamples):
        asked.append((kind.name, configs, seeds, effect))
        rate = min(1.0, configs / 10) * (0.5 if "param_count" in kind.name else 1.0)
        return Power(Design(configs, seeds, effect), kind.name, rate, 0.0, 1 - rate, reps)

    monkeypatch.setattr(planned_power, "power", fake)
    monkeypatch.setattr(planned_power, "_table", lambda: pd.DataFrame(columns=planned_power.TABLE_COLUMNS))
    monkeypatch.setattr(planned_power, "SIMULATED", {})
    return asked


def _runs(specs: dict[str, int], seeds: int = 3, steps: int = 20) -> pd.DataFrame:
    rows = [{"run_id": f"{s}-{c}-{k}", "spec": s, "phenomenon": "x", "width": 2**c, "lr": 0.1, "seed": k,
             "recorded_steps": steps} for s, n in specs.items() for c in range(n) for k in range(seeds)]  # fmt: skip
    return pd.DataFrame(rows)


def _one(body: str) -> object:
    return parse_hypotheses('[[hypothesis]]\nname = "h"\nquantity = "q"\noutcome = "y"\n' + body)[0]


def test_power_rules_and_bounds(fake_power) -> None:
    runs = _runs({"s1": 6, "s2": 4})
    rank = 'scope = { specs = ["s1"], axes = ["width"] }\nprediction = { kind = "rank" }\n'
    plan = plan_hypotheses([_one('tests = ["kendall"]\ncontrols = []\n' + rank)], runs)
    (p,) = plan.hypotheses
    assert (p.power.configs, p.power.seeds, p.power.bound, p.power.power) == (6, 3, "=", 0.6) and p.under_powered
    assert "(default: a moderate effect)" in p.line() and "under-powered (below 80%)" in p.line()
    # a rank effect above the model's ceiling: simulated at the cap, a lower bound
    claim = 'tests = ["kendall"]\ncontrols = []\n' + rank + "[hypothesis.power]\neffect = 0.95\n"
    high = plan_hypotheses([_one(claim)], runs).hypotheses[0].power
    assert high.effect == EFFECT_CAP and high.bound == "≥"
    # param_count: also the power without it
    with_pc = plan_hypotheses([_one('tests = ["kendall"]\n' + rank)], runs).hypotheses[0].power
    assert (
        with_pc.power == 0.3
        and "if param_count is constant over these runs (the engine then leaves it out): power 0.60"
        in " ".join(with_pc.notes)
    )
    assert [c[0] for c in fake_power[-2:]] == [
        rank_kind(("kendall",), confounder=False).name,
        rank_kind(("kendall",), controls=("prime_count", "random_measure"), confounder=False).name,
    ]
    # several environments: every environment's Kendall row must pass, so the power is at most the weakest's
    both = _one('tests = ["kendall"]\ncontrols = []\nscope = { axes = ["width"] }\nprediction = { kind = "rank" }\n')
    p = plan_hypotheses([both], runs).hypotheses[0]
    assert p.design.configurations == 10 and [e.configurations for e in p.design.environments] == [6, 4]
    assert p.power.bound == "≤" and p.power.power == 0.4 and "environment s2" in p.line()
    # a law: structural zero with too few configurations, "≤" with out_of_setting, unavailable without fit
    law = ('scope = { axes = ["width"], specs = ["s2"] }\n[hypothesis.prediction]\nkind = "functional"\n'
           'expression = "y = a + b*log(q) + c*log(q)**2 + d*log(q)**3"\n')  # fmt: skip
    zero = plan_hypotheses([_one('tests = ["fit"]\ncontrols = []\n' + law)], runs).hypotheses[0].power
    assert zero.power == 0 and zero.source == "rule" and "4 configurations for 4 parameters" in zero.notes[0]
    two = law.replace(" + c*log(q)**2 + d*log(q)**3", "")
    both_tests = plan_hypotheses([_one('tests = ["fit", "out_of_setting"]\ncontrols = []\n' + two)], runs)
    assert both_tests.hypotheses[0].power.bound == "≤"
    alone = plan_hypotheses([_one('tests = ["out_of_setting"]\ncontrols = []\n' + two)], runs).hypotheses[0]
    assert not alone.power.available and not alone.under_powered and "simulates one" in alone.power.notes[0]
    # along training: the steps are counted, the power is not available
    steps = _one('tests = ["kendall"]\nscope = { axes = ["width"], over = "steps" }\nprediction = { kind = "rank" }\n')
    p = plan_hypotheses([steps], runs).hypotheses[0]
    assert p.design.steps == 20 and not p.power.available and "along training" in p.line()

    # a sweep axis as the quantity: with 3 configurations no permutation p reaches α (1/3! > 0.05); with 4 it can
    def axis_claim(spec: str) -> object:
        return parse_hypotheses(f'[[hypothesis]]\nname = "h"\nquantity = "width"\noutcome = "y"\ntests = ["kendall"]\n'
                                f'controls = []\nscope = {{ specs = ["{spec}"], axes = ["width"] }}\n'
                                'prediction = { kind = "rank" }\n')[0]  # fmt: skip

    p = plan_hypotheses([axis_claim("s3")], _runs({"s3": 3})).hypotheses[0]
    assert p.power.power == 0 and p.power.source == "rule" and "1/3! = 0.167 > α" in p.power.notes[0]
    assert plan_hypotheses([axis_claim("s2")], runs).hypotheses[0].power.source != "rule"
    # nothing in scope
    empty = _one('tests = ["kendall"]\nscope = { specs = ["none"] }\nprediction = { kind = "rank" }\n')
    p = plan_hypotheses([empty], runs).hypotheses[0]
    assert p.design.runs == 0 and not p.power.available
    # event orderings and equivalences map onto their calibration kinds, in their own units
    event = ('controls = []\nscope = { axes = ["width"] }\n[hypothesis.prediction]\nkind = "event_order"\n'
             'first = { expression = "q", above = 0 }\nsecond = { expression = "y", below = 1 }\n'
             '[hypothesis.power]\neffect = 1.5\n')  # fmt: skip
    p = plan_hypotheses([_one(event)], runs).hypotheses[0]
    assert fake_power[-1] == ("true order", 10, 3, 1.5) and p.power.available
    assert StudyPlan.from_payload(plan.to_payload()) == plan


def test_calibration_kind_is_the_hypothesis_bundle(fake_power) -> None:
    runs = _runs({"s1": 5}, seeds=4)
    h = _one(
        'tests = ["kendall", "partial_rank"]\ncontrols = ["random_measure", "weight_norm"]\n'
        'confounders = ["weight_norm"]\nscope = { axes = ["width"] }\nprediction = { kind = "rank" }\n'
    )
    p = plan_hypotheses([h], runs).hypotheses[0]
    assert fake_power == [("true driver: kendall+partial_rank; controls random_measure; confounder", 5, 4,
                           round(design_effect(Kind.RANK, 0.5), 3))]  # fmt: skip
    assert p.power.bound == "≤" and "['weight_norm'] are not simulated" in p.line()
    assert rank_kind(("kendall",)).right is Verdict.SUPPORTED
    with pytest.raises(ValueError, match="'controls' parameter of rank_kind must be among"):
        rank_kind(("kendall",), controls=("weight_norm",))


def test_built_in_plans_are_complete_and_cached() -> None:
    """Every hypothesis of every built-in study gets a design; the committed table holds its cells (so a plan
    prints in seconds) unless a spec changed since the table was written."""
    for name in ("lottery", "prime-control"):
        plan = plan_study(get_study(name), quick=True, reps=3)
        assert plan.runs > 0 and all(p.design.runs > 0 for p in plan.hypotheses)
        assert "nothing was run" in plan.summary()
