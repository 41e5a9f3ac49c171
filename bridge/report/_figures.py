"""Report figures with seaborn on the matplotlib Agg backend (no display needed); every figure is a PNG file.

Intervals over seeds are seaborn's bootstrap confidence intervals (``errorbar=("ci", 95)``, seeded), so a band
is the 95% interval of the mean over seeds at each configuration (Waskom 2021, seaborn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

DPI = 90
N_BOOT = 200  #: bootstrap resamples behind every seaborn interval


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


def _log_if_wide(ax: plt.Axes, values: pd.Series, axis: str = "x") -> None:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if len(v) and (v > 0).all() and v.max() / v.min() >= 50:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def phenomenon_curves(
    runs: pd.DataFrame,
    records: pd.DataFrame,
    axis: str | None,
    outcome: str,
    path: Path,
    *,
    style: str | None = None,
    seed: int = 0,
) -> Path:
    """Left: ``outcome`` along training (mean over seeds with its 95% CI) per value of the sweep ``axis``;
    right: the final ``outcome`` against ``axis`` with its 95% CI over seeds, one line per value of a second
    sweep axis ``style``. One panel when runs record one step."""
    hue = axis if axis is not None and axis in runs.columns else None
    keep = ["run_id"] + ([hue] if hue else [])
    along = records[records["quantity"] == outcome].merge(runs[keep], on="run_id")
    many_steps = along["step"].nunique() > 1
    fig, axes = plt.subplots(1, 2 if many_steps else 1, figsize=(11 if many_steps else 6, 4), squeeze=False)
    if many_steps:
        ax = axes[0, 0]
        data = along.assign(**({hue: along[hue].astype(str)} if hue else {}))
        sns.lineplot(
            data=data, x="step", y="value", hue=hue, errorbar=("ci", 95), n_boot=N_BOOT, seed=seed, ax=ax, marker="o"
        )
        if data["step"].min() >= 0 and data["step"].max() > 10:
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlim(left=0)
        ax.set(ylabel=outcome, title=f"{outcome} along training (95% CI over seeds)")
    ax = axes[0, -1]
    if hue and pd.api.types.is_numeric_dtype(runs[hue]):
        lines = runs.assign(**{style: runs[style].astype(str)}) if style else runs
        sns.lineplot(data=lines, x=hue, y=outcome, hue=style, errorbar=("ci", 95), n_boot=N_BOOT, seed=seed, ax=ax,
                     marker="o")  # fmt: skip
        _log_if_wide(ax, runs[hue])
    else:
        x = runs[hue].astype(str) if hue else pd.Series(["all"] * len(runs), index=runs.index)
        sns.pointplot(x=x, y=runs[outcome], errorbar=("ci", 95), n_boot=N_BOOT, seed=seed, ax=ax)
    ax.set(xlabel=hue or "", ylabel=f"final {outcome}", title=f"final {outcome} (95% CI over seeds)")
    return _save(fig, path)


def quantity_panels(
    table: pd.DataFrame, subjects: Sequence[str], outcome: str, hue: str | None, path: Path, *, seed: int = 0
) -> Path:
    """One panel per subject (the quantity first, then its negative controls) against ``outcome``: runs as points
    coloured by ``hue`` and a least-squares line with its bootstrap 95% band (seaborn ``regplot``)."""
    subjects = [s for s in subjects if s in table.columns and table[s].notna().any()]
    fig, axes = plt.subplots(1, len(subjects), figsize=(4 * len(subjects), 3.6), squeeze=False)
    for ax, subject in zip(axes[0], subjects, strict=True):
        data = table.dropna(subset=[subject, outcome])
        colour = data[hue].astype(str) if hue and hue in data.columns else None
        sns.scatterplot(x=data[subject], y=data[outcome], hue=colour, ax=ax, s=30, alpha=0.8)
        if data[subject].nunique() > 1:
            band = {"ci": 95, "n_boot": N_BOOT, "seed": seed}
            sns.regplot(x=data[subject], y=data[outcome], scatter=False, ax=ax, color="k", line_kws={"lw": 1}, **band)
        role = "quantity" if subject == subjects[0] else "control"
        ax.set_title(f"{subject} ({role})")
        if colour is not None and ax.get_legend() is not None and subject != subjects[0]:
            ax.get_legend().remove()
    return _save(fig, path)


def fitted_prediction(points: pd.DataFrame, prediction: Mapping[str, object], path: Path) -> Path:
    """A stored functional fit (see :func:`bridge.studies.prediction_band`): the runs (coloured by environment),
    the fitted curve on a grid of the explanatory variable and its pointwise 95% bootstrap band."""
    x, y = str(prediction["variable"]), str(prediction["target"])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    env = str(prediction.get("environment") or "spec")
    colour = points[env].astype(str) if env in points.columns else None
    sns.scatterplot(x=points[x], y=points[y], hue=colour, ax=ax, s=30)
    grid = np.asarray(prediction["grid"], float)
    ax.plot(grid, np.asarray(prediction["fit"], float), color="k", lw=1.5, label="fit")
    ax.fill_between(grid, np.asarray(prediction["low"], float), np.asarray(prediction["high"], float),
                    color="k", alpha=0.15, label="95% band")  # fmt: skip
    fit_on = prediction.get("fit_on")
    ax.set_title(f"{prediction['expression']}" + (f"\n(fitted on {fit_on})" if fit_on else ""), fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)
