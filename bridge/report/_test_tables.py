"""The test tables of a report: which p-value each column holds, and which rows entered a verdict and which row
decided it (:attr:`bridge.verdicts.HypothesisVerdict.decided_by`, stored with each verdict)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

#: the report's header of each p-value column of the test table (:data:`bridge.falsification.COLUMNS`)
P_HEADERS: Mapping[str, str] = {
    "pvalue": "p (test's own)",
    "p_for": "p for (raw)",
    "p_against": "p against (raw)",
    "p_holm": "p against (Holm)",
    "p_fdr_bh": "p against (BH)",
}
IN_VERDICT = "in verdict"
#: the columns of a hypothesis's own table, in order (test-table names; the p-values shown under P_HEADERS)
SECTION_COLUMNS = [
    IN_VERDICT, "test", "subject", "role", "environment", "outcome", "statistic", "low", "high", "n", "p_for",
    "p_against", "p_holm", "p_fdr_bh", "reason",
]  # fmt: skip

LEGEND = (
    "p for / p against (raw): the row's one-sided p-values for / against the prediction, uncorrected (a "
    "supported verdict needs every row's p for below α: an intersection-union test, no correction needed); "
    "p against (Holm): the raw p against Holm-adjusted within the hypothesis over its own rows (below α it fails "
    "the row and falsifies the hypothesis); p against (BH): the same family Benjamini-Hochberg-adjusted, "
    "descriptive only (never a verdict); p (test's own): the test's two-sided p-value where it has one. Control "
    "and comparison rows are not in the hypothesis's family: no Holm or BH value. A comparison row's statistic is "
    "D = τ(quantity) − |τ(control)|, with τ(quantity) signed by the predicted direction, and its interval (the "
    "quantity beats the control when the interval lies above 0). in verdict: decided = the row that decided the "
    "verdict (the first failing row of a falsified hypothesis; the row, or the comparison with a control, that "
    "stood in the way of an inconclusive one); all needed = a supported verdict rests on every such row together "
    "(each passed, and the quantity beat each control); entered = judged, but not the deciding row; context = "
    "shown for reference (a control's own Kendall τ, judged through its comparison row). '-' marks a value that "
    "is undefined for the row (its reason says why)."
)


def _key(row: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    return (row["hypothesis"], row["test"], row["subject"], row["role"], row["environment"])


def in_verdict(tests: pd.DataFrame, verdicts: Sequence[Mapping[str, Any]]) -> pd.Series:
    """Per test row, its part in its hypothesis's verdict: ``decided``, ``all needed`` (a row of a supported
    hypothesis that entered the verdict), ``entered`` or ``context``; ``verdicts`` are stored verdict records
    (``hypothesis``, ``verdict``, ``decided_by``)."""
    decided = {
        (v["hypothesis"], *(v["decided_by"][k] for k in ("test", "subject", "role", "environment")))
        for v in verdicts
        if v.get("decided_by")
    }
    supported = {v["hypothesis"] for v in verdicts if v.get("verdict") == "supported"}

    def part(row: Mapping[str, Any]) -> str:
        if _key(row) in decided:
            return "decided"
        if not isinstance(row["outcome"], str) or not row["outcome"]:
            return "context"
        return "all needed" if row["hypothesis"] in supported else "entered"

    return pd.Series([part(r) for r in tests.to_dict(orient="records")], index=tests.index, dtype=object)


def deciding_text(verdict: Mapping[str, Any]) -> str:
    """One sentence for a hypothesis's section: its verdict and the row that decided it."""
    key = verdict.get("decided_by")
    if key:
        where = "" if key["environment"] == "all" else f" in environment {key['environment']}"
        by = f"decided by the {key['test']} row of {key['role']} {key['subject']}{where} (marked 'decided' below)"
    elif verdict["verdict"] == "supported":
        by = "every row marked 'all needed' below passed, so no single row decides"
    else:
        by = "no test row could be computed"
    return f"Verdict: {verdict['verdict']}, {by}. {verdict['reason']}"


def shown(tests: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``tests[columns]`` with the p-value columns under the report's headers (:data:`P_HEADERS`)."""
    return tests[list(columns)].rename(columns=dict(P_HEADERS)).reset_index(drop=True)
