"""TelescopeTracker: the telescoping model carried along a caller's own training loop (Jeffares et al. 2024),
against a float64 autograd reference of the telescoped optimizer updates."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.func import functional_call, jvp

from theory.telescoping import OptimizerSpec, TelescopeTracker, telescope
from theory.telescoping._tracker import state_bytes

DT = torch.float64


def _data(n=9, m=4, d=3, out=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + m, d, generator=g, dtype=DT)
    return x[:n], torch.randn(n, out, generator=g, dtype=DT), x[n:]


def _mlp(d=3, width=6, out=2, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, width), torch.nn.Tanh(), torch.nn.Linear(width, out)).to(DT)


def _batches(n, size, steps, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=g)[:size] for _ in range(steps)]


def _tracked_run(model, make_opt, x, y, x_test, batches, *, schedule=None, tracker=True, **kwargs):
    """The caller's loop: F.mse_loss (mean over examples and outputs), an optional lr schedule, the hooks."""
    opt = make_opt(model.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=schedule, gamma=0.5) if schedule else None
    tele = TelescopeTracker(model, opt, x, y, x_test, loss_scale=2 / y.shape[1], **kwargs) if tracker else None
    for batch in batches:
        opt.zero_grad()
        F.mse_loss(model(x[batch]), y[batch]).backward()
        if tele is not None:
            tele.before_step(batch)
        opt.step()
        if tele is not None:
            tele.after_step()
        if sched is not None:
            sched.step()
    return tele


def _reference(model, make_opt, x, y, x_test, batches, *, schedule=None):
    """Brute force: the telescoped parameters θ̃ follow torch's SGD/Adam/AdamW formulas at the telescoping
    predictions (autograd gradient of the run's loss there), f̃ += jvp(f, θ_{t−1}; Δθ̃); the real net trains
    alongside with a real torch optimizer, from which the learning rate and Adam's second moments are read."""
    net = copy.deepcopy(model)
    opt = make_opt(net.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=schedule, gamma=0.5) if schedule else None
    spec = OptimizerSpec.from_torch(opt)
    names = [k for k, _ in net.named_parameters()]
    x_all = torch.cat([x, x_test])

    def f(params, inputs):
        return functional_call(net, params, (inputs,))

    theta = {k: v.detach().clone() for k, v in net.named_parameters()}
    with torch.no_grad():
        tele = net(x_all)
    buf = None
    for t, batch in enumerate(batches, start=1):
        lr = opt.param_groups[0]["lr"]
        p = {k: v.detach().clone().requires_grad_(True) for k, v in net.named_parameters()}
        target = tele[batch].detach()
        # the gradient at the telescoping predictions: f̃(x_B) replaces f(x_B) in the loss' output gradient
        out = f(p, x[batch])
        g = torch.autograd.grad(out, list(p.values()), 2 * (target - y[batch]) / y[batch].numel())
        opt.zero_grad()
        F.mse_loss(net(x[batch]), y[batch]).backward()
        opt.step()
        wd, b1, b2 = spec.weight_decay, *spec.betas
        if spec.name == "sgd":
            d = [gi + wd * theta[k] for k, gi in zip(names, g, strict=True)]
            if buf is None or not spec.momentum:
                buf = d
            else:
                buf = [spec.momentum * m + di for m, di in zip(buf, d, strict=True)]
            step = {k: -lr * bi for k, bi in zip(names, buf, strict=True)}
        else:
            if spec.name == "adam":
                g = [gi + wd * theta[k] for k, gi in zip(names, g, strict=True)]
            if buf is None:
                buf = [(1 - b1) * gi for gi in g]
            else:
                buf = [b1 * m + (1 - b1) * gi for m, gi in zip(buf, g, strict=True)]
            step = {}
            for k, m, param in zip(names, buf, net.parameters(), strict=True):
                phi = (opt.state[param]["exp_avg_sq"] / (1 - b2**t)).sqrt() + spec.eps
                step[k] = -lr / (1 - b1**t) * m / phi - (lr * wd * theta[k] if spec.name == "adamw" else 0)
        p = {k: v.detach() for k, v in p.items()}
        tele = tele + jvp(lambda q: f(q, x_all), (p,), (step,))[1]
        theta = {k: theta[k] + step[k] for k in names}
        if sched is not None:
            sched.step()
    with torch.no_grad():
        return tele, net(x_all)


OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.3),
    "momentum_wd": lambda ps: torch.optim.SGD(ps, lr=0.2, momentum=0.9, weight_decay=0.1),
    "adam_wd": lambda ps: torch.optim.Adam(ps, lr=0.03, betas=(0.8, 0.95), weight_decay=0.2),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.03, weight_decay=0.5),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_tracker_follows_the_callers_loop_with_minibatches_loss_scale_and_schedule(name):
    x, y, x_test = _data(seed=3)
    model = _mlp(seed=3)
    batches = _batches(9, 4, 10, seed=1)
    tele, real = _reference(model, OPTIMIZERS[name], x, y, x_test, batches, schedule=4)
    net = copy.deepcopy(model)
    tracker = _tracked_run(net, OPTIMIZERS[name], x, y, x_test, batches, schedule=4)
    rec = tracker.record()
    assert tracker.steps == 10 and tracker.method == ("kernel" if name == "sgd" else "parameter")
    np.testing.assert_allclose(rec["real"], real.numpy(), atol=1e-13)
    np.testing.assert_allclose(rec["telescoping"], tele.numpy(), atol=1e-12)
    assert np.abs(rec["telescoping"] - rec["real"]).max() > 1e-6  # a non-linear model: not exact


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_tracking_does_not_change_the_run(name):
    x, y, x_test = _data(seed=4)
    batches = _batches(9, 3, 6, seed=2)
    tracked, plain = _mlp(seed=4), _mlp(seed=4)
    _tracked_run(tracked, OPTIMIZERS[name], x, y, x_test, batches)
    _tracked_run(plain, OPTIMIZERS[name], x, y, x_test, batches, tracker=False)
    for a, b in zip(tracked.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)


def test_linear_model_is_exact_for_adam_with_coupled_decay():
    x, y, x_test = _data(n=8, m=5, seed=2)
    torch.manual_seed(2)
    model = torch.nn.Linear(3, 2).to(DT)
    res = telescope(model, (x, y), x_test, OptimizerSpec("adam", lr=0.05, weight_decay=0.3), 12, seed=0, batch_size=3)
    assert np.abs(res.gap).max() < 1e-12 * np.abs(res.real).max() * 100
    assert np.abs(res.real[-1] - res.real[0]).max() > 1e-2


def test_float32_network_with_float64_smoother_is_exact_to_float32_rounding():
    """A linear network trained in float32: the float64 telescoping tracks it to float32 rounding (~1e-7)."""
    x, y, x_test = _data(n=12, m=6, d=4, out=1, seed=5)
    torch.manual_seed(5)
    model = torch.nn.Linear(4, 1)
    x32, y32 = x.float(), y.float()
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
    tracker = TelescopeTracker(model, opt, x32, y32, x_test.float(), loss_scale=2.0)
    for batch in _batches(12, 5, 20, seed=0):
        opt.zero_grad()
        F.mse_loss(model(x32[batch]), y32[batch]).backward()
        tracker.before_step(batch)
        opt.step()
        tracker.after_step()
    rec = tracker.record()
    assert tracker.smoother.dtype == DT and model.weight.dtype == torch.float32
    assert np.abs(rec["telescoping"] - rec["real"]).max() < 1e-5
    assert rec["p_train"][0] > 0.5 and rec["p_test"][0] > 0


@given(
    name=st.sampled_from(["sgd", "adam", "adamw"]),
    lr=st.floats(1e-4, 1.0, allow_subnormal=False),
    momentum=st.floats(0.0, 0.99, allow_subnormal=False),
    weight_decay=st.floats(0.0, 2.0, allow_subnormal=False),
    beta1=st.floats(0.0, 0.99, allow_subnormal=False),
    beta2=st.floats(0.0, 0.999, allow_subnormal=False),
)
def test_optimizer_spec_round_trips_through_torch(name, lr, momentum, weight_decay, beta1, beta2):
    kwargs = {"momentum": momentum} if name == "sgd" else {"betas": (beta1, beta2)}
    spec = OptimizerSpec(name, lr=lr, weight_decay=weight_decay, **kwargs)
    assert OptimizerSpec.from_torch(spec.build([torch.zeros(2, requires_grad=True)])) == spec


