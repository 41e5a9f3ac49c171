"""Negative controls: prime count against a trial-division reference, parameter count, random measure."""

import zlib

import numpy as np
import pytest
import torch
import torch.nn.utils.prune
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from empirics.controls import (
    CONTROL_QUANTITIES,
    PRIME_SCALES,
    RANDOM_MEASURE,
    count_primes,
    finalize_controls,
    param_count,
    prime_count,
    random_measure,
)
from empirics.phenomena.base import Snapshot
from empirics.recorder import Recorder


def _is_prime_reference(k: int) -> bool:
    return k >= 2 and all(k % d for d in range(2, int(k**0.5) + 1))


def _prime_count_reference(model: torch.nn.Module, scale: float) -> int:
    """Element-by-element float64 loop: round half to even (Python's round), then trial division."""
    return sum(_is_prime_reference(round(float(v) * scale)) for p in model.parameters() for v in p.detach().flatten())


def _mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)).double()


@given(st.integers(0, 10_000), st.sampled_from([1.0, 3.0, 10.0, 37.5, 100.0]))
def test_prime_count_matches_elementwise_reference(seed, scale):
    model = _mlp(seed)
    assert prime_count(model, scale) == _prime_count_reference(model, scale)


@given(arrays(np.int64, st.integers(0, 60), elements=st.integers(-50, 500)))
def test_count_primes_matches_trial_division(values):
    assert count_primes(values) == sum(_is_prime_reference(int(v)) for v in values)


def test_prime_count_known_values_and_small_init_has_no_primes():
    layer = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.7, 1.2, -0.7, 2.9]]))
    # x3: 2.1 -> 2 (prime), 3.6 -> 4, -2.1 -> -2 (negatives are not prime), 8.7 -> 9
    assert prime_count(layer, 3.0) == 1
    # x10: 7 (prime), 12, -7, 29 (prime)
    assert prime_count(layer, 10.0) == 2


def test_prime_count_is_zero_for_uniform_small_init():
    """Weights ~ U(±1/sqrt(fan_in)) with fan_in >= 4 round to 0 (the paper's confound): no primes at scale 1."""
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 32)
    assert prime_count(model, 1.0) == 0
    assert prime_count(model, 50.0) > 0


def test_prime_count_rejects_non_finite_scale():
    with pytest.raises(ValueError, match="'scale' parameter of prime_count"):
        prime_count(torch.nn.Linear(2, 2), float("nan"))


def test_pruned_weights_count_as_zero_and_are_not_parameters():
    layer = torch.nn.Linear(3, 2, bias=True)
    with torch.no_grad():
        layer.weight.fill_(0.2)  # x10 -> 2, prime
        layer.bias.fill_(0.3)  # x10 -> 3, prime
    assert prime_count(layer, 10.0) == 8 and param_count(layer) == 8
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    torch.nn.utils.prune.custom_from_mask(layer, "weight", mask)
    assert param_count(layer) == 8 - 3
    assert prime_count(layer, 10.0) == 5


def test_controls_are_registered_quantities():
    model = _mlp(1)
    snap = Snapshot(model, model, torch.zeros(2, 5), torch.zeros(2), torch.zeros(2, 5), torch.zeros(2), scale=10.0)
    recorder = Recorder(CONTROL_QUANTITIES, [0])
    recorder.record(0, snap)
    got = {name: value for _, name, value in recorder.rows}
    fixed = {f"prime_count_x{s}": _prime_count_reference(model, float(s)) for s in PRIME_SCALES}  # one shared rule
    assert got == {"prime_count": _prime_count_reference(model, 10.0), "param_count": 5 * 7 + 7 + 7 * 3 + 3, **fixed}
    assert fixed["prime_count_x10"] == got["prime_count"] and fixed["prime_count_x100"] > 0


def _lag_autocorr(z: np.ndarray, lag: int) -> float:
    """Circular sample autocorrelation at ``lag`` (float64 loop)."""
    n = z.size
    zc = z - z.mean()
    return sum(zc[i] * zc[(i + lag) % n] for i in range(n)) / sum(zc**2)


