"""The "ntk" and "measures" recorder quantities against float64 brute-force references."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.utils.prune

import empirics.theory_quantities
from empirics.phenomena.base import Snapshot
from empirics.quantities import QUANTITIES
from empirics.recorder import Recorder
from empirics.theory_quantities import NTKQuantities
from theory.measures import CHEAP_MEASURES, MEASURES, compute_measures

NTK_NAMES = {"ntk_trace", "ntk_lambda_max", "ntk_eff_dim", "ntk_alignment", "ntk_velocity", "ntk_distance_init"}


def _model(seed=0, outputs=3):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, outputs)).double()


def _frozen(model):
    return copy.deepcopy(model).requires_grad_(False)


def _traced_kernel(model, x):
    """(1/O) Σ_o J_o J_oᵀ from one autograd backward pass per sample and output (Jacot et al. 2018)."""
    rows = []
    for xi in x:
        out = model(xi[None])[0]
        grads = [torch.autograd.grad(o, list(model.parameters()), retain_graph=True) for o in out]
        rows.append(torch.stack([torch.cat([g.flatten() for g in gs]) for gs in grads]))
    jac = torch.stack(rows).detach().numpy()  # (N, O, P)
    return np.einsum("aop,bop->ab", jac, jac) / jac.shape[1]


def _distance(k1, k2):
    return 1 - np.sum(k1 * k2) / (np.linalg.norm(k1) * np.linalg.norm(k2))


def _step(model, x, y):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads, strict=True):
            p -= 0.5 * g


def test_ntk_quantities_match_brute_force_along_training(monkeypatch):
    monkeypatch.setattr(empirics.theory_quantities, "NTK_SUBSAMPLE", 24)  # a cheap autograd-loop reference
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(30, 4, generator=gen, dtype=torch.float64)  # only the first 24 count
    y = torch.randint(0, 3, (30,), generator=gen)
    model = _model()
    init = _frozen(model)
    quantity = NTKQuantities()
    sub = x[:24]
    k0 = _traced_kernel(init.requires_grad_(True), sub)
    init.requires_grad_(False)
    previous = k0
    for step in range(3):
        out = quantity(Snapshot(model, init, x, y, x[:4], y[:4]))
        kernel = _traced_kernel(model, sub)
        eigenvalues = np.linalg.eigvalsh(kernel)
        n = 24
        targets = np.eye(3)[y[:n].numpy()]
        h = np.eye(n) - 1 / n
        centred = h @ kernel @ h
        gram = targets @ targets.T
        assert set(out) == NTK_NAMES
        assert out["ntk_trace"] == pytest.approx(np.trace(kernel), rel=1e-9)
        assert out["ntk_lambda_max"] == pytest.approx(eigenvalues.max(), rel=1e-9)
        z = np.trace(kernel) / n
        assert out["ntk_eff_dim"] == pytest.approx(np.sum(eigenvalues / (eigenvalues + z)), rel=1e-7)
        assert out["ntk_alignment"] == pytest.approx(
            np.sum(centred * gram) / (np.linalg.norm(centred) * np.linalg.norm(gram)), rel=1e-9
        )
        assert out["ntk_distance_init"] == pytest.approx(_distance(kernel, k0), abs=1e-12)
        assert out["ntk_velocity"] == pytest.approx(_distance(kernel, previous), abs=1e-12)
        if step > 0:
            assert out["ntk_velocity"] > 1e-8 and out["ntk_distance_init"] > 1e-8
        previous = kernel
        _step(model, x, y)


def test_ntk_alignment_uses_real_targets_for_regression():
    model = _model(outputs=1)
    x = torch.randn(20, 4, dtype=torch.float64)
    y = torch.randn(20, dtype=torch.float64)
    out = NTKQuantities()(Snapshot(model, _frozen(model), x, y, x, y, task="regression"))
    kernel = _traced_kernel(model, x)
    h = np.eye(20) - 1 / 20
    centred, gram = h @ kernel @ h, np.outer(y, y)
    expected = np.sum(centred * gram) / (np.linalg.norm(centred) * np.linalg.norm(gram))
    assert out["ntk_alignment"] == pytest.approx(expected, rel=1e-9)


def test_ntk_state_is_per_run():
    model = _model()
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randint(0, 3, (10,))
    other = _model(seed=5)
    first = NTKQuantities()(Snapshot(other, _frozen(model), x, y, x, y))
    fresh = NTKQuantities()(Snapshot(other, _frozen(model), x, y, x, y))
    assert first == fresh and first["ntk_velocity"] == first["ntk_distance_init"] > 0


def test_measures_quantity_is_the_cheap_registry():
    model = _model()
    init = _frozen(model)
    x, y = torch.randn(30, 4, dtype=torch.float64), torch.randint(0, 3, (30,))
    _step(model, x, y)
    out = QUANTITIES["measures"](Snapshot(model, init, x, y, x, y))
    assert list(out) == list(CHEAP_MEASURES)
    expected = compute_measures(model, init, x, y, list(CHEAP_MEASURES), random_state=0)
    assert out == pytest.approx(expected, rel=1e-12, nan_ok=True)


def test_measures_for_regression_skip_label_measures_and_undefined_ones_are_nan():
    model = _model(outputs=1)
    x, y = torch.randn(30, 4, dtype=torch.float64), torch.randn(30, dtype=torch.float64)
    out = QUANTITIES["measures"](Snapshot(model, _frozen(model), x, y, x, y, task="regression"))
    assert set(out) == {n for n in CHEAP_MEASURES if not MEASURES[n].needs_labels}
    assert out["dist_init"] == 0.0 and out["num_params"] == sum(p.numel() for p in model.parameters())
    classify = _model()
    labels = torch.randint(0, 3, (30,))
    at_init = QUANTITIES["measures"](Snapshot(classify, _frozen(classify), x, labels, x, labels))
    assert at_init["spec_init"] == -np.inf  # log ‖W − W⁰‖_F² with W = W⁰ at the initialisation
    assert at_init["param_norm"] == pytest.approx(compute_measures(classify, names=["param_norm"])["param_norm"])


def test_recorder_computes_registered_theory_quantities():
    model = _model()
    x, y = torch.randn(12, 4, dtype=torch.float64), torch.randint(0, 3, (12,))
    recorder = Recorder(("ntk", "measures"), [0])
    recorder.record(0, Snapshot(model, _frozen(model), x, y, x, y), train_loss=1.0)
    names = {name for _, name, _ in recorder.rows}
    assert NTK_NAMES <= names and set(CHEAP_MEASURES) <= names and "train_loss" in names
    assert isinstance(QUANTITIES["ntk"], type)  # stateful: one fresh instance per run


def test_quantities_work_on_a_pruned_model():
    """Lottery tickets are torch.nn.utils.prune models: weight = weight_orig * mask, not deep-copyable mid-use."""
    model = _model()
    torch.nn.utils.prune.l1_unstructured(model[0], "weight", amount=0.5)
    init = _model()
    torch.nn.utils.prune.l1_unstructured(init[0], "weight", amount=0.5)
    init.requires_grad_(False)
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randint(0, 3, (10,))
    model(x)  # materialise the masked weight as a non-leaf tensor, as training does
    out = NTKQuantities()(Snapshot(model, init, x, y, x, y))
    assert out["ntk_trace"] == pytest.approx(np.trace(_traced_kernel(model, x)), rel=1e-10)
    assert not any(p.requires_grad for p in init.parameters())  # the frozen copy is left frozen
    measured = QUANTITIES["measures"](Snapshot(model, init, x, y, x, y))
    assert measured["num_params"] == sum(p.numel() for p in model.parameters())
