"""theory.measures against float64 brute-force references on tiny models (Jiang et al. 2020 numbering)."""

from __future__ import annotations

import copy
import itertools
import math
import re
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from theory.measures import (
    CHEAP_MEASURES,
    MEASURES,
    ConvNorm,
    bartlett_spectral_complexity,
    compute_measures,
    conv_operator_norm,
    distance_to_init,
    fisher_rao_norm,
    fold_batchnorm,
    margin,
    neyshabur_pacbayes_bound,
    num_parameters,
    pacbayes_init_bound,
    pacbayes_sigma,
    parameter_norm,
    path_norm,
    power_law_alpha,
    spectral_norms,
    weight_layers,
    weight_spectrum,
)

D = torch.float64


def mlp(seed: int, widths=(4, 6, 3), bias: bool = True, act=nn.ReLU) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers).to(D)


def self_labelled(model: nn.Module, n: int = 300, d: int = 4, seed: int = 0):
    x = torch.randn(n, d, dtype=D, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return x, model(x).argmax(dim=1)


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    return model


def conv_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 4, 2, stride=2, bias=False),
        nn.BatchNorm2d(4, affine=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5),
        nn.BatchNorm1d(5),
        nn.ReLU(),
        nn.Linear(5, 3),
    )
    return randomise_bn(net).to(D).eval()


def dense_operator(fn, shape) -> np.ndarray:
    """The matrix of a linear map by autograd: float64 Jacobian of fn at a point of ``shape``."""
    jac = torch.autograd.functional.jacobian(fn, torch.zeros(shape, dtype=D))
    n_in = int(np.prod(shape))
    return jac.reshape(-1, n_in).numpy()


# ---------------------------------------------------------------- layers and BatchNorm folding


def test_batchnorm_folding_leaves_eval_outputs_unchanged():
    net = conv_net()
    x = torch.randn(7, 2, 6, 6, dtype=D)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), net(x), rtol=1e-12, atol=1e-12)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # the caller's model is untouched


@settings(max_examples=15)
@given(st.integers(0, 2**16), st.booleans(), st.booleans())
def test_batchnorm_folding_property_on_float32_mlps(seed, affine, bias):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 5, bias=bias), nn.BatchNorm1d(5, affine=affine), nn.Tanh(), nn.Linear(5, 2))
    net = randomise_bn(net, seed).eval()
    x = torch.randn(8, 3)
    folded = fold_batchnorm(net, dtype=torch.float64)
    assert isinstance(folded[1], nn.Identity) and folded[0].bias is not None
    torch.testing.assert_close(folded(x.double()), net.double()(x.double()), rtol=1e-12, atol=1e-12)


def test_batchnorm_after_activation_is_not_folded():
    torch.manual_seed(0)
    net = randomise_bn(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2))).to(D).eval()
    folded = fold_batchnorm(net)
    assert isinstance(folded[2], nn.BatchNorm1d)
    x = torch.randn(5, 3, dtype=D)
    torch.testing.assert_close(folded(x), net(x))


