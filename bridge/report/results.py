"""Saving a falsification run in the store the way reports read it back (kind ``"verdict"``).

The payload is :meth:`bridge.FalsificationReport.to_payload` plus ``file``, ``key`` (as ``unitheory falsify``
writes them, so either command replaces the other's entry) and ``hypotheses``: one description per hypothesis
(:func:`describe_hypothesis`) that tells the report which quantity, outcome and controls to draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.falsification import FalsificationReport
from bridge.hypothesis import Event, Hypothesis
from bridge.prereg import file_hash
from bridge.stats.fit import parse_formula
from bridge.tables import StoreLike

KIND = "verdict"


def describe_hypothesis(h: Hypothesis) -> dict[str, Any]:
    """JSON-ready summary: name, description, quantity, outcome, kind, controls, confounders, scope, ``at``."""
    expression = h.prediction.expression
    return {
        "name": h.name,
        "description": h.description,
        "quantity": h.quantity,
        "outcome": h.outcome,
        "kind": h.prediction.kind.value,
        "controls": [c for c in h.controls if c != h.quantity],  # a quantity is never its own control
        "confounders": list(h.confounders),
        "specs": list(h.scope.specs),
        "phenomena": list(h.scope.phenomena),
        "axes": list(h.scope.axes),
        "at": at_payload(h.at),
        "expression": None if expression is None else expression.text,
    }


def at_payload(at: str | int | Event) -> str | int | dict[str, Any]:
    """``at`` as JSON: ``"final"``, ``"initial"``, a step, or an event as ``{"expression", "above"|"below"}``."""
    if isinstance(at, Event):
        return {"expression": at.text, "above" if at.above else "below": at.threshold}
    return at


def at_from_payload(at: str | int | dict[str, Any]) -> str | int | Event:
    """The inverse of :func:`at_payload` (the event's formula parsed again, never evaluated)."""
    if not isinstance(at, dict):
        return at
    above = "above" in at
    return Event(at["expression"], parse_formula(at["expression"]), float(at["above" if above else "below"]), above)


def verdict_key(path: str | Path) -> str:
    """``NAME:first 16 hex of sha256``: the key ``unitheory falsify`` stores a file's verdicts under."""
    return f"{Path(path).name}:{file_hash(path)[:16]}"


def save_verdicts(
    store: StoreLike, path: str | Path, report: FalsificationReport, hypotheses: list[Hypothesis]
) -> dict[str, Any]:
    """Store ``report`` of the hypothesis file ``path`` under kind ``"verdict"``; returns the payload."""
    key = verdict_key(path)
    payload = {
        "file": Path(path).name,
        "key": key,
        **report.to_payload(),
        "hypotheses": [describe_hypothesis(h) for h in hypotheses],
    }
    store.put_result(KIND, key, payload)
    return payload
