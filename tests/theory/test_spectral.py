"""theory.spectral against dense float64 references (numpy.linalg, explicit formulas written out)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from theory import empirical_ntk, ntk_operator
from theory.spectral import (
    AlignmentMethod,
    effective_dimension,
    hutchinson_trace,
    kernel_distance,
    kernel_eigh,
    kernel_target_alignment,
    top_eigenpairs,
)


def psd(n: int, rank: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((n, rank))
    return a @ a.T


def small_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    return model, torch.randn(7, 4, dtype=torch.float64)


def test_kernel_eigh_matches_numpy_and_reconstructs():
    k = psd(6, 6, 0)
    result = kernel_eigh(k)
    assert np.allclose(result.eigenvalues, np.sort(np.linalg.eigvalsh(k))[::-1], rtol=1e-12)
    recon = result.eigenvectors @ np.diag(result.eigenvalues) @ result.eigenvectors.T
    assert np.allclose(recon, k, atol=1e-10) and result.n_clipped == 0


def test_kernel_eigh_clips_negative_round_off_and_reports_it():
    k = psd(5, 2, 1) - 1e-9 * np.eye(5)  # rank 2 minus a tiny shift: three negative eigenvalues
    clipped, raw = kernel_eigh(k), kernel_eigh(k, clip=False)
    assert clipped.n_clipped == 3 and np.all(clipped.eigenvalues >= 0)
    assert np.isclose(clipped.min_raw, -1e-9, rtol=1e-4) and np.all(np.diff(raw.eigenvalues) <= 0)
    assert np.allclose(clipped.eigenvalues[:2], raw.eigenvalues[:2])


def test_four_axis_ntk_is_flattened_sample_major():
    model, x = small_model()
    theta = empirical_ntk(model, x)
    flat = theta.permute(0, 2, 1, 3).reshape(14, 14).numpy()
    assert np.allclose(kernel_eigh(theta).eigenvalues, np.sort(np.linalg.eigvalsh(flat))[::-1], atol=1e-12)


def test_lanczos_on_the_matrix_free_operator_matches_the_dense_kernel():
    model, x = small_model()
    op = ntk_operator(model, x)
    dense = kernel_eigh(empirical_ntk(model, x))
    top = top_eigenpairs(op, 3, random_state=0)
    assert np.allclose(top.eigenvalues, dense.eigenvalues[:3], rtol=1e-9)
    overlaps = np.abs(np.sum(top.eigenvectors * dense.eigenvectors[:, :3], axis=0))
    assert np.allclose(overlaps, 1, atol=1e-6)
    matrix = empirical_ntk(model, x).permute(0, 2, 1, 3).reshape(14, 14).numpy()
    v = np.random.default_rng(0).standard_normal(14)
    assert np.allclose(op.matvec(v), matrix @ v, rtol=1e-10)


def test_hutchinson_is_exact_on_diagonal_and_unbiased_on_the_model_kernel():
    assert hutchinson_trace(np.diag([1.0, 2.0, 5.0]), n_probes=3, random_state=4).statistic == 8.0
    model, x = small_model()
    exact = float(torch.einsum("nnoo->", empirical_ntk(model, x)))
    est = hutchinson_trace(ntk_operator(model, x), n_probes=200, random_state=0)
    low, high = est.conf_int(alpha=1e-4)
    assert low <= exact <= high and est.std_error > 0
    assert est == hutchinson_trace(ntk_operator(model, x), n_probes=200, random_state=0)
    assert "200 probes" in est.summary()


def test_effective_dimension_by_hand_and_limits():
    assert effective_dimension([1.0, 3.0], 1.0) == pytest.approx(0.5 + 0.75)
    curve = effective_dimension(np.array([4.0, 1.0, 0.0, -1e-12]), np.array([1e-12, 1.0, 1e12]))
    assert curve == pytest.approx([2.0, 0.8 + 0.5, 5e-12], rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), z1=st.floats(1e-3, 1e3), z2=st.floats(1e-3, 1e3))
def test_effective_dimension_decreases_in_z_and_is_at_most_n(seed, z1, z2):
    eigs = np.random.default_rng(seed).exponential(size=8)
    low, high = sorted([z1, z2])
    assert 0 <= effective_dimension(eigs, high) <= effective_dimension(eigs, low) <= 8


def test_alignment_matches_the_written_out_formulas():
    k = psd(6, 3, 2)
    y = np.random.default_rng(3).standard_normal((6, 2))
    h = np.eye(6) - np.ones((6, 6)) / 6
    kc, yy = h @ k @ h, y @ y.T
    centred = np.trace(kc @ yy) / (np.linalg.norm(kc) * np.linalg.norm(yy))
    kumar = np.trace(y.T @ k @ y) / (np.linalg.norm(k) * np.linalg.norm(y) ** 2)
    assert kernel_target_alignment(k, y) == pytest.approx(centred, rel=1e-12)
    assert kernel_target_alignment(torch.tensor(k), torch.tensor(y), method="kumar2024") == pytest.approx(kumar)
    y1 = y[:, 0] - y[:, 0].mean()
    assert kernel_target_alignment(np.outer(y1, y1), y1) == pytest.approx(1.0)
    assert kernel_target_alignment(np.outer(y1, y1), y1, method=AlignmentMethod.KUMAR2024) == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 1e3))
def test_kernel_distance_formula_scale_invariance_and_range(seed, scale):
    k1, k2 = psd(5, 3, seed), psd(5, 3, seed + 1)
    expected = 1 - np.sum(k1 * k2) / (np.linalg.norm(k1) * np.linalg.norm(k2))
    assert kernel_distance(k1, k2) == pytest.approx(expected, rel=1e-12)
    assert kernel_distance(k1, scale * k2) == pytest.approx(kernel_distance(k2, k1), rel=1e-9)
    assert abs(kernel_distance(k1, scale * k1)) < 1e-12 and 0 <= kernel_distance(k1, k2) <= 1


def test_bad_input_names_argument_expected_and_actual():
    with pytest.raises(ValueError, match=r"'kernel' argument must be a square .*\(2, 3\)"):
        kernel_eigh(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="must be finite"):
        kernel_eigh(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match=r"'k' parameter of top_eigenpairs must be an int in \[1, 3\]. Got 4"):
        top_eigenpairs(np.eye(4), 4)
    with pytest.raises(ValueError, match="'n_probes' parameter of hutchinson_trace must be a positive int"):
        hutchinson_trace(np.eye(3), n_probes=0)
    with pytest.raises(ValueError, match="'z' parameter of effective_dimension must be finite and > 0. Got 0"):
        effective_dimension([1.0], 0)
    with pytest.raises(ValueError, match=r"'y' argument must have 3 rows like the kernel. Got shape \(2, 1\)"):
        kernel_target_alignment(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match=r"'method' parameter of kernel_target_alignment must be one of"):
        kernel_target_alignment(np.eye(3), np.ones(3), method="cka")
    with pytest.raises(ValueError, match=r"'kernel2' argument must have the shape of kernel1 \(3, 3\)"):
        kernel_distance(np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match=r"'alpha' parameter of TraceEstimate.conf_int"):
        hutchinson_trace(np.eye(2), n_probes=2).conf_int(alpha=1.5)
