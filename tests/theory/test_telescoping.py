"""The telescoping model (Jeffares, Curth & van der Schaar 2024) against float64 brute-force references."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.func import functional_call, jvp

from theory import effective_parameters
from theory.telescoping import OptimizerSpec, TelescopeResult, telescope

DT = torch.float64


def _data(n=10, m=6, d=4, out=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + m, d, generator=g, dtype=DT)
    y = torch.randn(n, out, generator=g, dtype=DT)
    return x[:n], (y[:, 0] if out == 1 else y), x[n:]


def _mlp(d=4, width=8, out=1, seed=0, act=torch.nn.Tanh):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, width), act(), torch.nn.Linear(width, out)).to(DT)


def _gd_smoother(x, x_test, lr, steps):
    """Closed form for GD on a linear model from 0: S_T = I − Mᵀ, s_T(x) = (γ/n) x Xᵀ Σ_{t<T} M^t, M = I − γXXᵀ/n."""
    x, x_test = x.numpy(), x_test.numpy()
    n = x.shape[0]
    m_mat = np.eye(n) - lr * x @ x.T / n
    powers = [np.linalg.matrix_power(m_mat, t) for t in range(steps)]
    return np.eye(n) - np.linalg.matrix_power(m_mat, steps), lr / n * x_test @ x.T @ sum(powers, np.zeros((n, n)))


def test_linear_gd_is_exact_and_equals_closed_form_smoother():
    x, y, x_test = _data(n=12, m=7, d=5)
    model = torch.nn.Linear(5, 1, bias=False).to(DT)
    torch.nn.init.zeros_(model.weight)
    lr, steps = 0.1, 25
    res = telescope(model, (x, y), x_test, OptimizerSpec("sgd", lr=lr), steps, record_every=5, seed=0)
    assert isinstance(res, TelescopeResult)
    assert list(res.steps) == [0, 5, 10, 15, 20, 25]
    assert np.abs(res.gap).max() < 1e-12
    assert np.abs(res.linearised - res.real).max() < 1e-12
    for i, t in enumerate(res.steps):
        s_train, s_test = _gd_smoother(x, x_test, lr, int(t))
        assert res.p_train[i, 0] == pytest.approx(effective_parameters(s_train), abs=1e-12)
        assert res.p_test[i, 0] == pytest.approx(effective_parameters(s_test), abs=1e-12)
        assert res.trace_train[i, 0] == pytest.approx(np.trace(s_train), abs=1e-12)
    s_train, s_test = _gd_smoother(x, x_test, lr, steps)
    np.testing.assert_allclose(res.smoother[:12, 0, :, 0], s_train, atol=1e-12)
    np.testing.assert_allclose(res.smoother[12:, 0, :, 0], s_test, atol=1e-12)
    np.testing.assert_allclose(res.offset, 0.0, atol=1e-15)
    assert res.p_test[-1, 0] == pytest.approx(12 / 7 * (s_test**2).sum(), rel=1e-12)


@given(
    n=st.integers(2, 8),
    d=st.integers(1, 6),
    steps=st.integers(1, 8),
    lr=st.floats(0.01, 0.5),
    seed=st.integers(0, 10_000),
)
def test_linear_gd_p_train_follows_the_spectrum(n, d, steps, lr, seed):
    """p_train = Σ_i (1 − (1 − γλ_i)^T)² over the eigenvalues λ_i of XXᵀ/n (full-batch GD from zero init)."""
    x, y, _ = _data(n=n, m=0, d=d, seed=seed)
    model = torch.nn.Linear(d, 1, bias=False).to(DT)
    torch.nn.init.zeros_(model.weight)
    res = telescope(model, (x, y), None, OptimizerSpec("sgd", lr=lr), steps, seed=seed)
    lam = np.linalg.eigvalsh(x.numpy() @ x.numpy().T / n)
    expected = ((1 - (1 - lr * lam) ** steps) ** 2).sum()
    assert res.p_train[-1, 0] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert np.isnan(res.p_test).all()
    assert np.abs(res.gap).max() <= 1e-10 * max(1.0, np.abs(res.real).max())


def _reference(model, x, y, x_test, lr, steps, link):
    """Autograd loop: f̃ += ∇f(x)ᵀΔθ̃ with Δθ̃ = −γ ∇_θ ½mean‖f(X) − ·‖² at f̃ (vjp then jvp), next to real GD."""
    net = copy.deepcopy(model)
    x_all = torch.cat([x, x_test])
    y = y.reshape(x.shape[0], -1)
    n = x.shape[0]

    def f(params, inputs):
        out = functional_call(net, params, (inputs,)).reshape(inputs.shape[0], -1)
        return torch.sigmoid(out) if link == "sigmoid" else out

    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    with torch.no_grad():
        tele = f(params, x_all)
    lin = tele.clone()
    history = [(tele.clone(), lin.clone(), tele.clone())]
    for _ in range(steps):
        p = {k: v.requires_grad_(True) for k, v in params.items()}
        out = f(p, x)
        g_tel = torch.autograd.grad(out, list(p.values()), (tele[:n] - y) / n, retain_graph=True)
        g_real = torch.autograd.grad(out, list(p.values()), (out.detach() - y) / n)
        p = {k: v.detach() for k, v in p.items()}
        step_tel = {k: -lr * g for k, g in zip(p, g_tel, strict=True)}
        step_real = {k: -lr * g for k, g in zip(p, g_real, strict=True)}
        tele = tele + jvp(lambda q: f(q, x_all), (p,), (step_tel,))[1]
        lin = lin + jvp(lambda q: f(q, x_all), (p,), (step_real,))[1]
        params = {k: p[k] + step_real[k] for k in p}
        with torch.no_grad():
            history.append((tele.clone(), lin.clone(), f(params, x_all)))
    return history


@pytest.mark.parametrize("link", ["identity", "sigmoid"])
def test_smoother_reproduces_summed_first_order_steps_on_mlp(link):
    x, y, x_test = _data(n=10, m=5, d=4, out=2)
    if link == "sigmoid":
        y = (y > 0).to(DT)
    model = _mlp(out=2)
    lr, steps = 0.5, 12
    res = telescope(model, (x, y), x_test, OptimizerSpec("sgd", lr=lr), steps, seed=0, link=link)
    ref = _reference(model, x, y, x_test, lr, steps, link)
    for t, (tele, lin, real) in enumerate(ref):
        np.testing.assert_allclose(res.telescoping[t], tele.numpy(), atol=1e-12)
        np.testing.assert_allclose(res.linearised[t], lin.numpy(), atol=1e-12)
        np.testing.assert_allclose(res.real[t], real.numpy(), atol=1e-12)
    yv = np.concatenate([y.numpy().reshape(-1), [1.0]])
    smoother = np.concatenate([res.smoother.reshape(15 * 2, -1), res.offset.reshape(-1, 1)], axis=1)
    np.testing.assert_allclose((smoother @ yv).reshape(15, 2), res.telescoping[-1], atol=1e-12)
    assert np.abs(res.gap[-1]).max() > 1e-6  # a non-linear model: the approximation is not exact


@pytest.mark.parametrize("link", ["identity", "sigmoid"])
def test_kernel_and_parameter_methods_agree_on_minibatch_sgd(link):
    x, y, x_test = _data(n=9, m=4, d=3, out=2, seed=1)
    if link == "sigmoid":
        y = (y > 0).to(DT)
    model = _mlp(d=3, width=6, out=2, seed=1)
    kw = dict(seed=3, batch_size=4, link=link, record_every=3)
    spec = OptimizerSpec("sgd", lr=0.3)
    by_kernel = telescope(model, (x, y), x_test, spec, 10, method="kernel", **kw)
    by_params = telescope(model, (x, y), x_test, spec, 10, method="parameter", **kw)
    assert by_kernel.method == "kernel" and by_params.method == "parameter"
    for name in ("p_train", "p_test", "trace_train", "real", "telescoping", "linearised", "smoother", "offset"):
        np.testing.assert_allclose(getattr(by_kernel, name), getattr(by_params, name), atol=1e-11, err_msg=name)
    assert not np.allclose(by_kernel.real[1], by_kernel.real[-1])


def _reference_optimizer(model, x, y, x_test, spec, steps):
    """Autograd loop for momentum / weight decay / AdamW: the telescoped parameters θ̃ and moments follow torch's
    update formulas at the telescoping predictions; AdamW's preconditioner is read from a real torch optimizer."""
    net = copy.deepcopy(model)
    x_all = torch.cat([x, x_test])
    n, lr, wd = x.shape[0], spec.lr, spec.weight_decay
    names = [k for k, _ in net.named_parameters()]
    opt = spec.build(net.parameters())

    def f(params, inputs):
        return functional_call(net, params, (inputs,)).reshape(inputs.shape[0], -1)

    tel_theta = {k: v.detach().clone() for k, v in net.named_parameters()}
    buf = None
    with torch.no_grad():
        tele = f(dict(net.named_parameters()), x_all)
    for t in range(1, steps + 1):
        p = {k: v.detach().clone().requires_grad_(True) for k, v in net.named_parameters()}
        g_tel = torch.autograd.grad(f(p, x), list(p.values()), (tele[:n] - y) / n)
        opt.zero_grad()
        (0.5 * ((net(x) - y) ** 2).sum(1).mean()).backward()
        opt.step()
        if spec.name == "sgd":
            d = [g + wd * tel_theta[k] for k, g in zip(names, g_tel, strict=True)]
            buf = d if buf is None else [spec.momentum * b + di for b, di in zip(buf, d, strict=True)]
            step = {k: -lr * b for k, b in zip(names, buf, strict=True)}
        else:
            b1, b2 = spec.betas
            buf = (
                [(1 - b1) * g for g in g_tel]
                if buf is None
                else [b1 * m + (1 - b1) * g for m, g in zip(buf, g_tel, strict=True)]
            )
            step = {}
            for k, m, param in zip(names, buf, net.parameters(), strict=True):
                phi = (opt.state[param]["exp_avg_sq"] / (1 - b2**t)).sqrt() + spec.eps
                step[k] = -lr * wd * tel_theta[k] - lr / (1 - b1**t) * m / phi
        p = {k: v.detach() for k, v in p.items()}
        tele = tele + jvp(lambda q: f(q, x_all), (p,), (step,))[1]
        tel_theta = {k: tel_theta[k] + step[k] for k in names}
    return tele


