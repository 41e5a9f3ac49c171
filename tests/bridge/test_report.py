"""Reports: every hypothesis has a verdict row, every figure is a valid PNG, table numbers equal the store's,
the HTML is self-contained and renders in headless Chromium to a non-blank page, and rebuilding reads only the
store (no test is recomputed)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from PIL import Image

from bridge.cli import main
from bridge.falsification import falsify
from bridge.hypothesis import load_hypotheses, parse_hypotheses
from bridge.prereg import preregister
from bridge.report import (
    _figures,
    _verdict_figures,
    build_report,
    fmt,
    prediction_band,
    save_predictions,
    save_verdicts,
    verdict_tables,
)
from bridge.report._test_tables import P_HEADERS
from bridge.tables import run_table
from bridge.verdicts import rules_table
from empirics.spec import RunConfig
from empirics.store import RunResult, Store

HYPOTHESES = """
alpha = 0.05
controls = ["prime_count", "random_measure", "param_count"]

[[hypothesis]]
name = "q-ranks-error"
description = "planted: q drives the test error"
quantity = "q"
outcome = "test_error"
controls = ["prime_count", "random_measure", "param_count", "layers"]
confounders = ["weight_norm"]
tests = ["kendall", "robust_sign_error", "partial_rank"]
n_test = 1000
[hypothesis.scope]
axes = ["width"]
[hypothesis.prediction]
kind = "rank"
direction = "increasing"

[[hypothesis]]
name = "prime-ranks-error"
quantity = "prime_count"
outcome = "test_error"
tests = ["kendall"]
controls = ["random_measure"]
[hypothesis.scope]
axes = ["width"]
[hypothesis.prediction]
kind = "rank"
direction = "decreasing"

