"""``build_report``: a statistical report of a store, rebuilt from its saved verdicts (``results("verdict")``) and
fitted predictions (``results("prediction")``) without recomputing any test.

Sections: verdicts (with each hypothesis's planned power, flagging the under-powered ones); the design and power
of each hypothesis as planned before the runs (``results("plan")``, stored by a study); phenomenon curves with
intervals over seeds; one section per hypothesis: its design and power, its quantity against its outcome with the
negative controls side by side (Jeffares & van der Schaar 2025) and every test row that entered its verdict, the
deciding one marked; fitted predictions with bands; every test row (statistics, raw p-values for and against the
prediction, Holm- and BH-adjusted within the hypothesis, intervals, outcomes, reasons) and the rule of each test
(:data:`bridge.verdicts.RULES`); provenance (specs, run hashes, versions, preregistration status, wall times).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bridge._progress import progress
from bridge.falsification import COLUMNS
from bridge.report import _figures, _verdict_figures
from bridge.report._document import Document, Figure, Heading, Paragraph, Table
from bridge.report._test_tables import IN_VERDICT, LEGEND, SECTION_COLUMNS, deciding_text, in_verdict, shown
from bridge.report.predictions import KIND as PREDICTION_KIND
from bridge.report.results import at_from_payload
from bridge.tables import StoreLike, run_table, spec_summary, swept_axes
from bridge.verdicts import rules_table

#: columns of the verdict table and of the test table, in order
VERDICT_COLUMNS = ["file", "hypothesis", "verdict", "reason"]
#: bridge.falsification's columns (p_for / p_against one-sided, p_holm over the hypothesis's rows) and each row's
#: part in its verdict (:func:`bridge.report._test_tables.in_verdict`)
TEST_COLUMNS = [*COLUMNS, IN_VERDICT]
_OUTCOME_PREFERENCE = ("test_error", "grokking_gap", "error_barrier", "test_loss")
FEW_VALUES = 5  #: a subject with at most this many distinct values over the runs in scope is flagged


@dataclass(frozen=True)
class Report:
    """The written report: ``html`` (self-contained), ``markdown`` (its twin), the ``figures`` next to the
    Markdown file, and the ``verdicts`` and ``tests`` tables exactly as shown."""

    html: Path
    markdown: Path
    figures: tuple[Path, ...]
    verdicts: pd.DataFrame = field(compare=False)
    tests: pd.DataFrame = field(compare=False)

    def summary(self) -> str:
        counts = self.verdicts["verdict"].value_counts().to_dict() if len(self.verdicts) else {}
        shown = ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no verdicts"
        return f"report {self.html} (+ {self.markdown.name}, {len(self.figures)} figures): {shown}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def verdict_tables(verdicts: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """From stored verdict payloads: (verdict table, test table, hypothesis descriptions). Numbers are those
    stored, untouched; the test table adds each row's part in its verdict (``in verdict``: decided, all needed,
    entered or context)."""
    rows, tests, described = [], [], []
    for payload in verdicts:
        file = payload.get("file", payload.get("key", "?"))
        rows += [{"file": file, **v} for v in payload["verdicts"]]
        tests += payload["tests"]
        described += payload.get("hypotheses", [])
    verdict_frame = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    test_frame = pd.DataFrame(tests, columns=COLUMNS)
    test_frame[IN_VERDICT] = in_verdict(test_frame, rows)
    return verdict_frame, test_frame, described


def _plans(store: StoreLike, verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Hypothesis name -> its :class:`bridge.plan.HypothesisPlan`, from the plans stored with the reported
    hypothesis files (matched by the file's content key)."""
    from bridge.plan import StudyPlan

    keys = {v.get("key") for v in verdicts}
    stored = [StudyPlan.from_payload(p) for p in store.results("plan") if p.get("key") in keys]
    return {h.hypothesis: h for plan in stored for h in plan.hypotheses}


def _power_cell(plan: Any) -> str:
    """The verdict table's power column: ``0.72 ± 0.05 under-powered``, ``n/a`` or ``-`` (no stored plan)."""
    if plan is None:
        return "-"
    if not plan.power.available:
        return "n/a"
    return plan.power.describe().removeprefix("power ") + (" under-powered" if plan.under_powered else "")


