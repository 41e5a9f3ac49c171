"""``unitheory study NAME [--quick]``: preregister a built-in study's hypotheses, run its specs (resumable), test the
hypotheses and write the report (see :mod:`bridge.studies`). ``--plan`` prints each hypothesis's design and power
instead and runs nothing (:mod:`bridge.plan`)."""

from __future__ import annotations

import argparse
import sys

STUDY_NAMES = ("double-descent", "grokking", "lottery", "prime-control", "cross-phenomenon")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=STUDY_NAMES, help="the built-in study")
    parser.add_argument("--quick", action="store_true", help="the specs' [quick] variants (minutes on 2 cores)")
    parser.add_argument(
        "--store", default=None, help="store directory (default unitheory-studies/quick or unitheory-studies/full)"
    )
    parser.add_argument("-o", "--output", default=None, help="report folder (default reports/NAME[-quick]/)")
    parser.add_argument("--workers", type=int, default=1, help="processes of the pool backend (default 1)")
    parser.add_argument("--backend", choices=["local", "pool", "ray"], default=None, help="as for unitheory run")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: a new local instance)")
    parser.add_argument("--device", default="cpu", help="torch device the runs train on: cpu (default), cuda[:N], mps")
    parser.add_argument("--resamples", type=int, default=999, help="bootstrap resamples per interval (default 999)")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the bootstraps (default 0)")
    parser.add_argument(
        "--plan", action="store_true",
        help="print each hypothesis's configurations, seeds, claimed effect and power; run nothing, open no store",
    )  # fmt: skip
    parser.add_argument(
        "--power-reps", type=int, default=None, metavar="N",
        help="replications of the power of a design the committed power table lacks (default 100)",
    )  # fmt: skip
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars and no per-run lines: only the final summary"
    )


def execute(args: argparse.Namespace) -> int:
    from bridge._progress import quiet

    with quiet(args.quiet):  # the one switch of every progress bar (sweeps, prediction bands, figures)
        return _study(args)


def _study(args: argparse.Namespace) -> int:
    from bridge.studies import plan_study, run_study
    from theory._validation import check_seed

    if args.plan:
        print(plan_study(args.name, quick=args.quick, reps=args.power_reps).summary())
        return 0

    check_seed("--seed", args.seed, owner="unitheory study")  # checked by falsify only after every run
    output = args.output or f"reports/{args.name}{'-quick' if args.quick else ''}"
    result = run_study(
        args.name, quick=args.quick, store=args.store, output=output, workers=args.workers, backend=args.backend,
        address=args.address, n_resamples=args.resamples, random_state=args.seed, device=args.device,
        power_reps=args.power_reps,
        command="unitheory " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["study"] else None,
        log=None if args.quiet else print,
    )  # fmt: skip
    print(result.summary(sweeps=args.quiet))  # without --quiet each sweep line was printed as it finished
    return 0
