"""Report figures with seaborn on the matplotlib Agg backend (no display needed); every figure is a PNG file.

Intervals over seeds are seaborn's bootstrap confidence intervals (``errorbar=("ci", 95)``, seeded), so a band
is the 95% interval of the mean over seeds at each configuration (Waskom 2021, seaborn). Every figure function
returns a :class:`Plotted`: the file and the numbers it draws, so that captions and tests read what is shown.
Sweep values are drawn in numeric order with a sequential palette, each with its own marker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import AutoLocator, MaxNLocator  # noqa: E402

DPI = 90
N_BOOT = 200  #: bootstrap resamples behind every seaborn interval
LOG_RATIO = 50  #: a positive axis spanning this ratio or more is drawn on a log scale
INTERPOLATION_TOL = 0.01  #: "zero" training error: a mean final train error over seeds at most 1%
EXACT_FIT = 1e-8  #: "zero" training loss: at most this fraction of the largest mean final train loss
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PANEL = (4.2, 3.6)


@dataclass(frozen=True)
class Plotted:
    """A figure written to ``path``, the ``data`` it draws (tidy frames and marker positions, by name) and the
    caption sentences (``notes``) that say what was drawn, left out or undefined."""

    path: Path
    data: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def label(value: object) -> str:
    """A sweep value as the report prints it: numbers with 4 significant digits (4, not 4.0), text as is."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return str(value)
    return f"{float(value):.4g}"


def levels(values: pd.Series) -> list:
    """The distinct values of a sweep column in numeric order (text columns: alphabetical)."""
    distinct = pd.unique(values.dropna())
    numeric = pd.api.types.is_numeric_dtype(values)
    return sorted(distinct, key=float) if numeric else sorted(distinct, key=str)


def palette(values: pd.Series) -> dict[Any, tuple]:
    """Level -> colour: a sequential palette (viridis, its light end cut) for numbers, categorical for text."""
    order = levels(values)
    if pd.api.types.is_numeric_dtype(values):
        colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(order), 1)))
    else:
        colours = sns.color_palette("colorblind", len(order))
    return {v: tuple(c) for v, c in zip(order, colours, strict=False)}


