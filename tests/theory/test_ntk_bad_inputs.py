"""Bad input to the kernel and spectrum entry points: one table per entry point, each row a case, the error class
it must raise and a fragment of the message. Add a row to cover a new case.

The guards of ``theory.ntk`` probe the model on a few samples before any work: a forward that mixes samples,
modifies its input in place or is random, NaN/Inf inputs and inputs the model cannot take each raise a named
``NTKInputError``; a kernel that cannot fit in memory raises ``KernelMemoryError`` before it is allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from theory import (
    InPlaceInputError,
    InputMismatchError,
    KernelMemoryError,
    NondeterministicModelError,
    NonFiniteInputError,
    NTKInputError,
    SampleMixingError,
    check_kernel_memory,
    effective_dimension,
    empirical_ntk,
    hutchinson_trace,
    jacobian,
    kernel_distance,
    kernel_eigh,
    kernel_target_alignment,
    ntk_operator,
    top_eigenpairs,
)
from theory.ntk import _guards, ntk_vp
from theory.ntk._model import make_view

IMPLEMENTATIONS = ["auto", "structured", "jacobian", "ntk_vp"]


class Wrap(nn.Module):
    """A linear layer behind an arbitrary forward ``body(layer, x)``."""

    def __init__(self, body: Callable[[nn.Module, torch.Tensor], torch.Tensor], d_in: int = 3) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, 2)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.lin, x)


def mixes_samples() -> nn.Module:
    return Wrap(lambda lin, x: lin(x - x.mean(0)))


def scales_input_in_place() -> nn.Module:
    return Wrap(lambda lin, x: lin(x.mul_(2.0)))


def writes_into_input_view() -> nn.Module:
    def body(lin, x):
        x[:, 0] += 1.0
        return lin(x)

    return Wrap(body)


def functional_dropout() -> nn.Module:
    return Wrap(lambda lin, x: F.dropout(lin(x), 0.5, training=True))


def adds_noise() -> nn.Module:
    return Wrap(lambda lin, x: lin(x) + torch.randn(x.shape[0], 2, dtype=x.dtype))


def batch_statistics() -> nn.Module:
    """Batch normalisation hidden in a functional call, which no module check sees; fails on one sample alone."""
    return Wrap(lambda lin, x: lin(F.batch_norm(x, None, None, training=True)))


class Stateful(nn.Module):
    """A linear layer whose forward also updates its own state in place: a call counter (a buffer the outputs do not
    read), running input means it subtracts (a buffer they read), or a clamp of its weight (a parameter)."""

    def __init__(self, update: str) -> None:
        super().__init__()
        self.lin, self.update = nn.Linear(3, 2), update
        self.register_buffer("calls", torch.zeros(()))
        self.register_buffer("running_mean", torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.update == "counter":
            self.calls.add_(1.0)
        elif self.update == "running_mean":
            self.running_mean.mul_(0.9).add_(0.1 * x.detach().mean(0))
            x = x - self.running_mean
        else:
            with torch.no_grad():
                self.lin.weight.clamp_(-0.1, 0.1)
        return self.lin(x)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def conv() -> nn.Module:
    return nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 2))


def embedding() -> nn.Module:
    return nn.Sequential(nn.Embedding(5, 3), nn.Flatten(), nn.Linear(6, 2))


def x3(n: int = 6) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(n), dtype=torch.float64)


def with_nan(x: torch.Tensor, row: int = 3) -> torch.Tensor:
    x = x.clone()
    x[row, 1] = float("nan")
    return x


# (model, x1, keyword arguments, error class, message fragment)
EMPIRICAL_NTK: dict[str, tuple[Callable[[], nn.Module], Callable[[], Any], dict, type[Exception], str]] = {
    "mixes samples": (mixes_samples, x3, {}, SampleMixingError, r"mixes samples.*x - x\.mean\(0\)"),
    "mixes samples across x1 and x2": (mixes_samples, lambda: x3(1), {"x2": x3(2)}, SampleMixingError, "batch of 3"),
    "scales its input in place": (scales_input_in_place, x3, {}, InPlaceInputError, r"modifies its input in place"),
    "writes into a view of its input": (writes_into_input_view, x3, {}, InPlaceInputError, "x.mul_"),
    "functional dropout": (functional_dropout, x3, {}, NondeterministicModelError, r"f\.eval\(\).*F\.dropout"),
    "random noise in forward": (adds_noise, x3, {}, NondeterministicModelError, "two forward passes"),
    "batch statistics in forward": (
        batch_statistics, x3, {}, SampleMixingError, r"runs on a batch of 4 inputs but fails on one input alone",
    ),
    "a call counter in a buffer": (
        lambda: Stateful("counter"), x3, {}, InPlaceInputError, r"modifies its buffer 'calls' in place during forward",
    ),
    "running statistics in a buffer": (
        lambda: Stateful("running_mean"), x3, {}, InPlaceInputError, "modifies its buffer 'running_mean' in place",
    ),
    "a parameter clamped in forward": (
        lambda: Stateful("clamp"), x3, {}, InPlaceInputError, "modifies its parameter 'lin.weight' in place",
    ),
    "NaN in x1": (mlp, lambda: with_nan(x3()), {}, NonFiniteInputError, r"'x1'.*1 of 6 samples \(first: sample 3\)"),
    "Inf in x2": (mlp, x3, {"x2": x3(4).index_fill(1, torch.tensor([0]), float("inf"))}, NonFiniteInputError, "'x2'"),
    "integer input into a float model": (
        mlp, lambda: torch.ones(4, 3, dtype=torch.long), {}, InputMismatchError,
        r"dtype torch.int64: its first layer, Linear at '0', expects \(N, \.\.\., 3\) floating inputs",
    ),
    "wrong input width": (mlp, lambda: x3()[:, :2], {}, InputMismatchError, r"shape \(6, 2\).*\(N, \.\.\., 3\)"),
    "wrong conv channels": (
        conv, lambda: torch.randn(3, 4, 6, dtype=torch.float64), {}, InputMismatchError,
        r"Conv1d at '0', expects \(N, 2, L\)",
    ),
    "float input into an embedding": (
        embedding, lambda: torch.rand(3, 2, dtype=torch.float64), {}, InputMismatchError,
        r"Embedding at '0', expects integer token ids in \[0, 5\)",
    ),
    "token id out of range": (
        embedding, lambda: torch.tensor([[0, 9], [1, 2]]), {}, InputMismatchError, r"token ids in \[0, 5\)",
    ),
    "kernel larger than memory": (
        mlp, lambda: torch.zeros(300_000, 3), {}, KernelMemoryError,
        r"about 1,440,000,\d{3},\d{3} bytes \(1.44 TB: a \(300000, 300000, 2, 2\) float32 kernel( and [\d.]+ k?B of "
        r"features and working memory of the blocks)?\).*trace_outputs=True "
        r"\(360 GB\); diagonal_outputs=True \(720 GB\); fewer inputs; ntk_operator",
    ),
    "traced kernel larger than memory": (
        mlp, lambda: torch.zeros(3_000_000, 3), {"trace_outputs": True}, KernelMemoryError,
        r"\(3000000, 3000000\) float32 kernel( and .* of the blocks)?\).*Options: fewer inputs; ntk_operator",
    ),
}  # fmt: skip


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", list(EMPIRICAL_NTK))
def test_empirical_ntk_bad_inputs(case, implementation):
    make_model, make_x, kwargs, error, fragment = EMPIRICAL_NTK[case]
    torch.manual_seed(0)
    model, x = make_model().double(), make_x()
    if x.is_floating_point():
        x = x.to(torch.float32 if "memory" in case else torch.float64)
        model = model.to(x.dtype)
    before, state = x.clone(), {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error, match=fragment) as info:
        empirical_ntk(model, x, implementation=implementation, **kwargs)
    assert isinstance(info.value, NTKInputError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
    assert torch.equal(x, before) or torch.isnan(before).any()  # the caller's tensor is never modified
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # nor its model's state


# (entry point, model, x, error class, message fragment)
OPERATOR_AND_JACOBIAN = {
    "ntk_operator: mixes samples": (ntk_operator, mixes_samples, x3, SampleMixingError, "mixes samples"),
    "ntk_operator: in place": (ntk_operator, scales_input_in_place, x3, InPlaceInputError, "in place"),
    "ntk_operator: dropout": (ntk_operator, functional_dropout, x3, NondeterministicModelError, "random"),
    "ntk_operator: NaN": (ntk_operator, mlp, lambda: with_nan(x3()), NonFiniteInputError, "'x1'"),
    "ntk_operator: wrong width": (ntk_operator, mlp, lambda: x3()[:, :1], InputMismatchError, r"\(N, \.\.\., 3\)"),
    "ntk_operator: not a tensor": (ntk_operator, mlp, lambda: [[1.0, 2.0, 3.0]], TypeError, "'x' argument"),
    "jacobian: mixes samples": (jacobian, mixes_samples, x3, SampleMixingError, "mixes samples"),
    "jacobian: in place": (jacobian, scales_input_in_place, x3, InPlaceInputError, "in place"),
    "jacobian: dropout": (jacobian, functional_dropout, x3, NondeterministicModelError, "random"),
    "jacobian: wrong width": (jacobian, mlp, lambda: x3()[:, :1], InputMismatchError, r"\(N, \.\.\., 3\)"),
    "jacobian: a buffer changed in place": (
        jacobian, lambda: Stateful("counter"), x3, InPlaceInputError, "buffer 'calls'",
    ),
    "empirical_ntk: unknown implementation": (
        lambda f, x: empirical_ntk(f, x, implementation="fast"), mlp, x3, ValueError,
        r"'implementation' parameter of empirical_ntk must be one of 'auto', 'structured', 'jacobian', 'ntk_vp'\. "
        r"Got 'fast'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(OPERATOR_AND_JACOBIAN))
def test_ntk_operator_and_jacobian_bad_inputs(case):
    entry, make_model, make_x, error, fragment = OPERATOR_AND_JACOBIAN[case]
    torch.manual_seed(0)
    x = make_x()
    before = x.clone() if isinstance(x, torch.Tensor) else None
    with pytest.raises(error, match=fragment):
        entry(make_model().double(), x)
    assert before is None or torch.equal(x, before) or torch.isnan(before).any()


# (entry point, options, model, x, error class): the large-N options are probed like the exact kernels
APPROXIMATIONS = {
    "pseudo-NTK: mixes samples": (empirical_ntk, {"sum_outputs": True}, mixes_samples, x3, SampleMixingError),
    "pseudo-NTK: NaN": (empirical_ntk, {"sum_outputs": True}, mlp, lambda: with_nan(x3()), NonFiniteInputError),
    "sketch: in place": (empirical_ntk, {"sketch_dim": 2, "random_state": 0}, scales_input_in_place, x3,
                         InPlaceInputError),
    "sketch: dropout": (empirical_ntk, {"sketch_dim": 2, "random_state": 0}, functional_dropout, x3,
                        NondeterministicModelError),
    "operator blocks: mixes samples": (ntk_operator, {"block_size": 2}, mixes_samples, x3, SampleMixingError),
    "operator pseudo-NTK: in place": (ntk_operator, {"sum_outputs": True, "block_size": 2}, scales_input_in_place,
                                      x3, InPlaceInputError),
}  # fmt: skip


@pytest.mark.parametrize("case", list(APPROXIMATIONS))
def test_pseudo_ntk_sketches_and_operator_blocks_are_probed(case):
    entry, options, make_model, make_x, error = APPROXIMATIONS[case]
    torch.manual_seed(0)
    x = make_x()
    before = x.clone()
    with pytest.raises(error):
        entry(make_model().double(), x, **options)
    assert torch.equal(x, before) or torch.isnan(before).any()


def test_operator_blocks_that_cannot_fit_are_refused(monkeypatch):
    """One block's saved activations plus three parameter-space tangents must fit; the default block shrinks."""
    model, x = conv().double(), torch.randn(50, 2, 6, dtype=torch.float64)
    saved = ntk_vp._saved_bytes(make_view(model, x, None, None), x[:1])
    tangents = 3 * sum(p.numel() for p in model.parameters()) * 8
    monkeypatch.setattr(_guards, "available_memory", lambda device: (20 * saved + tangents, "a test"))
    assert ntk_operator(model, x).shape == (100, 100)  # default blocks: a quarter of half of what is available
    with pytest.raises(KernelMemoryError, match=rf"activations of 50 samples .* a smaller block_size \({saved} B"):
        ntk_operator(model, x, block_size=50)


