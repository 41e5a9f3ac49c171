"""``unitheory export``: write a store's runs and records tables (and bridge results) as CSV or Parquet."""

from __future__ import annotations

import argparse

from bridge.cli.run import DEFAULT_STORE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format (default csv)")
    parser.add_argument("-o", "--output", required=True, help="directory receiving runs.*, records.*, results.jsonl")


def execute(args: argparse.Namespace) -> int:
    from empirics.store import Store
    from theory._validation import check_output_dir

    check_output_dir("-o", args.output, owner="unitheory export")
    with Store(args.store, readonly=True) as store:  # reads only: works on a store the user may not write
        paths = store.export(args.output, args.format)
    for path in paths:
        print(path)
    return 0
