"""The rows behind each verdict (issue 12 items 2, 4, 7): the row that decided it, one result for one test in
every hypothesis that declares it, reasons that say what was missing or undefined, and a progress bar."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from synthetic import synthetic_runs

from bridge import Verdict, falsify_tables, parse_hypotheses
from bridge._progress import QUIET_ENV
from bridge.falsification import FalsificationReport
from bridge.report import describe_hypothesis
from bridge.report._test_tables import in_verdict
from bridge.stats import kendall_tau_difference
from bridge.verdicts import RowKey

LAW = """
controls = []
[[hypothesis]]
name = "law"
quantity = "x"
outcome = "y"
tests = ["fit", "out_of_setting"]
scope = { axes = ["x"], environment = "env" }
prediction = { kind = "functional", expression = "y = a + b*x", null = "y = a", fit_on = "a" }
"""


def _sweep(mean, xs, env: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = np.repeat(xs, 4)
    return pd.DataFrame({"env": env, "x": x, "seed": np.tile(np.arange(4), len(xs)), "y": mean(x)}).assign(
        y=lambda d: d["y"] + rng.normal(0, 0.05, len(d))
    )


def test_a_verdict_names_its_deciding_row_and_the_report_marks_it() -> None:
    """A law that fits where it was fitted (y = 1 + 2x on a) and predicts b worse than the null: the
    out_of_setting row in environment b decides "falsified", the fit row only entered."""
    runs = pd.concat([
        _sweep(lambda x: 1 + 2 * x, np.linspace(0.5, 3.0, 8), "a", 4),
        _sweep(lambda x: 4.5 + 0 * x, np.linspace(3.5, 6.0, 6), "b", 5),
    ])  # fmt: skip
    report = falsify_tables(parse_hypotheses(LAW), {"law": runs}, n_resamples=49)
    verdict = report.verdict("law")
    assert verdict.verdict is Verdict.FALSIFIED
    assert verdict.decided_by == RowKey("out_of_setting", "x", "quantity", "b")
    row = report.deciding_row("law")
    assert row["outcome"] == "fail" and row["p_holm"] < 0.05 and "Holm-adjusted p against" in verdict.reason
    payload = report.to_payload()
    assert FalsificationReport.from_payload(payload).verdict("law").decided_by == verdict.decided_by
    frame = report.to_frame()
    marks = dict(zip(frame["test"], in_verdict(frame, payload["verdicts"]), strict=True))
    assert marks == {"fit": "entered", "out_of_setting": "decided"}


def test_of_several_failing_rows_the_strongest_evidence_against_decides() -> None:
    """A curved truth on a (the linear law lacks fit) and a flat one on b (it predicts worse than the null): both
    rows fail, and the one with the smaller Holm-adjusted p against decides, whatever the declaration order."""
    runs = pd.concat([
        _sweep(lambda x: 1 + 2 * x + 0.3 * x**2, np.linspace(0.5, 3.0, 8), "a", 4),
        _sweep(lambda x: 4.5 + 0 * x, np.linspace(3.5, 6.0, 6), "b", 5),
    ])  # fmt: skip
    for tests in ('["fit", "out_of_setting"]', '["out_of_setting", "fit"]'):
        text = LAW.replace("prediction =", f"tests = {tests}\nprediction =").replace(
            'tests = ["fit", "out_of_setting"]\n', "", 1
        )
        report = falsify_tables(parse_hypotheses(text), {"law": runs}, n_resamples=49)
        frame = report.to_frame()
        failing = frame[frame["outcome"] == "fail"]
        assert len(failing) == 2
        strongest = failing.loc[failing["p_holm"].idxmin()]
        decided = report.verdict("law").decided_by
        assert (decided.test, decided.environment) == (strongest["test"], strongest["environment"])
        assert report.verdict("law").reason.startswith(f"{strongest['test']}: ")


def test_a_supported_verdict_needs_every_row_and_has_no_single_deciding_row() -> None:
    (h,) = parse_hypotheses(
        'controls = ["prime_count"]\n[[hypothesis]]\nname = "h"\nquantity = "q"\noutcome = "test_error"\n'
        'tests = ["kendall"]\nscope = { axes = ["width", "lr"] }\nprediction = { kind = "rank", direction = '
        '"increasing" }\n'
    )
    report = falsify_tables([h], {"h": synthetic_runs("predictive", 0)}, n_resamples=199)
    assert report.verdict("h").verdict is Verdict.SUPPORTED and report.verdict("h").decided_by is None
    frame = report.to_frame()
    marks = in_verdict(frame, report.to_payload()["verdicts"])
    assert dict(zip(frame["role"], marks, strict=True)) == {
        "quantity": "all needed", "control": "context", "comparison": "all needed",
    }  # fmt: skip


TWO = """
controls = ["prime_count", "random_measure"]
[[hypothesis]]
name = "marginal"
quantity = "q"
outcome = "test_error"
tests = ["kendall"]
scope = { axes = ["width", "lr"] }
prediction = { kind = "rank", direction = "increasing" }

