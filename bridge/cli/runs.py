"""``unitheory runs``: what a store holds: per spec its phenomenon, runs, seeds, swept axes and outcomes; ``--wide``
adds one line per run with every parameter and outcome, ``--format csv`` writes that table as CSV."""

from __future__ import annotations

import argparse
import sys
import textwrap

from bridge.cli.run import DEFAULT_STORE

WIDTH = 100  #: the summary's lines are wrapped to this many characters


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")
    parser.add_argument("--wide", action="store_true", help="also one line per run with every parameter and outcome")
    parser.add_argument(
        "--format", choices=["text", "csv"], default="text", help="text (default) or csv: every run, every column"
    )


def describe(summary) -> str:
    """The readable summary of :func:`bridge.tables.spec_summary`: a block of wrapped lines per spec."""

    def fmt(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)

    blocks = []
    for row in summary.itertuples(index=False):
        seeds = ", ".join(map(str, row.seeds))
        lines = [f"{row.spec} ({row.phenomenon}): {row.runs} runs (seeds {seeds}), {row.wall_s:.1f} s of run time"]
        swept = "; ".join(f"{a} = {', '.join(fmt(v) for v in values)}" for a, values in row.axes.items())
        for head, text in (("swept", swept or "nothing (one configuration)"), ("outcomes", ", ".join(row.outcomes))):
            lines += textwrap.wrap(f"{head}: {text}", WIDTH, initial_indent="  ", subsequent_indent="    ")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def execute(args: argparse.Namespace) -> int:
    from bridge.tables import spec_summary
    from empirics.store import Store

    with Store(args.store, readonly=True) as store:
        runs = store.runs()
        if args.format == "csv":
            runs.to_csv(sys.stdout, index=False)
            return 0
        if runs.empty:
            print(f"store {args.store}: no runs")
            return 0
        summary = spec_summary(store, runs)
        print(f"store {args.store}: {len(runs)} runs of {len(summary)} specs\n")
        print(describe(summary))
        if args.wide:
            print()
            print(runs.drop(columns=["started_at", "finished_at"]).to_string(index=False, float_format="{:.4g}".format))
        else:
            print("\n(--wide: one line per run with every parameter and outcome; --format csv: every column as CSV)")
    return 0