def log_scaled(values: pd.Series) -> bool:
    """True for positive numbers spanning a ratio of at least :data:`LOG_RATIO` (drawn on a log axis)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    return bool(len(v) and (v > 0).all() and v.max() / v.min() >= LOG_RATIO)


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG and close it; automatic linear x ticks are thinned to at most 5 (wide numbers such as
    a prime count of 25,500 overlapped)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for ax in fig.axes:
        if type(ax.xaxis.get_major_locator()) is AutoLocator:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


#: line style of a control's outcome ``PREFIX_<outcome>`` drawn with the outcome: Frankle & Carbin's (2019) random
#: re-initialisation and random-pruning controls, which the lottery-ticket phenomenon trains at every round
CONTROL_STYLES = {"reinit": ":", "random": "-."}


def _pair(outcome: str, available: Sequence[str]) -> list[str]:
    """``[train_x, test_x]`` for an outcome ``test_x`` whose training counterpart is available (``[p_train, p_test]``
    for the effective parameters), else ``[outcome]``, followed by the available control outcomes ``reinit_x``,
    ``random_x`` (:data:`CONTROL_STYLES`)."""
    train = "p_train" if outcome == "p_test" else "train_" + outcome.removeprefix("test_")
    names = [train, outcome] if outcome.startswith(("test_", "p_test")) and train in available else [outcome]
    return names + [f"{c}_{outcome}" for c in CONTROL_STYLES if f"{c}_{outcome}" in available]


def _ylabel(names: Sequence[str]) -> str:
    """The names drawn, or with controls among them the shared suffix (the legend tells the lines apart)."""
    if len(names) <= 2:
        return " / ".join(names)
    return names[-1].split("_", 1)[1] if "_" in names[-1] else names[-1]


def _style(quantity: str) -> str:
    control = quantity.split("_", 1)[0]
    if control in CONTROL_STYLES:
        return CONTROL_STYLES[control]
    return "--" if quantity.startswith(("train_", "step_train", "p_train")) else "-"


def interpolation_threshold(finals: pd.DataFrame, axis: str) -> tuple[float, str]:
    """The model-wise interpolation threshold of double descent (Belkin et al. 2019): the first value of ``axis``
    (numeric order) at which the runs fit their training data, with the criterion used, or (NaN, "") when the data
    show no such transition. Fitted means a mean final ``train_error`` over seeds of at most
    :data:`INTERPOLATION_TOL` (a classifier that memorises every label) when the smallest value's is above it;
    else a mean final ``train_loss`` at most :data:`EXACT_FIT` times the largest mean (an exact least-squares fit,
    whose training error may vanish long before)."""
    for column, rule in (("train_error", "error"), ("train_loss", "loss")):
        if column not in finals.columns or finals[column].isna().all():
            continue
        means = finals.groupby(axis)[column].mean().dropna().sort_index()
        tol = INTERPOLATION_TOL if rule == "error" else EXACT_FIT * float(means.abs().max())
        below = means[means <= tol]
        if len(below) and means.iloc[0] > tol:
            what = f"at most {INTERPOLATION_TOL:.0%}" if rule == "error" else f"at most {EXACT_FIT:g} of its largest"
            return float(below.index[0]), f"the first {axis} whose mean final {column} over seeds is {what}"
    return float("nan"), ""


def phenomenon_curves(
    runs: pd.DataFrame,
    records: pd.DataFrame,
    axes: Sequence[str],
    outcome: str,
    path: Path,
    *,
    seed: int = 0,
    finals: bool = True,
) -> Plotted:
    """A phenomenon's curves, means over seeds with 95% CIs, one colour and marker per value of the first sweep axis
    and one facet per value of the second (further axes are averaged, and the caption says so).

    Left (when runs record several steps): ``outcome`` and its training counterpart (dashed) along training, the
    mean generalisation step ``step_test_fit`` marked when the runs have it. Right: the final values against the
    first axis: ``step_train_fit``/``step_test_fit`` when present (the grokking delay), else final train and test
    values, with the interpolation threshold (:func:`interpolation_threshold`) marked per facet; ``finals=False``
    leaves the right panel out (e.g. p_train/p_test along training next to a phenomenon's own figure)."""
    hue, facet = (list(axes) + [None, None])[:2]
    runs = runs.reset_index(drop=True)
    notes = [f"averaged over {', '.join(axes[2:])}"] if len(axes) > 2 else []
    along_names = _pair(outcome, records["quantity"].unique().tolist())
    keep = ["run_id"] + [a for a in (hue, facet) if a]
    along = records[records["quantity"].isin(along_names)].merge(runs[keep], on="run_id")
    facets = levels(runs[facet]) if facet else [None]
    many_steps = along["step"].nunique() > 1
    panels = (len(facets) if many_steps else 0) + int(finals)
    fig, grid = plt.subplots(1, panels, figsize=(PANEL[0] * panels, PANEL[1]), squeeze=False)
    colours = palette(runs[hue]) if hue else {None: (0.2, 0.2, 0.5, 1.0)}
    markers = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(colours)}
    generalisation = []
    spread = along["value"].abs()
    wide_range = bool(many_steps and spread.max() > 100 * max(1.0, float(spread.median())))
    if wide_range:  # e.g. a run whose telescoping model diverges at its last steps
        notes.append("along training on a symmetric-log y axis: some values exceed 100 times the median")
    if many_steps:
        for ax, level in zip(grid[0], facets, strict=False):
            part = along if facet is None else along[along[facet] == level]
            for value in colours:
                for quantity in along_names:
                    sub = part[part["quantity"] == quantity]
                    sub = sub if hue is None else sub[sub[hue] == value]
                    if sub.empty:
                        continue
                    sns.lineplot(data=sub, x="step", y="value", errorbar=("ci", 95), n_boot=N_BOOT, seed=seed, ax=ax,
                                 color=colours[value], marker=markers[value], linestyle=_style(quantity), alpha=0.85,
                                 markersize=5, legend=False)  # fmt: skip
                generalisation += _mark_generalisation(ax, runs, hue, value, facet, level, colours[value])
            if along["step"].min() >= 0 and along["step"].max() > 10:
                ax.set_xscale("symlog", linthresh=1)
                ax.set_xlim(left=0)
            if wide_range:
                ax.set_yscale("symlog", linthresh=1)
                if along["value"].min() >= 0:
                    ax.set_ylim(bottom=0)
            title = "along training" + (f", {facet} = {label(level)}" if facet else "")
            ax.set(ylabel=_ylabel(along_names), title=title)
        _legend(grid[0, 0], hue, colours, markers, along_names, bool(generalisation))
    final_values, thresholds = _final_panel(grid[0, -1], runs, hue, facet, outcome, seed) if finals else (None, [])
    if generalisation:
        notes.append("dotted verticals: the mean generalisation step (step_test_fit) of each configuration")
    for row in thresholds:
        where = f" at {facet} = {label(row['facet'])}" if facet else ""
        notes.append(f"interpolation threshold{where}: {hue} = {label(row['threshold'])} ({row['rule']})")
    data = {
        "along": along,
        "final": final_values,
        "thresholds": pd.DataFrame(thresholds, columns=["facet", "threshold", "rule"]),
        "generalisation": pd.DataFrame(generalisation, columns=["facet", "hue", "step"]),
    }
    return Plotted(_save(fig, path), data, tuple(notes))