[[hypothesis]]
name = "conditional"
quantity = "q"
outcome = "test_error"
confounders = ["weight_norm"]
tests = ["kendall", "partial_rank"]
scope = { axes = ["width", "lr"] }
prediction = { kind = "rank", direction = "increasing" }
"""


def test_the_same_test_in_two_hypotheses_is_one_result() -> None:
    """The quantity's Kendall test and its comparisons with each control are the same tests on the same runs in
    both hypotheses: one interval each, not one per section (issue 12 item 4)."""
    table = synthetic_runs("confounded", 0)
    table["hidden"] = [[8, 8]] * len(table)  # a list-valued parameter, as a store's run table may hold
    report = falsify_tables(parse_hypotheses(TWO), {"marginal": table, "conditional": table}, n_resamples=99)
    frame = report.to_frame().query("test == 'kendall' and environment == 'all' and role != 'control'")
    shared = frame.set_index(["hypothesis", "role", "subject"])[["statistic", "low", "high", "p_for", "p_against"]]
    assert len(shared) == 6 and shared[["statistic", "low", "high"]].notna().all().all()
    assert shared.loc["marginal"].equals(shared.loc["conditional"])
    # ...where two resamplings of that comparison would give two intervals
    groups = table["width"].astype(str) + table["lr"].astype(str)
    again = kendall_tau_difference(
        table["q"], table["prime_count"], table["test_error"], groups=groups, n_resamples=99, random_state=12345
    )
    assert again.statistic == pytest.approx(shared.loc[("marginal", "comparison", "prime_count"), "statistic"])
    assert (again.low, again.high) != tuple(shared.loc[("marginal", "comparison", "prime_count"), ["low", "high"]])


RANK = """
controls = ["prime_count"]
[[hypothesis]]
name = "h"
quantity = "q"
outcome = "test_error"
tests = ["kendall"]
scope = { specs = ["synthetic"], axes = ["width", "lr"] }
prediction = { kind = "rank", direction = "increasing" }
"""


def test_an_undefined_rank_row_and_its_comparisons_say_why() -> None:
    table = synthetic_runs("predictive", 0).assign(test_error=0.0)  # e.g. every run generalised
    report = falsify_tables(parse_hypotheses(RANK), {"h": table}, n_resamples=49)
    why = "test_error is constant (= 0) over the 48 runs with values"
    assert report.verdict("h").reason == f"kendall: kendall is undefined on these runs: {why}."
    comparison = report.to_frame().query("role == 'comparison'")["reason"].item()
    assert comparison.endswith(f"D = τ(quantity) − |τ(control)| is undefined: {why}")
    one = synthetic_runs("predictive", 0).assign(test_error=lambda d: d["test_error"].where(d.index == 0))
    reason = falsify_tables(parse_hypotheses(RANK), {"h": one}, n_resamples=49).verdict("h").reason
    assert reason == (
        "kendall: kendall is undefined on these runs: 1 of the runs in scope has values (a rank statistic needs at "
        "least 2); test_error has no value in 47 of the 48 runs in scope."
    )


EVENT = """
[[hypothesis]]
name = "e"
quantity = "p_test"
outcome = "test_error"
controls = []
scope = { specs = ["synthetic"], axes = ["width"] }
[hypothesis.prediction]
kind = "event_order"
first = { expression = "p_train - p_test", above = 0.0 }
second = { expression = "test_error", below = 0.1 }
tolerance = 10
"""


def test_an_event_that_never_happens_is_named_with_its_count() -> None:
    """Was: "no test could be run on the runs in scope" (issue 12 item 7), also when the lags existed but the
    quantity had no final value (the event test needs the event steps only)."""
    table = pd.DataFrame({"run_id": [f"r{i}" for i in range(6)], "spec": "synthetic", "width": [4, 4, 8, 8, 16, 16],
                          "p_test": 1.0, "test_error": 0.05, "first_step": np.nan,
                          "second_step": [10.0, 20.0, np.nan, 30.0, np.nan, 40.0]})  # fmt: skip
    table["lag"] = table["second_step"] - table["first_step"]
    report = falsify_tables(parse_hypotheses(EVENT), {"e": table}, n_resamples=49)
    verdict = report.verdict("e")
    assert verdict.verdict is Verdict.INCONCLUSIVE and verdict.decided_by == RowKey("event_order", "p_test", "quantity")
    assert verdict.reason == (
        "event_order: event_order is undefined on these runs: the first event (p_train - p_test > 0) never occurred "
        "in 6 of the 6 runs; the second event (test_error < 0.1) never occurred in 2 of the 6 runs, so no run has "
        "both events and no lag can be measured."
    )
    table = table.assign(p_test=np.nan, first_step=[0.0, 0.0, 0.0, np.nan, 0.0, 0.0])
    table["lag"] = table["second_step"] - table["first_step"]  # 3 runs with both events
    verdict = falsify_tables(parse_hypotheses(EVENT), {"e": table}, n_resamples=49).verdict("e")
    assert verdict.reason.startswith(
        "event_order: mean lag 27.5 steps over 2 configurations (the first event (p_train - p_test > 0) "
        "never occurred in 1 of the 6 runs; the second event (test_error < 0.1) never occurred in 2 of the 6 runs): "
        "the event order is not significant (raw p for = 0.102"
    )


def test_a_hypothesis_that_cannot_be_tested_says_what_is_missing() -> None:
    (h,) = parse_hypotheses(RANK)
    empty = falsify_tables([h], {"h": synthetic_runs("noise", 0).iloc[0:0]}, n_resamples=49).verdict("h")
    assert empty.reason == "no run of the store is in scope (scope.specs = ['synthetic'])."
    absent = falsify_tables([h], {"h": synthetic_runs("noise", 0).drop(columns="q")}, n_resamples=49).verdict("h")
    assert (
        absent.reason == "the runs in scope do not record ['q']: not recorded by any of them in the 48 runs in scope."
    )
    assert absent.decided_by is None
    (none,) = parse_hypotheses(RANK.replace('tests = ["kendall"]', "tests = []"))
    nothing = falsify_tables([none], {"h": synthetic_runs("noise", 0)}, n_resamples=49).verdict("h")
    assert nothing.reason == "none of its declared tests (none) gave a row on these runs."


def test_falsify_shows_a_progress_bar_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    hypotheses, tables = parse_hypotheses(RANK), {"h": synthetic_runs("noise", 0)}
    falsify_tables(hypotheses, tables, n_resamples=19)
    assert capsys.readouterr().err == ""  # off a terminal (and under the suite's UNITHEORY_PROGRESS=0): quiet
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    monkeypatch.delenv(QUIET_ENV, raising=False)
    falsify_tables(hypotheses, tables, n_resamples=19)
    err = capsys.readouterr().err
    assert "falsify: tests per quantity and control" in err and "0/2" in err  # the quantity and its one control


def test_a_quantity_is_never_its_own_control() -> None:
    """The prime count tested as the explanation is not listed, compared or drawn as its own control, even when a
    hypothesis object carries the default controls (issue 12 item 4)."""
    (h,) = parse_hypotheses(RANK.replace('quantity = "q"', 'quantity = "prime_count"').replace("controls = [", "#"))
    assert "prime_count" not in h.controls  # parsing drops the default control that is the quantity
    built = replace(h, controls=("prime_count", "random_measure"))  # e.g. a Hypothesis made in code
    assert describe_hypothesis(built)["controls"] == ["random_measure"]
    report = falsify_tables([built], {"h": synthetic_runs("noise", 0)}, n_resamples=19)
    assert set(report.to_frame()["subject"]) == {"prime_count", "random_measure"}
    assert not report.to_frame().query("role != 'quantity' and subject == 'prime_count'").shape[0]
    assert "prime_count (" not in report.verdict("h").reason