def _design_and_power(doc: Document, plans: dict[str, Any]) -> None:
    from bridge.calibration import EFFECT_UNITS
    from bridge.plan import StudyPlan
    from bridge.power import POWER_TARGET

    frame = StudyPlan("", False, 0, (), tuple(plans.values())).to_frame()
    doc.add(
        Heading("Design and power (planned before the runs)"),
        Paragraph(
            "For each hypothesis: the configurations (units of inference) × runs per configuration in its scope, as "
            "the specs planned them (runs whose outcome or event is undefined drop out when the tests run), the "
            "effect it claims (* = none declared: a moderate default) and the power the calibration simulation "
            "(bridge/calibration.py) gives for that design: the rate of 'supported' when that effect is true, ± "
            f"its Monte-Carlo s.e. Below {POWER_TARGET:.0%} the hypothesis is under-powered: an 'inconclusive' "
            "verdict then says the design could not decide, not that the claim is wrong. '≤' / '≥' / '≈': the "
            "simulation requires less / more than the hypothesis does, or differs in an unknown direction. Units: "
            + "; ".join(f"{k.value}: {u}" for k, u in EFFECT_UNITS.items())
            + "."
        ),
        Table(frame),
    )
    for name, plan in plans.items():
        notes = "".join(f"; {n}" for n in plan.design.notes)
        doc.add(Paragraph(f"{name}: {plan.design.describe()}{notes}; {plan.line()}."))


def _caption(text: str, plotted: _figures.Plotted) -> str:
    return text + "".join(f"; {n.rstrip('.')}" for n in plotted.notes) + "."


def _phenomena(doc: Document, store: StoreLike, runs: pd.DataFrame, fig_dir: Path, seed: int) -> list[Path]:
    doc.add(
        Heading("Phenomena"),
        Paragraph(
            "Means over seeds with 95% bootstrap intervals; training values dashed, test values solid, the random "
            "re-initialisation and random-pruning controls of lottery tickets dotted and dash-dotted; one colour and "
            "marker per value of the first sweep axis (numbers in numeric order, dark small to light large), one "
            "facet per value of the second."
        ),
    )
    paths = []
    for spec, part in progress(runs.groupby("spec", sort=True), desc="report: phenomenon curves", unit="figure",
                               total=runs["spec"].nunique()):  # fmt: skip
        part = part.dropna(axis=1, how="all")
        outcome = next((o for o in _OUTCOME_PREFERENCE if o in part.columns), None)
        if outcome is None:
            continue
        axes = swept_axes(store, part)
        wanted = [
            outcome,
            "train_" + outcome.removeprefix("test_"),
            *(f"{c}_{outcome}" for c in _figures.CONTROL_STYLES),
        ]
        # one read for both figures: each draws only its own quantities
        records = store.records(run_ids=part["run_id"].tolist(), quantities=[*wanted, "p_train", "p_test"])
        plotted = _figures.phenomenon_curves(part, records, axes, outcome, fig_dir / f"curve-{_slug(spec)}.png",
                                             seed=seed)  # fmt: skip
        seeds = ", ".join(map(str, sorted(part["seed"].unique().tolist())))
        by = f" by {' and '.join(axes[:2])}" if axes else ""
        doc.add(Heading(str(spec), 3), Figure(plotted.path, _caption(f"{spec}: {outcome}{by}, seeds {seeds}", plotted)))
        paths.append(plotted.path)
        telescoped = records[records["quantity"].isin(["p_train", "p_test"])]
        if telescoped["step"].nunique() > 1:  # the telescope quantity along training (Jeffares et al. 2024)
            plotted = _figures.phenomenon_curves(part, telescoped, axes, "p_test",
                                                 fig_dir / f"effective-parameters-{_slug(spec)}.png", seed=seed,
                                                 finals=False)  # fmt: skip
            text = f"{spec}: the telescoping model's effective parameters along training (p_train dashed, p_test solid)"
            doc.add(Figure(plotted.path, _caption(f"{text}{by}, seeds {seeds}", plotted)))
            paths.append(plotted.path)
    return paths


def _setters(table: pd.DataFrame, subject: str, axes: Sequence[str]) -> list[str]:
    """The fewest sweep axes (or an axis and the seed) within each of whose values ``subject`` is constant, when
    they group the runs (not one run per group); [] if none."""
    candidates = [a for a in [*axes, "seed"] if a in table.columns and a != subject]
    for size in (1, 2):
        for combo in itertools.combinations(candidates, size):
            grouped = table.groupby(list(combo))[subject]
            if grouped.ngroups < len(table) and grouped.nunique().max() == 1:
                return list(combo)
    return []


def _distinct(values: Sequence[float]) -> list[str]:
    """Labels of sorted distinct values with as many significant digits as it takes to tell them apart."""
    for digits in range(4, 12):
        shown = [f"{v:.{digits}g}" for v in values]
        if len(set(shown)) == len(shown):
            return shown
    return [repr(v) for v in values]


