"""Calibration of the verdict engine (issue 10): how often ``falsify`` says supported / falsified / inconclusive
on synthetic runs with a known truth, per regime (3, 6, 12 configurations × 2, 3, 5, 10 seeds) and hypothesis
kind (:mod:`bridge.calibration`: configuration-level random effects, a logistic link, a confounder as large as
the direct effect, the default negative controls; a true, a wrong and a null functional law).

    python benchmarks/calibration.py                      # every kind, the full grid, 100 replications per regime
    python benchmarks/calibration.py --reps 20 --configs 6 --seeds 3 5
    python benchmarks/calibration.py --kinds "true law" "wrong law" "null law"
    python benchmarks/calibration.py --workers 2          # a process pool (off by default)
    python benchmarks/calibration.py --csv raw.csv        # keep the raw records; --load raw.csv redraws them

Prints one table (rates with Monte-Carlo standard errors, and whether each kind's error rate is within
α + 2 s.e.), the pass rates of each test for the true driver under every rank test and for the confounded-only
quantity, and the wall time; writes the power figure ``benchmarks/figures/calibration.png``. Targets: false
"supported" <= α + 2 s.e. for the null quantity, the confounded-only quantity, the wrong sign and the null law;
false "falsified" <= α + 2 s.e. for the true driver and the true law. The wrong law's rate of "supported" is a
want of power (a linear law that the data cannot tell from the logarithm), reported, not a target. The event
order and equivalence kinds hold "supported" on their boundary and "falsified" for a true claim to the same
target, with configurations as their units (``benchmarks/nested_units.py`` compares the candidate units).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bridge.calibration import (  # noqa: E402
    CONFIGURATIONS,
    KINDS,
    N_RESAMPLES,
    SEEDS,
    Design,
    calibrate,
    summarize,
)

FIGURE = Path(__file__).resolve().parent / "figures" / "calibration.png"


def rate_table(summary: pd.DataFrame) -> str:
    """The summary as text: one row per regime and kind, each rate as 'rate ± s.e.'."""
    shown = summary[["configs", "seeds", "kind"]].copy()
    for verdict in ("supported", "falsified", "inconclusive"):
        shown[verdict] = [f"{r:.3f} ± {s:.3f}" for r, s in zip(summary[verdict], summary[f"{verdict} se"], strict=True)]
    shown["error"] = [f"{e:.3f} {'<=' if e <= t else '>'} {t:.3f}" if targeted else f"{e:.3f} (power)"
                      for e, t, targeted in zip(summary["error"], summary["target"], summary["targeted"],
                                                strict=True)]  # fmt: skip
    return shown.to_string(index=False)


def test_rates(raw: pd.DataFrame, kind: str) -> str:
    """Per regime, the share of replications in which each test passed (and failed) for ``kind``."""
    part = raw[raw["kind"] == kind]
    columns = [c for c in part.columns if c.startswith("test ") and part[c].notna().any()]
    rows = []
    for (configs, seeds), cell in part.groupby(["configs", "seeds"], sort=True):
        row = {"configs": configs, "seeds": seeds}
        for c in columns:
            row[c[5:]] = f"{(cell[c] == 'pass').mean():.2f}/{(cell[c] == 'fail').mean():.2f}"
        rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)


def draw(raw: pd.DataFrame, path: Path, alpha: float) -> None:
    """Power to support a true driver (per test bundle) and the true law, power to falsify a wrong sign and a
    wrong law, and every targeted kind's error rate per regime against α and α + 2 s.e."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), constrained_layout=True)
    raw = raw.assign(
        supported=(raw["verdict"] == "supported").astype(float),
        falsified=(raw["verdict"] == "falsified").astype(float),
        error=raw["wrong"].astype(float),
        regime=[f"{c}x{s}" for c, s in zip(raw["configs"], raw["seeds"], strict=True)],
    )
    true = raw[raw["kind"].str.startswith("true")]
    sns.lineplot(true, x="seeds", y="supported", hue="configs", style="kind", markers=True, errorbar="se",
                 palette="viridis", ax=axes[0])  # fmt: skip
    axes[0].set(title="a true claim is supported", ylabel="P(supported)")
    wrong = raw[raw["kind"].isin(["wrong sign", "wrong law"])]
    sns.lineplot(wrong, x="seeds", y="falsified", hue="configs", style="kind", markers=True, errorbar="se",
                 palette="viridis", ax=axes[1])  # fmt: skip
    axes[1].set(title="a wrong claim is falsified", ylabel="P(falsified)")
    for ax in axes[:2]:
        ax.set(xscale="log", xlabel="seeds per configuration", ylim=(-0.02, 1.02))
        ax.set_xticks(SEEDS, [str(s) for s in SEEDS])
        ax.minorticks_off()
        ax.legend(fontsize=7)
    targeted = raw[raw["targeted"]] if "targeted" in raw else raw
    rates = targeted.groupby(["kind", "regime"], sort=False)["error"].mean().reset_index()
    sns.stripplot(rates, x="error", y="kind", hue="kind", size=6, jitter=0.15, legend=False, ax=axes[2])
    reps = raw.groupby(["kind", "regime"]).size().min()
    axes[2].axvline(alpha, color="black", linestyle="--", linewidth=1)
    bound = alpha + 2 * (alpha * (1 - alpha) / reps) ** 0.5
    axes[2].axvline(bound, color="firebrick", linewidth=1)
    axes[2].set_xlim(-0.005, 1.1 * max(bound, float(rates["error"].max())))
    axes[2].set(title=f"wrong verdicts, per regime ({reps} replications)", ylabel="",
                xlabel="P(wrong verdict): dashed α, red α + 2 s.e.")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=100, help="replications per regime (default 100)")
    parser.add_argument("--configs", type=int, nargs="+", default=list(CONFIGURATIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--effect", type=float, default=1.0, help="size of the direct effect (default 1)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--resamples", type=int, default=N_RESAMPLES, help=f"default {N_RESAMPLES}")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS), metavar="KIND",
                        help=f"hypothesis kinds (default: all of {list(KINDS)})")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1: no multiprocessing)")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--csv", type=Path, help="also write the raw records here")
    parser.add_argument("--load", type=Path, help="print and draw the raw records of an earlier --csv instead")
    args = parser.parse_args()
    kinds = [KINDS[k] for k in args.kinds]
    designs = [Design(c, s, args.effect) for c in args.configs for s in args.seeds]
    start = time.perf_counter()
    if args.load:
        raw = pd.read_csv(args.load)
    else:
        raw = calibrate(designs, kinds, args.reps, alpha=args.alpha, n_resamples=args.resamples, workers=args.workers)
    elapsed = time.perf_counter() - start
    summary = summarize(raw, args.alpha)
    print(f"Verdict calibration: {args.reps} replications per regime, α = {args.alpha:g}, effect {args.effect:g}, "
          f"{args.resamples} resamples; error = the kind's wrong verdict rate vs α + 2 s.e.")  # fmt: skip
    print(rate_table(summary))
    for kind in ("true driver, all rank tests", "true driver, default tests", "confounded only"):
        if kind in set(raw["kind"]):
            print(f"\nPer-test pass/fail rates, {kind}:")
            print(test_rates(raw, kind))
    held = bool(summary["holds"].all())
    per = elapsed / max(1, raw.groupby(["configs", "seeds", "replication"]).ngroups)
    print(f"\nEvery error target held: {held}. Wall time {elapsed / 60:.1f} min ({per:.2f} s per replication of "
          f"{raw['kind'].nunique()} hypotheses).")  # fmt: skip
    if args.csv:
        raw.to_csv(args.csv, index=False)
    draw(raw, args.figure, args.alpha)
    print(f"Figure: {args.figure}")


if __name__ == "__main__":
    main()
