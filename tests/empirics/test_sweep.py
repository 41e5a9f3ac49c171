"""Sweeps: bit-identical reruns, in-process resume, controls, CLI (pool: test_resume.py; Ray: test_ray.py)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

import bridge.cli
from empirics.controls import CONTROL_QUANTITIES, PRIME_SCALES, RANDOM_MEASURE
from empirics.spec import load_spec
from empirics.store import Store
from empirics.sweep import execute_run, run_sweep

TIMES = ["started_at", "finished_at", "wall_s"]


def assert_same_store(a: Store, b: Store) -> None:
    """Runs (ignoring timestamps) and records equal, whatever order the runs were written in."""
    runs_a, runs_b = (s.runs().drop(columns=TIMES).sort_values("run_id").reset_index(drop=True) for s in (a, b))
    pd.testing.assert_frame_equal(runs_a, runs_b)
    recs_a, recs_b = (s.records().sort_values("run_id", kind="stable").reset_index(drop=True) for s in (a, b))
    pd.testing.assert_frame_equal(recs_a, recs_b)
    assert all(a.arrays(r) == b.arrays(r) for r in runs_a["run_id"])


def test_two_runs_of_one_config_are_bit_identical(toy_spec):
    config = toy_spec().runs()[1]
    threads = torch.get_num_threads()
    first, second = execute_run(config), execute_run(config)
    assert first.rows == second.rows and first.outcomes == second.outcomes
    assert first.arrays.keys() == second.arrays.keys() == {"init_first_weight", "first_weight"}
    assert all(np.array_equal(first.arrays[k], second.arrays[k]) for k in first.arrays)
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()


def test_records_follow_the_schedule_with_controls_and_fresh_stateful_quantities(toy_spec, tmp_path):
    spec = toy_spec()
    store = Store(tmp_path)
    summary = run_sweep(spec, store, log=None)
    assert (summary.total, summary.skipped, summary.executed) == (4, 0, 4)
    records = store.records()
    for config in spec.runs():
        mine = records[records["run_id"] == config.run_id]
        names = set(mine["quantity"])
        expected = {"train_loss", "test_loss", "weight_norm", "velocity", "torch_threads", "blas_threads"}
        fixed_rule = {f"prime_count_x{s}" for s in PRIME_SCALES}  # recorded with prime_count
        assert expected | {*CONTROL_QUANTITIES, RANDOM_MEASURE} | fixed_rule == names
        assert set(mine.loc[mine["quantity"].isin(["torch_threads", "blas_threads"]), "value"]) == {1.0}
        for name in names:
            assert tuple(mine.loc[mine["quantity"] == name, "step"]) == config.schedule
        velocity = mine[mine["quantity"] == "velocity"]["value"].to_numpy()
        assert velocity[0] == 0.0 and np.all(velocity[1:] > 0)  # a fresh instance per run
        params = mine[mine["quantity"] == "param_count"]["value"].unique()
        assert params.tolist() == [3 * config.params["width"] + 2 * config.params["width"] + 1]
    runs = store.runs()
    assert sorted(runs["width"]) == [2, 2, 5, 5] and (runs["final_train_loss"] < 1.0).all()


def test_resume_in_process_executes_only_missing_runs(toy_spec, tmp_path):
    partial, full = Store(tmp_path / "partial"), Store(tmp_path / "full")
    first = run_sweep(toy_spec(sweep={"width": (5,)}), partial, log=None)
    lines: list[str] = []
    second = run_sweep(toy_spec(), partial, log=lines.append)
    assert (first.executed, second.skipped, second.executed) == (2, 2, 2)
    assert sum(line.startswith("run ") for line in lines) == 2 and "2 already stored" in lines[-1]
    run_sweep(toy_spec(), full, log=None)
    assert_same_store(partial, full)
    assert run_sweep(toy_spec(), partial, log=None).executed == 0


def test_sweep_options_are_checked(toy_spec, tmp_path):
    with pytest.raises(ValueError, match="'workers' parameter of run_sweep must be 1 for the local backend"):
        run_sweep(toy_spec(), tmp_path, workers=2)
    with pytest.raises(ValueError, match="'backend' parameter of run_sweep must be one of 'local', 'pool', 'ray'"):
        run_sweep(toy_spec(), tmp_path, backend="slurm")
    with pytest.raises(ValueError, match="'threads' parameter of execute_run must be a positive int"):
        execute_run(toy_spec().runs()[0], threads=0)


def test_ray_backend_without_ray_names_the_extra(toy_spec, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'unitheory\[ray\]'"):
        run_sweep(toy_spec(), tmp_path, backend="ray", log=None)
    assert Store(tmp_path).run_ids() == set()


def test_cli_run_runs_and_export(toy_toml, tmp_path, capsys, monkeypatch):
    mine = {k: v for k, v in bridge.cli.SUBCOMMANDS.items() if k in ("run", "runs", "export")}
    monkeypatch.setattr(bridge.cli, "SUBCOMMANDS", mine)  # other subcommands are other engineers' tests
    main = bridge.cli.main
    store = tmp_path / "store"
    assert main(["run", str(toy_toml), "--quick", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert (
        "sweep toy: 1 runs, 0 already stored, 1 executed" in out and out.count("\nrun ") + out.startswith("run ") == 1
    )
    assert main(["run", str(toy_toml), "--quick", "--store", str(store)]) == 0
    assert "1 already stored, 0 executed" in capsys.readouterr().out
    assert main(["runs", "--store", str(store)]) == 0
    listing = capsys.readouterr().out
    run_id = load_spec(toy_toml, quick=True).runs()[0].run_id
    assert "1 runs" in listing and "toy_regression" in listing
    assert main(["runs", "--store", str(store), "--wide"]) == 0  # one line per run
    assert run_id in capsys.readouterr().out
    assert main(["export", "--store", str(store), "--format", "csv", "-o", str(tmp_path / "out")]) == 0
    assert pd.read_csv(tmp_path / "out" / "records.csv")["run_id"].unique().tolist() == [run_id]
    assert main(["runs", "--store", str(tmp_path / "missing")]) == 2
    assert "No unitheory store" in capsys.readouterr().err
