"""Built-in studies: consistent specs and hypothesis files, an end-to-end study (preregister, run, falsify, report)
that resumes, and the prime-control hypotheses exposing a planted weight-magnitude confound (the README's worked
example runs in tests/test_readme_example.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bridge.cli.study import STUDY_NAMES
from bridge.falsification import falsify_tables
from bridge.hypothesis import load_hypotheses
from bridge.studies import STUDIES, Study, get_study, run_study
from empirics.spec import load_spec
from empirics.store import Store


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_study_files_are_consistent(name: str) -> None:
    study = get_study(name)
    hypotheses = load_hypotheses(study.hypotheses)
    assert hypotheses, f"{study.hypotheses} declares no hypothesis"
    names = set()
    for path in study.spec_paths():
        full, quick = load_spec(path), load_spec(path, quick=True)
        assert full.name == quick.name and len(quick.runs()) <= len(full.runs()) and len(quick.runs()) <= 10
        names.add(full.name)
    for h in hypotheses:
        assert set(h.scope.specs) <= names, f"{h.name} is scoped to specs the study does not run"
    assert len({h.name for h in hypotheses}) == len(hypotheses)


def test_study_names_and_errors() -> None:
    assert set(STUDY_NAMES) == set(STUDIES)
    with pytest.raises(ValueError, match="name"):
        get_study("no-such-study")
    with pytest.raises(ValueError, match="n_resamples"):
        run_study("prime-control", n_resamples=0)


TOY_SPEC = """
name = "toy-rff"
phenomenon = "double_descent_rff"
description = "tiny feature-wise double descent"
seeds = [0, 1]
[params]
n_train = 120
n_test = 200
steps = 0
[sweep]
n_features = [30, 120, 480]
[record]
quantities = []
schedule = "log"
count = 1
[quick]
seeds = [0, 1]
"""

TOY_HYPOTHESES = """
alpha = 0.05
[[hypothesis]]
name = "toy-p_test-ranks-test-error"
quantity = "p_test"
outcome = "test_error"
tests = ["kendall"]
[hypothesis.scope]
specs = ["toy-rff"]
axes = ["n_features"]
[hypothesis.prediction]
kind = "rank"
direction = "increasing"