[[hypothesis]]
name = "error-linear-in-q"
quantity = "q"
outcome = "test_error"
controls = []
tests = ["fit", "out_of_setting"]
[hypothesis.scope]
axes = ["width"]
environment = "spec"
[hypothesis.prediction]
kind = "functional"
expression = "test_error = a + b*q"
fit_on = "toy-a"
"""


def _write_runs(store: Store, rng: np.random.Generator) -> None:
    """Two toy specs x 5 widths x 3 seeds; test_error = 0.1 q + noise, records at steps 0, 10, 100; the training
    error reaches 0 from width 8 on (the interpolation threshold); ``layers`` is constant over every run."""
    for spec in ("toy-a", "toy-b"):
        for width in (32, 2, 16, 4, 8):  # written out of numeric order: figures must sort the sweep values
            for seed in range(3):
                q = np.log(width) + rng.normal(0, 0.3)
                train = max(0.0, 0.3 - 0.1 * np.log2(width)) + (0.01 * seed if width < 8 else 0.0)
                final = {"test_error": 0.1 * q + rng.normal(0, 0.02), "q": q, "train_error": train}
                params = {"variant": spec, "width": width, "steps": 100, "seed": seed}
                config = RunConfig(spec, "toy", params, ("toy",), (0, 10, 100))
                rows = []
                for step in (0, 10, 100):
                    frac = step / 100
                    rows += [
                        (step, "test_error", 0.9 - frac * (0.9 - final["test_error"])),
                        (step, "train_error", 0.9 - frac * (0.9 - train)),
                        (step, "layers", 2.0),
                        (step, "q", frac * q),
                        (step, "prime_count", float(rng.integers(0, 50))),
                        (step, "random_measure", float(rng.normal())),
                        (step, "param_count", float(width * 10)),
                        (step, "weight_norm", frac * q + rng.normal(0, 0.5)),
                    ]
                provenance = {"unitheory": "test", "torch": "x", "python": "3.11", "host": "h"}
                stamp = f"2026-01-01T00:00:{len(store.run_ids()):02d}+00:00"
                store.write_run(RunResult(config, final, rows, provenance, stamp, stamp, 0.5))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report")
    file = root / "toy.toml"
    file.write_text(HYPOTHESES)
    with Store(root / "store") as store:
        preregister(file, store)
        _write_runs(store, np.random.default_rng(0))
        hypotheses = load_hypotheses(file)
        result = falsify(file, store, n_resamples=99, random_state=0)
        payload = save_verdicts(store, file, result, hypotheses)
        save_predictions(store, hypotheses, n_resamples=50, random_state=0)
        report = build_report(store, root / "out", title="toy report")
    return root, report, payload, hypotheses


def _markdown_tables(text: str) -> list[pd.DataFrame]:
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip("|").split(" | ")])
        elif block:
            tables.append(pd.DataFrame(block[2:], columns=block[0]))
            block = []
    return tables


def test_every_hypothesis_has_a_verdict_row(built) -> None:
    _, report, payload, hypotheses = built
    md = report.markdown.read_text()
    verdicts = next(t for t in _markdown_tables(md) if list(t.columns) == ["file", "hypothesis", "verdict", "reason"])
    assert sorted(verdicts["hypothesis"]) == sorted(h.name for h in hypotheses)
    assert set(verdicts["verdict"]) <= {"supported", "falsified", "inconclusive"}
    stored = {v["hypothesis"]: v for v in payload["verdicts"]}
    for row in verdicts.itertuples():
        assert row.verdict == stored[row.hypothesis]["verdict"]
        assert row.reason == stored[row.hypothesis]["reason"].replace("|", "\\|")
    html = report.html.read_text()
    for h in hypotheses:
        assert h.name in html
    # the report states the rule of every test (bridge.verdicts.RULES)
    rules = next(t for t in _markdown_tables(md) if list(t.columns) == list(rules_table().columns))
    assert list(rules["test"]) == list(rules_table()["test"])
    # the planted quantity is not falsified; the prime count (pure noise here) is not supported
    assert stored["q-ranks-error"]["verdict"] != "falsified"
    assert stored["prime-ranks-error"]["verdict"] != "supported"


def test_table_numbers_equal_the_store(built) -> None:
    root, report, _, _ = built
    with Store(root / "store", create=False) as store:
        _, tests, _ = verdict_tables(store.results("verdict"))
    shown = next(t for t in _markdown_tables(report.markdown.read_text()) if "hypothesis" in t and "p for (raw)" in t)
    assert len(shown) == len(tests) > 0
    for column in ("statistic", "pvalue", "p_for", "p_against", "p_holm", "p_fdr_bh", "low", "high", "n"):
        for cell, value in zip(shown[P_HEADERS.get(column, column)], tests[column], strict=True):
            assert cell == fmt(value)
            if cell != "-":
                assert float(cell) == pytest.approx(float(value), rel=1e-3, abs=1e-12)
    assert report.tests.equals(tests)


def _sections(md: str) -> dict[str, str]:
    """The Markdown of each hypothesis's section, by name."""
    part = md.split("## Hypotheses: figures and every test behind each verdict", 1)[1].split("\n## ", 1)[0]
    chunks = re.split(r"^### (.+)$", part, flags=re.M)
    return dict(zip(chunks[1::2], chunks[2::2], strict=True))


def _keys(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(map(str, r)) for r in frame[["test", "subject", "role", "environment"]].to_numpy()]


def test_each_section_shows_every_row_of_its_verdict_and_marks_the_deciding_one(built) -> None:
    """Issue 12 item 2: every row of a hypothesis (each environment, controls, comparisons, a law's rows) is in
    its section, the deciding row is marked, and the section's p-values are the store's, raw, Holm and BH side
    by side (item 1)."""
    _, report, payload, hypotheses = built
    sections = _sections(report.markdown.read_text())
    assert list(sections) == [h.name for h in hypotheses]
    stored = pd.DataFrame(payload["tests"])
    for verdict in payload["verdicts"]:
        name, decided_by = verdict["hypothesis"], verdict["decided_by"]
        (table,) = _markdown_tables(sections[name])
        rows = stored[stored["hypothesis"] == name]
        assert _keys(table) == _keys(rows) and len(rows) > 0
        assert {"environment", "reason"} <= set(table.columns)
        for column in ("p_for", "p_against", "p_holm", "p_fdr_bh", "statistic", "low", "high"):
            assert list(table[P_HEADERS.get(column, column)]) == [fmt(v) for v in rows[column]]
        decided = table[table["in verdict"] == "decided"]
        if decided_by is not None:
            assert _keys(decided) == [tuple(decided_by[k] for k in ("test", "subject", "role", "environment"))]
            assert f"Verdict: {verdict['verdict']}, decided by the {decided_by['test']} row" in sections[name]
        else:
            assert verdict["verdict"] == "supported" and decided.empty
            assert set(table.loc[table["outcome"] != "", "in verdict"]) == {"all needed"}
        assert set(table.loc[table["outcome"] == "", "in verdict"]) <= {"context"}
    # the three verdicts of the fixture: decided by the sign-error row, by the Kendall row, supported by all rows
    by = {v["hypothesis"]: v["decided_by"] for v in payload["verdicts"]}
    assert by["q-ranks-error"]["test"] == "robust_sign_error" and by["prime-ranks-error"]["test"] == "kendall"
    assert by["error-linear-in-q"] is None


