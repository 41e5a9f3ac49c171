"""Double descent: closed forms against float64 references, the signature, and the quick built-in specs."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from empirics.data import load_dataset
from empirics.phenomena import get_phenomenon
from empirics.phenomena.double_descent import entk_effective_parameters
from empirics.phenomena.double_descent_rff import RIDGE_GRID, optimal_ridge
from empirics.recorder import Recorder
from empirics.signatures import double_descent_signature
from empirics.spec import load_spec
from empirics.store import Store
from empirics.sweep import run_sweep


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Store.runs() of each quick double-descent spec, run once through the real runner."""
    root = tmp_path_factory.mktemp("dd")
    tables = {}
    for name in ("double-descent-rff", "double-descent-rff-samples", "double-descent-mlp", "double-descent-epochwise"):
        run_sweep(load_spec(name, quick=True), root / name, log=None)
        tables[name] = Store(root / name)
    return tables


# ---- random features: closed form vs float64 references -------------------------------------------------------


def _rff_reference(params):
    """Predictions and p̂ from numpy's pinv / solve on the same features (Curth et al. 2023, §2)."""
    from empirics.models import build_model

    data = load_dataset("digits", n_train=params["n_train"], n_test=params["n_test"])
    model = build_model(
        "random_features",
        seed=params["seed"],
        input_dim=64,
        output_dim=10,
        n_features=params["n_features"],
        feature_map="cos",
        bandwidth=0.375,
    ).double()
    phi_tr = model.features(torch.from_numpy(data.x_train)).numpy()
    phi_te = model.features(torch.from_numpy(data.x_test)).numpy()
    lam = params.get("ridge", 0.0)
    if lam == 0:
        inverse = np.linalg.pinv(phi_tr)
    else:
        inverse = np.linalg.solve(phi_tr.T @ phi_tr + lam * np.eye(phi_tr.shape[1]), phi_tr.T)
    s_tr, s_te = phi_tr @ inverse, phi_te @ inverse  # smoother rows ŝ(x)ᵀ
    n = params["n_train"]
    return data, s_tr, s_te, n / n * np.sum(s_tr**2), n / len(s_te) * np.sum(s_te**2)


@pytest.mark.parametrize(("n_features", "ridge"), [(20, 0.0), (60, 0.0), (60, 0.05)])
def test_rff_fit_matches_dense_float64_reference(n_features, ridge):
    params = {"n_train": 40, "n_test": 30, "n_features": n_features, "ridge": ridge, "seed": 3}
    recorder = Recorder((), [0])
    out = get_phenomenon("double_descent_rff").run(params, recorder)
    data, s_tr, s_te, p_train, p_test = _rff_reference(params)
    y = data.one_hot()
    for split, s, labels in (("train", s_tr, data.y_train), ("test", s_te, data.y_test)):
        pred = s @ y
        assert out[f"{split}_loss"] == pytest.approx(np.mean((pred - np.eye(10)[labels]) ** 2), rel=1e-8)
        assert out[f"{split}_error"] == pytest.approx(np.mean(pred.argmax(1) != labels))
    assert out["p_train"] == pytest.approx(p_train, rel=1e-8)
    assert out["p_test"] == pytest.approx(p_test, rel=1e-8)
    if ridge == 0 and n_features > 40:  # min-norm interpolation: S = I, p_train = n, zero training loss
        assert out["p_train"] == pytest.approx(40) and out["train_loss"] < 1e-20
    recorded = {name: value for step, name, value in recorder.rows}
    assert recorded["test_error"] == out["test_error"] and recorded["ridge_used"] == ridge


def test_rff_snapshot_model_predicts_like_the_smoother():
    seen = {}

    class Spy(Recorder):
        def record(self, step, snapshot=None, **scalars):
            seen["snapshot"], seen["scalars"] = snapshot, scalars

    get_phenomenon("double_descent_rff").run({"n_train": 40, "n_test": 30, "n_features": 25}, Spy((), [0]))
    snap = seen["snapshot"]
    with torch.no_grad():
        error = float((snap.model(snap.x_test).argmax(1) != snap.y_test).double().mean())
    assert error == pytest.approx(seen["scalars"]["test_error"])
    assert not snap.init_model.readout.weight.any() and snap.model.readout.weight.abs().sum() > 0