@pytest.mark.parametrize(
    "spec",
    [OptimizerSpec("sgd", lr=0.2, momentum=0.9, weight_decay=0.1), OptimizerSpec("adamw", lr=0.02, weight_decay=0.5)],
    ids=["momentum_wd", "adamw"],
)
def test_parameter_path_reproduces_first_order_steps_on_mlp(spec):
    x, y, x_test = _data(n=7, m=3, d=3, out=2, seed=5)
    model = _mlp(d=3, width=5, out=2, seed=5)
    res = telescope(model, (x, y), x_test, spec, 8, record_every=8, seed=0)
    ref = _reference_optimizer(model, x, y, x_test, spec, 8)
    np.testing.assert_allclose(res.telescoping[-1], ref.numpy(), atol=1e-12)
    assert np.abs(res.gap[-1]).max() > 1e-6


@pytest.mark.parametrize(
    "spec",
    [
        OptimizerSpec("sgd", lr=0.2),
        OptimizerSpec("sgd", lr=0.1, momentum=0.9),
        OptimizerSpec("sgd", lr=0.1, weight_decay=0.3),
        OptimizerSpec("sgd", lr=0.05, momentum=0.8, weight_decay=0.2),
        OptimizerSpec("adamw", lr=0.05, weight_decay=0.5, betas=(0.8, 0.95)),
        OptimizerSpec("adamw", lr=0.02),
    ],
    ids=["sgd", "momentum", "weight_decay", "momentum_wd", "adamw_wd", "adamw"],
)
def test_linear_model_is_exact_for_every_optimizer(spec):
    x, y, x_test = _data(n=8, m=5, d=3, out=2, seed=2)
    torch.manual_seed(2)
    model = torch.nn.Linear(3, 2).to(DT)
    res = telescope(model, (x, y), x_test, spec, 15, seed=4, batch_size=3)
    scale = np.abs(res.real).max()
    assert np.abs(res.gap).max() < 1e-12 * scale * 100
    assert np.abs(res.linearised - res.real).max() < 1e-12 * scale * 100
    assert np.abs(res.real[-1] - res.real[0]).max() > 1e-2  # it did train
    # independent outputs of a linear model: no cross-output weights, and S_train·y + c reproduces f on train
    np.testing.assert_allclose(res.smoother[:, 0, :, 1], 0.0, atol=1e-12)
    full = res.smoother.reshape(13 * 2, 16) @ y.numpy().reshape(-1) + res.offset.reshape(-1)
    np.testing.assert_allclose(full.reshape(13, 2), res.real[-1], atol=1e-11)


