"""The blocked driver of empirical_ntk: every memory plan gives the same kernel, within its budget."""

from __future__ import annotations

import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ntk import IMPLEMENTATIONS, assert_close, build_case, reference

from theory import empirical_ntk
from theory.ntk import _blocks, _guards
from theory.ntk._model import make_view
from theory.ntk.jacobian import JacobianBackend
from theory.ntk.structured import StructuredBackend

MODES = {"full": {}, "trace": {"trace_outputs": True}, "diag": {"diagonal_outputs": True}}


def _reduce(kernel: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "full":
        return kernel
    diag = kernel.diagonal(dim1=2, dim2=3)
    return diag.mean(-1) if mode == "trace" else diag


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("budget", [1, 3000, 20_000])
@pytest.mark.parametrize("symmetric", [True, False])
def test_streamed_blocks_match_the_reference(monkeypatch, mode, budget, symmetric):
    """A feature budget smaller than all features forces held row blocks and streamed, recomputed columns."""
    monkeypatch.setattr(_blocks, "HOST_FEATURE_BYTES", budget)
    model, x1, x2 = build_case("resnet_norms")
    expected = _reduce(reference("resnet_norms")[0 if symmetric else 1], mode)
    for implementation in IMPLEMENTATIONS:
        theta = empirical_ntk(model, x1, None if symmetric else x2, implementation=implementation, **MODES[mode])
        assert_close(theta, expected)


@settings(max_examples=40, deadline=None)
@given(
    n1=st.integers(1, 300),
    n2=st.integers(1, 300),
    symmetric=st.booleans(),
    feature_bytes=st.integers(1, 10**6),
    budget=st.integers(1, 10**8),
    block=st.one_of(st.none(), st.integers(1, 50)),
    gemm_rows=st.sampled_from([1, 10]),
)
def test_plan_respects_the_budget_and_covers_every_sample(n1, n2, symmetric, feature_bytes, budget, block, gemm_rows):
    n2 = n1 if symmetric else n2
    plan = _blocks.plan(n1, n2, symmetric, feature_bytes, 4 * gemm_rows**2, gemm_rows, budget, block)
    assert min(plan.held, plan.streamed, plan.diagonal_strip, plan.strip) >= 1
    assert plan.diagonal_strip <= max(plan.held, 1) and plan.strip <= plan.held
    if block is not None:
        assert plan.held == plan.streamed == block
    elif n1 * feature_bytes <= budget // 2:  # everything fits: one held block, features computed once
        assert plan.held >= n1 or not symmetric
    if block is None and plan.held > 1:  # held features never exceed the budget (one sample always allowed)
        assert plan.held * feature_bytes <= budget


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("mode", list(MODES))
def test_all_features_are_computed_once_when_they_fit(monkeypatch, mode, stream):
    """Every sample's features are computed once; traced and diagonal kernels may stream the outputs instead."""
    monkeypatch.setattr(_blocks, "STREAMING_OVERHEAD", float("inf") if stream else 0.0)
    calls = []
    model, x1, _ = build_case("conv2d_batchnorm", n1=9)
    original = _blocks.fill_kernel

    def counting(backend, *args, **kwargs):
        for method in ("features", "output_features"):
            wrapped = getattr(backend, method)
            setattr(backend, method, lambda x, m=method, f=wrapped: calls.append((m, len(x))) or f(x))
        return original(backend, *args, **kwargs)

    monkeypatch.setattr(_blocks, "fill_kernel", counting)
    theta = empirical_ntk(model, x1, implementation="structured", **MODES[mode])
    assert calls == [("output_features" if stream and mode != "full" else "features", 9)]
    monkeypatch.setattr(_blocks, "fill_kernel", original)
    assert_close(theta, _reduce(empirical_ntk(model, x1, implementation="jacobian"), mode))


def test_outputs_are_streamed_for_conv_nets_not_for_dense_ones():
    """Streaming repeats a dense layer's activation Gram for every output: an MLP keeps all outputs together."""
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    ).double()  # fmt: skip
    mlp, x_mlp, _ = build_case("mlp")
    x_conv = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    overheads = {}
    for name, model, x in [("conv", conv, x_conv), ("mlp", mlp, x_mlp)]:
        view = make_view(model, x, None, None)
        overheads[name] = StructuredBackend(view, {"": view.names}, "trace").output_streaming_overhead(x)
    assert overheads["conv"] <= _blocks.STREAMING_OVERHEAD < overheads["mlp"]