def test_rff_runs_are_bit_reproducible_and_seeded():
    params = {"n_train": 60, "n_test": 30, "n_features": 80, "ridge_rule": "optimal"}
    runs = [get_phenomenon("double_descent_rff").run({**params, "seed": s}, Recorder()) for s in (0, 0, 1)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_optimal_ridge_is_the_brute_force_leave_one_out_minimiser():
    rng = np.random.default_rng(0)
    phi, y = rng.normal(size=(15, 30)), rng.normal(size=(15, 3))

    def loo(lam):  # refit without each point: the definition of leave-one-out error
        errors = []
        for i in range(15):
            keep = np.arange(15) != i
            w = np.linalg.solve(phi[keep].T @ phi[keep] + lam * np.eye(30), phi[keep].T @ y[keep])
            errors.append(np.sum((phi[i] @ w - y[i]) ** 2))
        return np.mean(errors)

    assert optimal_ridge(phi, y) == RIDGE_GRID[np.argmin([loo(lam) for lam in RIDGE_GRID])]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"steps": 5}, "'steps' parameter of double_descent_rff"),
        ({"ridge_rule": "oracle"}, "'ridge_rule' parameter of double_descent_rff"),
        ({"ridge": -1.0}, "'ridge' parameter of double_descent_rff"),
        ({"dataset": "cifar"}, "'dataset' parameter"),
        ({"n_feature": 3}, r"Unknown parameter\(s\) \['n_feature'\]"),
    ],
)
def test_rff_rejects_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        get_phenomenon("double_descent_rff").run(params, Recorder())


# ---- MLP: eNTK effective parameters vs an autograd loop ------------------------------------------------------------


def test_entk_effective_parameters_match_autograd_loop():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    x_train, x_test = torch.randn(30, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)

    def jac(x):  # (N, O, P) by one backward pass per sample and output
        rows = []
        for xi in x:
            out = model(xi[None])[0]
            rows.append(
                [
                    torch.cat(
                        [g.flatten() for g in torch.autograd.grad(o, list(model.parameters()), retain_graph=True)]
                    )
                    for o in out
                ]
            )
        return torch.stack([torch.stack(r) for r in rows]).numpy()

    j_tr, j_te = jac(x_train), jac(x_test)
    k_tr = np.einsum("aop,bop->ab", j_tr, j_tr) / 2
    k_te = np.einsum("aop,bop->ab", j_te, j_tr) / 2
    pinv = np.linalg.pinv(k_tr, hermitian=True, rtol=30 * np.finfo(float).eps)
    out = entk_effective_parameters(model, x_train, x_test)
    n_params = sum(p.numel() for p in model.parameters())  # 26 < n = 30: rank-deficient kernel
    assert out["p_train_ntk_interp"] == pytest.approx(np.sum((k_tr @ pinv) ** 2), rel=1e-6)
    assert out["p_train_ntk_interp"] == pytest.approx(np.linalg.matrix_rank(k_tr), rel=1e-6)  # ridgeless: the rank
    assert out["p_train_ntk_interp"] < n_params
    assert out["p_test_ntk_interp"] == pytest.approx(30 / 7 * np.sum((k_te @ pinv) ** 2), rel=1e-6)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"steps": -1}, r"'steps' parameter of double_descent_mlp must be a value in \[0, inf\). Got -1"),
        ({"batch_size": 2.5}, "'batch_size' parameter of double_descent_mlp must be an integer"),
        ({"width": 0}, r"'width' parameter of double_descent_mlp must be a value in \[1, inf\). Got 0"),
        ({"lr": 0.0}, r"'lr' parameter of double_descent_mlp must be a value in \(0, inf\)"),
        ({"classes": [3]}, r"'classes' parameter of double_descent_mlp must be \[\] \(all ten digits\)"),
        ({"lr_reference_width": -1}, r"'lr_reference_width' parameter of double_descent_mlp must be a value in \[0"),
        ({"one_output": True, "classes": [0, 1]}, "'one_output' parameter .* two 'classes' and loss 'mse'"),
        ({"one_output": True, "classes": [0, 1, 2], "loss": "mse"}, "'one_output' parameter .* two 'classes'"),
        ({"ntk_interp": 1}, "'ntk_interp' parameter of double_descent_mlp must be a boolean"),
        ({"prime_scale": 0.0}, r"'prime_scale' parameter of double_descent_mlp must be a value in \(0, inf\)"),
    ],
)
def test_mlp_rejects_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        get_phenomenon("double_descent_mlp").run(params, Recorder())


def test_mlp_run_is_deterministic_and_records_standard_scalars():
    params = {
        "width": 8,
        "n_train": 60,
        "n_test": 40,
        "steps": 20,
        "seed": 1,
        "ntk_interp": True,
        "snapshot_size": 16,
    }
    a, b = Recorder((), [0, 5, 20]), Recorder((), [0, 5, 20])
    out_a = get_phenomenon("double_descent_mlp").run(params, a)
    out_b = get_phenomenon("double_descent_mlp").run(params, b)
    assert a.rows == b.rows and out_a == out_b
    names = {name for _, name, _ in a.rows}
    assert {"train_loss", "test_loss", "train_error", "test_error"} <= names
    assert {step for step, _, _ in a.rows} == {0, 5, 20}
    assert out_a["p_train_ntk_interp"] == pytest.approx(16)  # 8·40 + 8 + 90 parameters > 16 snapshot points
    assert 0 <= out_a["test_error"] <= 1


