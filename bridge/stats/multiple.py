"""Multiple-testing corrections over a family of tests (the verdict engine's family is one hypothesis's rows):
Holm 1979 (family-wise error) and Benjamini & Hochberg 1995 (false discovery rate, ``scipy.stats``
``false_discovery_control``); statsmodels ``multipletests`` gives the same numbers."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np
from scipy import stats

from theory._validation import check_option


class Correction(StrEnum):
    """``HOLM`` (default; controls the family-wise error rate) or ``FDR_BH`` (controls the false discovery rate)."""

    HOLM = "holm"
    FDR_BH = "fdr_bh"


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values: p_(i) ← max_{j <= i} min(1, (m − j + 1) p_(j)), in input order.

    The same numbers as ``multipletests(method="holm")``, without its ``gc.collect()`` on every call (which
    dominates the verdict engine's time in simulation loops such as ``benchmarks/calibration.py``).
    """
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(p)
    out[order] = stepped
    return out


def adjust_pvalues(pvalues: Sequence[float], method: Correction | str = Correction.HOLM) -> np.ndarray:
    """Corrected p-values in input order; NaN entries (tests without a p-value) stay NaN and do not count.

    Example:
        >>> adjust_pvalues([0.01, 0.04, float("nan")], "holm").round(3).tolist()
        [0.02, 0.04, nan]
    """
    value = method.value if isinstance(method, Correction) else method
    check_option("method", value, [m.value for m in Correction], owner="adjust_pvalues")
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = holm(p[finite]) if value == Correction.HOLM else stats.false_discovery_control(p[finite])
    return out
