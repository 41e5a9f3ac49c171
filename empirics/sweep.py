"""Resumable sweeps: expand a spec into runs, execute the missing ones on a backend, write each to the store.

Only the driver writes the store, one transaction per finished run, so killing a sweep at any point loses at
most the runs in flight, and rerunning the same command executes exactly the runs whose ``run_id`` the store
lacks. Backends (:class:`Backend`):

- ``local`` (default): in this process, one run after another.
- ``pool``: a ``spawn`` process pool of ``workers`` processes; workers return :class:`RunResult` s.
- ``ray``: one Ray task per run (``max_retries`` so a killed worker is retried); results travel back to the
  driver, which writes them. Needs the ``ray`` extra.

Each run is seeded (python, numpy, torch) from ``params["seed"]``, runs with
``torch.use_deterministic_algorithms(True)`` and a fixed thread count for torch and for numpy/scipy's BLAS
(threadpoolctl), so two runs of one config give bit-identical records on any backend.

``device`` (``"cpu"`` by default, ``"cuda"``, ``"cuda:N"`` or ``"mps"``) is where phenomena that declare it
(``Phenomenon.devices``) train. Like the thread count it is provenance, recorded with every run, not part of the
run id: the ids of stored runs do not change, and a stored run is reused whatever device computed it (keep one
store per device to compare devices).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.metadata
import multiprocessing
import os
import platform
import random
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from empirics.leases import HEARTBEAT_S, LEASE_TTL_S, LeaseOwner
from empirics.phenomena.base import Phenomenon
from empirics.recorder import Recorder
from empirics.spec import ExperimentSpec, RunConfig, find_phenomenon, load_plugins
from empirics.store import RunResult, Store, StoreError
from theory._validation import check_device, check_option, check_positive_int

POLL_S = 0.5
"""Seconds between two looks at the runs another driver holds."""

RAY_CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a Ray cluster's port before saying nobody answers."""


