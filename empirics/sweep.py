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
import importlib.metadata
import multiprocessing
import os
import platform
import random
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from empirics.phenomena.base import Phenomenon
from empirics.recorder import Recorder
from empirics.spec import ExperimentSpec, RunConfig, find_phenomenon, load_plugins
from empirics.store import RunResult, Store
from theory._validation import check_device, check_option, check_positive_int


class Backend(StrEnum):
    """Where runs execute: ``LOCAL`` (default, in-process), ``POOL`` (spawned processes), ``RAY`` (Ray tasks)."""

    LOCAL = "local"
    POOL = "pool"
    RAY = "ray"


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did: runs in the spec, already stored (skipped), executed now, wall time."""

    spec: str
    total: int
    skipped: int
    executed: int
    wall_s: float

    def summary(self) -> str:
        return (
            f"sweep {self.spec}: {self.total} runs, {self.skipped} already stored, "
            f"{self.executed} executed in {self.wall_s:.1f} s"
        )


@contextmanager
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

    Args:
        spec: a validated spec (apply ``quick_variant()`` first for quick runs).
        store: a :class:`Store` or its directory.
        backend: a :class:`Backend` (default ``"local"``).
        workers: processes of the ``pool`` backend (``local`` requires 1; Ray uses the cluster's CPUs).
        address: Ray cluster address (``None``: the running Ray instance, else a new local one).
        threads: torch threads per run.
        max_retries: Ray task retries after a worker dies.
        device: where the runs train (see the module docstring); checked here, before any run.
        log: receives a one-line summary per run (``None``: silent). A tqdm bar is shown on a tty unless
            ``UNITHEORY_PROGRESS=0``.

    Raises:
        ValueError: invalid options, ``workers > 1`` with the local backend, or a device that is not available
            here (local and pool backends) or that the spec's phenomenon does not train on.
        ImportError: ``backend="ray"`` without Ray installed.
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
    start = time.perf_counter()
    store = store if isinstance(store, Store) else Store(store)
    configs = list({c.run_id: c for c in spec.runs()}.values())
    done = store.run_ids()
    todo = [c for c in configs if c.run_id not in done]
    executor = {Backend.LOCAL: _run_local, Backend.POOL: _run_pool, Backend.RAY: _run_ray}[backend]
    disable = os.environ.get("UNITHEORY_PROGRESS") == "0" or not sys.stderr.isatty()
    with tqdm(total=len(todo), desc=spec.name, unit="run", disable=disable) as bar:
        kwargs = dict(threads=threads, workers=workers, address=address, max_retries=max_retries, device=device)
        for result in executor(todo, **kwargs):
            store.write_run(result)
            bar.update(1)
            if log is not None:
                (log if disable else tqdm.write)(_run_line(result))
    summary = SweepSummary(spec.name, len(configs), len(configs) - len(todo), len(todo), time.perf_counter() - start)
    if log is not None:
        log(summary.summary())
    return summary


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


def _run_local(configs: Sequence[RunConfig], *, threads: int, device: str, **_: object) -> Iterator[RunResult]:
    for config in configs:
        yield execute_run(config, threads=threads, device=device)


def _run_pool(
    configs: Sequence[RunConfig], *, threads: int, workers: int, device: str, **_: object
) -> Iterator[RunResult]:
    if not configs:
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(execute_run, c, threads=threads, device=device) for c in configs]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _run_ray(
    configs: Sequence[RunConfig], *, threads: int, address: str | None, max_retries: int, device: str, **_: object
) -> Iterator[RunResult]:
    try:
        import ray
    except ImportError:
        raise ImportError("The Ray backend needs Ray: pip install 'unitheory[ray]'.") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        gpus = 1 if torch.device(device).type == "cuda" else 0  # one GPU per run task on a CUDA cluster
        task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=max_retries, retry_exceptions=False)(execute_run)
        pending = [task.remote(c, threads=threads, device=device) for c in configs]
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()


__all__ = ["Backend", "SweepSummary", "execute_run", "run_sweep"]
