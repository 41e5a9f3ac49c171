"""empirical_ntk against a brute-force float64 reference on models covering every supported module type.

Reference: Θ(x_n, x_m)_{oo'} = <∂f_o(x_n)/∂θ, ∂f_o'(x_m)/∂θ> with each gradient from its own
``torch.autograd.grad`` call on one sample (no vmap, no hooks, no batching), in float64.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from theory import NTKImplementation, empirical_ntk, jacobian, resolve_implementation
from theory.ntk import _factors, structured

IMPLEMENTATIONS = ["structured", "jacobian", "ntk_vp"]


class Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class MeanOver(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.mean(self.dim)


class Scale(nn.Module):
    """Owns a parameter directly: no closed form, so 'auto' must fall back."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.linspace(0.5, 1.5, size))

    def forward(self, x):
        return x * self.gain


class TinyBlock(nn.Module):
    """Residual block with GroupNorm and BatchNorm (eval), a strided conv and a 1×1 strided skip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.gn = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), _affine(nn.GroupNorm(2, 4))
        self.conv2, self.bn = nn.Conv2d(4, 4, 3, padding=1), _bn(4)
        self.skip = nn.Conv2d(3, 4, 1, stride=2, bias=False)

    def forward(self, x):
        return torch.relu(self.bn(self.conv2(torch.relu(self.gn(self.conv1(x))))) + self.skip(x))


class ViewHead(nn.Module):
    """Flattens a conv output with ``.view``, which a channels-last tensor rejects."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(2, 3, 3), nn.Linear(3 * 3 * 3, 2)

    def forward(self, x):
        h = torch.tanh(self.conv(x))
        return self.fc(h.view(h.shape[0], -1))


def _bn(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    nn.init.uniform_(bn.weight, 0.5, 1.5)
    nn.init.uniform_(bn.bias, -0.5, 0.5)
    return bn.eval()


def _affine(norm: nn.Module) -> nn.Module:
    nn.init.uniform_(norm.weight, 0.5, 1.5)
    nn.init.uniform_(norm.bias, -0.5, 0.5)
    return norm


def _floats(*shape):
    return lambda g, n: torch.randn(n, *shape, generator=g, dtype=torch.float64)


def _ids(*shape, vocab=7):
    return lambda g, n: torch.randint(0, vocab, (n, *shape), generator=g)


#: name -> (model builder, input maker); together they cover every supported module type and option.
CASES = {
    "mlp": (
        lambda: nn.Sequential(
            nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8, bias=False), nn.GELU(), nn.Linear(8, 3), nn.SiLU()
        ),
        _floats(6),
    ),
    "conv1d": (
        lambda: nn.Sequential(
            nn.Conv1d(2, 4, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Conv1d(4, 4, 3, dilation=2, groups=2, padding=2, padding_mode="reflect"),
            nn.Tanh(),
            nn.Conv1d(4, 4, 4, padding="same", bias=False),
            nn.Flatten(),
            nn.Linear(24, 3),
        ).eval(),
        _floats(2, 12),
    ),
    "conv2d_batchnorm": (
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0)),
            nn.GELU(),
            nn.Conv2d(4, 6, 3, groups=2, padding=1, dilation=(1, 2), padding_mode="circular"),
            _bn(6),
            nn.Flatten(),
            nn.Linear(6 * 3 * 2, 3),
        ),
        _floats(2, 6, 5),
    ),
    "resnet_norms": (
        lambda: nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.ReLU(),
            TinyBlock(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 3),
        ),
        _floats(2, 6, 6),
    ),
    "conv_view": (ViewHead, _floats(2, 5, 5)),
    "residual_layernorm": (
        lambda: nn.Sequential(
            nn.Linear(5, 6),
            Residual(nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6))),
            _affine(nn.LayerNorm(6)),
            nn.Linear(6, 2),
        ),
        _floats(5),
    ),
    "sequence_groupnorm": (
        lambda: nn.Sequential(
            nn.Linear(5, 4),
            _affine(nn.LayerNorm([3, 4])),
            nn.ReLU(),
            nn.Flatten(1, 1),
            MeanOver(1),
            nn.Unflatten(1, (2, 2)),
            _affine(nn.GroupNorm(1, 2)),
            nn.Flatten(),
            nn.Linear(4, 3),
        ),
        _floats(3, 5),
    ),
    "embedding": (
        lambda: nn.Sequential(nn.Embedding(7, 4), nn.Tanh(), nn.Linear(4, 3)),
        _ids(),
    ),
    "embedding_sequence": (
        lambda: nn.Sequential(nn.Embedding(7, 4, padding_idx=0), nn.Flatten(), nn.Linear(20, 3)),
        _ids(5),
    ),
    "unsupported_fallback": (
        lambda: nn.Sequential(nn.Linear(4, 5), Scale(5), nn.Tanh(), nn.Linear(5, 2)),
        _floats(4),
    ),
}


def build_case(name: str, n1: int = 5, n2: int = 4, seed: int = 0):
    """The model (float64) and inputs x1 (n1, ...), x2 (n2, ...) of a case, drawn from ``seed``."""
    make_model, make_input = CASES[name]
    torch.manual_seed(seed)
    model = make_model().double()
    g = torch.Generator().manual_seed(seed)
    return model, make_input(g, n1), make_input(g, n2)