class Backend(StrEnum):
    """Where runs execute: ``LOCAL`` (default, in-process), ``POOL`` (spawned processes), ``RAY`` (Ray tasks)."""

    LOCAL = "local"
    POOL = "pool"
    RAY = "ray"


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did: runs in the spec, already stored (skipped), executed now, wall time, and runs
    another driver on the same store executed meanwhile (``by_others``)."""

    spec: str
    total: int
    skipped: int
    executed: int
    wall_s: float
    by_others: int = 0

    def summary(self) -> str:
        others = f", {self.by_others} by another driver" if self.by_others else ""
        return (
            f"sweep {self.spec}: {self.total} runs, {self.skipped} already stored, "
            f"{self.executed} executed{others} in {self.wall_s:.1f} s"
        )


@contextlib.contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seed python/numpy/torch, deterministic torch kernels, ``threads`` torch and BLAS threads; restore after."""
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with threadpool_limits(limits=threads):  # numpy/scipy BLAS too: thread count changes float results
            yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _provenance(threads: int, device: torch.device) -> dict[str, object]:
    return {
        "device": str(device),
        "unitheory": importlib.metadata.version("unitheory"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "threads": threads,
    }


def execute_run(config: RunConfig, *, threads: int = 1, device: torch.device | str = "cpu") -> RunResult:
    """Run one configuration: ``Phenomenon.run`` under a fresh :class:`Recorder`, then ``Recorder.finalize``.

    Args:
        config: the resolved run.
        threads: torch intra-op threads during the run (fixed so results do not depend on the machine's load).
        device: the torch device the phenomenon trains on (it must list the device type in ``devices``).

    Raises:
        ValueError: an unavailable device, or one the phenomenon does not train on.
    """
    check_positive_int("threads", threads, owner="execute_run")
    device = check_device("device", device, owner="execute_run")
    if device.type == "cuda":  # deterministic cuBLAS kernels (torch.use_deterministic_algorithms) need this
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    load_plugins(config.plugins)
    phenomenon = find_phenomenon(config.phenomenon)
    _check_phenomenon_device(phenomenon, device)
    recorder = Recorder(config.quantities, config.schedule, device=device)
    started_at, start = _now(), time.perf_counter()
    with _deterministic(config.seed, threads):
        outcomes = phenomenon.run(dict(config.params), recorder)
        recorder.finalize(config.seed)
    wall_s = time.perf_counter() - start
    return RunResult(
        config=config,
        outcomes={k: float(v) for k, v in outcomes.items()},
        rows=list(recorder.rows),
        provenance=_provenance(threads, device),
        started_at=started_at,
        finished_at=_now(),
        wall_s=wall_s,
        arrays=dict(recorder.arrays),
    )


def run_sweep(
    spec: ExperimentSpec,
    store: Store | str | Path,
    *,
    backend: Backend | str = Backend.LOCAL,
    workers: int = 1,
    address: str | None = None,
    threads: int = 1,
    max_retries: int = 3,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | None = print,
) -> SweepSummary:
    """Execute the runs of ``spec`` missing from ``store`` and write each as it finishes.

    Runs are claimed before they execute (:mod:`empirics.leases`): another driver on the same store skips the runs
    this one holds, and this one waits for the runs another live driver holds (taking them over if that driver
    dies), so each run executes once and every run is stored when this returns.

    Args:
        spec: a validated spec (apply ``quick_variant()`` first for quick runs).
        store: a :class:`Store`, or its directory (then opened once the options are valid, and closed at the end).
        backend: a :class:`Backend` (default ``"local"``).
        workers: processes of the ``pool`` backend (``local`` requires 1; Ray uses the cluster's CPUs).
        address: Ray cluster address: ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` (``None``: the running
            Ray instance, else a new local one).
        threads: torch threads per run.
        max_retries: Ray task retries after a worker dies.
        device: where the runs train (see the module docstring); checked here, before any run.
        log: receives a one-line summary per run (``None``: silent). A tqdm bar is shown on a tty unless
            ``UNITHEORY_PROGRESS=0``.

    Raises:
        ValueError: invalid options, ``workers > 1`` with the local backend, or a device that is not available
            here (local and pool backends) or that the spec's phenomenon does not train on.
        ImportError: ``backend="ray"`` without Ray installed.
        ConnectionError: no Ray cluster answers at ``address`` (checked in seconds, before ``ray.init``).
    """
    backend = Backend(check_option("backend", backend, [b.value for b in Backend], owner="run_sweep"))
    check_positive_int("workers", workers, owner="run_sweep")
    check_positive_int("threads", threads, owner="run_sweep")
    if backend is Backend.LOCAL and workers != 1:
        raise ValueError(
            f"The 'workers' parameter of run_sweep must be 1 for the local backend (use 'pool'). Got {workers}."
        )
    # with Ray the cluster's workers, not this driver, must have the device: each run checks it there
    device = check_device("device", device, owner="run_sweep", available=backend is not Backend.RAY)
    _check_phenomenon_device(find_phenomenon(spec.phenomenon), device)
    device = str(device)
    if backend is Backend.RAY:
        _check_ray_address(address)
    start = time.perf_counter()
    # a path is opened only now that the options are valid (a bad option leaves no empty store behind)
    with contextlib.nullcontext(store) if isinstance(store, Store) else Store(store) as store:
        configs = list({c.run_id: c for c in spec.runs()}.values())
        done = store.run_ids()
        todo = [c for c in configs if c.run_id not in done]
        executed = by_others = 0
        disable = os.environ.get("UNITHEORY_PROGRESS") == "0" or not sys.stderr.isatty()
        if todo:
            kwargs = dict(threads=threads, workers=workers, address=address, max_retries=max_retries, device=device)
            executor = _EXECUTORS[backend](**kwargs)
            with tqdm(total=len(todo), desc=spec.name, unit="run", disable=disable) as bar, executor:
                for result in _drive(store, todo, executor):
                    if result is None:  # stored by another driver meanwhile
                        by_others += 1
                    else:
                        executed += 1
                        if log is not None:
                            (log if disable else tqdm.write)(_run_line(result))
                    bar.update(1)
    wall_s = time.perf_counter() - start
    summary = SweepSummary(spec.name, len(configs), len(configs) - len(todo), executed, wall_s, by_others)
    if log is not None:
        log(summary.summary())
    return summary


def _drive(store: Store, todo: Sequence[RunConfig], executor: _Executor) -> Iterator[RunResult | None]:
    """Claim, execute and write ``todo``; yields each result once it is stored, or ``None`` for a run another
    driver stored. Leases are renewed by a heartbeat thread and released when this stops, finished or not."""
    owner = LeaseOwner.current()
    remaining = {c.run_id: c for c in todo}
    in_flight: set[str] = set()
    with _Heartbeat(store.path, owner):
        try:
            while remaining or in_flight:
                free = executor.capacity - len(in_flight)
                if remaining and free > 0:
                    claim = store.claim_runs(list(remaining), owner, limit=free, ttl_s=LEASE_TTL_S)
                    for run_id in claim.stored:
                        del remaining[run_id]
                        yield None
                    for run_id in claim.taken:
                        executor.submit(remaining.pop(run_id))
                        in_flight.add(run_id)
                waiting = bool(remaining) and len(in_flight) < executor.capacity  # runs held by another driver
                if not in_flight:
                    if waiting:
                        time.sleep(POLL_S)
                    continue
                for result in executor.wait(POLL_S if waiting else None):
                    store.write_run(result)  # ends its lease in the same transaction
                    in_flight.discard(result.run_id)
                    yield result
        finally:
            with contextlib.suppress(StoreError):  # a dead store: the leases expire by themselves
                store.release_leases(owner)


class _Heartbeat:
    """Renews ``owner``'s leases every :data:`~empirics.leases.HEARTBEAT_S` seconds from a daemon thread with its own
    connection, so a run that takes hours keeps its claim. A failed beat is retried at the next one: a lease lives
    :data:`~empirics.leases.LEASE_TTL_S` seconds."""

    def __init__(self, path: Path, owner: LeaseOwner) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(path, owner), name="unitheory-leases", daemon=True)

    def _beat(self, path: Path, owner: LeaseOwner) -> None:
        with contextlib.suppress(StoreError), Store(path) as store:
            while not self._stop.wait(HEARTBEAT_S):
                with contextlib.suppress(StoreError):
                    store.renew_leases(owner, ttl_s=LEASE_TTL_S)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _check_phenomenon_device(phenomenon: Phenomenon, device: torch.device) -> None:
    if device.type not in phenomenon.devices:
        raise ValueError(
            f"The 'device' parameter must be a device type phenomenon {phenomenon.name!r} trains on "
            f"({list(phenomenon.devices)}: it declares no other). Got {str(device)!r} instead."
        )


