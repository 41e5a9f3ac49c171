"""Refusal time of each hostile hypothesis-file formula (issue 10 item 9: target < 100 ms each).

    python benchmarks/expression_attacks.py            # slowest of 5 per attack, in a temporary working directory
    python benchmarks/expression_attacks.py --repeat 1

Each attack of ``tests/bridge/attacks.py`` goes through ``bridge.expressions.parse_formula`` (as an event
expression would) and through ``parse_equation`` (``"y = ATTACK"``, as a functional law would), each time with
sympy's cache cleared. The table prints the slowest time per attack, its ratio to the 100 ms target and the
construct named; the script fails if an attack is not refused with ``ExpressionError`` or if it created the
attack's file. A second table times allowed formulas that make sympy work hardest within the parser's bounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bridge.expressions import ExpressionError, parse_equation, parse_formula

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bridge"))
import sympy  # noqa: E402
from attacks import ATTACKS, HEAVY, PWNED  # noqa: E402

TARGET_S = 0.100


def refusal_time(parse, text: str, repeat: int) -> tuple[float, ExpressionError]:
    """Slowest wall time of ``repeat`` refusals of ``parse(text)``, each with sympy's cache cleared."""
    worst, error = 0.0, None
    for _ in range(repeat):
        sympy.core.cache.clear_cache()
        start = time.perf_counter()
        try:
            parse(text)
        except ExpressionError as err:
            worst, error = max(worst, time.perf_counter() - start), err
        else:
            raise SystemExit(f"not refused: {text[:80]!r}")
    return worst, error


def parse_time(text: str, repeat: int) -> float:
    """Slowest wall time of ``repeat`` successful ``parse_formula(text)``, each with sympy's cache cleared."""
    worst = 0.0
    for _ in range(repeat):
        sympy.core.cache.clear_cache()
        start = time.perf_counter()
        parse_formula(text)
        worst = max(worst, time.perf_counter() - start)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timings per attack; the slowest is kept (default 5)")
    args = parser.parse_args()
    parse_formula("warm + up")  # imports and sympy's caches are not what this measures
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            for ident, text, _ in ATTACKS:
                formula, err = refusal_time(parse_formula, text, args.repeat)
                equation, _ = refusal_time(parse_equation, f"y = {text}", args.repeat)
                rows.append((ident, len(text), max(formula, equation), err.construct))
            created = sorted(os.listdir(tmp))
        finally:
            os.chdir(cwd)
    if created:
        raise SystemExit(f"attacks created files: {created} ({PWNED!r} is the code-execution marker)")
    print(f"{'attack':<28} {'chars':>9} {'refused in':>11} {'/ target':>9}  construct")
    for ident, n, seconds, construct in rows:
        print(f"{ident:<28} {n:>9} {seconds * 1e3:>8.3f} ms {seconds / TARGET_S:>9.4f}  {construct[:60]}")
    worst = max(rows, key=lambda r: r[2])
    print(f"\n{len(rows)} attacks refused, no file created; slowest: {worst[0]} in {worst[2] * 1e3:.3f} ms")
    print(f"= {worst[2] / TARGET_S:.4f} of the {TARGET_S * 1e3:.0f} ms target")
    print(f"\n{'allowed but heavy':<28} {'chars':>9} {'parsed in':>11} {'/ target':>9}")
    for ident, text in HEAVY:
        seconds = parse_time(text, args.repeat)
        print(f"{ident:<28} {len(text):>9} {seconds * 1e3:>8.3f} ms {seconds / TARGET_S:>9.4f}")


if __name__ == "__main__":
    main()