def test_every_p_value_says_which_it_is(built) -> None:
    """Issue 12 item 1: no bare "p = " in a verdict or row reason, and every table names its p-values."""
    _, report, payload, _ = built
    reasons = [v["reason"] for v in payload["verdicts"]] + [t["reason"] for t in payload["tests"] if t["reason"]]
    named = re.compile(r"(raw p for|raw p against|Holm-adjusted p against) = ")
    assert any(named.search(r) for r in reasons)
    for reason in reasons:
        assert not re.search(r"\bp\s*=", named.sub("", reason)), reason
    md = report.markdown.read_text()
    every = next(t for t in _markdown_tables(md) if "hypothesis" in t and "p for (raw)" in t)
    assert set(P_HEADERS.values()) <= set(every.columns) and "in verdict" in every.columns
    for section in _sections(md).values():
        (table,) = _markdown_tables(section)
        assert [c for c in table.columns if c.startswith("p ")] == [
            "p for (raw)", "p against (raw)", "p against (Holm)", "p against (BH)",
        ]  # fmt: skip
    assert "p against (Holm): the raw p against Holm-adjusted within the hypothesis" in md


def test_figures_are_valid_images(built) -> None:
    root, report, _, _ = built
    md = report.markdown.read_text()
    linked = re.findall(r"^!\[.*\]\((figures/[^)]+)\)$", md, flags=re.M)
    assert len(linked) == len(report.figures) >= 5  # 2 curves, 2 quantity panels, 1 fitted prediction
    for rel in linked:
        path = root / "out" / rel
        assert path.is_file()
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 100 and img.height > 100
            assert np.asarray(img.convert("L"), dtype=float).std() > 5  # not a blank canvas
    assert any("fit-" in p.name for p in report.figures)


def test_html_is_self_contained(built) -> None:
    _, report, _, _ = built
    html = report.html.read_text()
    sources = re.findall(r'src="([^"]+)"', html)
    assert len(sources) == len(report.figures)
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as img:
            assert img.format == "PNG"
    assert "http://" not in html and "https://" not in html
    assert "preregistered" in html and "Provenance" in html


