"""Seeds nested in configurations: exchangeability-block permutations and the configuration bootstrap."""

import math
from math import factorial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.stats.nested import Interval, bootstrap_configurations, nested_permutations, two_sided


def _blocks_kept(index: np.ndarray, groups: np.ndarray) -> bool:
    """Every permutation moves the runs of a configuration together, into one configuration of the same size."""
    for row in index:
        for g in np.unique(groups):
            moved = groups[row[groups == g]]
            if len(np.unique(moved)) != 1 or (groups == moved[0]).sum() != (groups == g).sum():
                return False
    return True


def test_small_groups_are_enumerated_exactly():
    groups = np.repeat([0, 1, 2], 2)  # 3! block orders x (2!)^3 seed orders
    perms = nested_permutations(groups, 999, random_state=0)
    assert perms.exact and len(perms.index) == factorial(3) * 2**3
    assert len({tuple(r) for r in perms.index}) == 48 and _blocks_kept(perms.index, groups)
    assert perms.pvalues(1.0, np.r_[1.0, np.zeros(47)]) == (1 / 48, 1.0)  # the identity is in the group


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=2, max_size=7), st.integers(0, 2**16))
def test_random_permutations_keep_configurations_and_strata(sizes, seed):
    groups = np.repeat(np.arange(len(sizes)), sizes)
    strata = (np.arange(len(sizes)) % 2)[groups]
    perms = nested_permutations(groups, 40, strata=strata, random_state=seed)
    assert _blocks_kept(perms.index, groups)
    assert (strata[perms.index] == strata).all()  # no run leaves its stratum
    assert all(sorted(row) == list(range(len(groups))) for row in perms.index)  # permutations of the runs


def test_monte_carlo_pvalues_count_the_observed_statistic():
    groups = np.repeat(np.arange(8), 3)
    perms = nested_permutations(groups, 99, random_state=1)
    assert not perms.exact and perms.index.shape == (99, 24)
    assert perms.pvalues(5.0, np.zeros(99)) == (1 / 100, 1.0)
    assert all(math.isnan(p) for p in perms.pvalues(np.nan, np.zeros(99)))
    assert math.isnan(two_sided(np.nan, 0.1)) and two_sided(0.01, 0.99) == 0.02


def test_bootstrap_falls_back_to_percentile_when_bca_is_undefined():
    """A statistic equal in every resample makes BCa undefined (scipy warns and returns NaN): the interval is
    the percentile interval of the same resamples, and it says so."""
    groups = np.repeat(np.arange(5), 2)
    interval = bootstrap_configurations(lambda c: np.full(len(c), 0.7), groups, n_resamples=99,
                                        confidence_level=0.9, random_state=0)  # fmt: skip
    assert interval.defined and (interval.low, interval.high) == (0.7, 0.7)
    assert interval.method.startswith("percentile of 99 defined resamples (BCa undefined)")
    mostly_undefined = bootstrap_configurations(lambda c: np.full(len(c), np.nan), groups, n_resamples=99,
                                                confidence_level=0.9, random_state=0)  # fmt: skip
    assert not mostly_undefined.defined and mostly_undefined.method.startswith("none")
    few = bootstrap_configurations(lambda c: c.sum(axis=1), np.repeat([0, 1], 3), n_resamples=99,
                                   confidence_level=0.9)  # fmt: skip
    assert not few.defined and few.method == "none (2 configurations; the bootstrap needs 3)"


def test_bootstrap_pvalues_invert_the_percentile_interval():
    interval = Interval(0.1, 0.5, "percentile", distribution=np.arange(1, 100) / 100)  # 0.01, ..., 0.99
    assert interval.pvalue_below(0.505) == pytest.approx((1 + 49) / 100)
    assert interval.pvalue_above(0.015) == pytest.approx(2 / 100)
    assert math.isnan(Interval(np.nan, np.nan, "none").pvalue_below(0.2))
    low, high = interval  # unpacks like the tuple it replaces
    assert (low, high) == (0.1, 0.5)