# (call, error class, message fragment)
SPECTRA = {
    "eigh: NaN kernel": (lambda: kernel_eigh(np.array([[1.0, np.nan], [np.nan, 1.0]])), ValueError, "finite"),
    "eigh: not square": (lambda: kernel_eigh(np.zeros((2, 3))), ValueError, r"square .*Got \(2, 3\)"),
    "eigh: diagonal-output kernel": (lambda: kernel_eigh(np.zeros((2, 2, 3))), ValueError, r"Got \(2, 2, 3\)"),
    "eigh: empty": (lambda: kernel_eigh(np.zeros((0, 0))), ValueError, r"Got \(0, 0\)"),
    "eigh: text": (lambda: kernel_eigh("abc"), ValueError, "real-valued numeric array. Got str"),
    "eigh: complex": (lambda: kernel_eigh(1j * np.eye(2)), ValueError, "real-valued numeric array. Got complex128"),
    "eigh: complex tensor": (
        lambda: kernel_eigh(torch.eye(2, dtype=torch.complex64)), ValueError, "numeric array. Got complex64",
    ),
    "top: k = 0": (lambda: top_eigenpairs(np.eye(3), 0), ValueError, r"'k' parameter .* \[1, 2\]. Got 0"),
    "top: k = size": (lambda: top_eigenpairs(np.eye(3), 3), ValueError, r"\[1, 2\]. Got 3"),
    "hutchinson: no probes": (lambda: hutchinson_trace(np.eye(3), n_probes=0), ValueError, "'n_probes'"),
    "eff dim: z = 0": (lambda: effective_dimension([1.0, 2.0], 0.0), ValueError, "'z' parameter"),
    "eff dim: NaN eigenvalue": (lambda: effective_dimension([1.0, np.nan], 1.0), ValueError, "'eigenvalues'"),
    "eff dim: text": (lambda: effective_dimension("ab", 1.0), ValueError, "'eigenvalues' argument .* numeric"),
    "alignment: rows": (lambda: kernel_target_alignment(np.eye(3), np.ones(4)), ValueError, "3 rows"),
    "alignment: NaN target": (
        lambda: kernel_target_alignment(np.eye(3), np.array([1.0, np.nan, 0.0])), ValueError, "'y' argument .*finite",
    ),
    "alignment: method": (
        lambda: kernel_target_alignment(np.eye(3), np.ones(3), method="cka"), ValueError,
        r"'method' .* one of 'centered', 'kumar2024'. Got 'cka'",
    ),
    "distance: shapes": (lambda: kernel_distance(np.eye(2), np.eye(3)), ValueError, r"shape of kernel1 \(2, 2\)"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SPECTRA))
