"""Figures of the tests behind a verdict, where the marginal scatter is not what was tested: the conditional test
(partial rank correlation given confounders) and the functional law fitted on one environment and predicted on
the others. Both return a :class:`~bridge.report._figures.Plotted` with the numbers they draw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from bridge.report._figures import MARKERS, PANEL, Plotted, _save, label, log_scaled, palette, plt
from bridge.stats import PartialMethod, confounder_design

SPLINE_DF = 4  #: partial_rank_correlation's default spline_df, with its default method (spline)
MAX_STRATA = 4


def residual_ranks(frame: pd.DataFrame, x: str, y: str, confounders: Sequence[str]) -> pd.DataFrame:
    """Ranks of the residuals of ``x`` and ``y`` after least squares on the confounders' design (the additive
    natural cubic spline of :func:`bridge.stats.partial_rank_correlation`, default method): their Pearson
    correlation is the partial rank correlation that test reports. The residuals are the projection onto the
    orthogonal complement of the design's column space (``numpy.linalg.lstsq``), unique even when the design is
    rank-deficient, e.g. a confounder with fewer distinct values than spline columns."""
    design = confounder_design(frame, list(confounders), PartialMethod.SPLINE, SPLINE_DF)
    out = {}
    for name, column in (("x", x), ("y", y)):
        values = frame[column].to_numpy(float)
        coef, *_ = np.linalg.lstsq(design, values, rcond=None)
        out[f"rank_{name}"] = stats.rankdata(values - design @ coef)
    return pd.DataFrame(out, index=frame.index)


def _strata(values: pd.Series) -> tuple[pd.Series, str]:
    """The confounder's own values when it takes at most MAX_STRATA; else quantile bins (about 6 runs per bin)."""
    distinct = values.nunique()
    if distinct <= MAX_STRATA:
        return values.map(lambda v: f"= {label(v)}"), f"its {distinct} distinct values"
    bins = min(MAX_STRATA, max(2, len(values) // 6))
    cut = pd.qcut(values, bins, duplicates="drop")
    return cut.map(lambda iv: f"in ({label(iv.left)}, {label(iv.right)}]").astype(str), f"{bins} quantile bins"


def conditional_panels(
    table: pd.DataFrame, quantity: str, outcome: str, confounders: Sequence[str], path: Path,
    *, statistic: float | None = None,
) -> Plotted:  # fmt: skip
    """The relation a partial rank test measures. Left: ranks of ``quantity`` and ``outcome`` residualised on the
    confounders (:func:`residual_ranks`), with their correlation (the stored ``statistic`` when given). Right:
    ``quantity`` against ``outcome`` within strata of the first confounder, one least-squares line per stratum."""
    data = table.dropna(subset=[quantity, outcome, *confounders]).reset_index(drop=True)
    ranks = residual_ranks(data, quantity, outcome, confounders)
    # a correlation and a line need both columns to vary (the ranks of a constant's rounding residuals are noise)
    varies = len(data) > 2 and data[quantity].nunique() > 1 and data[outcome].nunique() > 1
    r = float(np.corrcoef(ranks["rank_x"], ranks["rank_y"])[0, 1]) if varies else float("nan")
    first = confounders[0]
    stratum, how = _strata(data[first])
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * PANEL[0] + 0.6, PANEL[1]))
    shades = palette(data[first])
    left.scatter(ranks["rank_x"], ranks["rank_y"], c=[shades[v] for v in data[first]], s=36, alpha=0.85)
    if varies:
        slope, intercept = np.polyfit(ranks["rank_x"], ranks["rank_y"], 1)
        xs = np.array([ranks["rank_x"].min(), ranks["rank_x"].max()])
        left.plot(xs, intercept + slope * xs, color="k", lw=1)
    shown = statistic if statistic is not None and np.isfinite(statistic) else r
    left.set(xlabel=f"rank of {quantity} | {', '.join(confounders)}", ylabel=f"rank of {outcome} | confounders",
             title=f"residualised ranks: r = {shown:.3g}")  # fmt: skip
    order = list(dict.fromkeys(stratum.iloc[np.argsort(data[first].to_numpy(), kind="stable")]))
    colours = dict(zip(order, plt.get_cmap("viridis")(np.linspace(0, 0.85, len(order))), strict=True))
    for i, s in enumerate(order):
        part = data[stratum == s]
        right.scatter(part[quantity], part[outcome], color=colours[s], marker=MARKERS[i % len(MARKERS)], s=36,
                      alpha=0.85, label=f"{first} {s} ({len(part)} runs)")  # fmt: skip
        if part[quantity].nunique() > 1:
            sns.regplot(data=part, x=quantity, y=outcome, scatter=False, ci=None, ax=right, color=colours[s],
                        line_kws={"lw": 1})  # fmt: skip
    if log_scaled(data[quantity]):
        right.set_xscale("log")
    right.set(xlabel=quantity, ylabel=outcome, title=f"within strata of {first}")
    right.legend(fontsize=7)
    notes = [f"strata: {how} of {first}"] + ([f"only {first} is stratified"] if len(confounders) > 1 else [])
    residuals = data[["run_id"]].assign(rank_quantity=ranks["rank_x"], rank_outcome=ranks["rank_y"]) \
        if "run_id" in data else ranks  # fmt: skip
    strata = data[[c for c in ("run_id", quantity, outcome, first) if c in data]].assign(stratum=stratum)
    return Plotted(_save(fig, path), {"residuals": residuals, "strata": strata, "r": r}, tuple(notes))


