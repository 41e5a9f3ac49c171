"""Sweep backends side by side: 1 worker (local) vs a 2-process pool vs Ray (2 CPUs) on this machine, and the
recorder's overhead (each run with its recorded quantities vs with no recording at all).

    python benchmarks/sweeps.py                      # the full model-wise double-descent sweep
    python benchmarks/sweeps.py --quick              # its --quick variant
    python benchmarks/sweeps.py --quick --quantities ntk measures   # override what is recorded
    python benchmarks/sweeps.py --seeds 0                # the full sweep, one seed
    python benchmarks/sweeps.py --spec my.toml

Without the built-in ``double-descent-mlp`` spec, it falls back to a heavier sweep of the tests' toy
phenomenon (and says so). Every backend writes a fresh store; the script checks they hold equal records.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from empirics.spec import ExperimentSpec, RecordSpec, load_spec
from empirics.store import Store
from empirics.sweep import execute_run, run_sweep

TOY_PLUGIN = Path(__file__).resolve().parents[1] / "tests" / "empirics" / "conftest.py"


def toy_fallback(quick: bool) -> ExperimentSpec:
    """6 widths x 2 seeds of the toy regression MLP, 1000 GD steps each (fewer with ``quick``)."""
    return ExperimentSpec(
        name="toy-benchmark",
        phenomenon="toy_regression",
        seeds=(0, 1),
        params={"steps": 100 if quick else 1000, "n": 256, "lr": 0.02},
        sweep={"width": (4, 8, 16, 32, 64, 128)},
        record=RecordSpec(quantities=("toy_weight_norm", "toy_velocity"), count=20),
        plugins=(str(TOY_PLUGIN),),
    ).validate()


def timed_sweep(spec: ExperimentSpec, root: Path, name: str, **options) -> tuple[float, Store]:
    store = Store(root / name)
    start = time.perf_counter()
    run_sweep(spec, store, log=None, **options)
    return time.perf_counter() - start, store


def record_differences(a: Store, b: Store) -> list[str]:
    """Quantities whose records differ between two stores (empty: bit-identical records)."""
    merged = a.records().merge(b.records(), on=["run_id", "step", "quantity"], how="outer", suffixes=("_a", "_b"))
    same = (merged["value_a"] == merged["value_b"]) | (merged["value_a"].isna() & merged["value_b"].isna())
    return sorted(set(merged.loc[~same, "quantity"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="double-descent-mlp")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--quantities", nargs="*", default=None, help="replace the spec's recorded quantities")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="replace the spec's seeds")
    args = parser.parse_args()
    os.environ.setdefault("UNITHEORY_PROGRESS", "0")
    try:
        spec = load_spec(args.spec, quick=args.quick)
    except FileNotFoundError:
        print(f"note: spec {args.spec!r} not found; using the toy fallback sweep instead")
        spec = toy_fallback(args.quick)
    if args.quantities is not None:
        spec = dataclasses.replace(spec, record=dataclasses.replace(spec.record, quantities=tuple(args.quantities)))
    if args.seeds is not None:
        spec = dataclasses.replace(spec, seeds=tuple(args.seeds))
    configs = spec.runs()
    print(
        f"spec {spec.name}{' (quick)' if args.quick else ''}: {len(configs)} runs, quantities {configs[0].quantities}"
    )

    import ray

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local_s, local = timed_sweep(spec, root, "local")
        pool_s, pool = timed_sweep(spec, root, "pool", backend="pool", workers=2)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_s, remote = timed_sweep(spec, root, "ray", backend="ray")
        ray.shutdown()
        with_recording = float(local.runs()["wall_s"].sum())
        bare = [dataclasses.replace(c, quantities=(), schedule=()) for c in configs]
        without_recording = sum(execute_run(c).wall_s for c in bare)
        differences = {"pool": record_differences(local, pool), "ray": record_differences(local, remote)}

    table = pd.DataFrame(
        {
            "wall_s": [local_s, pool_s, ray_s],
            "speed-up vs local": [1.0, local_s / pool_s, local_s / ray_s],
        },
        index=["local, 1 worker", "pool, 2 workers", "ray, 2 CPUs"],
    )
    print(table.to_string(float_format="{:.2f}".format))
    for name, diff in differences.items():
        print(f"records of {name} vs local: {'bit-identical' if not diff else f'differ in {diff}'}")
    print(
        f"recorder overhead: runs with recording {with_recording:.2f} s / without {without_recording:.2f} s "
        f"= {with_recording / without_recording:.2f}x"
    )
    print("(wall times include process start-up and imports: pool and Ray workers import torch afresh)")


if __name__ == "__main__":
    main()
