"""Property tests of empirical_ntk (hypothesis): symmetry, PSD, per-layer sums, blocking, output modes."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ntk import CASES, IMPLEMENTATIONS, build_case

from theory import empirical_ntk

SUPPORTED_CASES = [name for name in CASES if name != "unsupported_fallback"]
SETTINGS = settings(max_examples=10, deadline=None)


cases = st.sampled_from(SUPPORTED_CASES)
implementations = st.sampled_from(IMPLEMENTATIONS)
seeds = st.integers(0, 2**16)


@SETTINGS
@given(name=cases, implementation=implementations, n=st.integers(1, 6), seed=seeds)
def test_symmetric_and_positive_semidefinite(name, implementation, n, seed):
    model, x, _ = build_case(name, n1=n, seed=seed)
    theta = empirical_ntk(model, x, implementation=implementation)
    n_out = theta.shape[-1]
    matrix = theta.permute(0, 2, 1, 3).reshape(n * n_out, n * n_out)
    assert torch.allclose(matrix, matrix.T, rtol=0, atol=1e-12 * matrix.abs().max())
    assert torch.linalg.eigvalsh(matrix).min() >= -1e-10 * matrix.abs().max()


@SETTINGS
@given(name=cases, implementation=implementations, seed=seeds, symmetric=st.booleans())
def test_per_layer_kernels_sum_to_the_total(name, implementation, seed, symmetric):
    model, x1, x2 = build_case(name, n1=4, n2=3, seed=seed)
    x2 = None if symmetric else x2
    parts = empirical_ntk(model, x1, x2, implementation=implementation, per_layer=True)
    owners = {name.rpartition(".")[0] for name, _ in model.named_parameters()}
    assert set(parts) == owners
    total = empirical_ntk(model, x1, x2, implementation=implementation)
    assert torch.allclose(sum(parts.values()), total, rtol=1e-10, atol=1e-12 * total.abs().max())


@SETTINGS
@given(
    name=cases,
    implementation=implementations,
    n1=st.integers(1, 7),
    n2=st.integers(1, 5),
    block=st.integers(1, 8),
    symmetric=st.booleans(),
    mode=st.sampled_from(["full", "trace", "diag"]),
)
def test_block_size_does_not_change_the_result(name, implementation, n1, n2, block, symmetric, mode):
    model, x1, x2 = build_case(name, n1=n1, n2=n2)
    x2 = None if symmetric else x2
    options = {"trace_outputs": mode == "trace", "diagonal_outputs": mode == "diag", "implementation": implementation}
    whole = empirical_ntk(model, x1, x2, block_size=max(n1, n2), **options)
    blocked = empirical_ntk(model, x1, x2, block_size=block, **options)
    assert torch.allclose(blocked, whole, rtol=1e-10, atol=1e-12 * whole.abs().max())


@SETTINGS
@given(name=cases, implementation=implementations, seed=seeds, symmetric=st.booleans())
def test_trace_and_diagonal_modes_are_reductions_of_the_full_kernel(name, implementation, seed, symmetric):
    model, x1, x2 = build_case(name, n1=4, n2=3, seed=seed)
    x2 = None if symmetric else x2
    full = empirical_ntk(model, x1, x2, implementation=implementation)
    diag = empirical_ntk(model, x1, x2, implementation=implementation, diagonal_outputs=True)
    traced = empirical_ntk(model, x1, x2, implementation=implementation, trace_outputs=True)
    summed = empirical_ntk(model, x1, x2, implementation=implementation, sum_outputs=True)
    atol = 1e-12 * full.abs().max()
    assert torch.allclose(diag, full.diagonal(dim1=2, dim2=3), rtol=1e-10, atol=atol)
    assert torch.allclose(traced, full.diagonal(dim1=2, dim2=3).mean(-1), rtol=1e-10, atol=atol)
    assert torch.allclose(summed, full.sum((2, 3)) / full.shape[-1], rtol=1e-10, atol=atol)


@SETTINGS
@given(name=st.sampled_from(list(CASES)), seed=seeds)
def test_the_implementations_agree(name, seed):
    model, x1, x2 = build_case(name, n1=3, n2=4, seed=seed)
    usable = ["jacobian", "ntk_vp"] if name == "unsupported_fallback" else IMPLEMENTATIONS
    kernels = [empirical_ntk(model, x1, x2, implementation=impl) for impl in usable]
    for other in kernels[1:]:
        assert torch.allclose(other, kernels[0], rtol=1e-10, atol=1e-12 * kernels[0].abs().max())