ONE_OUTPUT = {"width": 256, "n_train": 40, "n_test": 30, "classes": [0, 1], "one_output": True, "loss": "mse",
              "optimizer": "sgd", "lr": 0.1, "steps": 40, "snapshot_size": 20, "seed": 3}  # fmt: skip


def test_one_output_run_telescopes_p_train_and_p_test_of_the_trained_network():
    """The binary one-output task with the run's own telescoping model (Jeffares et al. 2024): the model has one
    output read as 1{f > 1/2}; a wide network (lr scaled to w0/width = 1/4) is followed to within 1% of the change
    of its outputs, p_train lies in (0, n] and rises along training from 0 (the smoother starts at S_0 = 0)."""
    recorder = Recorder(["telescope"], [0, 10, 40])
    out = get_phenomenon("double_descent_mlp").run({**ONE_OUTPUT, "lr_reference_width": 64}, recorder)
    rows = {(step, name): value for step, name, value in recorder.rows}
    assert rows[(0, "p_train")] == 0.0 and 0 < rows[(10, "p_train")] < rows[(40, "p_train")] <= 40
    assert rows[(40, "p_test")] > 0 and rows[(40, "telescope_gap_test")] < 0.01
    assert rows[(40, "train_error")] == out["train_error"] and np.isnan(out["p_train_ntk_interp"])
    assert out["train_loss"] < rows[(0, "train_loss")]


def test_lr_reference_width_scales_the_step_of_wide_networks_only():
    """lr · min(1, w0/width): a width-256 network with w0 = 64 takes the steps of lr/4, so its first update equals
    that of an unscaled run at lr/4; a width-32 network is unaffected."""

    def first_loss(**params):
        recorder = Recorder((), [1])
        get_phenomenon("double_descent_mlp").run({**ONE_OUTPUT, "steps": 1, **params}, recorder)
        return dict((name, value) for _, name, value in recorder.rows)["train_loss"]

    assert first_loss(lr_reference_width=64) == first_loss(lr=0.025)
    assert first_loss(width=32, lr_reference_width=64) == first_loss(width=32)
    assert first_loss(lr_reference_width=64) != first_loss()


# ---- the signature ----------------------------------------------------------------------------------------------


def _table(curve_by_seed):
    return pd.DataFrame(
        [
            {"x": x, "seed": s, "y": v}
            for s, curve in enumerate(curve_by_seed)
            for x, v in zip([1, 2, 4, 8, 16], curve, strict=True)
        ]
    )


def test_signature_finds_the_peak_and_tests_it_against_the_right_minimum():
    curves = [[0.3, 0.25, 0.6, 0.2, 0.1], [0.32, 0.2, 0.5, 0.25, 0.12], [0.28, 0.22, 0.7, 0.2, 0.15]]
    sig = double_descent_signature(_table(curves), "x", "y")
    assert (sig.peak, sig.left_minimum, sig.right_minimum) == (4.0, 2.0, 16.0)
    diffs = np.array(curves)[:, 2] - np.array(curves)[:, 4]
    assert sig.differences == pytest.approx(tuple(diffs))
    assert sig.statistic == pytest.approx(diffs.mean())
    t = diffs.mean() / (diffs.std(ddof=1) / np.sqrt(3))  # one-sided paired t-test, 2 degrees of freedom
    from scipy.stats import t as student

    assert sig.pvalue == pytest.approx(student.sf(t, 2))
    assert sig.detected and sig.peak_interval == (4.0, 4.0)
    low, high = sig.conf_int()
    assert diffs.min() <= low <= sig.statistic <= high <= diffs.max()
    statistic, pvalue = sig
    assert (statistic, pvalue) == (sig.statistic, sig.pvalue)
    assert "peak at 4" in sig.summary() and "detected" in sig.summary()


def test_signature_without_peak_and_with_one_seed():
    monotone = double_descent_signature(_table([[0.5, 0.4, 0.3, 0.2, 0.1]] * 2), "x", "y")
    assert not monotone.detected and np.isnan(monotone.peak) and "no peak" in monotone.summary()
    rising = double_descent_signature(_table([[0.1, 0.2, 0.3, 0.4, 0.5]]), "x", "y")
    assert not rising.detected  # the maximum at the last axis value has no right side
    one = double_descent_signature(_table([[0.3, 0.2, 0.5, 0.3, 0.1]]), "x", "y")
    assert one.detected and np.isnan(one.pvalue) and one.peak == 4.0
    assert np.isnan(one.conf_int()[0])


