"""The SQLite store: round trips, atomic writes, schema versions, content-hashed arrays, exports."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import importlib.util
import io
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from empirics.spec import RunConfig
from empirics.store import RUN_COLUMNS, SCHEMA_VERSION, RunResult, Store, StoreError


def _result(seed: int = 0, rows=None, arrays=None, **params) -> RunResult:
    config = RunConfig("spec-a", "toy_regression", {"steps": 2, "width": 3, **params, "seed": seed}, ("q",), (0, 2))
    return RunResult(
        config=config,
        outcomes={"final_test_loss": 0.25 + seed},
        rows=[(0, "train_loss", 1.0), (0, "test_loss", 1.5), (2, "train_loss", 0.5)] if rows is None else rows,
        provenance={"torch": "x", "host": "h"},
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
        wall_s=1.0,
        arrays={"w": np.arange(6.0).reshape(2, 3)} if arrays is None else arrays,
    )


def test_round_trip_of_runs_records_provenance_and_arrays(tmp_path):
    store = Store(tmp_path / "s")
    result = _result()
    store.write_run(result)
    runs = store.runs()
    assert list(runs.columns) == [*RUN_COLUMNS, "steps", "width", "final_test_loss"]
    assert runs.iloc[0][["run_id", "spec", "seed", "width", "final_test_loss"]].tolist() == [
        result.run_id, "spec-a", 0, 3, 0.25,
    ]  # fmt: skip
    records = store.records()
    assert list(records.itertuples(index=False, name=None)) == [(result.run_id, *row) for row in result.rows]
    assert store.provenance(result.run_id) == {
        "torch": "x", "host": "h", "seed": 0, "started_at": result.started_at, "finished_at": result.finished_at,
    }  # fmt: skip
    ref = store.arrays(result.run_id)["w"]
    np.testing.assert_array_equal(store.load_array(ref), result.arrays["w"])
    assert store.config(result.run_id) == result.config
    assert (tmp_path / "s" / "store.sqlite").is_file()
    assert sqlite3.connect(tmp_path / "s" / "store.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)


@given(
    hnp.arrays(np.float64, _SHAPES, elements=st.floats(allow_subnormal=False, width=64))
    | hnp.arrays(np.float32, _SHAPES, elements=st.floats(allow_subnormal=False, width=32))
    | hnp.arrays(hnp.integer_dtypes(), _SHAPES)
)
def test_array_ref_is_sha256_of_npy_bytes(tmp_path_factory, array):
    store = Store(tmp_path_factory.mktemp("arrays"))
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    ref = store.save_array(array)
    assert ref == hashlib.sha256(buffer.getvalue()).hexdigest()
    assert store.save_array(array.copy()) == ref  # same content, same file
    loaded = store.load_array(ref)
    assert loaded.dtype == array.dtype and loaded.tobytes() == array.tobytes()


def test_nothing_is_pickled(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="pickle"):
        store.save_array(np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="sha256"):
        store.load_array("../../etc/passwd")


def test_a_failing_write_leaves_the_run_absent(tmp_path):
    store = Store(tmp_path)
    store.write_run(_result(seed=1))
    broken = _result(seed=2, rows=[(0, "train_loss", 1.0), (1, "train_loss", "not a number")])
    with pytest.raises(ValueError):
        store.write_run(broken)
    assert store.run_ids() == {_result(seed=1).run_id}
    assert set(store.records()["run_id"]) == {_result(seed=1).run_id}
    with pytest.raises(KeyError, match=broken.run_id):
        store.provenance(broken.run_id)


def test_newer_schema_is_refused_naming_both_versions(tmp_path):
    Store(tmp_path).close()
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 7,))
    with pytest.raises(ValueError, match=rf"schema version {SCHEMA_VERSION + 7}.*schema version {SCHEMA_VERSION}"):
        Store(tmp_path)


def test_version_1_store_is_migrated_renaming_the_ntk_interpolator_outcomes(tmp_path):
    """Version 1 stored the eNTK interpolator's p_train/p_test of double-descent MLPs under the telescoping model's
    names; opening the store renames them for those phenomena only, once, and records the new version (a read-only
    opening reads the new names and writes nothing)."""
    store = Store(tmp_path)
    dd = dataclasses.replace(_result(seed=0), outcomes={"test_error": 0.3, "p_train": 16.0, "p_test": 40.0})
    dd = dataclasses.replace(dd, config=dataclasses.replace(dd.config, phenomenon="double_descent_mlp"))
    other = dataclasses.replace(_result(seed=1), outcomes={"p_train": 5.0, "p_test": 6.0})
    store.write_run(dd)
    store.write_run(other)
    store.close()
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        conn.execute("UPDATE schema_version SET version = 1")
        conn.execute("UPDATE runs SET outcomes = ? WHERE run_id = ?", ('{"p_test": 40.0, "p_train": 16.0}', dd.run_id))
    read_only = Store(tmp_path, readonly=True).runs().set_index("seed")  # read with the new names, not written
    assert read_only.loc[0, "p_test_ntk_interp"] == 40.0 and read_only.loc[1, "p_test"] == 6.0
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    for _ in range(2):  # a second opening finds version 2 and changes nothing
        runs = Store(tmp_path).runs().set_index("seed")
        assert runs.loc[0, "p_train_ntk_interp"] == 16.0 and runs.loc[0, "p_test_ntk_interp"] == 40.0
        assert np.isnan(runs.loc[0, "p_train"]) and runs.loc[1, "p_train"] == 5.0
        assert np.isnan(runs.loc[1, "p_train_ntk_interp"])
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_missing_store_is_not_created_for_reading(tmp_path):
    with pytest.raises(FileNotFoundError, match="No unitheory store"):
        Store(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()


def test_results_are_json_blobs_keyed_by_kind_and_key(tmp_path):
    store = Store(tmp_path)
    store.put_result("verdict", "h2", {"pvalue": 0.5, "ok": False})
    store.put_result("verdict", "h1", {"pvalue": 0.01, "ok": True})
    store.put_result("verdict", "h2", {"pvalue": 0.4, "ok": False})
    store.put_result("prereg", "h1", {"text": "x"})
    assert store.results("verdict") == [{"pvalue": 0.01, "ok": True}, {"pvalue": 0.4, "ok": False}]
    assert store.results("prereg") == [{"text": "x"}] and store.results("none") == []


def test_record_filters_and_mixed_phenomena(tmp_path):
    store = Store(tmp_path)
    a, b = _result(seed=0), _result(seed=1, lr=0.5)
    b = dataclasses.replace(b, config=dataclasses.replace(b.config, phenomenon="other"))
    store.write_run(a)
    store.write_run(b)
    assert set(store.records(run_ids=[a.run_id])["run_id"]) == {a.run_id}
    assert list(store.records(quantities=["test_loss"])["quantity"].unique()) == ["test_loss"]
    assert store.records(run_ids=[]).empty
    runs = store.runs().set_index("run_id")
    assert np.isnan(runs.loc[a.run_id, "lr"]) and runs.loc[b.run_id, "lr"] == 0.5
    summary = store.summary()
    assert summary["runs"].tolist() == [1, 1] and summary["records"].tolist() == [3, 3]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trips(tmp_path, fmt):
    store = Store(tmp_path / "s")
    store.write_run(_result(seed=0))
    store.write_run(_result(seed=3))
    store.put_result("verdict", "k", {"v": 1})
    paths = store.export(tmp_path / "out", fmt)
    assert [p.name for p in paths] == [f"runs.{fmt}", f"records.{fmt}", "results.jsonl"]
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    pd.testing.assert_frame_equal(read(paths[0]), store.runs(), check_dtype=False)
    pd.testing.assert_frame_equal(read(paths[1]), store.records(), check_dtype=False)
    assert paths[2].read_text() == '{"kind":"verdict","payload":{"v":1}}\n'


def test_parquet_without_pyarrow_errors_clearly(tmp_path, monkeypatch):
    store = Store(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(ImportError, match="Parquet export needs pyarrow"):
        store.export(tmp_path / "out", "parquet")
    with pytest.raises(ValueError, match="'format' parameter of Store.export must be one of 'csv', 'parquet'"):
        store.export(tmp_path / "out", "xlsx")


# Issue 11, item 3: what goes wrong with the store itself is a StoreError in plain words (the CLI prints it in one
# line with exit code 2: tests/bridge/test_bad_inputs_cli.py).


def _filled(path: Path, runs: int = 3) -> Store:
    store = Store(path)
    for seed in range(runs):
        store.write_run(_result(seed=seed, rows=[(s, "q", float(s)) for s in range(200)]))
    return store


def test_a_path_that_is_a_file_or_a_database_that_is_a_directory_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match=r"'.*file' is a file, not a unitheory store"):
        Store(tmp_path / "file")
    (tmp_path / "dir" / "store.sqlite").mkdir(parents=True)
    with pytest.raises(StoreError, match=r"store.sqlite' is a directory, not an SQLite database file"):
        Store(tmp_path / "dir", readonly=True)


def test_corrupt_and_truncated_databases_are_named_corrupt(tmp_path):
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "store.sqlite").write_bytes(np.random.default_rng(0).bytes(8192))
    with pytest.raises(StoreError, match="is corrupt or not an SQLite database"):
        Store(tmp_path / "noise")
    _filled(tmp_path / "full").close()
    db = tmp_path / "full" / "store.sqlite"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    with pytest.raises(StoreError, match="is corrupt or not an SQLite database"):
        Store(tmp_path / "full", readonly=True).runs()


def test_a_foreign_database_is_refused_and_left_unchanged(tmp_path):
    (tmp_path / "a").mkdir()
    with sqlite3.connect(tmp_path / "a" / "store.sqlite") as conn:
        conn.execute("CREATE TABLE runs (id INTEGER, name TEXT)")
    before = (tmp_path / "a" / "store.sqlite").read_bytes()
    with pytest.raises(StoreError, match=r"not a unitheory store \(tables \['runs'\], no schema_version table\)"):
        Store(tmp_path / "a")
    assert (tmp_path / "a" / "store.sqlite").read_bytes() == before  # nothing created in someone else's database
    Store(tmp_path / "b").close()
    with sqlite3.connect(tmp_path / "b" / "store.sqlite") as conn:
        conn.execute("DROP TABLE runs")
        conn.execute("CREATE TABLE runs (id INTEGER, name TEXT)")
    with pytest.raises(StoreError, match=r"has a 'runs' table that is not unitheory's: columns \['id', 'name'\]"):
        Store(tmp_path / "b")


def test_a_full_disk_says_so_and_the_stored_runs_stay_intact(tmp_path):
    store = _filled(tmp_path / "s", runs=2)
    before = store.records()
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite raises SQLITE_FULL past this size
    big = _result(seed=7, rows=[(s, "q", float(s)) for s in range(5000)])
    with pytest.raises(
        StoreError, match="the disk is full while writing a run; nothing was half-written and the runs "
    ):
        store.write_run(big)
    assert big.run_id not in store.run_ids()
    pd.testing.assert_frame_equal(store.records(), before)
    store.write_run(_result(seed=8, rows=[]))  # the store is still usable once there is room
    store.close()
    with Store(tmp_path / "s", readonly=True) as again:
        assert len(again.run_ids()) == 3 and big.run_id not in again.run_ids()


def test_an_array_file_on_a_full_disk_says_so(tmp_path, monkeypatch):
    store = Store(tmp_path)

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(StoreError, match="the disk is full while writing an array file"):
        store.save_array(np.arange(3.0))


@contextmanager
def _read_only_copy(src: Path, dst: Path) -> Iterator[bool]:
    """A copy of a store nobody may write: chmod a-w, and as root (whom chmod does not stop) the immutable flag.
    Yields whether the flag is set (then even root's writes fail)."""
    shutil.copytree(src, dst)
    paths = [dst, *dst.rglob("*")]
    for path in paths:
        path.chmod(path.stat().st_mode & ~0o222)
    immutable = (
        os.geteuid() == 0 and subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True).returncode == 0
    )
    try:
        yield immutable
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
        for path in paths:
            path.chmod(path.stat().st_mode | 0o200)


