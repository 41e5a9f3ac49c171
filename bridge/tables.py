"""From the empirics store to per-run tables: the only bridge module that reads a store.

A store is anything with the :class:`empirics.store.Store` reading API (``runs()``, ``records(run_ids,
quantities)``); the tests in ``bridge.stats`` only ever see the pandas tables built here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import pandas as pd
import sympy

from bridge.hypothesis import Event, Hypothesis, Kind, Over, Scope
from empirics.store import RUN_COLUMNS

EVERYTHING = Scope()  #: the default scope: every run in the store


class StoreLike(Protocol):
    """The part of :class:`empirics.store.Store` the bridge uses."""

    def runs(self) -> pd.DataFrame: ...

    def records(
        self, run_ids: Iterable[str] | None = None, quantities: Iterable[str] | None = None
    ) -> pd.DataFrame: ...

    def put_result(self, kind: str, key: str, payload: dict[str, Any]) -> None: ...

    def results(self, kind: str) -> list[dict[str, Any]]: ...


def _parameters(store: StoreLike, runs: pd.DataFrame) -> list[str]:
    """The resolved parameter names of ``runs`` (one spec's), read from the first run's config when the store has
    one; else every column that is not a run column."""
    config = getattr(store, "config", None)
    return list(config(runs["run_id"].iloc[0]).params) if config else [c for c in runs.columns if c not in RUN_COLUMNS]


def swept_axes(store: StoreLike, runs: pd.DataFrame) -> list[str]:
    """The parameters (other than the seed) that vary across ``runs`` (one spec's), in parameter order."""
    return [n for n in _parameters(store, runs) if n != "seed" and n in runs and runs[n].astype(str).nunique() > 1]


def spec_summary(store: StoreLike, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per spec of ``runs`` (default: all the store's): ``phenomenon``, ``runs``, ``seeds`` (sorted),
    ``axes`` (swept parameter -> its values in numeric order), ``outcomes`` (names with a value in some run) and
    ``wall_s`` (summed run wall time)."""
    runs = store.runs() if runs is None else runs
    rows = []
    for spec, part in runs.groupby("spec", sort=True):
        part = part.dropna(axis=1, how="all")
        params = set(_parameters(store, part))
        axes = {
            a: sorted(part[a].unique().tolist(), key=lambda v: (isinstance(v, str), v)) for a in swept_axes(store, part)
        }
        rows.append({
            "spec": spec, "phenomenon": part["phenomenon"].iloc[0], "runs": len(part),
            "seeds": sorted(part["seed"].unique().tolist()), "axes": axes,
            "outcomes": [c for c in part.columns if c not in RUN_COLUMNS and c not in params],
            "wall_s": float(part["wall_s"].sum()),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["spec", "phenomenon", "runs", "seeds", "axes", "outcomes", "wall_s"])


def select_runs(runs: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """The runs inside ``scope`` (spec and phenomenon names; empty lists keep everything)."""
    keep = np.ones(len(runs), dtype=bool)
    if scope.specs:
        keep &= runs["spec"].isin(scope.specs).to_numpy()
    if scope.phenomena:
        keep &= runs["phenomenon"].isin(scope.phenomena).to_numpy()
    return runs.loc[keep].reset_index(drop=True)


def values_at(records: pd.DataFrame, at: str | int | Event = "final") -> pd.DataFrame:
    """Wide table run_id × quantity from tidy records: the value at the last step (``"final"``), the first
    (``"initial"``), the last recorded step <= ``at`` (an int), or at the run's first step where the
    :class:`~bridge.hypothesis.Event` ``at`` holds (runs where it never holds get NaN); ``records`` must then
    include the event's quantities."""
    if records.empty:
        return pd.DataFrame({"run_id": pd.Series(dtype=str)})
    recs = records.sort_values(["run_id", "quantity", "step"], kind="stable")
    if isinstance(at, Event):
        limit = recs["run_id"].map(first_step(records, at))
        recs = recs[recs["step"] <= limit.fillna(-1).to_numpy()]
        pick = recs.groupby(["run_id", "quantity"]).tail(1)
    elif isinstance(at, int) and not isinstance(at, bool):
        recs = recs[recs["step"] <= at]
        pick = recs.groupby(["run_id", "quantity"]).tail(1)
    elif at == "final":
        pick = recs.groupby(["run_id", "quantity"]).tail(1)
    elif at == "initial":
        pick = recs.groupby(["run_id", "quantity"]).head(1)
    else:
        raise ValueError(f"The 'at' parameter must be 'final', 'initial', a step >= 0 or an Event. Got {at!r} instead.")
    wide = pick.pivot(index="run_id", columns="quantity", values="value")
    wide.columns.name = None
    return wide.reset_index()


def run_table(
    store: StoreLike, quantities: Iterable[str], *, at: str | int | Event = "final", scope: Scope = EVERYTHING
) -> pd.DataFrame:
    """One row per run in ``scope``: the run columns (ids, parameters, outcomes) joined with each recorded
    quantity at ``at`` (see :func:`values_at`). A name that is both an outcome and a record keeps the outcome
    (the run's final value) where the run has one; a run without that outcome reads the record (the store's run
    table has a column per outcome of any phenomenon, e.g. ``p_test`` of random features, NaN for the others)."""
    runs = select_runs(store.runs(), scope)
    wanted = [q for q in dict.fromkeys(quantities) if q not in runs.columns or runs[q].isna().any()]
    if runs.empty or not wanted:
        return runs
    fetch = [*wanted, *at.quantities] if isinstance(at, Event) else wanted
    values = values_at(store.records(run_ids=runs["run_id"].tolist(), quantities=fetch), at)
    values = values[["run_id", *[q for q in wanted if q in values.columns]]]
    out = runs.merge(values, on="run_id", how="left", suffixes=("", "@record"))
    for q in [c for c in values.columns if f"{c}@record" in out.columns]:
        out[q] = out[q].fillna(out.pop(f"{q}@record"))
    return out


def first_step(records: pd.DataFrame, event: Event) -> pd.Series:
    """Per run, the first recorded step at which ``event.expression`` is above/below its threshold (NaN: never)."""
    names = event.quantities
    recs = records[records["quantity"].isin(names)]
    wide = recs.pivot_table(index=["run_id", "step"], columns="quantity", values="value", aggfunc="last")
    if wide.empty or any(n not in wide.columns for n in names):
        return pd.Series(dtype=float, name=event.text)
    f = sympy.lambdify([sympy.Symbol(n) for n in names], event.expression, "numpy")
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.broadcast_to(np.asarray(f(*[wide[n].to_numpy(float) for n in names]), float), len(wide))
    hit = values > event.threshold if event.above else values < event.threshold
    steps = wide.index.get_level_values("step").to_numpy(float)
    frame = pd.DataFrame({"run_id": wide.index.get_level_values("run_id"), "step": np.where(hit, steps, np.nan)})
    return frame.groupby("run_id")["step"].min().rename(event.text)


def event_table(store: StoreLike, first: Event, second: Event, *, scope: Scope = EVERYTHING) -> pd.DataFrame:
    """Runs in ``scope`` with ``first_step``, ``second_step`` and ``lag`` = second − first (NaN if an event is
    missing), for event-ordering predictions."""
    runs = select_runs(store.runs(), scope)
    names = sorted(set(first.quantities) | set(second.quantities))
    recs = store.records(run_ids=runs["run_id"].tolist(), quantities=names)
    out = runs.set_index("run_id")
    out["first_step"] = first_step(recs, first)
    out["second_step"] = first_step(recs, second)
    out["lag"] = out["second_step"] - out["first_step"]
    return out.reset_index()


def step_table(store: StoreLike, quantities: Iterable[str], *, scope: Scope = EVERYTHING) -> pd.DataFrame:
    """One row per (run, recorded step) of the runs in ``scope``: the run columns (ids, parameters) joined with
    each quantity's record at that step (NaN where a run did not record it then). A name that is both a run
    outcome and a record takes the record (its value along training)."""
    runs = select_runs(store.runs(), scope)
    wanted = list(dict.fromkeys(quantities))
    records = store.records(run_ids=runs["run_id"].tolist(), quantities=wanted) if len(runs) else None
    if records is None or records.empty:
        return runs.assign(step=pd.Series(dtype="int64")).iloc[0:0]
    wide = records.pivot_table(index=["run_id", "step"], columns="quantity", values="value", aggfunc="last")
    wide.columns.name = None
    wide = wide.reset_index()
    keep = [c for c in runs.columns if c not in wide.columns or c == "run_id"]
    return runs[keep].merge(wide, on="run_id", how="inner").sort_values(["run_id", "step"], ignore_index=True)


def hypothesis_table(store: StoreLike, hypothesis: Hypothesis) -> pd.DataFrame:
    """The per-run table a hypothesis is tested on: quantity, outcome, controls, confounders (and for event
    predictions the event steps and lag); for a claim over steps (``scope.over = "steps"``) one row per run and
    recorded step (:func:`step_table`)."""
    names = [hypothesis.quantity, hypothesis.outcome, *hypothesis.controls, *hypothesis.confounders]
    if hypothesis.scope.over is Over.STEPS:
        return step_table(store, names, scope=hypothesis.scope)
    pred = hypothesis.prediction
    if pred.kind is Kind.FUNCTIONAL:
        names += [*pred.expression.symbols, *pred.null.symbols]
    if pred.kind is Kind.EQUIVALENCE:
        names.append(pred.variable)
    table = run_table(store, names, at=hypothesis.at, scope=hypothesis.scope)
    if pred.kind is Kind.EVENT:
        events = event_table(store, pred.first, pred.second, scope=hypothesis.scope)
        table = table.merge(events[["run_id", "first_step", "second_step", "lag"]], on="run_id", how="left")
    return table