def test_signature_peak_interval_spans_seeds_that_disagree():
    curves = [[0.3, 0.6, 0.3, 0.2, 0.1], [0.3, 0.2, 0.3, 0.6, 0.1]] * 2
    sig = double_descent_signature(_table(curves), "x", "y", n_resamples=500)
    assert sig.peak_interval == (2.0, 8.0)


@given(
    shifts=st.lists(st.floats(-1, 1, allow_subnormal=False), min_size=3, max_size=3),
    noise=st.lists(st.floats(0, 0.01, allow_subnormal=False), min_size=15, max_size=15),
)
def test_signature_is_invariant_to_per_seed_offsets(shifts, noise):
    base = np.array([0.3, 0.25, 0.6, 0.2, 0.1]) + np.array(noise).reshape(3, 5)
    a = double_descent_signature(_table(base), "x", "y", n_resamples=50)
    b = double_descent_signature(_table(base + np.array(shifts)[:, None]), "x", "y", n_resamples=50)
    assert (a.peak, a.right_minimum) == (b.peak, b.right_minimum) == (4.0, 16.0)
    assert a.statistic == pytest.approx(b.statistic, abs=1e-9)


def test_signature_rejects_bad_tables():
    with pytest.raises(ValueError, match="no column 'width'"):
        double_descent_signature(_table([[0.1] * 5]), "width", "y")
    with pytest.raises(ValueError, match=">= 3 axis values"):
        double_descent_signature(_table([[0.1] * 5]).query("x < 4"), "x", "y")
    with pytest.raises(ValueError, match="'alpha' parameter"):
        double_descent_signature(_table([[0.1] * 5]), "x", "y", alpha=1.5)


# ---- the quick built-in specs show the expected signatures ---------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "axis"), [("double-descent-rff", "n_features"), ("double-descent-rff-samples", "n_train")]
)
def test_quick_rff_peaks_at_n_equals_features_and_optimal_ridge_removes_it(quick_runs, spec, axis):
    runs = quick_runs[spec].runs()
    minnorm, ridge = runs[runs.ridge_rule == "fixed"], runs[runs.ridge_rule == "optimal"]
    sig = double_descent_signature(minnorm, axis, "test_error")
    assert sig.detected and sig.peak == 200 and sig.pvalue < 0.05 and sig.statistic > 0.3
    # p_test of the min-norm smoother peaks where the fit interpolates (Curth et al. 2023), p_train = min(N, n)
    assert double_descent_signature(minnorm, axis, "p_test").peak == 200
    np.testing.assert_allclose(minnorm.p_train, np.minimum(minnorm.n_features, minnorm.n_train), rtol=1e-8)
    tuned = double_descent_signature(ridge, axis, "test_error")
    assert not tuned.detected
    at_peak = ridge[ridge[axis] == 200].test_error.mean()
    assert at_peak < 0.5 * minnorm[minnorm[axis] == 200].test_error.mean()


def test_quick_mlp_peaks_at_the_interpolation_threshold(quick_runs):
    runs = quick_runs["double-descent-mlp"].runs()
    sig = double_descent_signature(runs, "width", "test_error")
    assert sig.detected and 3 < sig.peak < 96 and sig.pvalue < 0.05
    by_width = runs.groupby("width").train_error.mean()
    assert by_width[3] > 0.3 and by_width[96] == 0  # under- and over-parameterised ends
    assert by_width[sig.peak] < 0.1  # the peak sits where the noisy training set is (nearly) interpolated


def test_quick_epochwise_memorises_noise_without_a_clear_second_descent(quick_runs):
    store = quick_runs["double-descent-epochwise"]
    records = store.records(quantities=["test_error", "train_error"]).merge(store.runs()[["run_id", "seed"]])
    wide = records.pivot_table(index=["seed", "step"], columns="quantity", values="value").reset_index()
    final = wide[wide.step == wide.step.max()]
    assert (final.train_error == 0).all()  # the 20% wrong labels are memorised
    sig = double_descent_signature(wide, "step", "test_error")
    # REFERENCE §8: no cheap setting shows a clean epoch-wise second descent; this one shows at most a wobble
    assert np.isnan(sig.statistic) or sig.statistic < 0.03
    first = wide[wide.step == 0].test_error.mean()
    assert final.test_error.mean() < first - 0.1  # the test error still falls overall while the noise is fitted