def few_values(table: pd.DataFrame, subjects: Sequence[str], axes: Sequence[str]) -> list[str]:
    """Sentences flagging each subject other than a sweep axis that takes at most :data:`FEW_VALUES` distinct
    values over the runs in scope or is set by the configuration (constant within each value of an axis, or of an
    axis and the seed, e.g. a quantity at initialisation set by the init scale): its rank tests then compare a
    few tied groups, not runs."""
    out = []
    for s in (s for s in subjects if s not in axes and s in table.columns):
        values = table[s].dropna()
        k, n = values.nunique(), len(values)
        setters = _setters(table.dropna(subset=[s]), s, axes) if 1 < k < n else []
        if k <= 1 or k >= n or (k > FEW_VALUES and not setters):
            continue
        shown = ", ".join(_distinct(sorted(values.unique())[:FEW_VALUES])) + (", …" if k > FEW_VALUES else "")
        others = [a for a in axes if a not in setters]
        why = f"; it is set by {' and '.join(setters)}" if setters else ""
        why += f" (the same for every {' and '.join(others)})" if setters and others else ""
        out.append(f"{s} takes only {k} distinct values over the {n} runs in scope ({shown}){why}, so its rank "
                   f"tests compare {k} tied groups rather than {n} runs.")  # fmt: skip
    return out


def _hypotheses(
    doc: Document,
    store: StoreLike,
    described: list[dict[str, Any]],
    tests: pd.DataFrame,
    verdicts: dict[str, dict[str, Any]],
    fig_dir: Path,
    seed: int,
    plans: dict[str, Any],
) -> list[Path]:
    doc.add(
        Heading("Hypotheses: figures and every test behind each verdict"),
        Paragraph(
            "One section per hypothesis: its verdict and the row that decided it; its quantity (left panel) next to "
            "the negative controls it declared (a quantity is never its own control; a control constant over the "
            "runs in scope gets no panel, as the verdict engine leaves it out), with least-squares lines and "
            "bootstrap 95% bands; a conditional test (partial rank correlation given confounders) has its own "
            "figure of the residualised relation it measures; and the table of every test row of the hypothesis in "
            "every environment (quantity rows, the same tests on each control, the comparisons with each control, "
            "a law's fit and out-of-setting rows), each row as stored. " + LEGEND
        ),
    )
    paths = []
    for h in progress(described, desc="report: hypothesis sections", unit="hypothesis"):
        rows = tests[tests["hypothesis"] == h["name"]]
        doc.add(Heading(h["name"], 3))
        if h.get("description"):
            doc.add(Paragraph(h["description"]))
        if h["name"] in plans:
            plan = plans[h["name"]]
            doc.add(Paragraph(f"Design: {plan.design.describe()}; {plan.line()}."))
        if h["name"] in verdicts:
            doc.add(Paragraph(deciding_text(verdicts[h["name"]])))
        paths += _hypothesis_figures(doc, store, h, rows, fig_dir, seed)
        if len(rows):
            doc.add(Table(shown(rows, SECTION_COLUMNS), css=IN_VERDICT))
        else:
            doc.add(Paragraph("No test row: the verdict's reason says what was missing."))
    return paths


def _hypothesis_figures(
    doc: Document, store: StoreLike, h: dict[str, Any], rows: pd.DataFrame, fig_dir: Path, seed: int
) -> list[Path]:
    """The figures of one hypothesis's section (none for event-order and equivalence claims)."""
    if h.get("kind") in ("event_order", "equivalence"):
        return []
    controls = [c for c in h.get("controls", []) if c != h["quantity"]]
    subjects = [h["quantity"], *controls]
    confounders = list(h.get("confounders", []))
    at = at_from_payload(h.get("at", "final"))
    table = run_table(store, [*subjects, *confounders, h["outcome"]], at=at, scope=_scope(h))
    if table.empty or h["outcome"] not in table.columns or h["quantity"] not in table.columns:
        doc.add(Paragraph(f"No figure: the runs in scope do not record {h['quantity']} and {h['outcome']}."))
        return []
    paths = []
    axes = [a for a in h.get("axes", []) if a in table.columns]
    flags = few_values(table, subjects, axes)
    if flags:
        doc.add(Paragraph(" ".join(flags)))
    conditional = rows[(rows["test"] == "partial_rank") & (rows["role"] == "quantity")]
    if len(conditional) and confounders and all(c in table.columns for c in confounders):
        plotted = _verdict_figures.conditional_panels(
            table,
            h["quantity"],
            h["outcome"],
            confounders,
            fig_dir / f"conditional-{_slug(h['name'])}.png",
            statistic=float(conditional["statistic"].iloc[0]),
        )
        text = (f"{h['name']}: the partial rank test of {h['quantity']} and {h['outcome']} given "
                f"{', '.join(confounders)} (left: residualised ranks; right: within strata)")  # fmt: skip
        doc.add(Figure(plotted.path, _caption(text, plotted)))
        paths.append(plotted.path)
    several = table["spec"].nunique() > 1
    colour = "spec" if several else (axes[0] if axes else None)
    plotted = _figures.quantity_panels(
        table, subjects, h["outcome"], colour, fig_dir / f"quantity-{_slug(h['name'])}.png", seed=seed
    )
    paths.append(plotted.path)
    what = f"{h['quantity']} and its controls" if len(plotted.data["panels"]) > 1 else h["quantity"]
    doc.add(Figure(plotted.path, _caption(f"{h['name']}: {what} against {h['outcome']}", plotted)))
    return paths


