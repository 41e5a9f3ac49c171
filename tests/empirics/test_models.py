"""Model zoo: seeded construction, shapes, init scale, random-feature maps against float64 references."""

import math

import numpy as np
import pytest
import torch

from empirics.models import MLP, MODELS, RandomFeatures, build_model


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mlp", {"input_dim": 40, "output_dim": 10, "width": 16}),
        ("conv1d", {}),
        ("random_features", {"input_dim": 40, "output_dim": 10, "n_features": 12}),
    ],
)
def test_builders_are_seeded_and_leave_global_rng_alone(name, kwargs):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = (
        build_model(name, seed=1, **kwargs),
        build_model(name, seed=1, **kwargs),
        build_model(name, seed=2, **kwargs),
    )
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(_params(a), _params(b), strict=True))
    buffers_differ = any(not torch.equal(p, q) for p, q in zip(a.buffers(), c.buffers(), strict=True))
    params_differ = any(not torch.equal(p, q) for p, q in zip(_params(a), _params(c), strict=True))
    assert buffers_differ or params_differ
    assert a(torch.randn(5, 40)).shape == (5, 10)


def test_mlp_structure_and_init_scale():
    base = build_model("mlp", input_dim=3, output_dim=2, width=7, depth=3, activation="tanh", seed=0)
    scaled = build_model("mlp", input_dim=3, output_dim=2, width=7, depth=3, activation="tanh", init_scale=5.0, seed=0)
    linears = [m for m in base.net if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(7, 3), (7, 7), (7, 7), (2, 7)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in base.net) == 3
    for p, q in zip(base.parameters(), scaled.parameters(), strict=True):
        torch.testing.assert_close(q, 5.0 * p)
    # default nn.Linear init is U(±1/sqrt(fan_in)): the first layer's bound is 1/sqrt(3)
    assert linears[0].weight.abs().max() <= 1 / math.sqrt(3)
    nobias = MLP(3, 2, 4, bias=False)
    assert all(m.bias is None for m in nobias.net if isinstance(m, torch.nn.Linear))


def test_mlp_forward_matches_float64_reference():
    model = build_model("mlp", input_dim=4, output_dim=3, width=5, seed=0).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    w1, b1, w2, b2 = (p.detach().numpy() for p in model.parameters())
    ref = np.maximum(x.numpy() @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(model(x).detach().numpy(), ref, rtol=1e-12)


def test_conv1d_has_three_conv_layers_of_32_channels():
    model = build_model("conv1d", output_dim=2)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv1d)]
    assert [c.out_channels for c in convs] == [32, 32, 32]
    assert model.head.in_features == 32 * 4  # 40 -> 19 -> 9 -> 4 with kernel 5, stride 2, padding 1
    x = torch.randn(3, 40)
    torch.testing.assert_close(model(x), model(x.unsqueeze(1)))


@pytest.mark.parametrize("feature_map", ["fourier", "cos"])
def test_cosine_feature_kernels_approach_gaussian_kernel(feature_map):
    # Rahimi & Recht 2007: E[φ(x)ᵀφ(x')] = exp(-σ²‖x − x'‖²/2) for V ~ N(0, σ² I)
    model = build_model(
        "random_features", input_dim=2, output_dim=1, n_features=20000, feature_map=feature_map, seed=0, bandwidth=1.0
    )
    phi = model.features(torch.tensor([[0.0, 0.0], [1.0, 0.5]], dtype=torch.float64))
    assert (phi[0] @ phi[1]).item() == pytest.approx(math.exp(-1.25 / 2), abs=0.02)


@pytest.mark.parametrize("feature_map", ["fourier", "cos", "relu"])
def test_random_feature_maps_match_float64_reference(feature_map):
    model = RandomFeatures(3, 2, 5, feature_map=feature_map, bandwidth=0.7)
    x = torch.randn(4, 3, dtype=torch.float64)
    v, b = model.frequencies.numpy(), model.phases.numpy()
    z = x.numpy() @ v
    if feature_map == "fourier":
        assert v.shape == (3, 3)
        ref = np.sqrt(2) * np.concatenate([np.cos(z), np.sin(z)], axis=1)[:, :5]
    elif feature_map == "cos":
        ref = np.sqrt(2) * np.cos(z + b)
    else:
        ref = np.maximum(z, 0)
    np.testing.assert_allclose(model.features(x).numpy(), ref / np.sqrt(5), rtol=1e-12)
    assert not model.readout.weight.any()  # zero read-out: gradient descent converges to the min-norm fit
    assert [n for n, _ in model.named_parameters()] == ["readout.weight"]


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("resnet", {}, "'name' parameter of build_model must be one of"),
        ("mlp", {"input_dim": 4, "output_dim": 2, "heads": 3}, r"Unknown argument\(s\) \['heads'\]"),
        ("mlp", {"input_dim": 4, "output_dim": 2, "activation": "swish"}, "'activation' parameter of MLP"),
        ("mlp", {"input_dim": 4, "output_dim": 2, "init_scale": 0}, "'init_scale' parameter of MLP"),
        ("mlp", {"input_dim": 4, "output_dim": 2, "width": 0}, "'width' parameter of MLP must be a positive int"),
        ("conv1d", {"input_length": 8}, "'input_length' parameter of Conv1dNet"),
        ("mlp", {"input_dim": 4, "output_dim": 2, "depth": -1}, "'depth' parameter of MLP must be a non-negative int"),
        ("random_features", {"input_dim": 4, "output_dim": 2, "feature_map": "x"}, "'feature_map' parameter"),
    ],
)
def test_bad_arguments_are_named(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(name, **kwargs)


def test_registry_has_builtins():
    build_model("mlp", input_dim=1, output_dim=1, width=1)
    assert {"mlp", "conv1d", "random_features"} <= set(MODELS)