def _run_line(result: RunResult) -> str:
    cfg = result.config
    swept = " ".join(f"{k}={v}" for k, v in cfg.params.items() if k != "seed" and not isinstance(v, str))
    outcomes = " ".join(f"{k}={v:.4g}" for k, v in result.outcomes.items())
    return f"run {result.run_id} {cfg.phenomenon} seed={cfg.seed} {swept} -> {outcomes} ({result.wall_s:.2f} s)"


class _Executor:
    """A backend: :meth:`submit` a run, :meth:`wait` up to ``timeout`` seconds (``None``: until one finishes) for
    finished ones; ``capacity`` runs may be in flight (the driver claims no more)."""

    capacity = 1

    def submit(self, config: RunConfig) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None) -> list[RunResult]:
        raise NotImplementedError

    def __enter__(self) -> _Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Local(_Executor):
    def __init__(self, *, threads: int, device: str, **_: object) -> None:
        self.threads, self.device, self.queue = threads, device, deque()

    def submit(self, config: RunConfig) -> None:
        self.queue.append(config)

    def wait(self, timeout: float | None) -> list[RunResult]:
        return [execute_run(self.queue.popleft(), threads=self.threads, device=self.device)] if self.queue else []


class _Pool(_Executor):
    """A ``spawn`` process pool whose workers exit when the driver dies (:func:`_exit_with_parent`).

    A worker that dies (``kill -9``, the out-of-memory killer) breaks the pool and every run in flight with it: the
    runs that finished are still returned to be written, then :meth:`wait` raises ``ChildProcessError`` naming the
    lost runs (rerunning the command executes them).
    """

    def __init__(self, *, threads: int, workers: int, device: str, **_: object) -> None:
        self.threads, self.device, self.capacity = threads, device, workers
        self.futures: dict[concurrent.futures.Future, RunConfig] = {}
        self.broken: ChildProcessError | None = None
        context = multiprocessing.get_context("spawn")
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
        )

    def submit(self, config: RunConfig) -> None:
        self.futures[self.pool.submit(execute_run, config, threads=self.threads, device=self.device)] = config

    def wait(self, timeout: float | None) -> list[RunResult]:
        if self.broken is not None:
            raise self.broken
        done, _ = concurrent.futures.wait(self.futures, timeout, concurrent.futures.FIRST_COMPLETED)
        results, lost = [], []
        for future in done:
            config = self.futures.pop(future)
            try:
                results.append(future.result())
            except BrokenProcessPool:
                lost.append(config.run_id)
        if lost:
            self.broken = ChildProcessError(
                f"A pool worker died (killed, or out of memory?) while runs {sorted(lost)} were in flight; the runs "
                "stored so far are kept: rerun the same command to resume."
            )
        return results

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(driver: int) -> None:
    """Pool-worker initializer: a daemon thread ends the worker as soon as its driver process is gone (its parent
    changes), so a ``kill -9`` of the driver leaves no orphaned worker (nor, once they are gone, the resource
    tracker, which exits when the last of them closes its pipe)."""

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="unitheory-parent-watch", daemon=True).start()


