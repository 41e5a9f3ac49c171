"""Reports: every hypothesis has a verdict row, every figure is a valid PNG, table numbers equal the store's,
the HTML is self-contained and renders in headless Chromium to a non-blank page, and rebuilding reads only the
store (no test is recomputed)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bridge.cli import main
from bridge.falsification import falsify
from bridge.hypothesis import load_hypotheses
from bridge.prereg import preregister
from bridge.report import build_report, fmt, save_predictions, save_verdicts, verdict_tables
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
    """Two toy specs x 5 widths x 3 seeds; test_error = 0.1 q + noise, records at steps 0, 10, 100."""
    for spec in ("toy-a", "toy-b"):
        for width in (2, 4, 8, 16, 32):
            for seed in range(3):
                q = np.log(width) + rng.normal(0, 0.3)
                final = {"test_error": 0.1 * q + rng.normal(0, 0.02), "q": q}
                params = {"variant": spec, "width": width, "steps": 100, "seed": seed}
                config = RunConfig(spec, "toy", params, ("toy",), (0, 10, 100))
                rows = []
                for step in (0, 10, 100):
                    frac = step / 100
                    rows += [
                        (step, "test_error", 0.9 - frac * (0.9 - final["test_error"])),
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
    shown = next(t for t in _markdown_tables(report.markdown.read_text()) if "p_against" in t.columns)
    assert len(shown) == len(tests) > 0
    for column in ("statistic", "pvalue", "p_for", "p_against", "p_holm", "low", "high", "n"):
        for cell, value in zip(shown[column], tests[column], strict=True):
            assert cell == fmt(value)
            if cell != "-":
                assert float(cell) == pytest.approx(float(value), rel=1e-3, abs=1e-12)
    assert report.tests.equals(tests)


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
        (bridge.stats, "fit_expression"), (bridge.report.predictions, "fit_expression"),
    ]:  # fmt: skip
        monkeypatch.setattr(module, name, fail)
    assert main(["report", "--store", str(root / "store"), "-o", str(tmp_path / "again"), "--title", "toy"]) == 0
    again = (tmp_path / "again" / "report.md").read_text()
    first = report.markdown.read_text()
    assert _markdown_tables(again)[0].equals(_markdown_tables(first)[0])
    assert next(t for t in _markdown_tables(again) if "p_against" in t.columns).equals(
        next(t for t in _markdown_tables(first) if "p_against" in t.columns)
    )


def test_filters_keep_one_spec_and_one_file(built, tmp_path: Path) -> None:
    root, _, _, _ = built
    with Store(root / "store", create=False) as store:
        only = build_report(store, tmp_path / "a", specs=["toy-a"], files=["other.toml"])
    assert len(only.verdicts) == 0
    assert sum("curve-" in p.name for p in only.figures) == 1


def test_html_renders_in_headless_chromium(built, tmp_path: Path) -> None:
    _, report, _, _ = built
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is missing: .ci/run installs it (apt-get install -y chromium)"
    shot = tmp_path / "shot.png"
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
        report.html.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("L"), dtype=float)
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 10  # text, tables and figures, not a blank page
    assert (pixels < 128).mean() > 0.005  # dark pixels: the text is drawn


def test_a_revised_hypothesis_file_reports_only_its_latest_registered_version():
    from bridge.report._build import _latest_per_file

    old = {"file": "h.toml", "key": "h.toml:aaaa", "prereg": {"registered_at": "2026-01-01T00:00:00+00:00"}}
    new = {"file": "h.toml", "key": "h.toml:bbbb", "prereg": {"registered_at": "2026-02-01T00:00:00+00:00"}}
    other = {"file": "g.toml", "key": "g.toml:cccc", "prereg": None}
    assert _latest_per_file([new, other, old]) == [new, other]
    assert _latest_per_file([old, new]) == [new]