def test_rebuild_reads_only_the_store(built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, report, _, _ = built
    import bridge.falsification
    import bridge.report.predictions
    import bridge.stats

    def fail(*args, **kwargs):
        raise AssertionError("a report must not recompute tests or fits")

    for module, name in [
        (bridge.falsification, "falsify"), (bridge.falsification, "falsify_tables"), (bridge.stats, "kendall_tau"),
        (bridge.stats, "fit_expression"), (bridge.report.predictions, "_point_fit"),
    ]:  # fmt: skip
        monkeypatch.setattr(module, name, fail)
    assert main(["report", "--store", str(root / "store"), "-o", str(tmp_path / "again"), "--title", "toy"]) == 0
    again = (tmp_path / "again" / "report.md").read_text()
    first = report.markdown.read_text()
    assert _markdown_tables(again)[0].equals(_markdown_tables(first)[0])
    assert next(t for t in _markdown_tables(again) if "p against (raw)" in t.columns).equals(
        next(t for t in _markdown_tables(first) if "p against (raw)" in t.columns)
    )


def test_filters_keep_one_spec_and_one_file(built, tmp_path: Path) -> None:
    root, _, _, _ = built
    with Store(root / "store", create=False) as store:
        only = build_report(store, tmp_path / "a", specs=["toy-a"], files=["other.toml"])
    assert len(only.verdicts) == 0
    assert sum("curve-" in p.name for p in only.figures) == 1


CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is missing: .ci/run installs it (apt-get install -y chromium)"
    return browser


def test_html_renders_in_headless_chromium(built, tmp_path: Path) -> None:
    _, report, _, _ = built
    shot = tmp_path / "shot.png"
    cmd = [
        _chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
        "--window-size=1200,2000", report.html.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("L"), dtype=float)
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 10  # text, tables and figures, not a blank page
    assert (pixels < 128).mean() > 0.005  # dark pixels: the text is drawn


#: the page reports its layout width (scrollWidth) and viewport width (clientWidth) to the frame around it
_MEASURE = (
    "<script>window.addEventListener('load', () => { const d = document.documentElement;"
    " parent.postMessage(d.scrollWidth + ' ' + d.clientWidth, '*'); });</script>"
)
#: a frame of the given width (headless chromium's windows are at least 500 px wide: a phone needs a frame)
_FRAME = (
    "<!DOCTYPE html><html><body style='margin:0'><pre id='layout'></pre><script>window.addEventListener('message',"
    " e => { document.getElementById('layout').textContent = e.data; });</script>"
    "<iframe src='page.html' style='border:0; width:{width}px; height:900px'></iframe></body></html>"
)


def _layout(html: str, width: int, folder: Path) -> tuple[int, int]:
    """(document scrollWidth, viewport clientWidth) of ``html`` laid out in a ``width``-pixel viewport."""
    folder.mkdir()
    (folder / "page.html").write_text(html.replace("</body>", _MEASURE + "</body>"))
    (folder / "frame.html").write_text(_FRAME.replace("{width}", str(width)))
    cmd = [
        _chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={folder / 'profile'}", f"--window-size={width + 50},1000",
        "--virtual-time-budget=5000", "--dump-dom", (folder / "frame.html").as_uri(),
    ]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
    found = re.search(r'<pre id="layout">(\d+) (\d+)</pre>', dom)
    assert found, f"chromium did not report the layout: {dom[-300:]!r}"
    return int(found[1]), int(found[2])


@pytest.mark.parametrize("width", [1400, 390])
def test_report_does_not_overflow_the_window(built, tmp_path: Path, width: int) -> None:
    _, report, _, _ = built
    html = report.html.read_text()
    assert html.count('<div class="table-wrap"><table>') == html.count("<table>")  # wide tables scroll in place
    scroll, client = _layout(html, width, tmp_path / "report")
    assert client <= width and scroll <= client, f"the page is {scroll} px wide in a {client} px viewport"
    wide = "<!DOCTYPE html><html><body><div style='width: 2000px'>x</div></body></html>"  # the check can fail
    scroll, client = _layout(wide, width, tmp_path / "control")
    assert scroll > client


def test_a_revised_hypothesis_file_reports_only_its_latest_registered_version():
    from bridge.report._build import _latest_per_file

    old = {"file": "h.toml", "key": "h.toml:aaaa", "prereg": {"registered_at": "2026-01-01T00:00:00+00:00"}}
    new = {"file": "h.toml", "key": "h.toml:bbbb", "prereg": {"registered_at": "2026-02-01T00:00:00+00:00"}}
    other = {"file": "g.toml", "key": "g.toml:cccc", "prereg": None}
    assert _latest_per_file([new, other, old]) == [new, other]
    assert _latest_per_file([old, new]) == [new]


# --- figures show the tests behind the verdicts, checked against the store's numbers ---------------------------


@pytest.fixture
def figures_kept(monkeypatch: pytest.MonkeyPatch):
    """The matplotlib figures the report functions build, kept open (not closed after saving) for inspection."""
    kept: list = []
    close = plt.close
    monkeypatch.setattr(_figures.plt, "close", kept.append)
    yield kept
    for fig in kept:
        close(fig)


def _store_runs(root: Path, spec: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    with Store(root / "store", create=False) as store:
        runs = store.runs()
        runs = runs[runs["spec"] == spec].dropna(axis=1, how="all") if spec else runs
        records = store.records(run_ids=runs["run_id"].tolist(), quantities=["test_error", "train_error"])
    return runs.reset_index(drop=True), records


def test_phenomenon_curve_sorts_the_sweep_and_marks_the_interpolation_threshold(built, figures_kept, tmp_path) -> None:
    root, *_ = built
    runs, records = _store_runs(root, "toy-a")
    plotted = _figures.phenomenon_curves(runs, records, ["width"], "test_error", tmp_path / "curve.png")
    means = runs.groupby("width")["train_error"].mean().sort_index()  # the stored final training errors
    first = float(means[means <= 0.01].index[0])
    assert first == 8 and means.iloc[0] > 0.01
    assert plotted.data["thresholds"]["threshold"].tolist() == [first]
    assert any("interpolation threshold: width = 8" in n for n in plotted.notes)
    (fig,) = figures_kept
    along, final = fig.axes[:2]
    labels = [t.get_text() for t in along.get_legend().get_texts()]
    assert labels[:5] == ["width = 2", "width = 4", "width = 8", "width = 16", "width = 32"]  # numeric order
    assert set(plotted.data["along"]["quantity"]) == {"train_error", "test_error"}
    dashed = [line for line in along.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 5  # one training-error curve per width, drawn dashed
    colours = [tuple(h.get_color()) for h in along.get_legend().legend_handles[:5]]
    assert colours == list(_figures.palette(runs["width"]).values())  # sequential palette in numeric order
    thresholds = [line.get_xdata()[0] for line in final.get_lines() if line.get_linestyle() == "-."]
    assert thresholds == [first]
    curves = [line.get_xdata() for line in final.get_lines() if len(line.get_xdata()) > 2]
    assert len(curves) == 2 and all(np.all(np.diff(x) > 0) for x in curves)  # train and test, x increasing
    assert sorted(curves[0]) == sorted(runs["width"].unique())


def test_grokking_curves_mark_the_generalisation_step(figures_kept, tmp_path) -> None:
    rows, records = [], []
    for alpha in (2.0, 1.0):
        for wd in (5.0, 1.0):
            for seed in (0, 1):
                run = f"r{alpha}-{wd}-{seed}"
                fit, grok = 10 * alpha, 30 * alpha + wd + seed
                rows.append({"run_id": run, "seed": seed, "init_scale": alpha, "weight_decay": wd,
                             "test_error": 0.0, "step_train_fit": fit, "step_test_fit": grok})  # fmt: skip
                for step in (0, 5, 10, 20, 40, 80):
                    records += [
                        (run, step, "train_error", float(step < fit)),
                        (run, step, "test_error", float(step < grok)),
                    ]
    runs = pd.DataFrame(rows)
    records = pd.DataFrame(records, columns=["run_id", "step", "quantity", "value"])
    plotted = _figures.phenomenon_curves(
        runs, records, ["init_scale", "weight_decay"], "test_error", tmp_path / "g.png"
    )
    marked = plotted.data["generalisation"].set_index(["facet", "hue"])["step"]
    expected = runs.groupby(["weight_decay", "init_scale"])["step_test_fit"].mean()
    assert marked.sort_index().tolist() == pytest.approx(expected.sort_index().tolist())
    (fig,) = figures_kept
    for ax, wd in zip(fig.axes[:2], (1.0, 5.0), strict=True):  # one facet per weight decay, in numeric order
        assert ax.get_title().endswith(f"weight_decay = {_figures.label(wd)}")
        dotted = sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":")
        assert dotted == pytest.approx(sorted(expected.loc[wd].tolist()))
    assert set(plotted.data["final"]["quantity"]) == {"step_train_fit", "step_test_fit"}  # the delay, not 0 errors


def test_lottery_curves_draw_both_controls_with_the_ticket(figures_kept, tmp_path) -> None:
    """Frankle & Carbin's controls, recorded per round as reinit_test_error and random_test_error, are drawn with
    the ticket's test error along the rounds (dotted, dash-dotted) and in the final panel."""
    rows, records = [], []
    for k in (0, 50):
        for seed in (0, 1):
            run = f"k{k}-{seed}"
            rows.append({"run_id": run, "seed": seed, "rewind_step": k, "test_error": 0.4,
                         "reinit_test_error": 0.5, "random_test_error": 0.55})  # fmt: skip
            for r in range(4):
                for name, slope in (("train_error", 0.0), ("test_error", 0.01), ("reinit_test_error", 0.03),
                                    ("random_test_error", 0.04)):  # fmt: skip
                    records.append((run, r, name, 0.4 + slope * r))
    runs = pd.DataFrame(rows)
    records = pd.DataFrame(records, columns=["run_id", "step", "quantity", "value"])
    plotted = _figures.phenomenon_curves(runs, records, ["rewind_step"], "test_error", tmp_path / "l.png")
    assert set(plotted.data["along"]["quantity"]) == {"train_error", "test_error", "reinit_test_error",
                                                      "random_test_error"}  # fmt: skip
    assert set(plotted.data["final"]["quantity"]) == {"test_error", "reinit_test_error", "random_test_error"}
    (fig,) = figures_kept
    styles = [line.get_linestyle() for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 4]
    assert styles.count(":") == 2 and styles.count("-.") == 2  # one control curve of each kind per rewind step
    assert fig.axes[0].get_ylabel() == "test_error"


def _stored_test(payload: dict, hypothesis: str, test: str, environment: str = "all") -> dict:
    return next(t for t in payload["tests"] if t["hypothesis"] == hypothesis and t["test"] == test
                and t["role"] == "quantity" and t["environment"] == environment)  # fmt: skip


def test_conditional_figure_draws_the_tested_partial_rank_correlation(built, figures_kept, tmp_path) -> None:
    root, report, payload, _ = built
    stored = _stored_test(payload, "q-ranks-error", "partial_rank")["statistic"]
    with Store(root / "store", create=False) as store:
        table = run_table(store, ["q", "test_error", "weight_norm"])
    plotted = _verdict_figures.conditional_panels(table, "q", "test_error", ["weight_norm"], tmp_path / "c.png")
    residuals = plotted.data["residuals"]
    r = np.corrcoef(residuals["rank_quantity"], residuals["rank_outcome"])[0, 1]  # what the left panel draws
    assert r == pytest.approx(stored, abs=1e-9)
    strata = plotted.data["strata"]
    assert strata["stratum"].nunique() == 4 and len(strata) == len(table)
    assert any(p.name == "conditional-q-ranks-error.png" for p in report.figures)


def test_out_of_setting_figure_fits_on_its_environment_and_predicts_the_other(built, figures_kept, tmp_path) -> None:
    root, report, payload, _ = built
    with Store(root / "store", create=False) as store:
        (pred,) = [p for p in store.results("prediction") if p["hypothesis"] == "error-linear-in-q"]
        table = run_table(store, ["q", "test_error"])
    roles = {c["environment"]: c["role"] for c in pred["curves"]}
    assert roles == {"toy-a": "fit", "toy-b": "prediction"} and pred["fit_on"] == "toy-a"
    a, b = pred["params"]["a"], pred["params"]["b"]
    for curve in pred["curves"]:
        q = table.loc[table["spec"] == curve["environment"], "q"]
        assert curve["grid"][0] == pytest.approx(q.min()) and curve["grid"][-1] == pytest.approx(q.max())
        assert np.allclose(curve["fit"], a + b * np.asarray(curve["grid"]))
        assert curve["n"] == len(q)
    plotted = _verdict_figures.fitted_prediction(table, pred, tmp_path / "fit.png")
    low, high = table["test_error"].min(), table["test_error"].max()
    y0, y1 = plotted.data["ylim"]
    assert low - 0.1 * (high - low) <= y0 < low and high < y1 <= high + 0.1 * (high - low)
    titles = [ax.get_title() for ax in figures_kept[0].axes]
    assert titles == ["fitted on toy-a", "predicted on toy-b"]
    assert any(p.name == "fit-error-linear-in-q.png" for p in report.figures)


def test_a_prediction_off_the_outcome_scale_keeps_the_axis_and_says_so(figures_kept, tmp_path) -> None:
    points = pd.DataFrame({"spec": ["a"] * 4 + ["b"] * 4, "x": [1, 2, 3, 4, 100, 200, 300, 400],
                           "test_error": [0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 0.0, 0.0]})  # fmt: skip
    grid = [100.0, 400.0]
    prediction = {"variable": "x", "target": "test_error", "environment": "spec", "expression": "test_error = b*x",
                  "fit_on": "a", "curves": [
                      {"environment": "a", "role": "fit", "grid": [1.0, 4.0], "fit": [0.1, 0.4], "low": [0.05, 0.35],
                       "high": [0.15, 0.45]},
                      {"environment": "b", "role": "prediction", "grid": grid, "fit": [10.0, 40.0], "low": [9.0, 38.0],
                       "high": [11.0, 42.0]}]}  # fmt: skip
    plotted = _verdict_figures.fitted_prediction(points, prediction, tmp_path / "off.png")
    assert plotted.data["ylim"][1] < 1  # the axis fits the observed errors, not the prediction's 40
    assert plotted.data["off_axis"] == [{"environment": "b", "low": 10.0, "high": 40.0}]
    assert any("on b the prediction spans 10 to 40" in n for n in plotted.notes)


def test_constant_controls_get_no_panel_and_few_valued_subjects_are_flagged(built, figures_kept, tmp_path) -> None:
    root, report, payload, _ = built
    with Store(root / "store", create=False) as store:
        table = run_table(store, ["q", "prime_count", "random_measure", "param_count", "layers", "test_error"])
    assert table["layers"].nunique() == 1 and "layers" not in {t["subject"] for t in payload["tests"]}
    subjects = ["q", "prime_count", "random_measure", "param_count", "layers"]
    plotted = _figures.quantity_panels(table, subjects, "test_error", "width", tmp_path / "q.png")
    assert plotted.data["panels"] == ["q", "prime_count", "random_measure", "param_count"]
    assert plotted.data["left_out"] == ["layers"] and len(figures_kept[0].axes) == 4
    md = report.markdown.read_text()
    assert "layers is constant (= 2) over the 30 runs in scope: no panel" in md
    counts = sorted(table["param_count"].unique())
    shown = ", ".join(f"{v:.4g}" for v in counts)
    flag = (
        f"param_count takes only {len(counts)} distinct values over the {len(table)} runs in scope ({shown}); it is set"
    )
    assert flag + " by width" in md
    assert "q takes only" not in md and "random_measure takes only" not in md


def test_quantity_panels_cycle_markers_over_more_sweep_levels_than_markers(figures_kept, tmp_path) -> None:
    """The full double-descent study colours by n_features with 11 levels: the panels ran out of the 8 markers
    ('These `markers` levels are missing values') and the study ended after all its runs without its report."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"n_features": np.repeat(np.arange(1, 12) * 100.0, 3), "q": rng.normal(size=33)})
    table["test_error"] = table["q"] + rng.normal(size=33)
    plotted = _figures.quantity_panels(table, ["q"], "test_error", "n_features", tmp_path / "q.png")
    assert plotted.data["panels"] == ["q"] and len(figures_kept[0].axes) == 1


def test_report_and_prediction_bands_print_no_warnings(built, tmp_path) -> None:
    root, _, _, hypotheses = built
    with warnings.catch_warnings(record=True) as caught, Store(root / "store") as store:
        warnings.simplefilter("always")
        save_predictions(store, hypotheses, n_resamples=30, random_state=1)
        build_report(store, tmp_path / "again", title="toy report")
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


QUADRATIC = """
[[hypothesis]]
name = "quadratic"
quantity = "p"
outcome = "test_error"
controls = []
tests = ["fit"]
[hypothesis.scope]
axes = ["width"]
[hypothesis.prediction]
kind = "functional"
expression = "test_error = a + b*p + c*p**2"
"""


def test_prediction_band_skips_resamples_that_do_not_identify_the_law() -> None:
    (h,) = parse_hypotheses(QUADRATIC)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"spec": "s", "width": np.repeat([1.0, 2.0, 3.0], 2), "seed": [0, 1] * 3})
    table["p"] = table["width"] + 0.1 * table["seed"]  # 3 parameters, 2 distinct p per configuration
    table["test_error"] = (table["p"] - 2) ** 2 + rng.normal(0, 0.01, len(table))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        band = prediction_band(h, table, n_resamples=40, random_state=0)
        skipped = 40 - band["resamples"]  # resamples drawing one configuration thrice: 2 values of p
        assert 0 < skipped < 40
        assert band["note"] == f"{skipped} of 40 resamples did not identify the parameters and were skipped."
        (curve,) = band["curves"]
        assert np.all(np.asarray(curve["low"]) <= np.asarray(curve["high"]))
        two = prediction_band(h, table[table["width"] < 3], n_resamples=10)  # fitted, but 2 configurations
        assert two["note"].startswith("no band: 2 configurations") and np.isnan(two["curves"][0]["low"]).all()
        one = prediction_band(h, table[table["width"] == 1], n_resamples=10)
        assert one["note"].startswith("no curve: the parameters of test_error = a + b*p + c*p**2 are not identified")
        assert one["curves"] == []


def test_a_hypothesis_read_at_an_event_is_saved_as_json_and_read_back() -> None:
    """``at = {expression = "sparsity", below = 0.2}`` (a lottery ticket below 20% of its weights) is stored in the
    verdict payload as JSON and becomes the same event again for the report's tables."""
    import json

    from bridge.hypothesis import parse_hypotheses
    from bridge.report.results import at_from_payload, describe_hypothesis

    (h,) = parse_hypotheses(
        '[[hypothesis]]\nname = "h"\nquantity = "sparsity"\noutcome = "gain"\n'
        'at = { expression = "1 - sparsity", above = 0.8 }\ntests = ["kendall"]\n'
        '[hypothesis.prediction]\nkind = "rank"\n'
    )
    payload = json.loads(json.dumps(describe_hypothesis(h)))
    assert payload["at"] == {"expression": "1 - sparsity", "above": 0.8}
    assert at_from_payload(payload["at"]) == h.at
    assert at_from_payload("final") == "final" and at_from_payload(3) == 3


def test_effective_parameters_along_training_have_their_own_panel(figures_kept, tmp_path) -> None:
    """p_train (dashed) and p_test (solid) of the telescoping model along training, without a final panel; one run
    that diverges at its last step puts the axis on a symmetric-log scale, and the caption says so."""
    runs = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "alpha": [1.0, 1.0, 2.0, 2.0], "seed": [0, 1, 0, 1],
                         "step_test_fit": [20.0, 30.0, 60.0, 50.0]})  # fmt: skip
    steps = [0, 10, 20, 40, 80]
    records = pd.DataFrame(
        [{"run_id": r, "quantity": q, "step": s, "value": (2 if q == "p_train" else 1) * (s + 1)}
         for r in runs["run_id"] for q in ("p_train", "p_test") for s in steps]
    )  # fmt: skip
    plotted = _figures.phenomenon_curves(runs, records, ["alpha"], "p_test", tmp_path / "p.png", finals=False)
    (fig,) = figures_kept
    (ax,) = fig.axes
    assert plotted.data["final"] is None and set(plotted.data["along"]["quantity"]) == {"p_train", "p_test"}
    assert len([line for line in ax.get_lines() if line.get_linestyle() == "--" and len(line.get_xdata()) > 2]) == 2
    assert ax.get_yscale() == "linear" and not any("symmetric-log" in n for n in plotted.notes)
    records.loc[(records["run_id"] == "a") & (records["step"] == 80), "value"] = 1e6
    plotted = _figures.phenomenon_curves(runs, records, ["alpha"], "p_test", tmp_path / "q.png", finals=False)
    assert figures_kept[-1].axes[0].get_yscale() == "symlog"
    assert any("symmetric-log" in n for n in plotted.notes)
