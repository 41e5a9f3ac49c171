"""``unitheory report --store PATH -o DIR``: an HTML report (figures embedded) and its Markdown twin, rebuilt from
the store's saved verdicts and fitted predictions without recomputing any test."""

from __future__ import annotations

import argparse

from bridge.cli.run import DEFAULT_STORE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")
    parser.add_argument("-o", "--output", required=True, help="report folder (report.html, report.md, figures/)")
    parser.add_argument("--title", default="unitheory report", help="report title")
    parser.add_argument("--spec", action="append", default=None, help="only this spec's runs (repeatable)")
    parser.add_argument("--file", action="append", default=None, help="only this hypothesis file's verdicts")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the figures' bootstrap bands")


def execute(args: argparse.Namespace) -> int:
    from bridge.report import build_report
    from empirics.store import Store

    with Store(args.store, readonly=True) as store:  # reads only: works on a store the user may not write
        report = build_report(
            store, args.output, title=args.title, specs=args.spec, files=args.file, random_state=args.seed
        )
    print(report.summary())
    return 0
