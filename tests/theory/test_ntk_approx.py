"""The kernels for large N: the pseudo-NTK (Mohamadi et al. 2023) and count-sketched kernels.

References are the brute-force float64 kernels of test_ntk; the sketch's expectation is checked by Monte
Carlo over random_state with a 5-standard-error band, its error against the exact kernel as k grows.
"""

from __future__ import annotations

import pytest
import torch
from test_ntk import CASES, IMPLEMENTATIONS, assert_close, build_case, reference
from torch import nn

from theory import empirical_ntk

SUPPORTED = [name for name in CASES if name != "unsupported_fallback"]


@pytest.mark.parametrize("name", list(CASES))
def test_pseudo_ntk_is_the_kernel_of_the_scaled_summed_outputs(name):
    """Θ_p(x, x') = (1/O) Σ_{o,o'} Θ_oo'(x, x'), the NTK of g = (1/√O) Σ_o f_o."""
    model, x1, x2 = build_case(name)
    full = reference(name)[1]
    expected = full.sum((2, 3)) / full.shape[-1]
    for implementation in IMPLEMENTATIONS if name in SUPPORTED else ["jacobian", "ntk_vp"]:
        assert_close(empirical_ntk(model, x1, x2, sum_outputs=True, implementation=implementation), expected)


def _relative_distance(width: int) -> float:
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(6, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 5))
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    f, x = f.double(), x.double()
    traced, pseudo = empirical_ntk(f, x, trace_outputs=True), empirical_ntk(f, x, sum_outputs=True)
    return ((pseudo - traced).norm() / traced.norm()).item()


def test_pseudo_ntk_approaches_the_traced_kernel_as_the_readout_widens():
    """Mohamadi et al. 2023, Thm. 1: at initialisation ‖pNTK − Θ_tr‖_F/‖Θ_tr‖_F → 0 with the readout width.
    Measured here (seeded): 0.18 at width 8, 0.023 at width 512."""
    narrow, wide = _relative_distance(8), _relative_distance(512)
    assert wide < 0.05
    assert wide < narrow / 4


@pytest.mark.parametrize("name", SUPPORTED)
@pytest.mark.parametrize("implementation", ["structured", "jacobian"])
def test_sketch_wider_than_every_layer_is_exact(name, implementation):
    model, x1, x2 = build_case(name)
    theta = empirical_ntk(model, x1, x2, implementation=implementation, sketch_dim=10**6, random_state=0)
    assert_close(theta, reference(name)[1])


@pytest.mark.parametrize("implementation", ["structured", "jacobian"])
def test_sketched_kernel_is_unbiased(implementation):
    """The mean of 200 sketches (k = 8 of 12-148 coordinates per layer) is within 5 standard errors of Θ."""
    model, x1, _ = build_case("resnet_norms", n1=3)
    exact = reference_kernel(model, x1)
    draws = torch.stack(
        [empirical_ntk(model, x1, implementation=implementation, sketch_dim=8, random_state=s) for s in range(200)]
    )
    mean, se = draws.mean(0), draws.std(0) / 200**0.5
    assert (draws.std(0) > 0).any()  # the sketch is random
    assert ((mean - exact).abs() <= 5 * se + 1e-12).all()


def reference_kernel(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return empirical_ntk(model, x, implementation="jacobian")


def test_sketch_error_falls_as_the_sketch_grows():
    model, x1, _ = build_case("resnet_norms", n1=6)
    exact = reference_kernel(model, x1)

    def error(k: int) -> float:
        kernels = [empirical_ntk(model, x1, sketch_dim=k, random_state=s) for s in range(8)]
        return sum(((t - exact).norm() / exact.norm()).item() for t in kernels) / len(kernels)

    small, large = error(4), error(32)
    assert large < small / 2


@pytest.mark.parametrize("mode", [{}, {"trace_outputs": True}, {"diagonal_outputs": True}, {"sum_outputs": True}])
def test_sketch_is_reproducible_and_its_layers_sum_to_the_total(mode):
    model, x1, x2 = build_case("resnet_norms")
    options = {"sketch_dim": 8, "random_state": 3, **mode}
    total = empirical_ntk(model, x1, x2, **options)
    assert torch.equal(total, empirical_ntk(model, x1, x2, **options))
    assert not torch.equal(total, empirical_ntk(model, x1, x2, **{**options, "random_state": 4}))
    parts = empirical_ntk(model, x1, x2, per_layer=True, **options)
    assert_close(sum(parts.values()), total)


def test_sketch_block_size_does_not_change_the_sketch():
    model, x1, _ = build_case("resnet_norms", n1=7)
    whole = empirical_ntk(model, x1, sketch_dim=8, random_state=0, trace_outputs=True)
    blocked = empirical_ntk(model, x1, sketch_dim=8, random_state=0, trace_outputs=True, block_size=2)
    assert_close(blocked, whole)


def test_auto_sketches_unsupported_models_with_the_jacobian():
    model, x1, _ = build_case("unsupported_fallback")
    theta = empirical_ntk(model, x1, sketch_dim=10**6)
    assert_close(theta, reference("unsupported_fallback")[0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sum_outputs": True, "trace_outputs": True}, "at most one may be True"),
        ({"sum_outputs": True, "diagonal_outputs": True}, "at most one may be True"),
        ({"sketch_dim": 0}, "'sketch_dim' parameter of empirical_ntk must be a positive int or None"),
        ({"sketch_dim": 2.5}, "'sketch_dim' parameter of empirical_ntk must be a positive int or None"),
        ({"sketch_dim": 4, "random_state": "0"}, "'random_state' parameter of empirical_ntk must be an int or None"),
        ({"sketch_dim": 4, "implementation": "ntk_vp"}, "needs implementation 'structured', 'jacobian' or 'auto'"),
    ],
)
def test_bad_approximation_options_are_named(options, message):
    model, x1, _ = build_case("mlp")
    with pytest.raises(ValueError, match=message):
        empirical_ntk(model, x1, **options)


def test_unseeded_sketches_differ_and_leave_the_global_generator_alone():
    model, x1, _ = build_case("resnet_norms")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first, second = (empirical_ntk(model, x1, sketch_dim=8, trace_outputs=True) for _ in range(2))
    assert torch.equal(torch.rand(3), expected_next)
    assert not torch.equal(first, second)
