"""The embedded run store: SQLite (WAL) for runs, tidy records and results; content-hashed ``.npy`` arrays.

Layout of a store directory::

    store.sqlite          runs, records (run_id, step, quantity, value), arrays, results, schema_version
    arrays/ab/abcd....npy one file per distinct array, named by the sha256 of its .npy bytes

A run is written in one transaction (complete or absent). Nothing is pickled: scalars are SQL values,
structured fields JSON, arrays ``.npy`` read with ``allow_pickle=False``. A ``leases`` table holds the run claims of
live sweep drivers (:meth:`Store.claim_runs`), so two drivers on one store never execute the same run twice.

Whatever goes wrong with the store itself (a path that is a file, a corrupt or foreign database, a read-only or
full disk, a store written by a newer unitheory) raises :class:`StoreError` with a one-line message in plain words.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.util
import io
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

import numpy as np
import pandas as pd

from empirics.leases import LEASE_TTL_S, Claim, LeaseOwner, claim
from empirics.spec import RunConfig
from theory._validation import check_option, check_output_dir

SCHEMA_VERSION = 2
#: version 2: the eNTK-interpolator effective parameters of the double-descent MLPs are stored under the names of
#: what they are (``p_train_ntk_interp``, ``p_test_ntk_interp``), freeing ``p_train``/``p_test`` for the telescoping
#: model's (Jeffares et al. 2024). A writable store of version 1 is migrated when opened; a read-only one is read
#: with the new names (:func:`_ntk_interp_names`)
_NTK_INTERP_RENAMES = {"p_train": "p_train_ntk_interp", "p_test": "p_test_ntk_interp"}
_NTK_INTERP_PHENOMENA = ("double_descent_mlp", "double_descent_epochwise")
DB_NAME = "store.sqlite"
RUN_COLUMNS = ("run_id", "spec", "phenomenon", "seed", "started_at", "finished_at", "wall_s")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, spec TEXT NOT NULL, phenomenon TEXT NOT NULL, seed INTEGER NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT NOT NULL, wall_s REAL NOT NULL,
    params TEXT NOT NULL, outcomes TEXT NOT NULL, quantities TEXT NOT NULL, schedule TEXT NOT NULL,
    plugins TEXT NOT NULL, provenance TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step INTEGER NOT NULL, quantity TEXT NOT NULL, value REAL);
CREATE INDEX IF NOT EXISTS records_run ON records (run_id, quantity);
CREATE TABLE IF NOT EXISTS arrays (
    run_id TEXT NOT NULL REFERENCES runs(run_id), name TEXT NOT NULL, ref TEXT NOT NULL, PRIMARY KEY (run_id, name));
CREATE TABLE IF NOT EXISTS results (
    kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY, token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL, expires REAL NOT NULL);
"""


def _schema_columns() -> dict[str, tuple[str, ...]]:
    with sqlite3.connect(":memory:") as conn:
        conn.executescript(_SCHEMA)
        return {t: _columns(conn, t) for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table!r})"))


#: table -> its columns, read from :data:`_SCHEMA` itself; a table of one of these names with other columns is foreign
TABLES: dict[str, tuple[str, ...]] = _schema_columns()


#: seconds a connection waits for another process's lock on the store before giving up
LOCK_TIMEOUT_S = 60.0


def _write_ahead_log(conn: sqlite3.Connection, timeout: float = LOCK_TIMEOUT_S) -> None:
    """Put the database in WAL mode, retrying a lock conflict up to ``timeout`` seconds, as every other lock waits: the
    switch needs an exclusive lock, and SQLite may refuse a conflicting one at once instead of waiting in its busy
    handler (two drivers opening one store under load failed so once, "database is locked" while opening)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if (
                getattr(err, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_LOCKED")
                or time.monotonic() > deadline
            ):
                raise
            time.sleep(0.02)


class StoreError(ValueError):
    """The store cannot be opened, read or written: the message names the store and says why in plain words."""


def _plain_errors(action: str) -> Callable:
    """Decorator of :class:`Store` methods: an SQLite or OS error becomes a :class:`StoreError` saying what it means
    for the store (``action`` says what the method was doing)."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except FileNotFoundError:
                raise  # it names what is missing already
            except (sqlite3.Error, OSError) as err:
                raise StoreError(_explain(self, err, action)) from err

        return wrapper

    return decorate