def test_channels_last_is_dropped_for_models_that_reject_it(caplog):
    model, x1, x2 = build_case("conv_view")
    with caplog.at_level(logging.INFO, logger="theory.ntk"):
        theta = empirical_ntk(model, x1, x2, implementation="structured")
    assert "channels-last input rejected" in caplog.text
    assert_close(theta, reference("conv_view")[1])


@pytest.mark.parametrize("mode", ["trace", "diag"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_outputs_streamed_in_chunks_match_the_reference(monkeypatch, mode, symmetric):
    """A budget that holds one output's features of every sample but neither all outputs' nor every
    sample's activations builds each output's features in chunks, with a forward per output and chunk."""
    model, x1, x2 = build_case("resnet_norms")
    view = make_view(model, x1, None, None)
    backend = StructuredBackend(view, {"": view.names}, "trace")
    held, working = backend.output_bytes_per_sample(x1)
    monkeypatch.setattr(_blocks, "STREAMING_OVERHEAD", float("inf"))
    monkeypatch.setattr(_blocks, "HOST_FEATURE_BYTES", (len(x1) + len(x2)) * held * 2)
    assert (len(x1) + len(x2)) * (held + working) > _blocks.HOST_FEATURE_BYTES  # not the one-forward path
    calls = []
    original = StructuredBackend.output_features_of
    monkeypatch.setattr(
        StructuredBackend, "output_features_of", lambda b, x, o: calls.append(len(x)) or original(b, x, o)
    )
    theta = empirical_ntk(model, x1, None if symmetric else x2, implementation="structured", **MODES[mode])
    assert calls and max(calls) < len(x1)  # chunks, one forward per output each
    assert_close(theta, _reduce(reference("resnet_norms")[0 if symmetric else 1], mode))


def test_budget_shrinks_to_the_memory_left_after_the_result(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(_guards, "available_memory", lambda device: (10**9, "a test"))
    assert _blocks.feature_budget(cpu) == min(_blocks.HOST_FEATURE_BYTES, 5 * 10**8)
    assert _blocks.feature_budget(cpu, reserved=6 * 10**8) == 2 * 10**8
    assert _blocks.feature_budget(cpu, reserved=2 * 10**9) == 0
    monkeypatch.setattr(_guards, "available_memory", lambda device: (None, "unknown"))
    assert _blocks.feature_budget(cpu) == _blocks.HOST_FEATURE_BYTES


@pytest.mark.parametrize("implementation", ["structured", "jacobian"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("budget", [3_000, 30_000, 300_000, 10**7])
def test_every_route_stays_within_its_budget_and_matches_the_reference(monkeypatch, implementation, mode, budget):
    """The workspace a plan declares (held features, a chunk's working memory, 3 copies of a strip of kernel
    entries) is at most 5/4 of the budget unless a single sample exceeds it, whichever route it takes."""
    monkeypatch.setattr(_blocks, "HOST_FEATURE_BYTES", budget)
    monkeypatch.setattr(_blocks, "STREAMING_OVERHEAD", float("inf"))  # let traced/diagonal kernels stream
    model, x1, _ = build_case("resnet_norms")
    view = make_view(model, x1, None, None)
    make = {"structured": StructuredBackend, "jacobian": JacobianBackend}[implementation]
    kernel_plan = _blocks.plan_kernel(make(view, {"": view.names}, mode), x1, None, 3, torch.float64, None)
    assert kernel_plan.workspace <= 1.25 * budget or kernel_plan.blocks.held == 1 or kernel_plan.chunk == 1
    theta = empirical_ntk(model, x1, implementation=implementation, **MODES[mode])
    assert_close(theta, _reduce(reference("resnet_norms")[0], mode))


def test_traced_kernels_take_every_route_as_the_budget_grows(monkeypatch):
    monkeypatch.setattr(_blocks, "STREAMING_OVERHEAD", float("inf"))
    model, x1, _ = build_case("resnet_norms")
    view = make_view(model, x1, None, None)
    routes = []
    for budget in [3_000, 30_000, 300_000]:
        monkeypatch.setattr(_blocks, "HOST_FEATURE_BYTES", budget)
        backend = StructuredBackend(view, {"": view.names}, "trace")
        routes.append(_blocks.plan_kernel(backend, x1, None, 3, torch.float64, None).route)
    assert routes == ["blocks", "output forwards", "outputs"]
