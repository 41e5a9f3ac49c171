"""``unitheory prereg FILE --store PATH``: register a hypothesis file's content hash and time before any data is
read (the store is opened for its results table only)."""

from __future__ import annotations

import argparse

from bridge.cli.run import DEFAULT_STORE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="hypothesis TOML file to preregister")
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")


def execute(args: argparse.Namespace) -> int:
    from bridge.hypothesis import load_hypotheses
    from bridge.prereg import preregister
    from empirics.store import Store

    hypotheses = load_hypotheses(args.file)  # reject malformed files before registering them
    with Store(args.store) as store:
        reg = preregister(args.file, store)
    names = ", ".join(h.name for h in hypotheses)
    print(f"preregistered {reg.file} (sha256 {reg.sha256[:16]}) at {reg.registered_at}: {names}")
    return 0
