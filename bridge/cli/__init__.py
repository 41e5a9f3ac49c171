"""The ``unitheory`` command line: one subcommand per module in ``bridge.cli``.

The CLI lives in ``bridge`` because it is the only package allowed to import both ``theory`` and
``empirics``. Each subcommand module exposes ``configure(parser)`` and ``execute(args) -> int`` and keeps
its top-level imports light (heavy imports go inside ``execute``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
from collections.abc import Sequence

#: subcommand name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "ntk": ("bridge.cli.ntk", "empirical NTK of a built-in model: spectrum summary and timing"),
    "run": ("bridge.cli.run", "run a spec's missing runs into the store (resumable; local, pool or Ray)"),
    "runs": ("bridge.cli.runs", "list what a store holds"),
    "export": ("bridge.cli.export", "export a store's runs and records to CSV or Parquet"),
    "prereg": ("bridge.cli.prereg", "preregister a hypothesis file (content hash + time) before reading data"),
    "falsify": ("bridge.cli.falsify", "test a hypothesis file against a store; print and store the verdicts"),
    "report": ("bridge.cli.report", "write an HTML report and its Markdown twin from a store's saved verdicts"),
    "study": ("bridge.cli.study", "run a built-in study: preregister, run the specs, falsify, write the report"),
    "predict": ("bridge.cli.predict", "theory quantities (eNTK, p_eff, measures, learning curve) of your own model"),
}

#: subcommands whose work is stored run by run, so an interrupted one resumes where it stopped
RESUMABLE = ("run", "study")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unitheory",
        description="Test explanations of deep-learning phenomena against broad theories.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).configure(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).execute(args) or 0)
    except BrokenPipeError:  # the reader of stdout has gone ('unitheory runs | head'): stop quietly, as cat does
        with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, KeyError, OSError, ImportError) as err:  # bad input, a missing file, a store or a network
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):  # a store's own is a StoreError
            err = (
                f"the disk is full ({err.strerror}) while writing the output, which is incomplete; the store keeps "
                "all it held. Free some space and rerun the same command."
            )
        print(f"unitheory {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: every run is written whole or not at all, and its lease ends with the driver
        resume = (
            "; the runs stored so far are kept: rerun the same command to resume" if args.command in RESUMABLE else ""
        )
        print(f"unitheory {args.command}: interrupted{resume}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
