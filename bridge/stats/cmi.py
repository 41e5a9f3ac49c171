"""Conditional mutual information between sign(Δquantity) and sign(Δoutcome) over pairs of runs.

Jiang et al. 2020 ("Fantastic generalization measures", §5.2): for ordered pairs of runs (θ, θ'),
V_μ = sign(μ(θ) − μ(θ')), V_g = sign(g(θ) − g(θ')), U_S = (θ_S, θ'_S) the values of hyperparameter subset S
for both runs; Î_S = I(V_μ; V_g | U_S) / H(V_g | U_S) and the score is min over |S| <= 2. The PGDL 2020
competition's scoring program (Jiang et al. 2020, "NeurIPS 2020 competition: predicting generalization in
deep learning") instead builds one 2 x 2 x cells table per pair of hyperparameters and divides the unweighted
mean MI over cells by the unweighted mean entropy of V_g, taking the minimum over pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from itertools import combinations

import numpy as np
import pandas as pd

from bridge.stats._result import TestResult
from theory._validation import check_option


class CMIMethod(StrEnum):
    """``JIANG`` (default): p(u)-weighted CMI over |S| <= 2 including S = ∅, ties dropped.
    ``PGDL``: the competition's variant, pairs of hyperparameters, unweighted cell means, ties counted as "−"."""

    JIANG = "jiang2020"
    PGDL = "pgdl2020"


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=axis)


def _cell_mi_entropy(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell of a (cells, 2, 2) count table over (V_μ, V_g): weight p(u), I(V_μ; V_g | u), H(V_g | u)."""
    totals = table.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        joint = table / totals[:, None, None]
    p_mu, p_g = joint.sum(axis=2), joint.sum(axis=1)
    h_mu, h_g = _entropy(p_mu, 1), _entropy(p_g, 1)
    h_joint = _entropy(joint.reshape(len(table), 4), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / totals.sum(), np.maximum(h_mu + h_g - h_joint, 0.0), h_g


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = i != j
    return i[keep], j[keep]


def _table(v_mu: np.ndarray, v_g: np.ndarray, cells: np.ndarray) -> np.ndarray:
    if len(v_mu) == 0:  # every pair tied: an all-zero table, whose scores come out NaN
        return np.zeros((1, 2, 2))
    _, codes = np.unique(cells, axis=0, return_inverse=True) if cells.size else (None, np.zeros(len(v_mu), int))
    codes = np.asarray(codes).reshape(-1)
    table = np.zeros((codes.max() + 1, 2, 2))
    np.add.at(table, (codes, v_mu.astype(int), v_g.astype(int)), 1.0)
    return table


def _cell_values(frame: pd.DataFrame, subset: Sequence[str], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """U_S for each pair: the codes of θ_S for the first run, then for the second (ordered)."""
    if not subset:
        return np.zeros((len(i), 0), dtype=int)
    codes = np.column_stack([pd.factorize(frame[a], sort=True)[0] for a in subset])
    return np.hstack([codes[i], codes[j]])


def _jiang(frame, quantity, outcome, axes, max_subset):
    q, g = frame[quantity].to_numpy(float), frame[outcome].to_numpy(float)
    i, j = _pairs(len(frame))
    s_mu, s_g = np.sign(q[i] - q[j]), np.sign(g[i] - g[j])
    keep = (s_mu != 0) & (s_g != 0)
    i, j = i[keep], j[keep]
    v_mu, v_g = s_mu[keep] > 0, s_g[keep] > 0
    scores: dict[str, float] = {}
    for size in range(min(max_subset, len(axes)) + 1):
        for subset in combinations(axes, size):
            weight, mi, h_g = _cell_mi_entropy(_table(v_mu, v_g, _cell_values(frame, subset, i, j)))
            cmi, cond_h = float(weight @ mi), float(weight @ h_g)
            scores[f"S=({', '.join(subset)})"] = cmi / cond_h if cond_h > 0 else np.nan
    return scores, int(keep.sum())


def _pgdl(frame, quantity, outcome, axes):
    q, g = frame[quantity].to_numpy(float), frame[outcome].to_numpy(float)
    i, j = _pairs(len(frame))
    v_mu, v_g = q[i] > q[j], g[i] > g[j]
    subsets = list(combinations(axes, 2)) if len(axes) >= 2 else [tuple(axes)]
    scores: dict[str, float] = {}
    for subset in subsets:
        _, mi, h_g = _cell_mi_entropy(_table(v_mu, v_g, _cell_values(frame, subset, i, j)))
        scores[f"S=({', '.join(subset)})"] = float(mi.mean() / h_g.mean()) if h_g.mean() > 0 else np.nan
    return scores, len(i)


def conditional_mutual_information(
    frame: pd.DataFrame,
    quantity: str,
    outcome: str,
    axes: Sequence[str],
    *,
    max_subset: int = 2,
    method: CMIMethod | str = CMIMethod.JIANG,
) -> TestResult:
    """Normalised conditional mutual information score K = min_S Î_S (Jiang et al. 2020; PGDL 2020 variant).

    Higher is better (1: sign(Δquantity) determines sign(Δoutcome) in every conditioning cell). There is no
    p-value; ``details`` holds Î_S for each conditioning set and ``n`` counts the pairs used.

    Example:
        >>> df = pd.DataFrame({"w": [1, 2, 3, 4], "q": [1, 2, 3, 4], "err": [1, 2, 3, 4]})
        >>> conditional_mutual_information(df, "q", "err", ["w"], max_subset=0).statistic
        1.0
    """
    value = method.value if isinstance(method, CMIMethod) else method
    method = CMIMethod(
        check_option("method", value, [m.value for m in CMIMethod], owner="conditional_mutual_information")
    )
    if max_subset not in (0, 1, 2):
        raise ValueError(f"The 'max_subset' parameter must be one of 0, 1, 2. Got {max_subset!r} instead.")
    for col in (quantity, outcome, *axes):
        if col not in frame.columns:
            raise ValueError(f"conditional_mutual_information: column {col!r} is not in the table.")
    if method is CMIMethod.PGDL and not axes:
        raise ValueError("The 'axes' parameter must name at least one axis for the PGDL variant. Got [].")
    scores, n_pairs = (
        _jiang(frame, quantity, outcome, list(axes), max_subset)
        if method is CMIMethod.JIANG
        else (_pgdl(frame, quantity, outcome, list(axes)))
    )
    finite = [v for v in scores.values() if np.isfinite(v)]
    score = float(min(finite)) if finite else np.nan
    return TestResult(f"Conditional MI ({method.value})", score, np.nan, n_pairs, details=scores)