@pytest.mark.parametrize(
    "spec", [OptimizerSpec("sgd", lr=0.3), OptimizerSpec("adamw", lr=0.05, weight_decay=0.1)], ids=["sgd", "adamw"]
)
def test_frozen_first_layer_is_a_random_features_model_and_exact(spec):
    """Only the readout trains: the model is linear in its trainable parameters, so telescoping is exact."""
    x, y, x_test = _data(n=9, m=4, d=3, seed=6)
    model = _mlp(d=3, width=12, seed=6)
    model[0].requires_grad_(False)
    res = telescope(model, (x, y), x_test, spec, 10, seed=0, batch_size=4)
    assert np.abs(res.gap).max() < 1e-12
    assert np.abs(res.real[-1] - res.real[0]).max() > 1e-2


def _final_gap(lr, steps, seed=0):
    x, y, x_test = _data(n=8, m=4, d=3, seed=seed)
    model = _mlp(d=3, width=16, seed=seed)
    res = telescope(model, (x, y), x_test, OptimizerSpec("sgd", lr=lr), steps, record_every=steps, seed=0)
    return np.abs(res.gap[-1]).max()


def test_gap_shrinks_linearly_in_lr_at_fixed_training_time():
    """Each step errs by O(γ²) (second-order Taylor remainder); T = τ/γ steps add up to a gap O(γ): slope 1."""
    lrs = np.array([0.2, 0.1, 0.05])
    gaps = np.array([_final_gap(lr, int(round(1.0 / lr))) for lr in lrs])
    slope = np.polyfit(np.log(lrs), np.log(gaps), 1)[0]
    assert 0.8 < slope < 1.25, (gaps, slope)