def test_spectra_bad_inputs(case):
    call, error, fragment = SPECTRA[case]
    with pytest.raises(error, match=fragment):
        call()


def test_undefined_alignment_and_distance_are_nan_without_warnings():
    """A zero kernel or zero targets leave the cosine 0/0: NaN, said in the docstrings, no RuntimeWarning."""
    with np.errstate(all="raise"):
        assert np.isnan(kernel_target_alignment(np.zeros((3, 3)), np.array([1.0, 0.0, 1.0])))
        assert np.isnan(kernel_target_alignment(np.eye(3), np.zeros(3), method="kumar2024"))
        assert np.isnan(kernel_distance(np.zeros((2, 2)), np.eye(2)))


def test_memory_is_refused_before_any_allocation_and_names_block_size_when_it_helps(monkeypatch):
    """With 440 KB 'available', a 320 KB kernel whose explicit blocks of 100 samples need 134 KB more (Jacobians
    of 2·26 float64 per sample and twice that of working memory) is refused, naming block_size; the driver's own
    blocks (computed in chunks, kernel strips a sample high) shrink to what is left and fit."""
    monkeypatch.setattr(_guards, "available_memory", lambda device: (440_000, "a test"))
    model = mlp().double()
    x = x3(100)
    assert empirical_ntk(model, x, block_size=8).shape == (100, 100, 2, 2)
    assert empirical_ntk(model, x, implementation="jacobian").shape == (100, 100, 2, 2)
    hint = r"and 134 KB of block temporaries\).*; a smaller block_size \(its temporaries take 134 KB\);"
    with pytest.raises(KernelMemoryError, match=hint):
        empirical_ntk(model, x, block_size=100, implementation="jacobian")
    allocations = []
    monkeypatch.setattr(torch, "empty", lambda *a, **k: allocations.append(a))
    with pytest.raises(MemoryError, match=r"a \(400, 400, 2, 2\) float64 kernel.*available on cpu \(a test\)"):
        empirical_ntk(model, x3(400))  # KernelMemoryError is also a MemoryError
    assert allocations == []


def test_available_memory_reads_the_host_and_skips_unknown_devices():
    available, source = _guards.available_memory(torch.device("cpu"))
    assert isinstance(available, int) and available > 0 and source
    assert _guards.available_memory(torch.device("meta")) == (None, "unknown")
    assert check_kernel_memory(10, None, 3, diagonal_outputs=True, device="meta") == 10 * 10 * 3 * 8


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_float32_conv_net_and_x2_pass_the_probe_and_match_float64(implementation):
    """Batched and one-at-a-time float32 outputs differ by round-off only: no false SampleMixingError."""
    torch.manual_seed(1)
    model = conv()
    x1, x2 = torch.randn(7, 2, 6), torch.randn(5, 2, 6)
    theta = empirical_ntk(model, x1, x2, implementation=implementation, trace_outputs=True)
    reference = empirical_ntk(model.double(), x1.double(), x2.double(), implementation="jacobian", trace_outputs=True)
    torch.testing.assert_close(theta.double(), reference, rtol=1e-4, atol=1e-5)