[[hypothesis]]
name = "toy-quadratic-in-log-p_test"
quantity = "p_test"
outcome = "test_error"
controls = []
tests = ["fit"]
[hypothesis.scope]
specs = ["toy-rff"]
axes = ["n_features"]
[hypothesis.prediction]
kind = "functional"
expression = "test_error = a + b*log(p_test) + c*log(p_test)**2"
"""


def test_run_study_end_to_end_and_resume(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "toy.toml").write_text(TOY_SPEC)
    (tmp_path / "toy_study.toml").write_text(TOY_HYPOTHESES)
    study = Study("toy-study", "a toy", ("toy",), directory=tmp_path)
    store, out = tmp_path / "store", tmp_path / "report"
    first = run_study(study, quick=True, store=store, output=out, n_resamples=49, log=None)
    assert "6 executed" in first.sweeps[0]
    assert sorted(first.verdicts["hypothesis"]) == ["toy-p_test-ranks-test-error", "toy-quadratic-in-log-p_test"]
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    command = (out / "COMMAND.txt").read_text()
    assert command.startswith("unitheory study toy-study --quick") and re.search(r"wall time: [0-9.]+ s", command)
    with Store(store, create=False) as db:
        (payload,) = db.results("verdict")
        assert payload["prereg"]["registered"] and payload["prereg"]["before_runs"]
        assert [p["hypothesis"] for p in db.results("prediction")] == ["toy-quadratic-in-log-p_test"]
        runs = len(db.runs())
    again = run_study(study, quick=True, store=store, output=None, n_resamples=49, log=None)
    assert "6 already stored, 0 executed" in again.sweeps[0]
    assert again.verdicts.equals(first.verdicts)
    with Store(store, create=False) as db:
        assert len(db.runs()) == runs == 6
    assert "preregistered" in (out / "report.md").read_text()


def _confounded_runs(seed: int) -> pd.DataFrame:
    """Planted truth: the weight norm drives test error and the grokking delay; every prime count is a monotone
    function of the weight norm (plus rounding noise) on a setting-specific offset, scale and sign (the count of the
    rounded weights rising with the norm in both settings, the initial count at s = 100 falling with the init scale
    in grokking), as in Jeffares & van der Schaar 2025."""
    rng = np.random.default_rng(seed)
    rows = []
    for spec, offset, x100, grid in (
        ("study-double-descent-mlp", 0.0, 10.0, [{"width": w} for w in (4, 8, 16, 32, 64, 128, 256)]),
        ("study-grokking-modular", 5e3, -1e3,
         [{"init_scale": a, "weight_decay": wd} for a in (1, 1.5, 2) for wd in (1, 3)]),
    ):  # fmt: skip
        for i, config in enumerate(grid):
            for s in range(3):
                norm = 1 + i + rng.normal(0, 0.6)
                counts = {f"prime_count_x{k}": offset + 2e4 + k * norm + rng.normal(0, 0.05 * k) for k in (1, 10)}
                rows.append({
                    "spec": spec, "seed": s, **config, "weight_norm": norm,
                    "test_error": 0.3 + 0.05 * norm + rng.normal(0, 0.02),
                    "step_test_fit": 40 + 10 * norm + rng.normal(0, 1), **counts,
                    "prime_count_x100": 2e4 + x100 * norm + rng.normal(0, 0.05 * abs(x100)),
                    "random_measure": rng.normal(), "param_count": 100.0 * (i + 1),
                    "started_at": "2026-01-01T00:00:00+00:00", "run_id": f"{spec}-{i}-{s}",
                })  # fmt: skip
    return pd.DataFrame(rows)


def test_prime_control_exposes_a_planted_weight_magnitude_confound() -> None:
    hypotheses = load_hypotheses(get_study("prime-control").hypotheses)
    runs = _confounded_runs(0)
    tables = {h.name: runs[runs["spec"].isin(h.scope.specs)].reset_index(drop=True) for h in hypotheses}
    report = falsify_tables(hypotheses, tables, n_resamples=199, random_state=0)
    tests = report.to_frame()
    for name, sign in (
        ("prime-count-x1-tracks-dd-test-error", 1),
        ("prime-count-x1-tracks-grokking-test-error", 1),
        ("prime-count-x100-at-init-tracks-grokking-delay", -1),
    ):
        tracks = tests[(tests["hypothesis"] == name) & (tests["role"] == "quantity")]  # it tracks the outcome ...
        assert len(tracks) == 1 and sign * tracks["statistic"].item() > 0.5 and tracks["outcome"].item() == "pass"
    for name in (
        "prime-count-x1-given-weight-norm-dd",
        "prime-count-x1-given-weight-norm-grokking",
        "prime-count-x100-at-init-given-weight-norm-grokking",
    ):
        # ... but not given the weight norm: never supported; with 7 (6) configurations x 3 seeds the partial
        # correlation's interval is too wide to lie below the declared margin 0.3: inconclusive, not falsified
        verdict = report.verdict(name)
        partial = tests.query("hypothesis == @name and test == 'partial_rank' and role == 'quantity'")
        assert verdict.verdict.value == "inconclusive" and verdict.reason.startswith("partial_rank")
        assert partial["outcome"].item() == "inconclusive" and partial["p_for"].item() > 0.05
    out = report.verdict("prime-count-x1-predicts-out-of-setting")  # ... and fails out of its setting
    assert out.verdict.value == "falsified" and "out of setting" in out.reason


def test_init_distance_matches_a_float64_reference_on_a_pruned_ticket() -> None:
    import copy

    import torch
    from torch.nn.utils import prune

    from bridge.studies.quantities import init_distance
    from empirics.phenomena.base import Snapshot

    torch.manual_seed(0)
    init = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    model = copy.deepcopy(init)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    prune.l1_unstructured(model[0], "weight", amount=0.5)  # parameters now list bias before weight_orig
    x, y = torch.randn(6, 5), torch.zeros(6, dtype=torch.long)
    got = init_distance(Snapshot(model, init, x, y, x, y))["init_distance"]
    ref = sum(
        float(((a.detach().double() - b.detach().double()) ** 2).sum())
        for a, b in [(model[0].weight, init[0].weight), (model[0].bias, init[0].bias),
                     (model[2].weight, init[2].weight), (model[2].bias, init[2].bias)]
    )  # fmt: skip
    assert got == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="init_distance"):
        init_distance(Snapshot(model, torch.nn.Linear(5, 3), x, y, x, y))
