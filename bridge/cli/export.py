"""``unitheory export``: write a store's runs and records tables (and bridge results) as CSV or Parquet."""

from __future__ import annotations

import argparse
import sys

from bridge.cli.run import DEFAULT_STORE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format (default csv)")
    parser.add_argument("-o", "--output", required=True, help="directory receiving runs.*, records.*, results.jsonl")


def execute(args: argparse.Namespace) -> int:
    from empirics.store import Store

    with Store(args.store, create=False) as store:
        try:
            paths = store.export(args.output, args.format)
        except ImportError as err:
            print(f"unitheory export: error: {err}", file=sys.stderr)
            return 2
    for path in paths:
        print(path)
    return 0
