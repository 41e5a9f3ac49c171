"""``unitheory run SPEC``: execute the runs of a spec that the store lacks (resumable; see :mod:`empirics.sweep`)."""

from __future__ import annotations

import argparse

DEFAULT_STORE = "unitheory-store"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a spec .toml file or the name of a built-in spec (empirics/specs/)")
    parser.add_argument("--quick", action="store_true", help="apply the spec's [quick] overrides (seconds-long runs)")
    parser.add_argument(
        "--backend",
        choices=["local", "pool", "ray"],
        default=None,
        help="where runs execute (default: 'pool' when --workers > 1, else 'local')",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes of the pool backend (default 1)")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: a new local instance)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device the runs train on: cpu (default), cuda[:N], mps")
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE}/)")


def execute(args: argparse.Namespace) -> int:
    from empirics.spec import load_spec
    from empirics.sweep import run_sweep

    backend = args.backend or ("pool" if args.workers > 1 else "local")
    spec = load_spec(args.spec, quick=args.quick)
    kwargs = dict(workers=args.workers, address=args.address, threads=args.threads, device=args.device)
    run_sweep(spec, args.store, backend=backend, **kwargs)  # opens the store once the options are valid
    return 0


if __name__ == "__main__":  # ``python -m bridge.cli.run SPEC ...``: the same as ``unitheory run SPEC ...``
    import sys

    _parser = argparse.ArgumentParser(prog="unitheory run", description=__doc__)
    configure(_parser)
    sys.exit(execute(_parser.parse_args()))
