"""``unitheory report --store PATH -o DIR``: an HTML report (figures embedded) and its Markdown twin, rebuilt from
the store's saved verdicts and fitted predictions without recomputing any test."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from bridge.cli.run import DEFAULT_STORE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")
    parser.add_argument("-o", "--output", required=True, help="report folder (report.html, report.md, figures/)")
    parser.add_argument("--title", default="unitheory report", help="report title")
    parser.add_argument("--spec", action="append", default=None, help="only this spec's runs (repeatable)")
    parser.add_argument("--file", action="append", default=None, help="only this hypothesis file's verdicts")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the figures' bootstrap bands")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def execute(args: argparse.Namespace) -> int:
    from bridge._progress import quiet

    with quiet(args.quiet):
        return _report(args)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bridge.report import build_report
    from empirics.store import Store
    from theory._validation import check_output_dir, check_seed

    check_output_dir("-o", args.output, owner="unitheory report")
    check_seed("--seed", args.seed, owner="unitheory report")
    files = None if args.file is None else [Path(f).name for f in args.file]  # verdicts keep the file's name
    with Store(args.store, readonly=True) as store:  # reads only: works on a store the user may not write
        if args.spec is not None:
            _check_matches("--spec", args.spec, store.summary()["spec"], "run", args.store)
        if files is not None:
            _check_matches(
                "--file", files, [v.get("file") for v in store.results("verdict")], "saved verdict", args.store
            )
        report = build_report(
            store, args.output, title=args.title, specs=args.spec, files=files, random_state=args.seed
        )
    print(report.summary())
    return 0


def _check_matches(option: str, wanted: list[str], known: Iterable[str], what: str, store: str) -> None:
    """A filter naming nothing in the store is a typo, not a request for an empty report."""
    known = sorted(set(known))
    missing = sorted(set(wanted) - set(known))
    if missing:
        names = ", ".join(map(repr, missing))
        raise ValueError(f"{option} {names} matches no {what} in store {store!r}; it holds {known}.")