def test_folding_out_of_execution_order_is_detected():
    torch.manual_seed(0)
    x = torch.randn(6, 3, dtype=D)

    class Wrong(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc0 = nn.Linear(3, 4)
            self.fc1 = nn.Linear(3, 4)
            self.bn = nn.BatchNorm1d(4)
            self.head = nn.Linear(4, 3)

        def forward(self, x):  # the BN acts on fc0, but fc1 is registered right before it
            return self.head(self.bn(self.fc0(x)) + self.fc1(x))

    wrong = randomise_bn(Wrong().to(D))
    with pytest.raises(ValueError, match="BatchNorm folding changed"):
        compute_measures(wrong, x=x, y=torch.zeros(6, dtype=torch.long), names=["margin"])


def test_weight_layers_cover_conv_embedding_and_attention():
    torch.manual_seed(0)
    emb, conv = nn.Embedding(7, 4), nn.Conv1d(4, 5, 3, groups=1)
    attn = nn.MultiheadAttention(4, 2)
    holder = nn.ModuleDict({"emb": emb, "conv": conv, "attn": attn})
    layers = {layer.name: layer.matrix for layer in weight_layers(holder)}
    assert set(layers) == {"emb.weight", "conv.weight", "attn.in_proj_weight", "attn.out_proj.weight"}
    assert layers["emb.weight"].shape == (4, 7)
    assert layers["conv.weight"].shape == (5, 12)
    assert layers["attn.in_proj_weight"].shape == (12, 4)
    assert all(m.dtype == D for m in layers.values())


# ---------------------------------------------------------------- norms


def test_parameter_norm_distance_and_count_match_numpy():
    net, init = mlp(0), mlp(1)
    w = [p.detach().numpy() for n, p in net.named_parameters() if "weight" in n]
    w0 = [p.detach().numpy() for n, p in init.named_parameters() if "weight" in n]
    assert parameter_norm(net) == pytest.approx(sum((a**2).sum() for a in w), rel=1e-12)
    assert distance_to_init(net, init) == pytest.approx(
        sum(((a - b) ** 2).sum() for a, b in zip(w, w0, strict=True)), rel=1e-12
    )
    assert num_parameters(net) == 4 * 6 + 6 + 6 * 3 + 3


def test_spectral_norms_match_numpy_svd_for_every_layer_kind():
    net = conv_net()
    folded = fold_batchnorm(net)
    expected = [
        np.linalg.svd(p.detach().numpy().reshape(p.shape[0], -1), compute_uv=False)[0]
        for p in folded.parameters()
        if p.ndim >= 2
    ]
    np.testing.assert_allclose(spectral_norms(net), expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("conv", "shape"),
    [
        (nn.Conv1d(2, 3, 3, padding=1), (1, 2, 9)),
        (nn.Conv2d(2, 3, 3, padding=1, stride=2), (1, 2, 6, 5)),
        (nn.Conv2d(3, 2, 2, padding=1, padding_mode="circular"), (1, 3, 4, 4)),
    ],
)
def test_exact_conv_norm_matches_dense_operator_svd(conv, shape):
    torch.manual_seed(0)
    conv = conv.to(D)
    dense = dense_operator(lambda a: conv._conv_forward(a, conv.weight, None), shape)
    expected = np.linalg.svd(dense, compute_uv=False)[0]
    assert conv_operator_norm(conv, shape, random_state=0) == pytest.approx(expected, rel=1e-6)
    reshaped = np.linalg.svd(conv.weight.detach().reshape(conv.out_channels, -1).numpy(), compute_uv=False)[0]
    if conv.padding_mode == "zeros":  # each input entry lies in at most k patches
        assert expected <= math.sqrt(np.prod(conv.kernel_size)) * reshaped * (1 + 1e-12)


def test_operator_conv_norm_in_spectral_norms():
    net = conv_net()
    x = torch.randn(4, 2, 6, 6, dtype=D)
    folded = fold_batchnorm(net)
    exact = spectral_norms(net, conv_norm=ConvNorm.OPERATOR, x=x, random_state=0)
    conv0 = folded[0]
    dense = dense_operator(lambda a: conv0._conv_forward(a, conv0.weight, None), (1, 2, 6, 6))
    assert exact[0] == pytest.approx(np.linalg.svd(dense, compute_uv=False)[0], rel=1e-6)
    np.testing.assert_allclose(exact[2:], spectral_norms(net)[2:], rtol=1e-12)  # linear layers unchanged
    with pytest.raises(ValueError, match="'x' parameter of spectral_norms is required"):
        spectral_norms(net, conv_norm="operator")


def test_path_norm_equals_explicit_path_enumeration():
    net = mlp(3, widths=(3, 4, 2))
    w1, b1 = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    w2, b2 = net[2].weight.detach().numpy(), net[2].bias.detach().numpy()
    total = 0.0
    for k in range(2):  # output unit
        total += b2[k] ** 2  # the path that starts at the output bias
        for j in range(4):  # hidden unit
            total += w2[k, j] ** 2 * b1[j] ** 2
            for i in range(3):  # input unit
                total += w2[k, j] ** 2 * w1[j, i] ** 2
    assert path_norm(net, (3,)) == pytest.approx(total, rel=1e-12)


@given(st.floats(0.05, 20.0), st.integers(0, 2**16))
def test_path_norm_invariant_to_relu_rescaling(c, seed):
    net = mlp(seed % 97, widths=(3, 5, 4, 2))
    scaled = copy.deepcopy(net)
    with torch.no_grad():
        scaled[0].weight.mul_(c)
        scaled[0].bias.mul_(c)
        scaled[2].weight.div_(c)
    x = torch.randn(4, 3, dtype=D)
    torch.testing.assert_close(scaled(x), net(x))  # the same function
    assert path_norm(scaled, (3,)) == pytest.approx(path_norm(net, (3,)), rel=1e-9)


def test_margin_matches_direct_computation():
    net = mlp(0)
    x, _ = self_labelled(net, n=101)
    y = torch.randint(0, 3, (101,), generator=torch.Generator().manual_seed(1))
    logits = net(x).detach().numpy()
    direct = [logits[i, y[i]] - max(logits[i, j] for j in range(3) if j != y[i]) for i in range(101)]
    assert margin(net, x, y) == pytest.approx(sorted(direct)[10], rel=1e-12)  # 10th percentile of 101 = 11th value


def test_fisher_rao_directional_matches_per_sample_autograd_loop():
    net = mlp(2, act=nn.Tanh)
    x, y = self_labelled(net, n=12)
    y = (y + 1) % 3
    brute = []
    for i in range(12):
        loss = nn.functional.cross_entropy(net(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, list(net.parameters()))
        brute.append(sum((p * g).sum() for p, g in zip(net.parameters(), grads, strict=True)).item() ** 2)
    assert fisher_rao_norm(net, x, y) == pytest.approx(np.mean(brute), rel=1e-10)
    targets = torch.randn(12, 3, dtype=D)
    brute = []
    for i in range(12):
        loss = 0.5 * ((net(x[i : i + 1]) - targets[i]) ** 2).sum()
        grads = torch.autograd.grad(loss, list(net.parameters()))
        brute.append(sum((p * g).sum() for p, g in zip(net.parameters(), grads, strict=True)).item() ** 2)
    assert fisher_rao_norm(net, x, targets) == pytest.approx(np.mean(brute), rel=1e-10)


def test_fisher_rao_homogeneous_form_equals_definition_for_bias_free_relu_net():
    net = mlp(4, widths=(4, 6, 5, 3), bias=False)
    x, y = self_labelled(net, n=20)
    y = (y + 1) % 3
    exact = fisher_rao_norm(net, x, y, method="directional")
    assert fisher_rao_norm(net, x, y, method="homogeneous") == pytest.approx(exact, rel=1e-10)
    biased = mlp(4, widths=(4, 6, 5, 3))
    assert fisher_rao_norm(biased, x, y, method="homogeneous") != pytest.approx(fisher_rao_norm(biased, x, y))


# ---------------------------------------------------------------- spectral bounds


def test_spectral_measures_match_formulas():
    net, init = mlp(0), mlp(1)
    x, y = self_labelled(net)
    r = compute_measures(net, init, x, y, names=["log_prod_spec", "spec_orig", "spec_init", "margin"])
    ws = [p.detach().numpy() for n, p in net.named_parameters() if "weight" in n]
    w0 = [p.detach().numpy() for n, p in init.named_parameters() if "weight" in n]
    spec = np.array([np.linalg.svd(w, compute_uv=False)[0] for w in ws])
    fro = np.array([(w**2).sum() for w in ws])
    dist = np.array([((w - v) ** 2).sum() for w, v in zip(ws, w0, strict=True)])
    gamma = r["margin"]
    assert r["log_prod_spec"] == pytest.approx(np.log(np.prod(spec**2)), rel=1e-10)
    assert r["spec_orig"] == pytest.approx(np.log(np.prod(spec**2) / gamma**2 * (fro / spec**2).sum()), rel=1e-10)
    assert r["spec_init"] == pytest.approx(np.log(np.prod(spec**2) / gamma**2 * (dist / spec**2).sum()), rel=1e-10)


def test_bartlett_spectral_complexity_matches_formula():
    net, init = mlp(0, widths=(4, 6, 5, 3)), mlp(1, widths=(4, 6, 5, 3))
    ws = [p.detach().numpy() for n, p in net.named_parameters() if "weight" in n]
    w0 = [p.detach().numpy() for n, p in init.named_parameters() if "weight" in n]
    for ref in (None, w0):
        spec = [np.linalg.svd(a, compute_uv=False)[0] for a in ws]
        l21 = [
            np.linalg.norm((a - (0 if ref is None else m)).T, axis=0).sum() for a, m in zip(ws, ref or ws, strict=True)
        ]
        expected = np.prod(spec) * sum((l / s) ** (2 / 3) for l, s in zip(l21, spec, strict=True)) ** 1.5
        got = bartlett_spectral_complexity(net, None if ref is None else init)
        assert got == pytest.approx(expected, rel=1e-10)


def test_neyshabur_bound_matches_formula():
    net = mlp(0)
    x, y = self_labelled(net, n=200)
    ws = [p.detach().numpy() for n, p in net.named_parameters() if "weight" in n]
    spec = np.array([np.linalg.svd(w, compute_uv=False)[0] for w in ws])
    fro = np.array([(w**2).sum() for w in ws])
    b2, d, h, m, gamma = float((x**2).sum(1).max()), 2, 6, 200, margin(net, x, y)
    expected = math.sqrt(
        (b2 * d**2 * h * math.log(d * h) * np.prod(spec**2) * (fro / spec**2).sum() + math.log(d * m / 0.05))
        / (gamma**2 * m)
    )
    assert neyshabur_pacbayes_bound(net, x, y) == pytest.approx(expected, rel=1e-10)


@settings(max_examples=10)
@given(st.floats(0.1, 10.0))
def test_margin_normalised_measures_invariant_to_output_scaling(c):
    net = mlp(5)
    x, y = self_labelled(net, n=100)
    scaled = copy.deepcopy(net)
    with torch.no_grad():
        scaled[-1].weight.mul_(c)
        scaled[-1].bias.mul_(c)
    invariant = [
        "log_prod_spec_over_margin",
        "spec_orig",
        "path_norm_over_margin",
        "bartlett_over_margin",
    ]  # not neyshabur_pacbayes_spectral: its additive ln(dm/δ) term is not margin-normalised
    names = [*invariant, "inverse_margin"]
    a, b = compute_measures(net, x=x, y=y, names=names), compute_measures(scaled, x=x, y=y, names=names)
    for name in invariant:
        assert b[name] == pytest.approx(a[name], rel=1e-9), name
    assert b["inverse_margin"] == pytest.approx(a["inverse_margin"] / c**2, rel=1e-9)


def test_margin_measures_are_infinite_for_non_positive_margin():
    net = mlp(0)
    x, y = self_labelled(net, n=50)
    r = compute_measures(net, x=x, y=(y + 1) % 3, names=["margin", "inverse_margin", "spec_orig"])
    assert r["margin"] < 0 and r["inverse_margin"] == math.inf and r["spec_orig"] == math.inf


# ---------------------------------------------------------------- PAC-Bayes flatness


def _brute_drop(net, x, y, sigma, seeds, magnitude_aware):
    """Accuracy drop with noise added to deep copies, drawing parameters in registration order per seed."""
    base = (net(x).argmax(1) == y).double().mean().item()
    accs = []
    for seed in seeds:
        gen, noisy = torch.Generator().manual_seed(int(seed)), copy.deepcopy(net)
        with torch.no_grad():
            for p in noisy.parameters():
                z = torch.randn(p.shape, dtype=D, generator=gen)
                p.add_((torch.sqrt(sigma**2 * p**2 + 1e-6) if magnitude_aware else sigma) * z)
            accs.append((noisy(x).argmax(1) == y).double().mean().item())
    return base - np.mean(accs)


@pytest.mark.parametrize("magnitude_aware", [False, True])
def test_flatness_bisection_hits_target_drop(magnitude_aware):
    net = mlp(7, widths=(4, 16, 3))
    x, y = self_labelled(net, n=400)
    res = pacbayes_sigma(net, x, y, magnitude_aware=magnitude_aware, n_draws=8, random_state=3)
    assert res.converged and res.base_accuracy == 1.0
    assert abs(res.drop - 0.1) <= 0.01
    seeds = np.random.SeedSequence(3).generate_state(8)
    assert _brute_drop(net, x, y, res.sigma, seeds, magnitude_aware) == pytest.approx(res.drop, abs=1e-12)
    again = pacbayes_sigma(net, x, y, magnitude_aware=magnitude_aware, n_draws=8, random_state=3)
    assert again == res


def test_pacbayes_measures_follow_sigma():
    net, init = mlp(7, widths=(4, 16, 3)), mlp(8, widths=(4, 16, 3))
    x, y = self_labelled(net, n=400)
    r = compute_measures(net, init, x, y, names=["pacbayes_flatness", "pacbayes_init"], random_state=0)
    sigma = pacbayes_sigma(net, x, y, random_state=0).sigma
    dist2 = sum(((p - q) ** 2).sum().item() for p, q in zip(net.parameters(), init.parameters(), strict=True))
    assert r["pacbayes_flatness"] == pytest.approx(1 / sigma**2, rel=1e-12)
    assert r["pacbayes_init"] == pytest.approx(dist2 / (4 * sigma**2) + math.log(400 / sigma) + 10, rel=1e-12)
    assert pacbayes_init_bound(net, init, sigma, 400) == pytest.approx(r["pacbayes_init"], rel=1e-12)


def test_sigma_is_nan_with_a_warning_when_the_drop_is_unreachable():
    net = mlp(7)
    x, y = self_labelled(net, n=50)
    with pytest.warns(UserWarning, match="sigma_max"):
        res = pacbayes_sigma(net, x, y, target_drop=0.5, tolerance=0.01, sigma_max=1e-2, n_draws=2, random_state=0)
    assert math.isnan(res.sigma) and not res.converged


# ---------------------------------------------------------------- weight spectrum


def test_power_law_alpha_fixed_cutoff_matches_scipy_pareto_mle():
    rng = np.random.default_rng(0)
    sample = (1 - rng.random(500)) ** (-1 / 1.5) * 0.3  # Pareto tail, alpha = 2.5, xmin = 0.3
    fit = power_law_alpha(sample, xmin=0.3)
    b, _, _ = scipy.stats.pareto.fit(sample, floc=0, fscale=0.3)
    assert fit.alpha == pytest.approx(b + 1, rel=1e-6) and fit.n_tail == 500


def test_power_law_alpha_recovers_exponent_with_ks_cutoff():
    rng = np.random.default_rng(1)
    tail = (1 - rng.random(3000)) ** (-1 / 2.0) * 2.0  # alpha = 3, xmin = 2
    body = rng.uniform(0.0, 2.0, 1000)
    fit = power_law_alpha(np.concatenate([body, tail]))
    assert fit.alpha == pytest.approx(3.0, abs=0.15)
    assert fit.xmin == pytest.approx(2.0, rel=0.15)


def test_weight_spectrum_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(40, 60), nn.ReLU(), nn.Linear(60, 3)).to(D)
    spectrum = weight_spectrum(net)
    w = net[0].weight.detach().numpy()
    s = np.linalg.svd(w, compute_uv=False)
    first = spectrum.layers[0]
    assert first.stable_rank == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-10)
    assert first.lambda_max == pytest.approx(s[0] ** 2 / 60, rel=1e-10)
    assert first.alpha == pytest.approx(power_law_alpha(s**2 / 60).alpha, rel=1e-12)
    assert math.isnan(spectrum.layers[1].alpha)  # 3 non-zero eigenvalues: too few for a tail fit
    assert spectrum.alpha_weighted == pytest.approx(first.alpha * math.log10(first.lambda_max), rel=1e-12)
    assert spectrum.stable_rank_mean == pytest.approx(np.mean([la.stable_rank for la in spectrum.layers]))


