"""Resume after SIGKILL: a ``unitheory run`` subprocess killed mid-sweep, then rerun (on a 2-process pool), leaves
the store an uninterrupted local sweep leaves (records and runs tables equal, timestamps ignored), executing only
the missing runs. This is also the test that the pool backend reproduces the local backend bit for bit."""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bridge.cli import run as cli_run
from empirics.spec import load_spec
from empirics.store import Store
from empirics.sweep import run_sweep

TIMES = ["started_at", "finished_at", "wall_s"]


def _stored_runs(store: Path) -> int:
    try:
        with sqlite3.connect(store / "store.sqlite", timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:  # database or table not created yet
        return 0


def _command(spec: Path, store: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "bridge.cli.run", str(spec), "--store", str(store), *options]


def _kill_after(spec: Path, store: Path, at_least: int) -> int:
    """Start a sweep, SIGKILL it as soon as ``at_least`` runs are stored; return how many were stored."""
    env = {**os.environ, "UNITHEORY_PROGRESS": "0"}
    proc = subprocess.Popen(_command(spec, store), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _stored_runs(store) < at_least:
        assert proc.poll() is None, f"the sweep ended before it was killed: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    proc.stderr.close()
    return _stored_runs(store)


def test_sigkilled_sweep_resumed_on_a_pool_equals_the_uninterrupted_store(toy_toml, tmp_path, capsys):
    text = (
        toy_toml.read_text()
        .replace("width = [2, 5]", "width = [2, 3, 4]")
        .replace("seeds = [0, 1]", "seeds = [0, 1, 2]")
    )
    spec_path = tmp_path / "slow.toml"
    spec_path.write_text(text.replace("steps = 20\n", "steps = 20\nsleep_s = 0.03\n", 1))
    total = len(load_spec(spec_path).runs())
    killed = tmp_path / "killed"

    stored = _kill_after(spec_path, killed, at_least=2)
    assert 2 <= stored < total

    # the same command again, in this process (its imports are paid already); the pool spawns 2 fresh workers
    argv = _command(spec_path, killed, "--workers", "2")[3:]
    parser = argparse.ArgumentParser()
    cli_run.configure(parser)
    assert cli_run.execute(parser.parse_args(argv)) == 0
    assert f"{total} runs, {stored} already stored, {total - stored} executed" in capsys.readouterr().out

    reference = Store(tmp_path / "reference")
    run_sweep(load_spec(spec_path), reference, log=None)
    resumed = Store(killed)
    runs = [s.runs().drop(columns=TIMES).sort_values("run_id").reset_index(drop=True) for s in (resumed, reference)]
    pd.testing.assert_frame_equal(*runs)
    records = [s.records().sort_values("run_id", kind="stable").reset_index(drop=True) for s in (resumed, reference)]
    pd.testing.assert_frame_equal(*records)
    assert len(runs[0]) == total and len(records[0]) > 0
