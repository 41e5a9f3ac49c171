"""Wall time of the built-in phenomenon specs on this machine, and the recorder's overhead.

For each selected spec, runs its configurations one after another in this process (``--threads`` intra-op
threads, default 1: on the shared 2-core machine one thread is many times faster than two under load), exactly
as the runner does (``Phenomenon.run`` with the spec's quantities and schedule, then ``Recorder.finalize``).
The overhead ratio times the first configuration again with an empty recorder (nothing recorded, no controls)
in the same process: ratio = wall(recorded) / wall(not recorded).

    python benchmarks/phenomena.py                                   # every built-in spec, full variants
    python benchmarks/phenomena.py --specs grokking-modular lottery-lmc --max-runs 1
    python benchmarks/phenomena.py --skip-long --max-runs 2          # skip the ones that take hours
    python benchmarks/phenomena.py --quick                           # the [quick] variants

``--max-runs N`` times the first N runs of each spec and extrapolates the spec's total as N-run mean × runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from empirics.phenomena import get_phenomenon
from empirics.recorder import Recorder
from empirics.spec import RunConfig, load_spec

SPEC_DIR = Path(__file__).resolve().parents[1] / "empirics" / "specs"
#: full specs whose runs take tens of minutes each on this machine (skipped with ``--skip-long``)
LONG_SPECS = ("grokking-transformer", "grokking-mnist1d", "lottery-conv")


def timed_run(config: RunConfig, *, record: bool) -> float:
    """Seconds to run one configuration, with its recorder (and post-hoc controls) or with an empty one."""
    phenomenon = get_phenomenon(config.phenomenon)
    recorder = Recorder(config.quantities, config.schedule) if record else Recorder((), ())
    start = time.perf_counter()
    phenomenon.run(config.params, recorder)
    if record:
        recorder.finalize(config.seed)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", nargs="*", help="built-in spec names (default: all in empirics/specs)")
    parser.add_argument("--skip-long", action="store_true", help=f"skip {', '.join(LONG_SPECS)}")
    parser.add_argument("--quick", action="store_true", help="time the [quick] variants")
    parser.add_argument("--max-runs", type=int, default=None, help="time only the first N runs of each spec")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    names = args.specs or sorted(p.stem for p in SPEC_DIR.glob("*.toml"))
    if args.skip_long:
        names = [n for n in names if n not in LONG_SPECS]
    header = f"{'spec':28s} {'runs':>5s} {'timed':>5s} {'s/run':>9s} {'total s':>10s} {'overhead':>9s}"
    print(f"{'quick' if args.quick else 'full'} variants, {args.threads} thread(s)\n{header}\n{'-' * len(header)}")
    for name in names:
        runs = load_spec(name, quick=args.quick).runs()
        timed = runs[: args.max_runs] if args.max_runs else runs
        walls = [timed_run(config, record=True) for config in timed]
        bare = timed_run(timed[0], record=False)
        per_run = sum(walls) / len(walls)
        total = per_run * len(runs)
        mark = "" if len(timed) == len(runs) else "~"
        print(
            f"{name:28s} {len(runs):5d} {len(timed):5d} {per_run:9.1f} {mark + format(total, '.0f'):>10s} "
            f"{walls[0] / bare:9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