# ---------------------------------------------------------------- registry


def test_registry_metadata_is_complete():
    assert set(CHEAP_MEASURES) == {n for n, m in MEASURES.items() if m.cheap}
    assert {"pacbayes_flatness", "pacbayes_mag_flatness", "pacbayes_init"}.isdisjoint(CHEAP_MEASURES)
    for name, m in MEASURES.items():
        assert m.name == name and m.description and m.reference and m.equation
        doc = m.fn.__doc__ or ""
        assert m.equation.split(" (")[0].split(" with ")[0] in doc, name
        assert m.reference != "Jiang et al. 2020" or re.fullmatch(r"(Eq\. \d+|App\. C(\.\d)?)", m.equation), name
        assert m.reference.split()[0] in doc, name


def test_compute_measures_on_trained_conv_net_is_finite_and_respects_needs():
    net, init = conv_net(0), conv_net(1)
    x = torch.randn(120, 2, 6, 6, dtype=D)
    y = net(x).argmax(1)
    all_values = compute_measures(net, init, x, y, random_state=0)
    assert set(all_values) == set(MEASURES)
    finite = set(MEASURES) - {"alpha_mean", "alpha_weighted"}  # layers too small for a tail fit: NaN
    assert all(math.isfinite(all_values[n]) for n in finite), all_values
    no_data = compute_measures(net, init)
    assert set(no_data) == {n for n, m in MEASURES.items() if not m.needs_data}
    assert no_data["param_norm"] == pytest.approx(all_values["param_norm"])
    operator = compute_measures(net, x=x, y=y, names=["log_prod_spec"], conv_norm="operator", random_state=0)
    expected = 2 * np.log(spectral_norms(net, conv_norm="operator", x=x, random_state=0)).sum()
    assert operator["log_prod_spec"] == pytest.approx(expected, rel=1e-6)


