"""Bad input to the ``unitheory`` commands (issue 11, items 3, 5 and 7): every probe ends with exit code 2 and one
line ``unitheory CMD: error: ...`` on stderr that names the problem, never a traceback.

One table for every command of this file's scope (run, runs, export, report, falsify, prereg, study); a new probe is
a new row. ``{name}`` in an argument is a path from :func:`world`. The Python entry points' table is
tests/empirics/test_bad_inputs.py; commands on a read-only store: tests/empirics/test_store.py.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

import bridge.cli
from empirics.store import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parents[2]
TOY_PLUGIN = ROOT / "tests" / "empirics" / "conftest.py"
HYPOTHESES = ROOT / "bridge" / "hypotheses" / "double_descent.toml"
TOY = f"""
name = "toy"
phenomenon = "toy_regression"
plugins = ["{TOY_PLUGIN}"]
[params]
steps = 4
[record]
count = 3
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The files the probes point at, made once: good and broken stores, specs, a plain file."""
    root = tmp_path_factory.mktemp("bad-inputs")
    paths = {"root": root, "file": root / "file.txt", "hypotheses": HYPOTHESES, "toy": root / "toy.toml"}
    paths["file"].write_text("a plain file\n")
    paths["toy"].write_text(TOY)
    (root / "no_quick.toml").write_text("name = 'rff'\nphenomenon = 'double_descent_rff'\n")
    (root / "n_train.toml").write_text("name = 'dd'\nphenomenon = 'double_descent_mlp'\n[params]\nn_train = -100\n")
    (root / "bad_hypotheses.toml").write_text("[[hypothesis]]\nname = 'h'\n")
    with Store(root / "good") as good:
        assert bridge.cli.main(["run", str(paths["toy"]), "--store", str(root / "good")]) == 0
        good.put_result("verdict", "h.toml:0", {"file": "h.toml"})
    (root / "db_dir" / "store.sqlite").mkdir(parents=True)
    (root / "noise").mkdir()
    (root / "noise" / "store.sqlite").write_bytes(np.random.default_rng(0).bytes(4096))
    shutil.copytree(root / "good", root / "truncated")
    db = root / "truncated" / "store.sqlite"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    (root / "foreign").mkdir()
    with sqlite3.connect(root / "foreign" / "store.sqlite") as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)")
    shutil.copytree(root / "good", root / "newer")
    with sqlite3.connect(root / "newer" / "store.sqlite") as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    paths |= {name: root / name for name in ("good", "db_dir", "noise", "truncated", "foreign", "newer")}
    paths |= {"no_quick": root / "no_quick.toml", "n_train": root / "n_train.toml"}
    paths["bad_hypotheses"] = root / "bad_hypotheses.toml"
    return paths


# (argv, fragment of the one-line message); "{x}" is world["x"]
PROBES = [
    # run
    (["run", "{no_quick}", "--quick", "--store", "{root}/s1"], "key 'quick': the spec has no [quick] table"),
    (["run", "{n_train}", "--store", "{root}/s2"], "key 'params.n_train': expected a value in [1, inf), got -100"),
    (["run", "nofile.toml"], "No spec file 'nofile.toml' and no built-in spec of that name"),
    (["run", "{toy}", "--store", "{file}"], "is a file, not a unitheory store"),
    (["run", "{toy}", "--store", "{root}/s3", "--workers", "0"], "'workers' parameter of run_sweep must be a positive"),
    (
        ["run", "{toy}", "--store", "{root}/s4", "--backend", "ray", "--address", "127.0.0.1:1"],
        "No Ray cluster answers",
    ),
    (["run", "{toy}", "--store", "{root}/s5", "--backend", "ray", "--address", "nowhere"], "'address' parameter"),
    (["run", "{toy}", "--store", "{newer}"], f"schema version {SCHEMA_VERSION + 1}, newer than this unitheory's"),
    # runs
    (["runs", "--store", "{root}/missing"], "No unitheory store at"),
    (["runs", "--store", "{file}"], "is a file, not a unitheory store (a directory holding store.sqlite)"),
    (["runs", "--store", "{db_dir}"], "store.sqlite' is a directory, not an SQLite database file"),
    (["runs", "--store", "{noise}"], "is corrupt or not an SQLite database"),
    (["runs", "--store", "{truncated}"], "is corrupt or not an SQLite database"),
    (["runs", "--store", "{foreign}"], "is an SQLite database but not a unitheory store"),
    (["runs", "--store", "{newer}"], "upgrade unitheory to read it"),
    # export
    (["export", "--store", "{good}", "-o", "{file}"], "'-o' parameter of unitheory export must be a directory"),
    (["export", "--store", "{noise}", "-o", "{root}/out"], "is corrupt or not an SQLite database"),
    (["export", "--store", "{root}/missing", "-o", "{root}/out"], "No unitheory store at"),
    # report
    (["report", "--store", "{good}", "-o", "{root}/r1", "--spec", "nope"], "--spec 'nope' matches no run in store"),
    (
        ["report", "--store", "{good}", "-o", "{root}/r2", "--file", "x.toml"],
        "--file 'x.toml' matches no saved verdict",
    ),
    (["report", "--store", "{good}", "-o", "{file}"], "'-o' parameter of unitheory report must be a directory"),
    (["report", "--store", "{foreign}", "-o", "{root}/r3"], "is an SQLite database but not a unitheory store"),
    # falsify
    (["falsify", "nofile.toml", "--store", "{root}/missing"], "No hypothesis file at 'nofile.toml'"),
    (["falsify", "{bad_hypotheses}", "--store", "{good}"], "bad_hypotheses.toml"),
    (["falsify", "{hypotheses}", "--store", "{root}/missing"], "No unitheory store at"),
    (["falsify", "{hypotheses}", "--store", "{good}", "--resamples", "0"], "'--resamples' parameter"),
    # prereg
    (["prereg", "nofile.toml", "--store", "{root}/s6"], "No hypothesis file at 'nofile.toml'"),
    (["prereg", "{hypotheses}", "--store", "{truncated}"], "is corrupt or not an SQLite database"),
    # study
    (["study", "prime-control", "--quick", "-o", "{file}", "--store", "{root}/s7"], "'output' parameter of run_study"),
    (["study", "prime-control", "--quick", "--resamples", "0", "--store", "{root}/s8"], "'n_resamples' parameter"),
]


def _argv(argv: list[str], world: dict) -> list[str]:
    return [a.format(**world) for a in argv]


def _one_line_error(capsys, command: str, argv: list[str]) -> str:
    capsys.readouterr()
    assert bridge.cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"unitheory {command}: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return captured.err


@pytest.mark.parametrize(("argv", "fragment"), PROBES, ids=[f"{a[0]}: {f[:40]}" for a, f in PROBES])
def test_bad_input_is_one_plain_line_with_exit_code_2(world, capsys, argv, fragment):
    start = time.monotonic()
    err = _one_line_error(capsys, argv[0], _argv(argv, world))
    assert fragment in err
    assert time.monotonic() - start < 30  # refused at once: the Ray probe does not wait for a cluster


def test_a_full_disk_is_one_plain_line_and_the_stored_runs_stay(world, capsys, monkeypatch, tmp_path):
    shutil.copytree(world["good"], tmp_path / "store")
    before = Store(tmp_path / "store", readonly=True).runs()
    check_schema = Store._check_schema

    def fill_up(self):  # SQLite raises SQLITE_FULL beyond this size, as on a full disk
        check_schema(self)
        self._conn.execute(f"PRAGMA max_page_count = {self._conn.execute('PRAGMA page_count').fetchone()[0]}")

    monkeypatch.setattr(Store, "_check_schema", fill_up)
    spec = tmp_path / "bigger.toml"
    spec.write_text(TOY.replace("steps = 4", "steps = 400").replace("count = 3", "count = 300"))
    err = _one_line_error(capsys, "run", ["run", str(spec), "--store", str(tmp_path / "store")])
    assert "the disk is full while writing a run; nothing was half-written and the runs stored before are intact" in err
    monkeypatch.undo()
    after = Store(tmp_path / "store", readonly=True).runs()
    assert after["run_id"].tolist() == before["run_id"].tolist()