def _scope(h: dict[str, Any]):
    from bridge.hypothesis import Scope

    return Scope(specs=tuple(h.get("specs", ())), phenomena=tuple(h.get("phenomena", ())))


def _predictions(doc: Document, store: StoreLike, described: list[dict[str, Any]], fig_dir: Path) -> list[Path]:
    by_name = {h["name"]: h for h in described}
    stored = [p for p in store.results(PREDICTION_KIND) if p["hypothesis"] in by_name]
    if not stored:
        return []
    doc.add(
        Heading("Fitted predictions"),
        Paragraph(
            "Functional hypotheses fitted on their fit_on environment (every run in scope if none): the fit (solid) "
            "on the runs it was fitted to and, on each other environment, the prediction (dashed) of the same "
            "fitted law; bands are pointwise 95% bootstrap bands over resampled configurations of the fitted runs. "
            "The y axis spans the observed outcomes; a curve leaving it is reported in the caption."
        ),
    )
    paths = []
    for pred in progress(stored, desc="report: prediction figures", unit="figure"):
        h = by_name.get(pred["hypothesis"], {})
        at = at_from_payload(h.get("at", "final"))
        table = run_table(store, [pred["variable"], pred["target"]], at=at, scope=_scope(h))
        curves = pred.get("curves", [pred] if "grid" in pred else [])
        if table.empty or pred["variable"] not in table.columns or not curves:
            doc.add(Paragraph(f"{pred['hypothesis']}: no curve is drawn: {pred.get('note') or 'no runs in scope.'}"))
            continue
        plotted = _verdict_figures.fitted_prediction(table, pred, fig_dir / f"fit-{_slug(pred['hypothesis'])}.png")
        params = ", ".join(f"{k} = {v:.4g}" for k, v in pred["params"].items())
        fit_on = f"fitted on {pred['fit_on']}" if pred.get("fit_on") else "fitted on every run in scope"
        text = f"{pred['hypothesis']}: {pred['expression']} {fit_on} ({params}; {pred['resamples']} resamples)"
        doc.add(Figure(plotted.path, _caption(text, plotted)))
        paths.append(plotted.path)
    return paths


def _provenance(doc: Document, store: StoreLike, runs: pd.DataFrame, verdicts: list[dict[str, Any]]) -> None:
    doc.add(Heading("Provenance"))
    prereg = [(p.get("file", "?"), p.get("prereg")) for p in verdicts]
    lines = [f"{file}: {_describe_prereg(status)}" for file, status in prereg]
    doc.add(Heading("Preregistration", 3), Paragraph(" ".join(lines) or "No hypothesis file was tested."))
    if runs.empty:
        return
    summary = spec_summary(store, runs)
    times = runs.groupby("spec", sort=True).agg(
        first_started=("started_at", "min"), last_finished=("finished_at", "max")
    )
    specs = (
        summary.assign(
            seeds=summary["seeds"].map(lambda s: ", ".join(map(str, s))),
            axes=summary["axes"].map(
                lambda a: "; ".join(f"{k}: {', '.join(map(_figures.label, v))}" for k, v in a.items())
            ),
        )
        .drop(columns="outcomes")
        .merge(times.reset_index(), on="spec")
    )
    doc.add(Heading("Specs and wall times", 3), Table(specs))
    provenance = getattr(store, "provenance", None)
    if provenance is not None:
        info = provenance(runs["run_id"].iloc[0])
        versions = {k: v for k, v in info.items() if isinstance(v, str | int | float) and k not in ("seed",)}
        doc.add(Heading("Versions and host (first run)", 3))
        doc.add(Table(pd.DataFrame({"key": list(versions), "value": [str(v) for v in versions.values()]})))
    doc.add(Heading("Runs (content hashes of the resolved specs)", 3))
    doc.add(Table(runs[["spec", "run_id", "seed", "wall_s", "started_at"]].reset_index(drop=True)))


