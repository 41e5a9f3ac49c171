"""Conditional mutual information between sign(Δquantity) and sign(Δoutcome) over pairs of runs.

Jiang et al. 2020 ("Fantastic generalization measures", §5.2): for ordered pairs of runs (θ, θ'),
V_μ = sign(μ(θ) − μ(θ')), V_g = sign(g(θ) − g(θ')), U_S = (θ_S, θ'_S) the values of hyperparameter subset S
for both runs; Î_S = I(V_μ; V_g | U_S) / H(V_g | U_S) and the score is min over |S| <= 2. The PGDL 2020
competition's scoring program (Jiang et al. 2020, "NeurIPS 2020 competition: predicting generalization in
deep learning") instead builds one 2 x 2 x cells table per pair of hyperparameters and divides the unweighted
mean MI over cells by the unweighted mean entropy of V_g, taking the minimum over pairs.

Mutual information ignores the sign of the association: a perfectly anti-correlated quantity scores 1. With a
``direction`` (+1: a larger quantity predicts a larger outcome, −1 the reverse) each cell's MI counts with the
sign of its association, +I_u when concordant pairs (in the predicted direction) outnumber discordant ones and
−I_u otherwise, so the score lies in [−1, 1] and is positive only for a quantity that tracks the outcome the
predicted way. Plug-in MI of noise is positive, so each Î_S gets a permutation null: the outcome is permuted
within the strata of θ_S (configurations exchanged with their seeds within a stratum, seeds shuffled within a
configuration; :mod:`bridge.stats.nested`). The score is a minimum over S, so it is significantly positive when
every Î_S is (p = max_S p_S, an intersection–union test, Berger 1982).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import sparse

from bridge.stats._result import TestResult
from bridge.stats.nested import check_resamples, configuration_groups, nested_permutations
from theory._validation import check_option

_CHUNK_PAIRS = 2_000_000


class CMIMethod(StrEnum):
    """``JIANG`` (default): p(u)-weighted CMI over |S| <= 2 including S = ∅, ties dropped.
    ``PGDL``: the competition's variant, pairs of hyperparameters, unweighted cell means, ties counted as "−"."""

    JIANG = "jiang2020"
    PGDL = "pgdl2020"


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def _cell_terms(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell of a (..., cells, 2, 2) count table over (V_μ, V_g): weight p(u), I(V_μ; V_g | u), H(V_g | u) and
    the sign of the association (concordant minus discordant pairs; 0 for an empty cell)."""
    totals = table.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        joint = table / totals[..., None, None]
        weight = totals / totals.sum(axis=-1, keepdims=True)
    joint = np.nan_to_num(joint)
    p_mu, p_g = joint.sum(axis=-1), joint.sum(axis=-2)
    h_joint = _entropy(joint.reshape(*joint.shape[:-2], 4), -1)
    mi = np.maximum(_entropy(p_mu, -1) + _entropy(p_g, -1) - h_joint, 0.0)
    sign = np.sign(table[..., 0, 0] + table[..., 1, 1] - table[..., 0, 1] - table[..., 1, 0])
    return weight, mi, _entropy(p_g, -1), sign


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = i != j
    return i[keep], j[keep]


def _cell_codes(frame: pd.DataFrame, subset: Sequence[str], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Code of U_S for each pair: (θ_S of the first run, θ_S of the second)."""
    if not subset:
        return np.zeros(len(i), dtype=np.int64)
    runs = frame.groupby(list(subset), sort=True, dropna=False).ngroup().to_numpy()
    size = int(runs.max()) + 1
    return runs[i] * size + runs[j]


class _Score:
    """Î_S for one conditioning set, for the observed outcome and for permuted ones (vectorised).

    Cells and V_μ do not change when the outcome is permuted, so each (cell, V_μ) class of pairs is fixed; the
    count of its pairs with V_g = "+" (and, for Jiang with tied outcomes, with a tie) is one sparse product per
    batch of outcome vectors.
    """

    def __init__(self, method: CMIMethod, q: np.ndarray, g: np.ndarray, cells: np.ndarray, i: np.ndarray,
                 j: np.ndarray, direction: int | None) -> None:  # fmt: skip
        self.method, self.direction = method, direction
        if method is CMIMethod.JIANG:
            keep = q[i] != q[j]  # pairs tied in the quantity are dropped; ties in the outcome per permutation
            i, j, cells = i[keep], j[keep], cells[keep]
        self.i, self.j = i, j
        v_mu = (q[i] > q[j]).astype(np.int64)
        self.cells = np.unique(cells, return_inverse=True)[1].reshape(-1)
        self.n_cells = int(self.cells.max()) + 1 if len(cells) else 1
        klass = self.cells * 2 + v_mu
        self.members = sparse.csr_matrix(
            (np.ones(len(klass), dtype=np.float32), (np.arange(len(klass)), klass)),
            shape=(len(klass), 2 * self.n_cells),
        )
        self.sizes = np.bincount(klass, minlength=2 * self.n_cells).astype(float)
        self.ties = method is CMIMethod.JIANG and len(np.unique(g)) < len(g)

    def __call__(self, g: np.ndarray) -> np.ndarray:
        """Scores for outcome vectors ``g`` (B, n), in chunks that hold at most ~2M pair entries."""
        g = np.atleast_2d(g)
        step = max(1, _CHUNK_PAIRS // max(1, len(self.i)))
        return np.concatenate([self._scores(g[s : s + step]) for s in range(0, len(g), step)])

    def _scores(self, g: np.ndarray) -> np.ndarray:
        b = len(g)
        gi, gj = g[:, self.i], g[:, self.j]
        up = np.asarray((gi > gj).astype(np.float32) @ self.members)  # (B, 2·cells): pairs with V_g = "+"
        tied = np.asarray((gi == gj).astype(np.float32) @ self.members) if self.ties else 0.0
        table = np.stack([self.sizes - up - tied, up], axis=-1).reshape(b, self.n_cells, 2, 2)
        weight, mi, h_g, sign = _cell_terms(table)
        signed = mi if self.direction is None else mi * sign * self.direction
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.method is CMIMethod.JIANG:
                num, den = np.nansum(weight * signed, axis=-1), np.nansum(weight * h_g, axis=-1)
            else:  # unweighted means over the cells (every cell holds pairs)
                num, den = signed.sum(axis=-1), h_g.sum(axis=-1)
            return np.where(den > 0, num / den, np.nan)


def _subsets(method: CMIMethod, axes: list[str], max_subset: int) -> list[tuple[str, ...]]:
    if method is CMIMethod.JIANG:
        return [s for size in range(min(max_subset, len(axes)) + 1) for s in combinations(axes, size)]
    return list(combinations(axes, 2)) if len(axes) >= 2 else [tuple(axes)]


def conditional_mutual_information(
    frame: pd.DataFrame,
    quantity: str,
    outcome: str,
    axes: Sequence[str],
    *,
    max_subset: int = 2,
    method: CMIMethod | str = CMIMethod.JIANG,
    direction: int | None = None,
    groups: Sequence[int] | None = None,
    n_resamples: int = 999,
    random_state: int | None = None,
) -> TestResult:
    """Normalised conditional mutual information score K = min_S Î_S (Jiang et al. 2020; PGDL 2020 variant),
    with a permutation null per conditioning set.

    ``direction`` None: the papers' unsigned score (1: sign(Δquantity) determines sign(Δoutcome) in every
    cell); ±1: the signed score of the module docstring. ``pvalue`` = ``p_greater`` = max_S of the one-sided
    p-values: every Î_S is above its null (the score is significant); ``p_less`` = max_S: every Î_S is below
    its null; ``details`` holds Î_S and its one-sided p-values for each conditioning set, and
    ``details["p any greater"/"p any less"]`` = min(1, |S|·min_S p_S): some Î_S is (Bonferroni). ``n`` counts the
    pairs used for S = ∅ (Jiang) or all ordered pairs (PGDL). ``groups``: configuration labels (default: the
    combinations of ``axes``); ``n_resamples=0`` gives the score alone.

    Example:
        >>> df = pd.DataFrame({"w": [1, 2, 3, 4], "q": [1, 2, 3, 4], "err": [1, 2, 3, 4]})
        >>> conditional_mutual_information(df, "q", "err", ["w"], max_subset=0, n_resamples=9).statistic
        1.0
    """
    value = method.value if isinstance(method, CMIMethod) else method
    method = CMIMethod(
        check_option("method", value, [m.value for m in CMIMethod], owner="conditional_mutual_information")
    )
    if max_subset not in (0, 1, 2):
        raise ValueError(f"The 'max_subset' parameter must be one of 0, 1, 2. Got {max_subset!r} instead.")
    check_option("direction", direction, (None, 1, -1), owner="conditional_mutual_information")
    check_resamples(n_resamples, "conditional_mutual_information")
    for col in (quantity, outcome, *axes):
        if col not in frame.columns:
            raise ValueError(f"conditional_mutual_information: column {col!r} is not in the table.")
    if method is CMIMethod.PGDL and not axes:
        raise ValueError("The 'axes' parameter must name at least one axis for the PGDL variant. Got [].")
    axes = list(axes)
    groups = configuration_groups(frame, axes) if groups is None else np.asarray(groups)
    q, g = frame[quantity].to_numpy(float), frame[outcome].to_numpy(float)
    i, j = _pairs(len(frame))
    rng = np.random.default_rng(random_state)
    details: dict[str, object] = {}
    scores, p_up, p_down = {}, [], []
    for subset in _subsets(method, axes, max_subset):
        key = f"S=({', '.join(subset)})"
        score = _Score(method, q, g, _cell_codes(frame, subset, i, j), i, j, direction)
        observed = float(score(g)[0])
        scores[key] = details[key] = observed
        if not np.isfinite(observed) or n_resamples == 0:
            continue
        strata = frame.groupby(list(subset), sort=True, dropna=False).ngroup().to_numpy() if subset else None
        perms = nested_permutations(groups, n_resamples, strata=strata, random_state=rng)
        up, down = perms.pvalues(observed, score(g[perms.index]))
        details[f"p[{key}] greater / less"] = f"{up:.4g} / {down:.4g}"
        p_up.append(up)
        p_down.append(down)
    finite = [v for v in scores.values() if np.isfinite(v)]
    k = len(p_up)
    details["p any greater"] = min(1.0, k * min(p_up)) if k else np.nan
    details["p any less"] = min(1.0, k * min(p_down)) if k else np.nan
    n_pairs = int(((q[i] != q[j]) & (g[i] != g[j])).sum()) if method is CMIMethod.JIANG else len(i)
    return TestResult(
        f"Conditional MI ({method.value}{'' if direction is None else ', signed'}; permutation within strata)",
        float(min(finite)) if finite else np.nan,
        max(p_up) if k else np.nan,
        n_pairs,
        details=details,
        p_greater=max(p_up) if k else np.nan,
        p_less=max(p_down) if k else np.nan,
    )
