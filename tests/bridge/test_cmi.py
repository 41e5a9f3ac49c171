"""Conditional mutual information (Jiang 2020) and the PGDL variant, against hand computations and a
brute-force transcription of the PGDL scoring program's loops."""

import itertools
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.stats import conditional_mutual_information


def test_jiang_three_runs_hand_computed():
    frame = pd.DataFrame({"w": [1, 2, 3], "q": [1.0, 2.0, 3.0], "err": [1.0, 3.0, 2.0]})
    # Ordered pairs (6): (0,1) and (0,2) give (V_q, V_err) = (-, -); (1,2) gives (-, +); the reverses flip both.
    # Joint: (-,-) 2/6, (+,+) 2/6, (-,+) 1/6, (+,-) 1/6; both marginals uniform.
    mi = 2 * math.log(2) - (2 * (1 / 3) * math.log(3) + 2 * (1 / 6) * math.log(6))
    expected_empty = mi / math.log(2)
    # S = {w}: every pair has its own (w_i, w_j) cell, so H(V_err | U) = 0 and that S is undefined (skipped).
    res = conditional_mutual_information(frame, "q", "err", ["w"])
    assert res.details["S=()"] == pytest.approx(expected_empty, rel=1e-12)
    assert np.isnan(res.details["S=(w)"])
    assert res.statistic == pytest.approx(expected_empty, rel=1e-12)
    assert res.n == 6


def test_jiang_four_runs_with_conditioning_hand_computed():
    frame = pd.DataFrame({"w": [1, 1, 2, 2], "q": [1.0, 2.0, 3.0, 4.0], "err": [2.0, 1.0, 3.0, 4.0]})
    # S = {w}: cell (1,1): pairs (0,1), (1,0) -> (-,+), (+,-): I = ln 2, H(V_err) = ln 2, weight 2/12.
    #          cell (2,2): (2,3), (3,2) -> (-,-), (+,+): I = ln 2, H = ln 2, weight 2/12.
    #          cells (1,2), (2,1): 4 pairs each, all (-,-) resp. (+,+): I = H = 0.
    # I(V_q; V_err | U) = (4/12) ln 2 = H(V_err | U)  ->  I_hat = 1.
    # S = {}: 12 pairs: (-,+) 1, (+,-) 1, (-,-) 5, (+,+) 5.
    h_joint = -2 * (1 / 12) * math.log(1 / 12) - 2 * (5 / 12) * math.log(5 / 12)
    expected_empty = (2 * math.log(2) - h_joint) / math.log(2)
    res = conditional_mutual_information(frame, "q", "err", ["w"])
    assert res.details["S=(w)"] == pytest.approx(1.0, rel=1e-12)
    assert res.details["S=()"] == pytest.approx(expected_empty, rel=1e-12)
    assert res.statistic == pytest.approx(min(1.0, expected_empty), rel=1e-12)


def _pgdl_brute(frame, quantity, outcome, axes):
    """A literal loop version of the PGDL 2020 scoring program's conditional_mutual_information (own pairs
    excluded): per pair of hyperparameters, a 2 x 2 table per cell of (h1_i h1_j h2_i h2_j) values, unweighted
    mean MI over cells divided by the mean entropy of the outcome sign, minimum over pairs."""
    best = math.inf
    for h1, h2 in itertools.combinations(axes, 2):
        tables = defaultdict(lambda: np.zeros((2, 2)))
        for i, j in itertools.permutations(range(len(frame)), 2):
            a, b = frame.iloc[i], frame.iloc[j]
            g = 0 if a[outcome] > b[outcome] else 1
            m = 0 if a[quantity] > b[quantity] else 1
            tables[(a[h1], b[h1], a[h2], b[h2])][g, m] += 1
        mis, hs = [], []
        for t in tables.values():
            p = t / t.sum()
            pg, pm = p.sum(1), p.sum(0)
            mis.append(sum(p[x, y] * math.log(p[x, y] / (pg[x] * pm[y])) for x in (0, 1) for y in (0, 1) if p[x, y]))
            hs.append(-sum(v * math.log(v) for v in pg if v > 0))
        best = min(best, np.mean(mis) / np.mean(hs))
    return best


def test_pgdl_matches_literal_loops():
    rng = np.random.default_rng(0)
    grid = list(itertools.product([1, 2, 3], [0.1, 0.2], [0, 1]))
    frame = pd.DataFrame(grid, columns=["width", "lr", "seed"])
    frame["q"] = frame["width"] + rng.normal(0, 0.7, len(frame))
    frame["err"] = frame["q"] + 3 * frame["lr"] + rng.normal(0, 0.7, len(frame))
    res = conditional_mutual_information(frame, "q", "err", ["width", "lr", "seed"], method="pgdl2020")
    assert res.statistic == pytest.approx(_pgdl_brute(frame, "q", "err", ["width", "lr", "seed"]), rel=1e-10)


def test_perfect_and_independent_signs():
    frame = pd.DataFrame({"w": [1, 2, 3, 4, 5], "q": [1.0, 2, 3, 4, 5]})
    frame["err"] = frame["q"] ** 2
    assert conditional_mutual_information(frame, "q", "err", ["w"], max_subset=0).statistic == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "jiang"}, "'method' parameter of conditional_mutual_information must be one of"),
        ({"max_subset": 3}, "'max_subset' parameter must be one of 0, 1, 2"),
        ({"axes": ["depth"]}, "column 'depth' is not in the table"),
    ],
)
def test_cmi_validation(kwargs, match):
    frame = pd.DataFrame({"w": [1, 2, 3], "q": [1.0, 2, 3], "err": [1.0, 3, 2]})
    args = {"axes": ["w"], **kwargs}
    with pytest.raises(ValueError, match=match):
        conditional_mutual_information(frame, "q", "err", **args)


@given(st.lists(st.tuples(st.integers(1, 3), st.integers(-9, 9), st.integers(-9, 9)), min_size=4, max_size=10))
def test_cmi_depends_only_on_signs(rows):
    """Strictly increasing transforms of the quantity and the outcome leave every Î_S, signed or not, and its
    permutation p-values (same permutations) unchanged."""
    frame = pd.DataFrame(rows, columns=["w", "q", "err"])
    moved = frame.assign(q=np.exp(frame["q"] / 5), err=frame["err"] ** 3 + 1.0 * frame["err"])
    for method in ("jiang2020", "pgdl2020"):
        for direction in (None, 1, -1):
            a, b = (
                conditional_mutual_information(f, "q", "err", ["w"], method=method, direction=direction,
                                               n_resamples=49, random_state=0)
                for f in (frame, moved)
            )  # fmt: skip
            scores = {k: v for k, v in a.details.items() if k.startswith("S=")}
            assert scores == pytest.approx({k: b.details[k] for k in scores}, nan_ok=True)
            assert (a.p_greater, a.p_less) == pytest.approx((b.p_greater, b.p_less), nan_ok=True)