def _describe_prereg(status: dict[str, Any] | None) -> str:
    if not status:
        return "no preregistration record."
    from bridge.prereg import PreregStatus

    return PreregStatus(**status).describe()


def _latest_per_file(verdicts: list[dict]) -> list[dict]:
    """One payload per hypothesis file: the version registered last (``prereg.registered_at``)."""
    latest: dict[str, dict] = {}
    for v in verdicts:
        name = v.get("file")
        when = (v.get("prereg") or {}).get("registered_at") or ""
        if name not in latest or when >= ((latest[name].get("prereg") or {}).get("registered_at") or ""):
            latest[name] = v
    return list(latest.values())


def build_report(
    store: StoreLike,
    output: str | Path,
    *,
    title: str = "unitheory report",
    specs: Sequence[str] | None = None,
    files: Sequence[str] | None = None,
    random_state: int = 0,
) -> Report:
    """Write ``output/report.html`` (self-contained) and ``output/report.md`` with ``output/figures/*.png``.

    Reads the store's runs and records, its saved verdicts and fitted predictions; recomputes no test.
    ``specs`` keeps only those specs' runs and ``files`` only those hypothesis files' verdicts (None: all).
    ``random_state`` seeds seaborn's bootstrap intervals in the figures. When a hypothesis file was revised, only
    the verdicts of its latest registered version are reported (each version's registration time and whether it
    preceded the runs are in the provenance).
    """
    out = Path(output)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):
        old.unlink()
    runs = store.runs()
    if specs is not None:
        runs = runs[runs["spec"].isin(list(specs))].reset_index(drop=True)
    verdicts = _latest_per_file([v for v in store.results("verdict") if files is None or v.get("file") in files])
    verdict_frame, test_frame, described = verdict_tables(verdicts)
    plans = _plans(store, verdicts)
    if plans:
        verdict_frame["power"] = [_power_cell(plans.get(h)) for h in verdict_frame["hypothesis"]]
    doc = Document(title)
    counts = verdict_frame["verdict"].value_counts().to_dict()
    doc.add(
        Paragraph(
            f"{len(runs)} runs of {runs['spec'].nunique() if len(runs) else 0} specs; {len(verdict_frame)} "
            f"hypotheses: " + (", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "none tested") + "."
        ),
        Heading("Verdicts"),
        Paragraph(
            "supported: every test passed (significant evidence for the prediction, with a defined interval) and "
            "the quantity beat every negative control that could be tested; falsified: some test failed "
            "(significant evidence against it, Holm-corrected over the hypothesis's tests); inconclusive: "
            "otherwise (the reason names what stood in the way). The rule of each test:"
        ),
        Table(rules_table()),
        Table(verdict_frame, css="verdict"),
    )
    if plans:
        _design_and_power(doc, plans)
    figures = _phenomena(doc, store, runs, fig_dir, random_state) if len(runs) else []
    stored = {v["hypothesis"]: v for payload in verdicts for v in payload["verdicts"]}
    figures += _hypotheses(doc, store, described, test_frame, stored, fig_dir, random_state, plans)
    figures += _predictions(doc, store, described, fig_dir)
    doc.add(
        Heading("All tests"),
        Paragraph(
            "Every test row of every hypothesis, as stored. role: quantity (the hypothesis's own test), control (the "
            "same test on a negative control) or comparison (quantity vs control). Each hypothesis file is "
            "falsified as one run, in which a test on the same runs with the same options is computed once and its "
            "result reused by every hypothesis that declares it (one interval for one test). " + LEGEND
        ),
        Table(shown(test_frame, ["hypothesis", IN_VERDICT, *COLUMNS[1:]]), css=IN_VERDICT),
    )
    _provenance(doc, store, runs, verdicts)
    html_path, md_path = out / "report.html", out / "report.md"
    html_path.write_text(doc.to_html(), encoding="utf-8")
    md_path.write_text(doc.to_markdown(out), encoding="utf-8")
    return Report(html_path, md_path, tuple(figures), verdict_frame, test_frame)
