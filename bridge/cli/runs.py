"""``unitheory runs``: what a store holds: runs per spec, then one line per run."""

from __future__ import annotations

import argparse

from bridge.cli.run import DEFAULT_STORE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")


def execute(args: argparse.Namespace) -> int:
    from empirics.store import Store

    with Store(args.store, readonly=True) as store:
        runs = store.runs()
        if runs.empty:
            print(f"store {args.store}: no runs")
            return 0
        print(f"store {args.store}: {len(runs)} runs")
        print(store.summary().to_string(index=False))
        print()
        print(runs.drop(columns=["started_at", "finished_at"]).to_string(index=False, float_format="{:.4g}".format))
    return 0