def test_a_read_only_store_opens_read_only_for_every_reading_command(tmp_path, capsys):
    import bridge.cli

    _filled(tmp_path / "s").close()
    with _read_only_copy(tmp_path / "s", tmp_path / "ro") as immutable:
        db = tmp_path / "ro" / "store.sqlite"
        before = db.read_bytes()
        with Store(tmp_path / "ro", readonly=True) as store:
            assert len(store.runs()) == 3
            with pytest.raises(StoreError, match=r"is read-only \(opened read-only\) and saving a result needs to"):
                store.put_result("verdict", "k", {"v": 1})  # SQLite itself refuses: proven even for root
        assert bridge.cli.main(["runs", "--store", str(tmp_path / "ro")]) == 0
        assert "3 runs" in capsys.readouterr().out
        assert bridge.cli.main(["export", "--store", str(tmp_path / "ro"), "-o", str(tmp_path / "out")]) == 0
        assert len(pd.read_csv(tmp_path / "out" / "runs.csv")) == 3
        assert bridge.cli.main(["report", "--store", str(tmp_path / "ro"), "-o", str(tmp_path / "rep")]) == 0
        assert (tmp_path / "rep" / "report.html").is_file()
        assert db.read_bytes() == before
        if immutable or os.geteuid() != 0:  # writing commands: one plain line each, whoever runs them
            hypotheses = "bridge/hypotheses/double_descent.toml"
            for argv in (["prereg", hypotheses], ["falsify", hypotheses], ["run", "grokking-modular", "--quick"]):
                capsys.readouterr()
                assert bridge.cli.main([*argv, "--store", str(tmp_path / "ro")]) == 2
                err = capsys.readouterr().err
                assert err.count("\n") == 1 and ("read-only" in err or "cannot open" in err), err