def test_transformer_style_model_with_integer_tokens():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(11, 8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.norm = nn.LayerNorm(8)
            self.head = nn.Linear(8, 11)

        def forward(self, tokens):
            h = self.emb(tokens)
            h = self.norm(h + self.attn(h, h, h, need_weights=False)[0])
            return self.head(h[:, -1])

    torch.manual_seed(0)
    model = Tiny().to(D)
    tokens = torch.randint(0, 11, (30, 2))
    labels = (tokens.sum(1) % 11).long()
    r = compute_measures(model, x=tokens, y=labels, names=["margin", "log_prod_spec", "fisher_rao", "num_params"])
    assert r["num_params"] == sum(p.numel() for p in model.parameters())
    assert r["log_prod_spec"] == pytest.approx(2 * np.log(spectral_norms(model)).sum())
    assert len(spectral_norms(model)) == 4  # embedding, in_proj, out_proj, head
    with pytest.raises(ValueError, match="real-valued inputs"):
        compute_measures(model, x=tokens, y=labels, names=["path_norm"])


def test_numpy_inputs_regression_targets_and_caller_model_untouched():
    net = mlp(0).train()
    before = [p.detach().clone() for p in net.parameters()]
    x, y = self_labelled(net, n=30)
    targets = torch.randn(30, 3, dtype=D)
    r = compute_measures(net, x=x.numpy(), y=targets.numpy(), names=["fisher_rao", "param_norm"])
    assert r["fisher_rao"] == pytest.approx(fisher_rao_norm(net, x, targets), rel=1e-12)
    assert net.training and all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert compute_measures(net, x=x.numpy(), y=y.numpy(), names=["margin"])["margin"] == margin(net, x, y)


def test_needs_labels_flags_the_classification_measures():
    net, init = mlp(0), mlp(1)
    x, _ = self_labelled(net, n=40)
    targets = torch.randn(40, 3, dtype=D)
    regression = compute_measures(net, init, x, targets, random_state=0)
    assert set(regression) == {n for n, m in MEASURES.items() if not m.needs_labels}
    assert {"path_norm", "fisher_rao", "dist_init"} <= set(regression)
    for name in [n for n, m in MEASURES.items() if m.needs_labels]:
        with pytest.raises(ValueError, match="integer class labels"):
            compute_measures(net, init, x, targets, names=[name])


def test_bad_inputs_raise_clear_errors():
    net, x = mlp(0), torch.randn(10, 4, dtype=D)
    y = torch.zeros(10, dtype=torch.long)
    with pytest.raises(TypeError, match="'model' parameter must be a torch.nn.Module"):
        compute_measures("not a model")
    with pytest.raises(ValueError, match="'names' parameter of compute_measures must be one of"):
        compute_measures(net, names=["no_such_measure"])
    with pytest.raises(ValueError, match="'dist_init' needs the 'init_model'"):
        compute_measures(net, names=["dist_init"])
    with pytest.raises(ValueError, match="'margin' needs the 'x' and 'y'"):
        compute_measures(net, names=["margin"])
    with pytest.raises(ValueError, match="given together"):
        compute_measures(net, x=x)
    with pytest.raises(ValueError, match="'y' parameter must have 10 rows"):
        compute_measures(net, x=x, y=y[:4])
    with pytest.raises(ValueError, match="'random_state' parameter of compute_measures"):
        compute_measures(net, random_state=0.5)
    with pytest.raises(ValueError, match="integer class labels.*regression"):
        compute_measures(net, x=x, y=torch.randn(10), names=["margin"])
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        margin(net, x, torch.full((10,), 5))
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        margin(net, x, torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="logits"):
        margin(nn.Linear(4, 1).to(D), x, y)
    with pytest.raises(ValueError, match="'conv_norm' parameter of compute_measures must be one of"):
        compute_measures(net, conv_norm="exact")
    with pytest.raises(ValueError, match="same weight layers"):
        distance_to_init(net, mlp(0, widths=(4, 7, 3)))
    with pytest.raises(ValueError, match="'target_drop' parameter of pacbayes_sigma"):
        pacbayes_sigma(net, x, y, target_drop=1.5)
    with pytest.raises(ValueError, match="'method' parameter of fisher_rao_norm"):
        fisher_rao_norm(net, x, y, method="hessian")
    with pytest.raises(ValueError, match="at least 10 positive"):
        power_law_alpha([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="must have a weight layer"):
        compute_measures(nn.LayerNorm(4), names=["log_prod_spec"])
    with pytest.raises(TypeError, match="'x' parameter must be a torch.Tensor"):
        margin(net, "x", y)


def test_measures_relative_to_init_are_defined_at_initialisation():
    """At θ = θ⁰ every ‖W − W⁰‖ is 0: spec-init is log 0 = −inf and Bartlett's R with M = W⁰ is 0, not an error."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x, y = torch.randn(20, 5), torch.randint(0, 3, (20,))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        values = compute_measures(model, copy.deepcopy(model), x, y, names=["spec_init", "bartlett_init_over_margin"])
    assert values["spec_init"] == -math.inf
    assert values["bartlett_init_over_margin"] in (0.0, math.inf)  # 0/γ, or inf when γ <= 0
