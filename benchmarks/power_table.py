"""The committed power table ``bridge/studies/power.csv``: the calibration's power (:mod:`bridge.calibration`, the
simulation of ``benchmarks/calibration.py``) for every design that a built-in study's hypotheses test, full and
quick, at 100 replications each, so that ``unitheory study NAME --plan`` prints in seconds.

    python benchmarks/power_table.py                                 # every study, both variants
    python benchmarks/power_table.py --studies grokking --variants quick
    python benchmarks/power_table.py --fresh                         # recompute every cell (else: resume)
    python benchmarks/power_table.py --reps 200

One cell is a calibration kind (a rank claim's tests, simulated controls and confounder; the true law; the true
event order; the true equivalence) × configurations × seeds per configuration × the simulation's effect × α.
Cells already in the table are kept (a killed run resumes where it stopped: each hypothesis's new cells are
appended as soon as they are simulated); ``--fresh`` starts the table anew. After a study file or spec changes,
rerun it: the plan simulates the cells the table lacks on the spot (``--power-reps``, 40 by default) and says
so. ``tests/bridge/test_plan.py`` checks a cell of the table against a fresh simulation with other replications.
Prints one line per hypothesis (its power, the new cells and the wall time) and then every study's plan.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from bridge import power as planned_power
from bridge.hypothesis import load_hypotheses
from bridge.plan import hypothesis_design, planned_runs
from bridge.studies import STUDIES, plan_study
from empirics.spec import load_spec


def _flush(written: set[tuple]) -> int:
    """Append the cells simulated since the last call to the table; returns how many."""
    new = [row for key, row in planned_power.SIMULATED.items() if key not in written]
    if not new:
        return 0
    table = planned_power.TABLE
    frame = pd.DataFrame(new, columns=planned_power.TABLE_COLUMNS)
    frame.to_csv(table, mode="a", header=not table.is_file(), index=False)
    written.update(planned_power.SIMULATED)
    return len(new)


def _tidy() -> None:
    """Sort the table (one row per cell, the latest kept) so that regenerating it gives a readable diff."""
    table = pd.read_csv(planned_power.TABLE)
    keys = ["kind", "configs", "seeds", "effect", "alpha"]
    table = table.drop_duplicates(keys, keep="last").sort_values(keys, ignore_index=True)
    table.to_csv(planned_power.TABLE, index=False)
    planned_power._table.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", nargs="+", choices=sorted(STUDIES), default=sorted(STUDIES))
    parser.add_argument("--variants", nargs="+", choices=["quick", "full"], default=["quick", "full"])
    parser.add_argument("--reps", type=int, default=100, help="replications per cell (default 100, the benchmark's)")
    parser.add_argument("--fresh", action="store_true", help="recompute every cell instead of resuming")
    args = parser.parse_args()
    if args.fresh and planned_power.TABLE.is_file():
        planned_power.TABLE.unlink()
    planned_power._table.cache_clear()
    written: set[tuple] = set()
    start = time.perf_counter()
    for variant in args.variants:
        for name in args.studies:
            study = STUDIES[name]
            runs = planned_runs([load_spec(p, quick=variant == "quick") for p in study.spec_paths()])
            for h in load_hypotheses(study.hypotheses):
                tic = time.perf_counter()
                result = planned_power.hypothesis_power(h, hypothesis_design(h, runs), reps=args.reps)
                print(f"{name} ({variant}) {h.name}: {result.describe()}; {_flush(written)} new cells, "
                      f"{time.perf_counter() - tic:.1f} s", flush=True)  # fmt: skip
    if planned_power.TABLE.is_file():
        _tidy()
    print(f"\nTable {planned_power.TABLE}: {len(pd.read_csv(planned_power.TABLE))} cells; "
          f"{(time.perf_counter() - start) / 60:.1f} min.\n")  # fmt: skip
    for variant in args.variants:
        for name in args.studies:
            print(plan_study(name, quick=variant == "quick").summary(), end="\n\n")


if __name__ == "__main__":
    main()
