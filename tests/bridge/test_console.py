"""The console: ``unitheory runs`` as a readable per-spec summary (the wide table behind ``--wide`` and
``--format csv``), a study summary that does not repeat the logged sweep lines, and progress bars that stay
quiet off a terminal and under ``--quiet``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest

from bridge._progress import QUIET_ENV, progress, progress_enabled, quiet
from bridge.cli import main
from bridge.studies import StudyResult
from empirics.spec import RunConfig
from empirics.store import RunResult, Store


def _store(path: Path) -> list[str]:
    """Spec toy-a: widths 16 and 4 x seeds 0, 1; spec toy-b: one configuration, seed 0. Returns the run ids."""
    ids = []
    with Store(path) as store:
        for spec, widths, seeds in (("toy-a", (16, 4), (0, 1)), ("toy-b", (8,), (0,))):
            for width in widths:
                for seed in seeds:
                    params = {"width": width, "lr": 0.01, "optimizer": "adam", "seed": seed}
                    config = RunConfig(spec, "toy", params, (), (0,))
                    outcomes = {"test_error": 0.1 * seed + 1 / width, "train_error": 0.0}
                    stamp = f"2026-01-01T00:00:{len(ids):02d}+00:00"
                    store.write_run(RunResult(config, outcomes, [(0, "q", 1.0)], {"host": "h"}, stamp, stamp, 0.25))
                    ids.append(config.run_id)
    return ids


def test_runs_prints_a_readable_summary_per_spec(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ids = _store(tmp_path / "store")
    assert main(["runs", "--store", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert f"store {tmp_path / 'store'}: 5 runs of 2 specs" in out
    assert "toy-a (toy): 4 runs (seeds 0, 1), 1.0 s of run time" in out
    assert "  swept: width = 4, 16\n" in out  # numeric order, only what varies (not lr, optimizer or the seed)
    assert "toy-b (toy): 1 runs (seeds 0)" in out and "swept: nothing (one configuration)" in out
    assert out.count("outcomes: test_error, train_error") == 2
    assert not any(run_id in out for run_id in ids)  # the per-run table is behind --wide
    assert main(["runs", "--store", str(tmp_path / "store"), "--wide"]) == 0
    wide = capsys.readouterr().out
    assert all(run_id in wide for run_id in ids)
    assert main(["runs", "--store", str(tmp_path / "store"), "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert sorted(table["run_id"]) == sorted(ids) and {"width", "lr", "test_error", "started_at"} <= set(table.columns)


def test_study_summary_lists_the_sweeps_once() -> None:
    verdicts = pd.DataFrame(
        {"hypothesis": ["h-one", "h-two"], "verdict": ["supported", "inconclusive"], "reason": ["ok.", "x " * 80]}
    )
    result = StudyResult("toy", True, Path("s"), ("sweep toy: 4 runs",), verdicts, Path("r/report.html"), 1.0)
    logged = result.summary(sweeps=False)  # what `unitheory study` prints after logging each sweep line
    assert "sweep toy" not in logged and result.summary().count("sweep toy: 4 runs") == 1
    lines = logged.splitlines()
    assert lines[0] == "supported     h-one" and lines[2] == "inconclusive  h-two"
    assert max(len(line) for line in lines) <= 104 and lines[3].startswith(" " * 16 + "x x")
    assert lines[-2:] == ["report: r/report.html", "study toy (quick): 1.0 s"]


def test_progress_is_quiet_off_a_terminal_and_under_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [1, 2, 3]
    assert not progress_enabled() and progress(items, desc="x") is items  # pytest captures stderr: no terminal
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    monkeypatch.delenv(QUIET_ENV, raising=False)
    assert progress_enabled() and list(progress(items, desc="x")) == items
    with quiet():
        assert os.environ[QUIET_ENV] == "0" and not progress_enabled() and progress(items, desc="x") is items
    assert QUIET_ENV not in os.environ and progress_enabled()
    with quiet(False):
        assert progress_enabled()
