"""Bad input to the ``unitheory`` commands (issue 11, items 3, 5 and 7): every probe ends with exit code 2 and one
line ``unitheory CMD: error: ...`` on stderr that names the problem, never a traceback.

One table for every command of this file's scope (run, runs, export, report, falsify, prereg, study); a new probe is
a new row. ``{name}`` in an argument is a path from :func:`world`. The Python entry points' table is
tests/empirics/test_bad_inputs.py; commands on a read-only store: tests/empirics/test_store.py.
"""

from __future__ import annotations

import errno
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
    (root / "telescope.toml").write_text(
        "name = 't'\nphenomenon = 'grokking_modular'\n[params]\nsteps = 2\n[record]\nquantities = ['telescope']\n"
    )
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
    (["run", "{toy}", "--store", "{root}/s3d", "--device", "cuda:7"], "'device' parameter of run_sweep must be"),
    (
        ["run", "{toy}", "--store", "{root}/s4", "--backend", "ray", "--address", "127.0.0.1:1"],
        "No Ray cluster answers",
    ),
    (["run", "{toy}", "--store", "{root}/s5", "--backend", "ray", "--address", "nowhere"], "'address' parameter"),
    (["run", "{toy}", "--store", "{newer}"], f"schema version {SCHEMA_VERSION + 1}, newer than this unitheory's"),
    (  # a phenomenon that follows steps, but of a 97-output model
        ["run", "{root}/telescope.toml", "--store", "{root}/s10"],
        "the model has 97, so the phenomenon must declare which one (TrainData.output), and this one does not; record",
    ),
    (["run", "{toy}", "--store", "{file}/sub"], "Cannot create a store at '{file}/sub': Not a directory"),
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
    (["export", "--store", "{good}", "-o", "{file}/sub"], "but '{file}' on its way is a file, not a folder"),
    (["export", "--store", "{noise}", "-o", "{root}/out"], "is corrupt or not an SQLite database"),
    (["export", "--store", "{root}/missing", "-o", "{root}/out"], "No unitheory store at"),
    # report
    (["report", "--store", "{good}", "-o", "{root}/r1", "--spec", "nope"], "--spec 'nope' matches no run in store"),
    (
        ["report", "--store", "{good}", "-o", "{root}/r2", "--file", "x.toml"],
        "--file 'x.toml' matches no saved verdict",
    ),
    (["report", "--store", "{good}", "-o", "{file}"], "'-o' parameter of unitheory report must be a directory"),
    (["report", "--store", "{good}", "-o", "{file}/sub/r"], "but '{file}' on its way is a file, not a folder"),
    (["report", "--store", "{foreign}", "-o", "{root}/r3"], "is an SQLite database but not a unitheory store"),
    (["report", "--store", "{good}", "-o", "{root}/r4", "--seed", "-2"], "must be a non-negative int (a seed)"),
    # falsify
    (["falsify", "nofile.toml", "--store", "{root}/missing"], "No hypothesis file at 'nofile.toml'"),
    (["falsify", "{bad_hypotheses}", "--store", "{good}"], "bad_hypotheses.toml"),
    (["falsify", "{hypotheses}", "--store", "{root}/missing"], "No unitheory store at"),
    (["falsify", "{hypotheses}", "--store", "{good}", "--resamples", "0"], "'--resamples' parameter"),
    (["falsify", "{hypotheses}", "--store", "{good}", "--seed", "-1"], "'--seed' parameter of unitheory falsify must"),
    # prereg
    (["prereg", "nofile.toml", "--store", "{root}/s6"], "No hypothesis file at 'nofile.toml'"),
    (["prereg", "{hypotheses}", "--store", "{truncated}"], "is corrupt or not an SQLite database"),
    # study
    (["study", "prime-control", "--quick", "-o", "{file}", "--store", "{root}/s7"], "'output' parameter of run_study"),
    (["study", "prime-control", "--quick", "--resamples", "0", "--store", "{root}/s8"], "'n_resamples' parameter"),
    (["study", "prime-control", "--quick", "--seed", "-1", "--store", "{root}/s8"], "'--seed' parameter of unitheory"),
    (  # refused before the study's runs, not when its report is written after them
        ["study", "prime-control", "--quick", "-o", "{file}/report", "--store", "{root}/s9"],
        "'output' parameter of run_study must be a directory (existing or not). Got '{file}/report', but '{file}' on",
    ),
]


#: hypotheses that do not fit the store's runs: 'falsify' exits 0 with an inconclusive verdict saying why
MISMATCHED = {
    "a misspelt axis": (
        'scope = { specs = ["toy"], axes = ["widht"] }\nprediction = { kind = "rank" }\ntests = ["kendall"]',
        "scope.axes names ['widht'], which no run in scope has, so its configurations cannot be formed.",
    ),
    "a scope that matches no run": (
        'scope = { specs = ["toyy"], axes = ["width"] }\nprediction = { kind = "rank" }\ntests = ["kendall"]',
        "no run of the store is in scope (scope.specs = ['toyy']).",
    ),
}