def _curves(prediction: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The payload's curves; a payload saved before per-environment curves has one over every run."""
    if "curves" in prediction:
        return list(prediction["curves"])
    keys = ("grid", "fit", "low", "high")
    return [{"environment": None, "role": "fit", "n": None, "over_all": True, **{k: prediction[k] for k in keys}}]


def fitted_prediction(points: pd.DataFrame, prediction: Mapping[str, Any], path: Path) -> Plotted:
    """A stored functional fit (:func:`bridge.report.prediction_band`): one panel per environment, the runs as
    points, the fitted curve (solid) where it was fitted and the prediction (dashed) on the other environments,
    each with its pointwise 95% band. The y axis spans the observed outcomes; where a curve leaves it, the panel
    and the caption say by how much."""
    x, y = str(prediction["variable"]), str(prediction["target"])
    env = str(prediction.get("environment") or "spec")
    curves = _curves(prediction)
    observed = points[y].dropna()
    lo, hi = (float(observed.min()), float(observed.max())) if len(observed) else (0.0, 1.0)
    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    ylim = (lo - pad, hi + pad)
    fig, axes = plt.subplots(1, max(len(curves), 1), figsize=(PANEL[0] * max(len(curves), 1), PANEL[1] + 0.3),
                             squeeze=False, sharey=True)  # fmt: skip
    notes, off = [], []
    for ax, curve in zip(axes[0], curves, strict=False):
        part = points if curve["environment"] is None or env not in points else \
            points[points[env].astype(str) == curve["environment"]]  # fmt: skip
        part = part.dropna(subset=[x, y])
        ax.scatter(part[x], part[y], s=30, color="0.3", alpha=0.8, label=f"runs ({len(part)})")
        grid, fit = np.asarray(curve["grid"], float), np.asarray(curve["fit"], float)
        low, high = np.asarray(curve["low"], float), np.asarray(curve["high"], float)
        fitted = curve["role"] == "fit"
        colour = "tab:blue" if fitted else "tab:red"
        ax.plot(
            grid, fit, color=colour, lw=1.8, linestyle="-" if fitted else "--", label="fit" if fitted else "prediction"
        )
        if np.isfinite(low).any():
            ax.fill_between(grid, low, high, color=colour, alpha=0.2, label="95% band")
        ax.set_ylim(*ylim)
        if log_scaled(part[x]) or log_scaled(pd.Series(grid)):
            ax.set_xscale("log")
        where = curve["environment"] or "all runs"
        title = f"{'fitted on' if fitted else 'predicted on'} {where}"
        if curve.get("over_all") and prediction.get("fit_on"):
            title = f"fitted on {prediction['fit_on']}, drawn over all runs"
        ax.set_title(title, fontsize=9)
        ax.set(xlabel=x, ylabel=y)
        finite = fit[np.isfinite(fit)]
        if len(finite) and (finite.min() < ylim[0] or finite.max() > ylim[1]):
            text = f"curve spans {label(finite.min())} to {label(finite.max())}, beyond this axis"
            ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=7, color=colour)
            off.append({"environment": curve["environment"], "low": float(finite.min()), "high": float(finite.max())})
            band = np.concatenate([low, high])
            band = band[np.isfinite(band)]
            spread = f" (its 95% band {label(band.min())} to {label(band.max())})" if len(band) else ""
            notes.append(f"on {where} the {'fit' if fitted else 'prediction'} spans {label(finite.min())} to "
                         f"{label(finite.max())}{spread}, beyond the observed {y} range drawn")  # fmt: skip
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(str(prediction["expression"]), fontsize=9)
    if prediction.get("note"):
        notes.append(str(prediction["note"]))
    data = {"curves": curves, "ylim": ylim, "off_axis": off}
    return Plotted(_save(fig, path), data, tuple(notes))