def _explain(store: Store, err: sqlite3.Error | OSError, action: str) -> str:
    name = getattr(err, "sqlite_errorname", "") or ""
    where = f"store {str(store.path)!r}"
    if name == "SQLITE_FULL" or (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)):
        return (
            f"{where}: the disk is full while {action}; nothing was half-written and the runs stored before are "
            f"intact. Free some space and rerun the same command to resume."
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return (
            f"{str(store.db_path)!r} is corrupt or not an SQLite database ({err}) while {action}; restore it from "
            f"a copy, or move it away to start a new store."
        )
    if name.startswith("SQLITE_READONLY") or isinstance(err, PermissionError):
        opened = " (opened read-only)" if store.readonly else ""
        return (
            f"{where} is read-only{opened} and {action} needs to write to it ({err}); the reading commands (runs, "
            f"export, report) open it read-only."
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"{where} stayed locked by another process while {action} ({err}); retry once it has finished."
    if name.startswith("SQLITE_CANTOPEN"):
        return f"cannot open {str(store.db_path)!r} while {action} ({err}): check the permissions of the store."
    return f"{where}: {type(err).__name__} while {action}: {err}"


class ExportFormat(StrEnum):
    """Table formats of :meth:`Store.export`. ``CSV`` (default, stdlib-readable) or ``PARQUET`` (needs pyarrow)."""

    CSV = "csv"
    PARQUET = "parquet"


@dataclass(frozen=True)
class RunResult:
    """Everything a backend returns for one run; the driver writes it with :meth:`Store.write_run`."""

    config: RunConfig
    outcomes: Mapping[str, float]
    rows: list[tuple[int, str, float]]
    provenance: Mapping[str, Any]
    started_at: str
    finished_at: str
    wall_s: float
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.config.run_id


class Store:
    """A directory holding ``store.sqlite`` and ``arrays/``; created on first use unless ``create=False``.

    Args:
        path: the store directory.
        create: make the directory and tables if missing; with ``False`` a missing store raises
            ``FileNotFoundError``.
        readonly: open the database read-only (SQLite ``mode=ro``; implies ``create=False``): the reading
            commands work on a store the user may not write, and can never change it. Where SQLite cannot even
            create its shared-memory file (a read-only directory of a closed store), it opens the file immutable.

    Raises:
        StoreError: (a ``ValueError``) the path is a file, ``store.sqlite`` is a directory, the database is
            corrupt, foreign (tables of unitheory's names with other columns, or no ``schema_version``) or was
            written by a newer schema (names both versions), or the store cannot be created.
    """

    @_plain_errors("opening it")
    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self.db_path = self.path / DB_NAME
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._version = SCHEMA_VERSION
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{str(self.path)!r} is a file, not a unitheory store (a directory holding {DB_NAME}).")
        if self.db_path.is_dir():
            raise StoreError(f"{str(self.db_path)!r} is a directory, not an SQLite database file.")
        if not self.db_path.is_file():
            if readonly or not create:
                raise FileNotFoundError(f"No unitheory store at {str(self.path)!r} (expected {DB_NAME} there).")
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as err:  # a file on the way, or a folder this user may not write
                raise StoreError(
                    f"Cannot create a store at {str(self.path)!r}: {err.strerror or err} ({str(err.filename)!r}); "
                    f"choose a path in a folder this user may write."
                ) from None
        try:
            self._conn = self._connect()
            self._check_schema()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        if not self.readonly:
            return sqlite3.connect(self.db_path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
        uri = f"file:{pathname2url(str(self.db_path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as err:
            if not err.sqlite_errorname.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")):
                raise
            conn.close()  # no -shm file and no right to create one: no writer is attached, the file cannot change
            conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None)
        return conn

    def _check_schema(self) -> None:
        tables = {name for (name,) in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} - {
            "sqlite_sequence"
        }
        if tables and "schema_version" not in tables:
            raise StoreError(
                f"{str(self.db_path)!r} is an SQLite database but not a unitheory store "
                f"(tables {sorted(tables)}, no schema_version table)."
            )
        for table in sorted(tables & set(TABLES)):
            columns = _columns(self._conn, table)
            if columns != TABLES[table]:
                raise StoreError(
                    f"{str(self.db_path)!r} has a {table!r} table that is not unitheory's: columns {list(columns)}, "
                    f"expected {list(TABLES[table])}."
                )
        if self.readonly:
            if not tables:
                raise StoreError(f"{str(self.db_path)!r} is an empty database, not a unitheory store.")
            version = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        else:  # only now that the database is known to be a unitheory store (or empty) is anything written
            _write_ahead_log(self._conn)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            with self._transaction() as conn:
                version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
                if version is None:
                    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                elif version < SCHEMA_VERSION:
                    _migrate(conn, version)
                else:  # a store SQLite can read but not write fails here, not after the work to be written
                    conn.execute("UPDATE schema_version SET version = version")
        self._version = SCHEMA_VERSION if version is None or not self.readonly else version
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"Store {str(self.path)!r} has schema version {version}, newer than this unitheory's schema "
                f"version {SCHEMA_VERSION}; upgrade unitheory to read it."
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                self._conn.execute("ROLLBACK")
            raise

    # writing -----------------------------------------------------------------------------------------------
    @_plain_errors("writing a run")
    def write_run(self, result: RunResult) -> None:
        """Write one run, its records and array references in a single transaction (replacing a previous copy);
        the run's lease, if any, ends in the same transaction."""
        refs = {name: self.save_array(array) for name, array in result.arrays.items()}
        cfg = result.config
        provenance = {**result.provenance, "seed": cfg.seed, "started_at": result.started_at}
        provenance["finished_at"] = result.finished_at
        with self._transaction() as conn:
            for table in ("records", "arrays", "runs", "leases"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (result.run_id,))
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.run_id,
                    cfg.spec,
                    cfg.phenomenon,
                    cfg.seed,
                    result.started_at,
                    result.finished_at,
                    float(result.wall_s),
                    _dumps(dict(cfg.params)),
                    _dumps({k: float(v) for k, v in result.outcomes.items()}),
                    _dumps(list(cfg.quantities)),
                    _dumps(list(cfg.schedule)),
                    _dumps(list(cfg.plugins)),
                    _dumps(provenance),
                ),
            )
            conn.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?)",
                ((result.run_id, int(s), str(q), float(v)) for s, q, v in result.rows),
            )
            conn.executemany("INSERT INTO arrays VALUES (?, ?, ?)", ((result.run_id, n, r) for n, r in refs.items()))

    @_plain_errors("writing an array file")
    def save_array(self, array: np.ndarray) -> str:
        """Write ``array`` as ``arrays/<h[:2]>/<h>.npy`` with h = sha256 of its .npy bytes; returns h (the ref)."""
        array = np.asarray(array)
        buffer = io.BytesIO()
        np.save(buffer, array if array.flags.c_contiguous else array.copy(order="C"), allow_pickle=False)
        data = buffer.getvalue()
        ref = hashlib.sha256(data).hexdigest()
        target = self._array_path(ref)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return ref

    @_plain_errors("saving a result")
    def put_result(self, kind: str, key: str, payload: Mapping[str, Any]) -> None:
        """Store a JSON payload (a bridge output: preregistration, verdict) under ``(kind, key)``, replacing it."""
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?)", (kind, key, _dumps(dict(payload))))

    @_plain_errors("claiming runs")
    def claim_runs(
        self, run_ids: Sequence[str], owner: LeaseOwner, *, limit: int | None = None, ttl_s: float = LEASE_TTL_S
    ) -> Claim:
        """Lease up to ``limit`` of ``run_ids`` to ``owner`` for ``ttl_s`` seconds, in one transaction (see
        :func:`empirics.leases.claim`: stored runs and runs another live driver holds are not taken)."""
        with self._transaction() as conn:
            return claim(conn, run_ids, owner, limit=limit, ttl_s=ttl_s)

    @_plain_errors("renewing its run leases")
    def renew_leases(self, owner: LeaseOwner, *, ttl_s: float = LEASE_TTL_S) -> int:
        """Heartbeat: extend every lease of ``owner`` to ``ttl_s`` seconds from now; returns how many."""
        now = time.time()
        with self._transaction() as conn:
            sql = "UPDATE leases SET heartbeat = ?, expires = ? WHERE token = ?"
            return conn.execute(sql, (now, now + ttl_s, owner.token)).rowcount

    @_plain_errors("releasing its run leases")
    def release_leases(self, owner: LeaseOwner) -> None:
        """End every lease of ``owner`` (a driver that stops, finished or not)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM leases WHERE token = ?", (owner.token,))

    # reading -----------------------------------------------------------------------------------------------
    @_plain_errors("reading it")
    def run_ids(self) -> set[str]:
        """The ids of the complete runs."""
        return {r[0] for r in self._conn.execute("SELECT run_id FROM runs")}

    @_plain_errors("reading it")
    def runs(self) -> pd.DataFrame:
        """One row per run: run_id, spec, phenomenon, seed, started_at, finished_at, wall_s, then one column per
        resolved parameter, then one per outcome (missing entries NaN when phenomena differ)."""
        rows = self._conn.execute(
            f"SELECT {', '.join(RUN_COLUMNS)}, params, outcomes FROM runs ORDER BY spec, started_at, run_id"
        ).fetchall()
        base = [dict(zip(RUN_COLUMNS, r[:-2], strict=True)) for r in rows]
        params = [{k: v for k, v in json.loads(r[-2]).items() if k not in RUN_COLUMNS} for r in rows]
        outcomes = [json.loads(r[-1]) for r in rows]
        if self._version < 2:  # a read-only store of version 1, read with version 2's names
            outcomes = [_ntk_interp_names(b["phenomenon"], o) for b, o in zip(base, outcomes, strict=True)]
        param_cols = list(dict.fromkeys(k for p in params for k in p))
        outcome_cols = [k for k in dict.fromkeys(k for o in outcomes for k in o) if k not in param_cols]
        columns = [*RUN_COLUMNS, *param_cols, *outcome_cols]
        data = [{**b, **p, **o} for b, p, o in zip(base, params, outcomes, strict=True)]
        return pd.DataFrame(data, columns=columns)

    @_plain_errors("reading it")
    def records(self, run_ids: Iterable[str] | None = None, quantities: Iterable[str] | None = None) -> pd.DataFrame:
        """Tidy records ``[run_id, step, quantity, value]``, optionally restricted to some runs and quantities."""
        where, args = [], []
        for column, values in (("run_id", run_ids), ("quantity", quantities)):
            if values is not None:
                values = list(values)
                where.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
                args += values
        sql = "SELECT run_id, step, quantity, value FROM records"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY run_id, rowid"
        frame = pd.DataFrame(self._conn.execute(sql, args).fetchall(), columns=["run_id", "step", "quantity", "value"])
        return frame.astype({"step": "int64", "value": "float64"})

    @_plain_errors("reading it")
    def config(self, run_id: str) -> RunConfig:
        """The :class:`RunConfig` a stored run was executed from."""
        row = self._one(
            "SELECT spec, phenomenon, params, quantities, schedule, plugins FROM runs WHERE run_id = ?", run_id
        )
        spec, phenomenon, params, quantities, schedule, plugins = row
        return RunConfig(
            spec, phenomenon, json.loads(params), tuple(json.loads(quantities)), tuple(json.loads(schedule)),
            tuple(json.loads(plugins)),
        )  # fmt: skip

    @_plain_errors("reading it")
    def provenance(self, run_id: str) -> dict[str, Any]:
        """Versions (unitheory, torch, numpy, python), host, platform, threads, seed, start and end time of a run."""
        return json.loads(self._one("SELECT provenance FROM runs WHERE run_id = ?", run_id)[0])

    @_plain_errors("reading it")
    def arrays(self, run_id: str) -> dict[str, str]:
        """Array name -> content ref of a run (load with :meth:`load_array`)."""
        self._one("SELECT run_id FROM runs WHERE run_id = ?", run_id)
        return dict(self._conn.execute("SELECT name, ref FROM arrays WHERE run_id = ? ORDER BY name", (run_id,)))

    @_plain_errors("reading an array file")
    def load_array(self, ref: str) -> np.ndarray:
        """The array stored under ``ref`` (``allow_pickle=False``: loading never executes code)."""
        if len(ref) != 64 or any(c not in "0123456789abcdef" for c in ref):
            raise ValueError(
                f"The 'ref' parameter of Store.load_array must be a sha256 hex digest. Got {ref!r} instead."
            )
        path = self._array_path(ref)
        if not path.is_file():
            raise FileNotFoundError(f"No array {ref} in store {str(self.path)!r}.")
        return np.load(path, allow_pickle=False)

    @_plain_errors("reading it")
    def results(self, kind: str) -> list[dict[str, Any]]:
        """The payloads stored with :meth:`put_result` under ``kind``, ordered by key."""
        rows = self._conn.execute("SELECT payload FROM results WHERE kind = ? ORDER BY key", (kind,))
        return [json.loads(r[0]) for r in rows]

    def export(self, directory: str | Path, format: ExportFormat | str = ExportFormat.CSV) -> list[Path]:
        """Write ``runs`` and ``records`` tables (and ``results`` as JSON lines) into ``directory``.

        Raises:
            ImportError: ``format="parquet"`` without pyarrow (``pip install unitheory[dev]`` or ``pyarrow``).
            ValueError: ``directory`` is an existing file.
        """
        fmt = ExportFormat(check_option("format", format, [f.value for f in ExportFormat], owner="Store.export"))
        if fmt is ExportFormat.PARQUET and importlib.util.find_spec("pyarrow") is None:
            raise ImportError("Parquet export needs pyarrow: pip install pyarrow (or unitheory[dev]).")
        out = check_output_dir("directory", directory, owner="Store.export")
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in (("runs", self.runs()), ("records", self.records())):
            path = out / f"{name}.{fmt.value}"
            if fmt is ExportFormat.CSV:
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False, engine="pyarrow")
            paths.append(path)
        kinds = self._result_kinds()
        if kinds:
            path = out / "results.jsonl"
            path.write_text("".join(_dumps({"kind": k, "payload": p}) + "\n" for k in kinds for p in self.results(k)))
            paths.append(path)
        return paths

    @_plain_errors("reading it")
    def summary(self) -> pd.DataFrame:
        """Runs and records per (spec, phenomenon): what ``unitheory runs`` prints first."""
        sql = (
            "SELECT spec, phenomenon, COUNT(*) AS runs, SUM(COALESCE(n, 0)) AS records, SUM(wall_s) AS wall_s "
            "FROM runs LEFT JOIN (SELECT run_id, COUNT(*) AS n FROM records GROUP BY run_id) USING (run_id) "
            "GROUP BY spec, phenomenon ORDER BY spec"
        )
        return pd.DataFrame(
            self._conn.execute(sql).fetchall(), columns=["spec", "phenomenon", "runs", "records", "wall_s"]
        )

    @_plain_errors("reading it")
    def _result_kinds(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT DISTINCT kind FROM results ORDER BY kind")]

    def _one(self, sql: str, run_id: str) -> tuple:
        row = self._conn.execute(sql, (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"No run {run_id!r} in store {str(self.path)!r}.")
        return row

    def _array_path(self, ref: str) -> Path:
        return self.path / "arrays" / ref[:2] / f"{ref}.npy"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _ntk_interp_names(phenomenon: str, outcomes: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2 names of one run's outcomes: ``p_train``/``p_test`` of a double-descent MLP were its eNTK
    interpolator's (:func:`empirics.phenomena.double_descent.entk_effective_parameters`), now ``*_ntk_interp``."""
    if phenomenon not in _NTK_INTERP_PHENOMENA:
        return outcomes
    return {_NTK_INTERP_RENAMES.get(k, k): v for k, v in outcomes.items()}


def _rename_ntk_interp(conn: sqlite3.Connection) -> None:
    """Migration 1 -> 2: rewrite the outcomes of double-descent MLP runs with :func:`_ntk_interp_names`."""
    marks = ", ".join("?" * len(_NTK_INTERP_PHENOMENA))
    query = f"SELECT run_id, phenomenon, outcomes FROM runs WHERE phenomenon IN ({marks})"
    for run_id, phenomenon, text in conn.execute(query, _NTK_INTERP_PHENOMENA).fetchall():
        outcomes = json.loads(text)
        renamed = _ntk_interp_names(phenomenon, outcomes)
        if renamed != outcomes:
            conn.execute("UPDATE runs SET outcomes = ? WHERE run_id = ?", (_dumps(renamed), run_id))


#: schema version -> the step that upgrades a store from it to the next version
_MIGRATIONS = {1: _rename_ntk_interp}


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Upgrade a store at schema ``version`` to :data:`SCHEMA_VERSION`, inside the caller's transaction."""
    for step in range(version, SCHEMA_VERSION):
        _MIGRATIONS[step](conn)
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))


__all__ = ["SCHEMA_VERSION", "ExportFormat", "RunResult", "Store", "StoreError"]