@given(
    arrays(np.float64, st.integers(3, 40), elements=st.floats(-1e3, 1e3, allow_subnormal=False)),
    st.integers(0, 2**32 - 1),
)
def test_phase_surrogate_keeps_circular_autocorrelation_and_standardises(x, seed):
    if np.std(x) < 1e-9 * max(1.0, np.abs(x).max()):
        x = x + np.arange(x.size)
    out = random_measure(x, seed)
    z = (x - x.mean()) / x.std()
    assert out.shape == x.shape
    assert abs(out.mean()) < 1e-9 and abs(out.std() - 1.0) < 1e-9
    for lag in range(1, min(4, x.size)):
        assert abs(_lag_autocorr(out, lag) - _lag_autocorr(z, lag)) < 1e-8


def test_random_measure_is_seeded_scale_free_and_not_the_trajectory():
    x = np.exp(-np.linspace(0, 4, 30)) + 0.1
    a, b = random_measure(x, 3), random_measure(x, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(random_measure(5.0 * x - 2.0, 3), a, atol=1e-10)
    assert not np.allclose(random_measure(x, 4), a)
    assert abs(np.corrcoef(a, x)[0, 1]) < 0.999


def test_ar1_surrogate_matches_lag_one_autocorrelation():
    rng = np.random.default_rng(0)
    x = np.zeros(3000)
    for t in range(1, x.size):
        x[t] = 0.8 * x[t - 1] + rng.standard_normal()
    out = random_measure(x, 1, method="ar1")
    assert abs(_lag_autocorr(out, 1) - 0.8) < 0.06
    assert abs(out.mean()) < 1e-9


def test_random_measure_degenerate_and_invalid_inputs():
    assert random_measure([1.0, 2.0], 0).shape == (2,)
    constant = random_measure(np.ones(10), 0)
    assert constant.std() > 0  # i.i.d. noise, not the constant
    with pytest.raises(ValueError, match="'method' parameter of random_measure must be one of"):
        random_measure([1.0, 2.0, 3.0], 0, method="shuffle")
    with pytest.raises(ValueError, match="'trajectory' parameter of random_measure"):
        random_measure([1.0, np.inf, 3.0], 0)


def test_finalize_controls_follows_test_loss_steps():
    steps = [0, 1, 3, 10, 30, 100]
    rows = [(s, "train_loss", 1.0 / (s + 1)) for s in steps] + [(s, "test_loss", 2.0 / (s + 1)) for s in steps]
    rows += [(s, "prime_count", 0.0) for s in steps] + [(999, "grokking_gap", 5.0)]
    out = finalize_controls(rows, seed=0)
    assert out[: len(rows)] == rows
    added = [(s, v) for s, n, v in out if n == RANDOM_MEASURE]
    assert [s for s, _ in added] == steps
    source = np.array([2.0 / (s + 1) for s in steps])
    expected = random_measure(source, [0, zlib.crc32(source.tobytes())])
    np.testing.assert_allclose([v for _, v in added], expected)
    assert finalize_controls(out, seed=0) == out


def test_finalize_controls_falls_back_to_first_non_control_name_and_differs_between_runs():
    rows_a = [(0, "prime_count", 1.0)] + [(s, "test_mse", 1.0 + s**0.5) for s in range(6)]
    rows_b = [(0, "prime_count", 1.0)] + [(s, "test_mse", 1.0 + s) for s in range(6)]
    a = [v for _, n, v in finalize_controls(rows_a, 0) if n == RANDOM_MEASURE]
    b = [v for _, n, v in finalize_controls(rows_b, 0) if n == RANDOM_MEASURE]
    assert len(a) == len(b) == 6 and not np.allclose(a, b)
    assert finalize_controls([(0, "prime_count", 3.0)], 0) == [(0, "prime_count", 3.0)]