def _mark_generalisation(ax, runs, hue, value, facet, level, colour) -> list[tuple]:
    if "step_test_fit" not in runs.columns:
        return []
    sel = runs if hue is None else runs[runs[hue] == value]
    sel = sel if facet is None else sel[sel[facet] == level]
    step = sel["step_test_fit"].dropna()
    if step.empty:
        return []
    ax.axvline(step.mean(), color=colour, linestyle=":", lw=1.5)
    return [(level, value, float(step.mean()))]


def _legend(ax, hue, colours, markers, quantities, generalisation: bool) -> None:
    handles = [Line2D([], [], color=c, marker=markers[v], label=f"{hue} = {label(v)}") for v, c in colours.items()
               if hue is not None]  # fmt: skip
    handles += [Line2D([], [], color="k", linestyle=_style(q), label=q) for q in quantities if len(quantities) > 1]
    if generalisation:
        handles.append(Line2D([], [], color="k", linestyle=":", label="generalisation step"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="best")


def _final_panel(ax, runs, hue, facet, outcome, seed) -> tuple[pd.DataFrame, list[dict]]:
    """The final values against the first sweep axis; returns the tidy values drawn and the thresholds marked."""
    present = [c for c in runs.columns if runs[c].notna().any()]
    names = ["step_train_fit", "step_test_fit"] if {"step_train_fit", "step_test_fit"} <= set(present) else None
    names = names or _pair(outcome, present)
    numeric = hue is not None and pd.api.types.is_numeric_dtype(runs[hue])
    if hue is None:
        position = pd.Series(0.0, index=runs.index)
    else:  # numbers at their value, text at 0, 1, ... in alphabetical order
        position = runs[hue] if numeric else runs[hue].map({v: i for i, v in enumerate(levels(runs[hue]))})
    tidy = runs.assign(_x=position.astype(float)).melt(
        id_vars=["run_id", "_x"] + [a for a in (hue, facet) if a], value_vars=names, var_name="quantity"
    )
    facet_colours = palette(runs[facet]) if facet else {None: (0.1, 0.1, 0.1, 1.0)}
    thresholds = []
    for i, (level, colour) in enumerate(facet_colours.items()):
        part = tidy if facet is None else tidy[tidy[facet] == level]
        for quantity in names:
            sub = part[part["quantity"] == quantity].dropna(subset=["value"])
            if len(sub):
                sns.lineplot(data=sub, x="_x", y="value", errorbar=("ci", 95), n_boot=N_BOOT, seed=seed, ax=ax,
                             color=colour, marker=MARKERS[i % len(MARKERS)], linestyle=_style(quantity), alpha=0.85,
                             legend=False)  # fmt: skip
        if numeric and names[0].startswith("train_"):
            x, rule = interpolation_threshold(runs if facet is None else runs[runs[facet] == level], hue)
            if np.isfinite(x):
                ax.axvline(x, color=colour, linestyle="-.", lw=1.2)
                thresholds.append({"facet": level, "threshold": x, "rule": rule})
    if numeric and log_scaled(runs[hue]):
        ax.set_xscale("log")
    if hue is not None and not numeric:
        ax.set_xticks(range(len(levels(runs[hue]))), [label(v) for v in levels(runs[hue])])
    handles = [Line2D([], [], color=c, marker=MARKERS[i % len(MARKERS)], label=f"{facet} = {label(v)}")
               for i, (v, c) in enumerate(facet_colours.items()) if facet is not None]  # fmt: skip
    handles += [Line2D([], [], color="k", linestyle=_style(q), label=q) for q in names if len(names) > 1]
    handles += [Line2D([], [], color="k", linestyle="-.", label="interpolation threshold")] if thresholds else []
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set(xlabel=hue or "", ylabel=_ylabel(names), title="final values (95% CI over seeds)")
    return tidy.drop(columns="_x"), thresholds


def quantity_panels(
    table: pd.DataFrame, subjects: Sequence[str], outcome: str, colour_by: str | None, path: Path, *, seed: int = 0
) -> Plotted:
    """One panel per subject (the quantity first, then its negative controls) against ``outcome``: runs as points
    coloured by ``colour_by`` and a least-squares line with its bootstrap 95% band (seaborn ``regplot``).

    A control constant over the runs (e.g. the parameter count of one architecture) ranks nothing: it gets no
    panel, as the verdict engine leaves it out, and a note says so."""
    present = [s for s in subjects if s in table.columns and table[s].notna().any()]
    constant = [s for s in present[1:] if table[s].dropna().nunique() <= 1]
    drawn = [s for s in present if s not in constant]
    notes = [f"{s} is constant (= {label(table[s].dropna().iloc[0])}) over the {table[s].notna().sum()} runs in "
             f"scope: no panel, as the verdict engine leaves it out" for s in constant]  # fmt: skip
    fig, axes = plt.subplots(1, len(drawn), figsize=(PANEL[0] * len(drawn), PANEL[1]), squeeze=False)
    colour = colour_by if colour_by and colour_by in table.columns else None
    colours = palette(table[colour]) if colour else None
    markers = {v: MARKERS[j % len(MARKERS)] for j, v in enumerate(colours or [])} or True  # cycled: any level count
    for i, (ax, subject) in enumerate(zip(axes[0], drawn, strict=True)):
        data = table.dropna(subset=[subject, outcome])
        sns.scatterplot(data=data, x=subject, y=outcome, hue=colour, palette=colours, hue_order=list(colours or []),
                        style=colour, markers=markers, ax=ax, s=36, alpha=0.85, legend=i == 0)  # fmt: skip
        if data[subject].nunique() > 1:
            band = {"ci": 95, "n_boot": N_BOOT, "seed": seed}
            logx = log_scaled(data[subject])  # a straight line in log x where the axis is logarithmic
            sns.regplot(data=data, x=subject, y=outcome, scatter=False, ax=ax, color="k", line_kws={"lw": 1}, logx=logx,
                        **band)  # fmt: skip
        if log_scaled(data[subject]):
            ax.set_xscale("log")
        ax.set_title(f"{subject} ({'quantity' if i == 0 else 'control'})")
        if i == 0 and ax.get_legend() is not None:
            for text in ax.get_legend().get_texts():
                text.set_text(_relabel(text.get_text()))
    points = table[[c for c in ("run_id", colour, *drawn, outcome) if c and c in table.columns]]
    return Plotted(_save(fig, path), {"points": points, "panels": drawn, "left_out": constant}, tuple(notes))


def _relabel(text: str) -> str:
    try:
        return label(float(text))
    except ValueError:
        return text