def _tracker_args(**kwargs):
    model = torch.nn.Linear(2, 1).double()
    args = dict(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        x_train=torch.zeros(6, 2, dtype=DT),
        y_train=torch.zeros(6, dtype=DT),
    )
    return {**args, **kwargs}


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda m: torch.optim.RMSprop(m.parameters()), ValueError, "follows torch.optim.SGD, Adam and AdamW"),
        (lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True), ValueError, "nesterov"),
        (lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, dampening=0.5), ValueError, "dampening"),
        (lambda m: torch.optim.Adam(m.parameters(), amsgrad=True), ValueError, "amsgrad"),
        (lambda m: torch.optim.SGD([m.weight], lr=0.1), ValueError, "exactly the model's parameters"),
        (
            lambda m: torch.optim.SGD([{"params": [m.weight]}, {"params": [m.bias], "lr": 0.5}], lr=0.1),
            ValueError,
            "differ in \\['lr'\\]",
        ),
        (lambda m: "sgd", TypeError, "'optimizer' argument must be a torch optimizer"),
    ],
)
def test_unsupported_optimizers_are_refused_by_name(make, error, match):
    model = torch.nn.Linear(2, 1).double()
    with pytest.raises(error, match=match):
        TelescopeTracker(**_tracker_args(model=model, optimizer=make(model)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(loss_scale=0.0), "'loss_scale' parameter of TelescopeTracker"),
        (dict(method="kernel", optimizer=None), "'kernel' with"),
        (dict(dtype=torch.int32), "'dtype' argument must be a floating"),
        (dict(y_train=torch.zeros(5, dtype=DT)), "6 inputs and 5 labels"),
        (dict(max_memory=100), "needs 0.00 GiB .*P = 3 parameters, n = 6 .* over max_memory"),
    ],
)
def test_invalid_tracker_arguments_name_expected_and_actual(kwargs, match):
    args = _tracker_args()
    if kwargs.get("optimizer", 0) is None:
        kwargs["optimizer"] = torch.optim.SGD(args["model"].parameters(), lr=0.1, momentum=0.5)
    with pytest.raises(ValueError, match=match):
        TelescopeTracker(**{**args, **kwargs})


def test_state_bytes_formula_and_refusal_of_an_adamw_run_too_large_for_the_budget():
    """MLP 40-200-200-1 on 1000 MNIST-1D points with AdamW: 1.9 GiB of carried state (parameter method)."""
    p = 40 * 200 + 200 + 200 * 200 + 200 + 201
    need = state_bytes("parameter", n=1000, m=256, outputs=1, params=p, batch=1000, itemsize=8)
    assert need == 8 * (1256 * 1001 + 1000 * 1001 + 1256 * p + 4 * p * 1001)
    assert 1.8 < need / 2**30 < 2.0
    lin = torch.nn.Linear
    model = torch.nn.Sequential(lin(40, 200), torch.nn.ReLU(), lin(200, 200), torch.nn.ReLU(), lin(200, 1)).double()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.zeros(1256, 40, dtype=DT)
    match = "needs 1.92 GiB \\(method 'parameter', P = 48601 parameters, n = 1000 training and m = 256 test"
    with pytest.raises(ValueError, match=match):
        TelescopeTracker(model, opt, x[:1000], x[:1000, 0], x[1000:], max_memory=2**30)


def test_misused_hooks_and_a_mismatched_loss_raise():
    x, y, _ = _data(n=6, m=0, out=1)
    model = _mlp(out=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = TelescopeTracker(model, opt, x, y, loss_scale=2.0)
    with pytest.raises(RuntimeError, match="call it after loss.backward"):
        tracker.before_step(None)
    with pytest.raises(RuntimeError, match="without a before_step"):
        tracker.after_step()
    F.mse_loss(model(x), y).backward()
    with pytest.raises(ValueError, match="'batch' argument must hold indices in \\[0, 6\\)"):
        tracker.before_step(torch.tensor([0, 6]))
    tracker.before_step(None)
    with pytest.raises(RuntimeError, match="called twice"):
        tracker.before_step(None)
    wrong = TelescopeTracker(model, opt, x, y, loss_scale=1.0)  # the run's F.mse_loss has c = 2
    with pytest.raises(ValueError, match="not that of the declared squared loss .* loss_scale = 1"):
        wrong.before_step(None)


def test_telescope_device_argument_moves_the_copy_and_data():
    x, y, x_test = _data(n=6, m=3, out=1, seed=7)
    model = _mlp(out=1, seed=7)
    spec = OptimizerSpec("sgd", lr=0.2, momentum=0.5)
    default = telescope(model, (x, y), x_test, spec, 4, seed=0)
    on_cpu = telescope(model, (x, y), x_test, spec, 4, seed=0, device=torch.device("cpu"))
    np.testing.assert_array_equal(on_cpu.telescoping, default.telescoping)
    with pytest.raises(ValueError, match="'device' parameter of telescope must be an available torch device"):
        telescope(model, (x, y), x_test, spec, 4, seed=0, device="no-such-device")
