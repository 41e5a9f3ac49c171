"""No duplicated or orphaned work (issue 11, item 4): run claims with a heartbeat, so two drivers on one store execute
each run once and a killed driver's claims are taken over; pool workers exit when their driver is killed."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from empirics.leases import LeaseOwner
from empirics.spec import load_spec
from empirics.store import Store
from empirics.sweep import execute_run, run_sweep

ENV = {**os.environ, "UNITHEORY_PROGRESS": "0"}


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _leases(store: Path) -> list[tuple]:
    if not (store / "store.sqlite").is_file():
        return []
    with sqlite3.connect(store / "store.sqlite", timeout=5) as conn:
        try:
            return conn.execute("SELECT run_id, token, host, pid, expires FROM leases").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return []


def test_claims_skip_stored_runs_and_live_leases_and_take_over_dead_ones(toy_spec, tmp_path):
    store = Store(tmp_path)
    here = socket.gethostname()
    a, b = LeaseOwner.current(), LeaseOwner.current()  # two drivers of this live process
    dead = LeaseOwner(here, _dead_pid(), "dead")
    remote = LeaseOwner("another-host", _dead_pid(), "remote")  # its pid means nothing here
    stored = execute_run(toy_spec().runs()[0])
    store.write_run(stored)
    ids = ["r1", "r2", "r3", "r4", "r5", stored.run_id]

    assert store.claim_runs(["r1", "r2"], a).taken == ("r1", "r2")
    assert store.claim_runs(["r3"], dead).taken == ("r3",)
    assert store.claim_runs(["r4"], remote).taken == ("r4",)
    assert store.claim_runs(["r5"], remote, ttl_s=-1.0).taken == ("r5",)  # expired at once: a stale heartbeat
    claim = store.claim_runs(ids, b)
    assert claim.held == ("r1", "r2", "r4")  # a live driver here, a live lease from another host
    assert claim.taken == ("r3", "r5")  # a dead driver here, an expired lease
    assert claim.stored == (stored.run_id,)
    assert store.claim_runs(["r1", "r3"], a).taken == ("r1",)  # a's own lease is a's; b holds r3 now
    assert store.claim_runs(["x", "y", "z"], a, limit=2).taken == ("x", "y")


def test_renewal_release_and_writing_end_leases(toy_spec, tmp_path):
    store = Store(tmp_path)
    owner, other = LeaseOwner.current(), LeaseOwner("another-host", 1, "other")
    run = execute_run(toy_spec().runs()[0])
    store.claim_runs([run.run_id, "r2"], owner, ttl_s=1.0)
    before = {r[0]: r[4] for r in _leases(tmp_path)}
    assert store.renew_leases(owner, ttl_s=100.0) == 2
    after = {r[0]: r[4] for r in _leases(tmp_path)}
    assert all(after[k] > before[k] + 50 for k in before)
    store.write_run(run)  # the run's lease ends in the transaction that stores it
    assert [r[0] for r in _leases(tmp_path)] == ["r2"]
    assert store.claim_runs(["r2"], other).held == ("r2",)
    store.release_leases(owner)
    assert _leases(tmp_path) == [] and store.claim_runs(["r2"], other).taken == ("r2",)


def test_a_driver_waits_for_runs_another_driver_holds_and_takes_them_over_when_their_lease_expires(toy_spec, tmp_path):
    spec = toy_spec()
    store = Store(tmp_path / "s")
    ghost = LeaseOwner("another-host", 1, "ghost")
    held = [c.run_id for c in spec.runs()[:2]]
    store.claim_runs(held, ghost, ttl_s=1.5)  # a driver elsewhere that stopped beating
    start = time.monotonic()
    summary = run_sweep(spec, store, log=None)
    assert time.monotonic() - start >= 1.0  # it waited for the lease instead of running the runs at once
    assert (summary.executed, summary.by_others) == (4, 0) and len(store.run_ids()) == 4
    assert _leases(tmp_path / "s") == []


def _slow_toy(toy_toml: Path, tmp_path: Path, log: Path, sleep_s: float) -> Path:
    text = toy_toml.read_text().replace("width = [2, 5]", "width = [2, 3, 4]")
    spec = tmp_path / "slow.toml"
    spec.write_text(text.replace("steps = 20\n", f"steps = 20\nsleep_s = {sleep_s}\nexecution_log = '{log}'\n", 1))
    return spec


def _driver(spec: Path, store: Path, *options: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "bridge.cli.run", str(spec), "--store", str(store), *options]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_drivers_execute_each_run_once(toy_toml, tmp_path):
    log = tmp_path / "executions.log"
    spec = _slow_toy(toy_toml, tmp_path, log, sleep_s=0.05)
    total = len(load_spec(spec).runs())
    drivers = [_driver(spec, tmp_path / "store") for _ in range(2)]
    outputs = [d.communicate(timeout=300) for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], [err for _, err in outputs]
    executions = [line.split()[1:3] for line in log.read_text().splitlines() if line.startswith("end ")]
    assert len(executions) == total and len({tuple(e) for e in executions}) == total
    summaries = [next(line for line in out.splitlines() if line.startswith("sweep ")) for out, _ in outputs]
    executed = [int(s.split(" already stored, ")[1].split(" executed")[0]) for s in summaries]
    assert sum(executed) == total, summaries
    assert len(Store(tmp_path / "store", readonly=True).run_ids()) == total


def test_a_killed_drivers_leases_are_taken_over_at_once(toy_toml, tmp_path):
    log = tmp_path / "executions.log"
    spec = _slow_toy(toy_toml, tmp_path, log, sleep_s=0.3)
    store = tmp_path / "store"
    driver = _driver(spec, store)
    deadline = time.monotonic() + 120
    while not _leases(store):
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    (lease,) = _leases(store)
    assert lease[3] == driver.pid and lease[4] > time.time() + 10  # its lease is still far from expiring
    start = time.monotonic()
    summary = run_sweep(load_spec(spec), store, log=None)
    assert time.monotonic() - start < 30  # no wait for the lease's expiry: its owner is gone
    assert summary.skipped + summary.executed == summary.total == 6
    assert lease[0] in {c.run_id for c in load_spec(spec).runs()} and _leases(store) == []


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc; zombies count as gone)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def test_pool_workers_exit_when_their_driver_is_killed(toy_toml, tmp_path):
    log = tmp_path / "executions.log"
    spec = _slow_toy(toy_toml, tmp_path, log, sleep_s=2.0)
    driver = _driver(spec, tmp_path / "store", "--workers", "2")
    deadline = time.monotonic() + 120
    while not log.is_file() or log.read_text().count("start ") < 2:  # both workers are running a run
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.05)
    workers = _children(driver.pid)  # the two workers and multiprocessing's resource tracker
    assert len(workers) >= 2
    driver.send_signal(signal.SIGKILL)
    driver.wait()  # not communicate(): orphaned workers would hold its pipes open
    deadline = time.monotonic() + 5
    try:
        while _alive(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _alive(workers) == set(), f"orphaned after 5 s: {_alive(workers)} of {workers}"
    finally:
        for pid in _alive(workers):  # the processes this test started, should they have outlived it
            os.kill(pid, signal.SIGKILL)
        driver.stdout.close()
        driver.stderr.close()