class _Ray(_Executor):
    """One Ray task per run; ``capacity`` = the cluster's CPUs / ``threads``."""

    def __init__(self, *, threads: int, address: str | None, max_retries: int, device: str, **_: object) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("The Ray backend needs Ray: pip install 'unitheory[ray]'.") from None
        self.ray, self.threads, self.device, self.pending = ray, threads, device, []
        self.started = not ray.is_initialized()
        if self.started:  # the address was checked by run_sweep, before the store was opened
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise ConnectionError(f"Cannot connect to a Ray cluster at {address!r}: {first}") from None
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
        gpus = 1 if torch.device(device).type == "cuda" else 0  # one GPU per run task on a CUDA cluster
        remote = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=max_retries, retry_exceptions=False)
        self.task = remote(execute_run)

    def submit(self, config: RunConfig) -> None:
        self.pending.append(self.task.remote(config, threads=self.threads, device=self.device))

    def wait(self, timeout: float | None) -> list[RunResult]:
        ready, self.pending = self.ray.wait(self.pending, num_returns=1, timeout=timeout)
        return [self.ray.get(ref) for ref in ready]

    def __exit__(self, *exc: object) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        if self.started:
            self.ray.shutdown()


def _check_ray_address(address: str | None) -> None:
    """Fail in seconds with one line when nothing listens at ``HOST:PORT`` (``ray.init`` retries for minutes)."""
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"The 'address' parameter of run_sweep must be 'auto', 'local', 'HOST:PORT' or 'ray://HOST:PORT'. "
            f"Got {address!r} instead."
        )
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ConnectionError(
            f"No Ray cluster answers at {address!r} ({err.strerror or err}); start one with 'ray start --head' "
            f"or check --address."
        ) from None


_EXECUTORS: dict[Backend, type[_Executor]] = {Backend.LOCAL: _Local, Backend.POOL: _Pool, Backend.RAY: _Ray}


__all__ = ["Backend", "SweepSummary", "execute_run", "run_sweep"]