@pytest.mark.parametrize("case", list(MISMATCHED))
def test_a_hypothesis_that_does_not_fit_the_runs_is_inconclusive_with_the_reason(world, capsys, tmp_path, case):
    """Before: a misspelt axis was dropped silently (Kendall's interval then resampled seeds as independent runs, psi
    failed with 'must name at least one axis. Got []'), and an empty scope read 'the runs ... do not record'."""
    body, reason = MISMATCHED[case]
    path = tmp_path / "h.toml"
    path.write_text(f'[[hypothesis]]\nname = "h"\nquantity = "prime_count"\noutcome = "final_test_loss"\n{body}\n')
    shutil.copytree(world["good"], tmp_path / "store")  # falsify saves its verdicts: leave the shared store alone
    capsys.readouterr()
    assert bridge.cli.main(["falsify", str(path), "--store", str(tmp_path / "store"), "--resamples", "49"]) == 0
    out = capsys.readouterr().out
    assert f"h           inconclusive  {reason}" in out


#: specs of PROBES rows whose error comes from a run itself (so after the store was opened)
RUN_TIME_ERRORS = ("telescope.toml",)


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
    argv = _argv(argv, world)
    store = Path(argv[argv.index("--store") + 1]) if "--store" in argv else None
    existed = store is not None and store.exists()
    err = _one_line_error(capsys, argv[0], argv)
    assert fragment.replace("{file}", str(world["file"])) in err
    assert time.monotonic() - start < 30  # refused at once: the Ray probe does not wait for a cluster
    in_a_run = any(a.endswith(RUN_TIME_ERRORS) for a in argv)
    if argv[0] == "run" and store is not None and not existed and not in_a_run:  # refused before the store exists
        assert not store.exists()


@pytest.mark.parametrize("command", ["export", "report"])
def test_an_output_folder_this_user_may_not_write_is_refused_before_reading(world, capsys, monkeypatch, command):
    """As root (CI) every folder is writable: os.access stands in for a folder of another user."""
    monkeypatch.setattr("theory._validation.os.access", lambda path, mode: Path(path) != world["root"])
    err = _one_line_error(capsys, command, [command, "--store", str(world["good"]), "-o", str(world["root"] / "o")])
    assert f"this user may write. Got '{world['root'] / 'o'}', but '{world['root']}' is read-only for them." in err


def test_ctrl_c_is_one_plain_line_with_exit_code_130_and_the_stored_runs_stay(world, capsys, monkeypatch, tmp_path):
    """Ctrl-C during the second run: no KeyboardInterrupt traceback, the first run stored, no lease left behind."""
    import empirics.sweep

    execute_run, calls = empirics.sweep.execute_run, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return execute_run(*args, **kwargs)

    monkeypatch.setattr(empirics.sweep, "execute_run", interrupted)
    spec = tmp_path / "two.toml"
    spec.write_text(TOY.replace("[params]", "seeds = [0, 1]\n[params]"))
    capsys.readouterr()
    assert bridge.cli.main(["run", str(spec), "--store", str(tmp_path / "store")]) == 130
    err = capsys.readouterr().err
    assert err == "unitheory run: interrupted; the runs stored so far are kept: rerun the same command to resume\n"
    with Store(tmp_path / "store", readonly=True) as store:
        assert len(store.runs()) == 1
        assert store._conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0


def test_a_dead_pool_worker_is_one_plain_line_and_rerunning_resumes(world, capsys, tmp_path):
    """A worker killed mid-run (the toy's crash_marker: os._exit on a first attempt) broke the pool with a
    BrokenProcessPool traceback; now one line naming the lost run, and the same command then completes."""
    spec = tmp_path / "crash.toml"
    spec.write_text(TOY.replace("steps = 4", f"steps = 4\ncrash_marker = '{tmp_path / 'crashed'}'"))
    argv = ["run", str(spec), "--store", str(tmp_path / "store"), "--backend", "pool"]
    err = _one_line_error(capsys, "run", argv)
    assert "A pool worker died (killed, or out of memory?) while runs [" in err and "rerun the same command" in err
    assert bridge.cli.main(argv) == 0
    with Store(tmp_path / "store", readonly=True) as store:
        assert len(store.runs()) == 1


def test_a_full_disk_while_exporting_says_so_and_that_the_store_is_untouched(world, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Store, "export", full)
    err = _one_line_error(capsys, "export", ["export", "--store", str(world["good"]), "-o", str(world["root"] / "x")])
    assert "the disk is full (No space left on device) while writing the output, which is incomplete; the store" in err


def test_a_reader_that_stops_reading_gets_no_broken_pipe_message(world, capsys, monkeypatch):
    """'unitheory runs | head -3' printed 'unitheory runs: error: [Errno 32] Broken pipe' when head exited."""
    import bridge.cli.runs

    def gone(*args, **kwargs):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(bridge.cli.runs, "describe", gone)
    capsys.readouterr()
    assert bridge.cli.main(["runs", "--store", str(world["good"])]) == 141
    assert capsys.readouterr().err == ""


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
