"""``build_report``: a statistical report of a store, rebuilt from its saved verdicts (``results("verdict")``) and
fitted predictions (``results("prediction")``) without recomputing any test.

Sections: verdicts; phenomenon curves with intervals over seeds; each theory quantity against its outcome with
the negative controls side by side (Jeffares & van der Schaar 2025); fitted predictions with bands; every test
row (statistics, p-values for and against the prediction, Holm-corrected, intervals, outcomes, reasons) and the
rule of each test (:data:`bridge.verdicts.RULES`); provenance (specs,
run hashes, versions, preregistration status, wall times).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bridge.falsification import COLUMNS
from bridge.report import _figures
from bridge.report._document import Document, Figure, Heading, Paragraph, Table
from bridge.report.predictions import KIND as PREDICTION_KIND
from bridge.tables import StoreLike, run_table
from bridge.verdicts import rules_table

#: columns of the verdict table and of the test table, in order
VERDICT_COLUMNS = ["file", "hypothesis", "verdict", "reason"]
TEST_COLUMNS = COLUMNS  # bridge.falsification's: p_for / p_against one-sided, p_holm over the hypothesis's rows
RUN_COLUMNS = ("run_id", "spec", "phenomenon", "seed", "started_at", "finished_at", "wall_s")
_OUTCOME_PREFERENCE = ("test_error", "grokking_gap", "error_barrier", "test_loss")


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
    stored, untouched."""
    rows, tests, described = [], [], []
    for payload in verdicts:
        file = payload.get("file", payload.get("key", "?"))
        rows += [{"file": file, **v} for v in payload["verdicts"]]
        tests += payload["tests"]
        described += payload.get("hypotheses", [])
    verdict_frame = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    test_frame = pd.DataFrame(tests, columns=TEST_COLUMNS)
    return verdict_frame, test_frame, described


def _spec_axes(store: StoreLike, runs: pd.DataFrame) -> list[str]:
    """The resolved parameters (other than the seed) that vary across a spec's runs, in parameter order."""
    config = getattr(store, "config", None)
    names = list(config(runs["run_id"].iloc[0]).params) if config else [c for c in runs.columns if c not in RUN_COLUMNS]
    return [n for n in names if n != "seed" and n in runs.columns and runs[n].astype(str).nunique() > 1]


def _phenomena(doc: Document, store: StoreLike, runs: pd.DataFrame, fig_dir: Path, seed: int) -> list[Path]:
    doc.add(Heading("Phenomena"))
    paths = []
    for spec, part in runs.groupby("spec", sort=True):
        part = part.dropna(axis=1, how="all")
        outcome = next((o for o in _OUTCOME_PREFERENCE if o in part.columns), None)
        if outcome is None:
            continue
        axes = _spec_axes(store, part)
        axis, style = (axes + [None, None])[:2]
        records = store.records(run_ids=part["run_id"].tolist(), quantities=[outcome])
        path = _figures.phenomenon_curves(
            part, records, axis, outcome, fig_dir / f"curve-{_slug(spec)}.png", style=style, seed=seed
        )
        seeds = sorted(part["seed"].unique().tolist())
        doc.add(Heading(str(spec), 3), Figure(path, f"{spec}: {outcome} by {axis or 'run'}, seeds {seeds}"))
        paths.append(path)
    return paths


def _quantities(
    doc: Document, store: StoreLike, described: list[dict[str, Any]], tests: pd.DataFrame, fig_dir: Path, seed: int
) -> list[Path]:
    doc.add(
        Heading("Theory quantities against outcomes, with the negative controls"),
        Paragraph(
            "Each hypothesis's quantity (left panel) next to the negative controls it must beat (prime count of the "
            "rounded weights, a random measure with the trajectory's autocorrelation, the parameter count). Lines "
            "are least-squares fits with bootstrap 95% bands; the table gives the stored Kendall tests "
            "(for controls: the difference τ(quantity) − τ(control) and its interval)."
        ),
    )
    paths = []
    for h in described:
        if h.get("kind") in ("event_order", "equivalence"):
            continue
        subjects = [h["quantity"], *h.get("controls", [])]
        scope = _scope(h)
        table = run_table(store, [*subjects, h["outcome"]], at=h.get("at", "final"), scope=scope)
        if table.empty or h["outcome"] not in table.columns or h["quantity"] not in table.columns:
            continue
        path = _figures.quantity_panels(
            table, subjects, h["outcome"], "spec", fig_dir / f"quantity-{_slug(h['name'])}.png", seed=seed
        )
        paths.append(path)
        doc.add(Heading(h["name"], 3), Paragraph(h.get("description", "")))
        doc.add(Figure(path, f"{h['name']}: {h['quantity']} and its controls against {h['outcome']}"))
        rows = tests[(tests["hypothesis"] == h["name"]) & (tests["environment"] == "all")]
        if len(rows):
            doc.add(Table(rows[["test", "subject", "role", "statistic", "low", "high", "pvalue", "outcome"]]))
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
        Paragraph("Functional hypotheses fitted on their fit_on setting; bands are pointwise 95% bootstrap bands."),
    )
    paths = []
    for pred in stored:
        h = by_name.get(pred["hypothesis"], {})
        table = run_table(store, [pred["variable"], pred["target"]], scope=_scope(h))
        if table.empty or pred["variable"] not in table.columns:
            continue
        path = _figures.fitted_prediction(table, pred, fig_dir / f"fit-{_slug(pred['hypothesis'])}.png")
        params = ", ".join(f"{k} = {v:.4g}" for k, v in pred["params"].items())
        doc.add(Figure(path, f"{pred['hypothesis']}: {pred['expression']} ({params}; {pred['resamples']} resamples)"))
        paths.append(path)
    return paths


def _provenance(doc: Document, store: StoreLike, runs: pd.DataFrame, verdicts: list[dict[str, Any]]) -> None:
    doc.add(Heading("Provenance"))
    prereg = [(p.get("file", "?"), p.get("prereg")) for p in verdicts]
    lines = [f"{file}: {_describe_prereg(status)}" for file, status in prereg]
    doc.add(Heading("Preregistration", 3), Paragraph(" ".join(lines) or "No hypothesis file was tested."))
    if runs.empty:
        return
    specs = runs.groupby("spec", sort=True).agg(
        phenomenon=("phenomenon", "first"), runs=("run_id", "size"), seeds=("seed", "nunique"),
        wall_s=("wall_s", "sum"), first_started=("started_at", "min"), last_finished=("finished_at", "max"),
    ).reset_index()  # fmt: skip
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
    figures = _phenomena(doc, store, runs, fig_dir, random_state) if len(runs) else []
    figures += _quantities(doc, store, described, test_frame, fig_dir, random_state)
    figures += _predictions(doc, store, described, fig_dir)
    doc.add(
        Heading("All tests"),
        Paragraph(
            "role: quantity (the hypothesis's own test), control (the same test on a negative control) or comparison "
            "(quantity vs control). p_for / p_against: one-sided p-values for / against the prediction; p_holm: "
            "p_against Holm-corrected over the hypothesis's own tests (it decides 'fail')."
        ),
        Table(test_frame),
    )
    _provenance(doc, store, runs, verdicts)
    html_path, md_path = out / "report.html", out / "report.md"
    html_path.write_text(doc.to_html(), encoding="utf-8")
    md_path.write_text(doc.to_markdown(out), encoding="utf-8")
    return Report(html_path, md_path, tuple(figures), verdict_frame, test_frame)
