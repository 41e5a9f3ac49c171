"""bridge: fit theory predictions to phenomenon data and try to falsify them.

Public names load lazily (PEP 562) so that the ``unitheory`` CLI, which lives in ``bridge.cli``, starts without
importing scipy, statsmodels and sympy.
"""

from __future__ import annotations

from theory._lazy import lazy_exports

_EXPORTS = {
    "FalsificationReport": "bridge.falsification",
    "falsify": "bridge.falsification",
    "falsify_tables": "bridge.falsification",
    "Hypothesis": "bridge.hypothesis",
    "HypothesisFileError": "bridge.hypothesis",
    "Kind": "bridge.hypothesis",
    "Over": "bridge.hypothesis",
    "Prediction": "bridge.hypothesis",
    "Scope": "bridge.hypothesis",
    "Test": "bridge.hypothesis",
    "load_hypotheses": "bridge.hypothesis",
    "parse_hypotheses": "bridge.hypothesis",
    "StudyPlan": "bridge.plan",
    "plan_hypotheses": "bridge.plan",
    "PreregStatus": "bridge.prereg",
    "Registration": "bridge.prereg",
    "preregister": "bridge.prereg",
    "prereg_status": "bridge.prereg",
    "hypothesis_table": "bridge.tables",
    "run_table": "bridge.tables",
    "event_table": "bridge.tables",
    "HypothesisVerdict": "bridge.verdicts",
    "Outcome": "bridge.verdicts",
    "Verdict": "bridge.verdicts",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
