"""Any device: the eNTK, its matrix-free operator and the spectra run where the model's inputs live.

Parametrised over the devices torch can use here (the CPU everywhere, CUDA/MPS where present); the "meta"
device, which holds no data, checks on any machine that no host tensor is created along the way (mixing
devices raises).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_ntk import IMPLEMENTATIONS, assert_close, build_case, reference

from bridge.predict import predict
from theory import empirical_ntk, kernel_eigh, ntk_operator, top_eigenpairs

DEVICES = ["cpu"] + ["cuda"] * torch.cuda.is_available() + ["mps"] * torch.backends.mps.is_available()
MODES = [{}, {"trace_outputs": True}, {"diagonal_outputs": True}, {"sum_outputs": True}]


def _on(device: str, name: str):
    model, x1, x2 = build_case(name)
    dtype = torch.float32 if device == "mps" else torch.float64  # MPS has no float64

    def move(x: torch.Tensor) -> torch.Tensor:
        return x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)

    return model.to(device=device, dtype=dtype), move(x1), move(x2)


def _reduce(full: torch.Tensor, mode: dict) -> torch.Tensor:
    if "trace_outputs" in mode:
        return full.diagonal(dim1=2, dim2=3).mean(-1)
    if "diagonal_outputs" in mode:
        return full.diagonal(dim1=2, dim2=3)
    return full.sum((2, 3)) / full.shape[-1] if "sum_outputs" in mode else full


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", ["resnet_norms", "embedding_sequence"])
def test_kernels_on_each_device_match_the_reference(device, implementation, name):
    model, x1, x2 = _on(device, name)
    for mode in MODES:
        theta = empirical_ntk(model, x1, x2, implementation=implementation, **mode)
        assert theta.device.type == device
        expected = _reduce(reference(name)[1], mode)
        if device == "mps":
            assert torch.allclose(theta.cpu().double(), expected, rtol=1e-4, atol=1e-5 * expected.abs().max())
        else:
            assert_close(theta.cpu(), expected)


@pytest.mark.parametrize("name", ["resnet_norms", "sequence_groupnorm", "embedding", "embedding_sequence", "conv1d",
                                  "unsupported_fallback"])  # fmt: skip
def test_no_host_tensor_is_created_on_the_way(name):
    """On the data-free meta device any host tensor mixed into the computation would raise."""
    model, x1, x2 = (t.to("meta") for t in build_case(name))
    for implementation in ["auto", "jacobian", "ntk_vp"]:
        for mode in MODES if implementation == "auto" else MODES[:1]:
            theta = empirical_ntk(model, x1, x2, implementation=implementation, **mode)
            assert theta.device.type == "meta" and theta.shape == _reduce(reference(name)[1], mode).shape
    sketched = empirical_ntk(model, x1, sketch_dim=4, random_state=0, trace_outputs=True)
    assert sketched.device.type == "meta" and sketched.shape == (len(x1), len(x1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("block_size", [None, 2])
def test_operator_products_match_the_formed_kernel(device, block_size):
    model, x1, _ = _on(device, "resnet_norms")
    full = reference("resnet_norms")[0]
    n, n_out = full.shape[0], full.shape[-1]
    cases = [
        ({}, full.permute(0, 2, 1, 3).reshape(n * n_out, n * n_out)),
        ({"trace_outputs": True}, _reduce(full, {"trace_outputs": True})),
        ({"sum_outputs": True}, _reduce(full, {"sum_outputs": True})),
    ]
    for options, expected in cases:
        op = ntk_operator(model, x1, block_size=block_size, dtype=x1.dtype, **options)
        formed = op @ np.eye(op.shape[0])
        assert np.allclose(formed, expected.numpy(), rtol=0, atol=1e-5 * expected.abs().max().item())


def test_lanczos_on_the_operator_finds_the_top_eigenvalues():
    model, x1, _ = build_case("resnet_norms", n1=12)
    exact = kernel_eigh(empirical_ntk(model, x1)).eigenvalues[:3]
    top = top_eigenpairs(ntk_operator(model, x1, block_size=5), 3, random_state=0).eigenvalues
    assert np.allclose(top, exact, rtol=1e-8)


@pytest.mark.parametrize("device", DEVICES)
def test_kernel_eigh_of_a_tensor_runs_on_its_device_and_matches_scipy(device):
    kernel = reference("conv2d_batchnorm")[0]
    on_device = kernel_eigh(kernel.to(device=device, dtype=torch.float32 if device == "mps" else torch.float64))
    on_host = kernel_eigh(kernel.numpy())
    tol = 1e-4 if device == "mps" else 1e-10
    assert np.allclose(on_device.eigenvalues, on_host.eigenvalues, rtol=tol, atol=tol * on_host.eigenvalues[0])


def test_predict_on_a_device_matches_the_host():
    torch.manual_seed(0)
    data = (torch.randn(12, 5), torch.randint(0, 3, (12,)), torch.randn(6, 5), torch.randint(0, 3, (6,)))

    def factory():
        return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))

    host = predict(factory, data, ["ntk", "effective_parameters"], n_train=12, n_test=6, ridge=1e-3)
    for device in DEVICES:
        other = predict(factory, data, ["ntk", "effective_parameters"], n_train=12, n_test=6, ridge=1e-3, device=device)
        assert other.values.keys() == host.values.keys()
        assert np.allclose(list(other.values.values()), list(host.values.values()), rtol=1e-6)
    with pytest.raises(ValueError, match="'device' parameter of predict"):
        predict(factory, data, ["ntk"], device="tpu")
