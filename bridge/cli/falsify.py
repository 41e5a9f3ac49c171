"""``unitheory falsify HYPOTHESES.toml --store PATH``: run every declared test, print the verdict table and store
the report (``put_result("verdict", ...)``) so reports rebuild without recomputation."""

from __future__ import annotations

import argparse

from bridge.cli.run import DEFAULT_STORE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="hypothesis TOML file")
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")
    parser.add_argument(
        "--resamples", type=int, default=999, help="resamples per bootstrap and permutation null (default 999)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random_state of the bootstraps (default 0)")
    parser.add_argument("--tests", action="store_true", help="also print every test row")


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bridge.falsification import falsify
    from bridge.hypothesis import load_hypotheses
    from bridge.prereg import file_hash
    from empirics.store import Store
    from theory._validation import check_positive_int, check_seed

    check_positive_int("--resamples", args.resamples, owner="unitheory falsify")
    check_seed("--seed", args.seed, owner="unitheory falsify")
    load_hypotheses(args.file)  # a missing or malformed file is named before the store is opened
    with Store(args.store, create=False) as store:
        report = falsify(args.file, store, n_resamples=args.resamples, random_state=args.seed)
        key = f"{Path(args.file).name}:{file_hash(args.file)[:16]}"
        store.put_result("verdict", key, {"file": Path(args.file).name, "key": key, **report.to_payload()})
    print(report.summary())
    if args.tests:
        print()
        print(report.to_frame().to_string(index=False, float_format="{:.4g}".format))
    return 0