def test_one_step_gap_is_second_order_in_lr():
    lrs = np.array([0.4, 0.2, 0.1])
    gaps = np.array([_final_gap(lr, 1) for lr in lrs])
    slope = np.polyfit(np.log(lrs), np.log(gaps), 1)[0]
    assert 1.85 < slope < 2.15, (gaps, slope)


def test_frames_are_tidy():
    x, y, x_test = _data(n=6, m=3, d=2, out=2)
    res = telescope(_mlp(d=2, out=2), (x, y), x_test, OptimizerSpec("sgd", lr=0.1), 4, record_every=2, seed=0)
    frame = res.to_frame()
    assert len(frame) == 3 * 2
    assert list(frame.columns[:2]) == ["step", "output"]
    np.testing.assert_allclose(frame["p_train"].to_numpy(), res.p_train.reshape(-1))
    rms = np.sqrt((res.gap[:, 6:, :] ** 2).mean(axis=1)).reshape(-1)
    np.testing.assert_allclose(frame["gap_test"].to_numpy(), rms)
    np.testing.assert_allclose(frame.groupby("step")["p_test"].mean().to_numpy(), res.p_test_mean)
    preds = res.predictions_frame()
    assert len(preds) == 3 * 9 * 2
    last = preds[(preds.step == 4) & (preds.split == "test") & (preds["index"] == 2) & (preds.output == 1)]
    assert last["real"].item() == res.real[-1, 8, 1]
    with pytest.raises(AttributeError):
        res.n_train = 3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(steps=0), ValueError, "'steps' parameter of telescope must be a positive int"),
        (dict(record_every=-1), ValueError, "'record_every'"),
        (dict(batch_size=99), ValueError, "'batch_size' parameter of telescope must be at most n = 6"),
        (dict(link="tanh"), ValueError, "'link' parameter of telescope must be one of 'identity', 'sigmoid'"),
        (dict(method="ntk"), ValueError, "'method' parameter of telescope must be one of"),
        (dict(method="kernel", optimizer=OptimizerSpec("sgd", lr=0.1, momentum=0.5)), ValueError, "kernel"),
        (dict(optimizer="sgd"), TypeError, "'optimizer' argument must be an OptimizerSpec"),
        (dict(train=torch.zeros(6, 2)), TypeError, "'train' argument must be a pair"),
        (dict(train=(torch.zeros(6, 2), torch.zeros(5))), ValueError, "6 inputs and 5 labels"),
        (dict(test=torch.zeros(3, 5)), ValueError, "'test' argument must be inputs shaped"),
        (dict(train=(torch.zeros(6, 2), torch.zeros(6, 3))), ValueError, "1 outputs but the labels have 3"),
        (dict(dtype=torch.int64), ValueError, "'dtype' argument must be a floating"),
        (dict(seed=None), TypeError, "'seed' argument must be an int"),
        (dict(model=lambda x: x), TypeError, "'model' argument must be a torch.nn.Module"),
    ],
)
def test_invalid_arguments_name_argument_expected_and_actual(kwargs, error, match):
    args = dict(
        model=torch.nn.Linear(2, 1),
        train=(torch.zeros(6, 2), torch.zeros(6)),
        test=torch.zeros(3, 2),
        optimizer=OptimizerSpec("sgd", lr=0.1),
        steps=2,
        seed=0,
    )
    args.update(kwargs)
    with pytest.raises(error, match=match):
        telescope(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(name="rmsprop"), "'name' parameter of OptimizerSpec must be one of 'sgd', 'adam', 'adamw'"),
        (dict(lr=0.0), "'lr' parameter of OptimizerSpec must be a real number in \\(0, inf\\]"),
        (dict(momentum=1.0), "'momentum'"),
        (dict(weight_decay=-1), "'weight_decay'"),
        (dict(name="adamw", momentum=0.9), "must be 0 for 'adamw'"),
        (dict(betas=(0.9,)), "'betas' parameter of OptimizerSpec must be a pair"),
        (dict(betas=(0.9, 1.0)), "'betas'"),
        (dict(eps=0), "'eps'"),
    ],
)
def test_optimizer_spec_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptimizerSpec(**{"lr": 0.1, **kwargs})


def test_model_is_not_modified_and_spec_builds_torch_optimizers():
    model = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    telescope(model, (torch.randn(4, 2), torch.randn(4)), None, OptimizerSpec("sgd", lr=0.5), 3, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert model.weight.dtype == torch.float32
    opt = OptimizerSpec("adamw", lr=0.1, weight_decay=0.2).build(model.parameters())
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.2