def reference_jacobian(model: nn.Module, x: torch.Tensor, names: list[str] | None = None) -> torch.Tensor:
    """J (N, O, P) by one autograd.grad call per sample and output (float64 brute force)."""
    params = dict(model.named_parameters())
    chosen = [params[n] for n in (names or list(params))]
    rows = []
    for n in range(x.shape[0]):
        out = model(x[n : n + 1]).reshape(-1)
        for o in range(out.numel()):
            grads = torch.autograd.grad(out[o], chosen, retain_graph=True, allow_unused=True, materialize_grads=True)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows).reshape(x.shape[0], -1, rows[0].numel())


@functools.cache
def reference(name: str):
    model, x1, x2 = build_case(name)
    j1, j2 = reference_jacobian(model, x1), reference_jacobian(model, x2)
    return torch.einsum("nap,mbp->nmab", j1, j1), torch.einsum("nap,mbp->nmab", j1, j2)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-10) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == torch.float64
    scale = expected.abs().max().item()
    assert scale > 0
    assert (actual - expected).abs().max().item() <= rtol * scale


def _implementations(name: str) -> list[str]:
    return ["jacobian", "ntk_vp"] if name == "unsupported_fallback" else IMPLEMENTATIONS


@pytest.mark.parametrize(("name", "implementation"), [(n, i) for n in CASES for i in _implementations(n)])
def test_matches_per_sample_autograd_reference(name, implementation):
    model, x1, x2 = build_case(name)
    ref_sym, ref_cross = reference(name)
    assert_close(empirical_ntk(model, x1, implementation=implementation), ref_sym)
    assert_close(empirical_ntk(model, x1, x2, implementation=implementation, block_size=2), ref_cross)


@pytest.mark.parametrize("name", list(CASES))
def test_auto_picks_structured_exactly_when_supported(name):
    model, x1, _ = build_case(name)
    chosen = resolve_implementation(model, x1)
    if name == "unsupported_fallback":
        assert chosen in (NTKImplementation.JACOBIAN, NTKImplementation.NTK_VP)
        with pytest.raises(ValueError, match=r"Scale at '1' owns parameters and has no closed form"):
            empirical_ntk(model, x1, implementation="structured")
    else:
        assert chosen is NTKImplementation.STRUCTURED
    assert_close(empirical_ntk(model, x1), reference(name)[0])


def test_auto_logs_its_choice(caplog):
    model, x1, _ = build_case("unsupported_fallback")
    with caplog.at_level("INFO", logger="theory.ntk"):
        empirical_ntk(model, x1, trace_outputs=True)
    assert "implementation=" in caplog.text and "Scale at '1'" in caplog.text


def test_params_selects_a_subset_of_parameters():
    model, x1, x2 = build_case("conv2d_batchnorm")
    names = ["0.bias", "2.weight", "3.weight"]
    j1, j2 = reference_jacobian(model, x1, names), reference_jacobian(model, x2, names)
    expected = torch.einsum("nap,mbp->nmab", j1, j2)
    for implementation in IMPLEMENTATIONS:
        assert_close(empirical_ntk(model, x1, x2, params=names, implementation=implementation), expected)


def test_jacobian_matches_reference_and_parameter_order():
    model, x1, _ = build_case("residual_layernorm")
    assert_close(jacobian(model, x1), reference_jacobian(model, x1))
    assert_close(
        jacobian(model, x1, params=["3.bias", "0.weight"]), reference_jacobian(model, x1, ["0.weight", "3.bias"])
    )


@pytest.mark.parametrize("name", ["mlp", "conv2d_batchnorm"])
def test_float32_model_computed_in_float64_on_request(name):
    model, x1, _ = build_case(name)
    expected = reference(name)[0]
    model32, x32 = model.float(), x1.float()
    for implementation in IMPLEMENTATIONS:
        theta = empirical_ntk(model32, x32, implementation=implementation, dtype=torch.float64)
        assert_close(theta, expected, 1e-5)
        assert empirical_ntk(model32, x32, implementation=implementation).dtype == torch.float32


@pytest.mark.parametrize("patch_grams", [True, False])
@pytest.mark.parametrize("name", ["conv1d", "conv2d_batchnorm", "resnet_norms"])
@pytest.mark.parametrize("mode", ["full", "trace", "diag"])
def test_both_structured_conv_forms_match_the_reference(monkeypatch, name, patch_grams, mode):
    """Conv layers are contracted by patch/δ Grams or by per-sample gradients, whichever is cheaper: test both."""
    monkeypatch.setattr(_factors, "prefer_patch_grams", lambda *args: patch_grams)
    monkeypatch.setattr(structured, "_PAIR_ELEMENTS", 500)  # forces several row chunks
    model, x1, x2 = build_case(name)
    expected = reference(name)[1]
    expected = expected if mode == "full" else expected.diagonal(dim1=2, dim2=3)
    expected = expected.mean(-1) if mode == "trace" else expected
    theta = empirical_ntk(
        model, x1, x2, implementation="structured", trace_outputs=mode == "trace", diagonal_outputs=mode == "diag"
    )
    assert_close(theta, expected)
