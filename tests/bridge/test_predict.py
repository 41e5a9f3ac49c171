"""``bridge.predict`` and ``unitheory predict``: values against float64 brute-force references (per-example
autograd gradients, dense pseudo-inverses), the fallback for a model the structured kernels do not cover, safe
checkpoint loading, and the CLI with a factory module written to tmp_path."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.cli import main
from bridge.predict import CheckpointError, DataError, ModelLoadError, PredictQuantity, load_data, predict

FACTORY = '''
import torch

def make():
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


class Scaled(torch.nn.Module):
    """Not covered by the structured kernels: a bare parameter used outside any Linear/Conv layer."""

    def __init__(self):
        super().__init__()
        self.body = make()
        self.gain = torch.nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        return self.gain * self.body(x) ** 2


def make_scaled():
    return Scaled()
'''


@pytest.fixture()
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "usermodels.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "usermodels.py"


def _data(seed: int = 0, n: int = 24, m: int = 10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g), torch.randn(m, 6, generator=g)


def _reference(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Θ_tr(x_i, x_j) = (1/O) Σ_o ∇f_o(x_i)·∇f_o(x_j) from per-example, per-output autograd gradients (float64)."""
    model = copy.deepcopy(model).double()
    grads = []
    for xi in x.double():
        out = model(xi[None])[0]
        rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(o, list(model.parameters()), retain_graph=True)])
                for o in out]  # fmt: skip
        grads.append(torch.stack(rows))
    j = torch.stack(grads)  # (n, O, P)
    return (torch.einsum("iop,jop->ij", j, j) / j.shape[1]).numpy()


def _alignment(k: np.ndarray, y: np.ndarray) -> float:
    n = len(k)
    h = np.eye(n) - 1.0 / n
    kc, yy = h @ k @ h, y @ y.T
    return float((kc * yy).sum() / (np.linalg.norm(kc) * np.linalg.norm(yy)))


def test_values_match_brute_force(factory: Path) -> None:
    import usermodels

    x, y, x_test = _data()
    torch.manual_seed(0)
    model = usermodels.make()
    result = predict(model, (x, y, x_test, torch.zeros(len(x_test), dtype=torch.long)), ["ntk", "effective_parameters"])
    assert result.implementation == "structured" and result.notes == ()
    k = _reference(model, x)
    lam = np.sort(np.linalg.eigvalsh(k))[::-1]
    v = result.values
    assert v["ntk_trace"] == pytest.approx(np.trace(k), rel=1e-8)
    assert v["ntk_lambda_max"] == pytest.approx(lam[0], rel=1e-8)
    z = np.trace(k) / len(k)
    assert v["ntk_eff_dim"] == pytest.approx(np.sum(lam / (lam + z)), rel=1e-8)
    assert v["ntk_alignment"] == pytest.approx(_alignment(k, np.eye(3)[y.numpy()]), rel=1e-8)
    assert np.allclose(result.spectrum, lam[:10], rtol=1e-8)
    # ridgeless kernel smoother: S(x) = Θ(x, X) Θ(X, X)⁺, p̂ = (n/|I|) Σ ‖ŝ(x_j)‖²
    k_test = _reference_cross(model, x_test, x)
    s_train, s_test = k @ np.linalg.pinv(k, hermitian=True), k_test @ np.linalg.pinv(k, hermitian=True)
    n = len(x)
    assert v["p_train"] == pytest.approx(np.sum(s_train**2), rel=1e-6)
    assert v["p_test"] == pytest.approx(n / len(x_test) * np.sum(s_test**2), rel=1e-6)


def test_learning_curve_uses_the_smoothers_ridge(factory: Path) -> None:
    """One δ for both: the smoother's (Θ(X, X) + δI) and the eigenlearning κ equation Σ λ_i/(λ_i+κ) + δ/κ = n,
    with λ_i = eig(Θ)/n (Simon et al. 2023), so at n = N the predicted κ solves it with the raw δ."""
    import usermodels

    x, y, x_test = _data()
    torch.manual_seed(0)
    model, ridge = usermodels.make(), 0.5
    data = (x, y, x_test, torch.zeros(len(x_test), dtype=torch.long))
    result = predict(model, data, ["ntk", "learning_curve"], ridge=ridge, sizes=[6, 12, len(x)])
    lam = np.clip(np.linalg.eigvalsh(_reference(model, x)), 0, None) / len(x)
    kappa = result.learning_curve["kappa"].to_numpy()[-1]
    assert np.sum(lam / (lam + kappa)) + ridge / kappa == pytest.approx(len(x), rel=1e-6)


def _reference_cross(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    both = _reference(model, torch.cat([a, b]))
    return both[: len(a), len(a) :]


def test_fallback_model_still_works_and_says_so(factory: Path) -> None:
    x, y, x_test = _data(1, n=12, m=6)
    torch.manual_seed(3)
    result = predict("usermodels:make_scaled", (x, y, x_test, y[:6]), ["ntk", "learning_curve"], random_state=3)
    assert result.implementation != "structured"
    assert any("fallback" in note for note in result.notes)
    import usermodels

    torch.manual_seed(3)
    k = _reference(usermodels.make_scaled(), x)
    assert result.values["ntk_trace"] == pytest.approx(np.trace(k), rel=1e-8)
    curve = result.learning_curve
    assert list(curve["n"]) == [1, 3, 6]  # m/16 (rounded up to 1), m/8, m/4, m/2 of m = 12 non-zero eigenvalues
    assert np.all(np.isfinite(curve["test_mse"].to_numpy())) and np.all(curve["test_mse"] > 0)
    assert np.all(curve["train_mse"].to_numpy() <= curve["test_mse"].to_numpy() + 1e-12)


def test_checkpoint_loads_weights_only(factory: Path, tmp_path: Path) -> None:
    import usermodels

    x, y, x_test = _data(2)
    data = (x, y, x_test, torch.zeros(len(x_test), dtype=torch.long))
    torch.manual_seed(11)
    trained = usermodels.make()
    with torch.no_grad():
        for p in trained.parameters():
            p.mul_(2.0)
    torch.save(trained.state_dict(), tmp_path / "ckpt.pt")
    loaded = predict("usermodels:make", data, ["ntk", "measures"], checkpoint=tmp_path / "ckpt.pt", random_state=0)
    direct = predict(trained, data, ["ntk"])
    assert loaded.values["ntk_trace"] == pytest.approx(direct.values["ntk_trace"], rel=1e-10)
    # the initial model is a fresh factory model seeded by random_state, so the distance is positive
    assert loaded.values["dist_init"] > 0 and loaded.values["num_params"] == sum(
        p.numel() for p in trained.parameters()
    )
    # a checkpoint that needs a general unpickle is refused, and so is a pickled whole module
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"0.weight": Path("x")}, fh)
    with pytest.raises(CheckpointError, match="not a state dict written by torch.save"):
        predict("usermodels:make", data, ["ntk"], checkpoint=tmp_path / "evil.pt")
    torch.save(trained, tmp_path / "whole.pt")
    with pytest.raises(CheckpointError, match=r"pickled Python object \(torch.nn.modules.container.Sequential\)"):
        predict("usermodels:make", data, ["ntk"], checkpoint=tmp_path / "whole.pt")


def test_cli_writes_json_and_csv(factory: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    x, y, x_test = _data(4)
    np.savez(tmp_path / "d.npz", x_train=x.numpy(), y_train=y.numpy(), x_test=x_test.numpy(), y_test=y[:10].numpy())
    out = tmp_path / "p.json"
    code = main(["predict", f"{factory}:make", "--data", str(tmp_path / "d.npz"), "--quantities", "ntk",
                 "learning_curve", "--n-train", "16", "-o", str(out)])  # fmt: skip
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["implementation"] == "structured" and payload["learning_curve"]["n"] == [1, 2, 4, 8]
    assert "ntk_alignment" in capsys.readouterr().out
    assert main(["predict", "usermodels:make", "--data", str(tmp_path / "d.npz"), "--quantities", "ntk", "-o",
                 str(tmp_path / "p.csv")]) == 0  # fmt: skip
    assert (tmp_path / "p.csv").read_text().startswith("quantity,value")


def test_builtin_data_spec() -> None:
    x, y, xt, yt, task = load_data("mnist1d:n_train=40,n_test=20", n_train=32, n_test=8)
    assert x.shape == (32, 40) and xt.shape == (8, 40) and task == "classification" and y.dtype == torch.int64


def _bad_data(**replace):
    """The default data with some tensors replaced: x_train, y_train, x_test, y_test."""
    x, y, x_test = _data()
    data = {"x_train": x, "y_train": y, "x_test": x_test, "y_test": y[:10]} | replace
    return tuple(data.values())


def _nan_row(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t[2, 0] = float("nan")
    return t


# Bad input to the Python predict(): keyword arguments (model and data included), error class, message fragment.
PREDICT = {
    "unknown quantity": ({"quantities": ["ntk", "norms"]}, ValueError, "'quantities' parameter of predict"),
    "n_train = 0": ({"n_train": 0}, ValueError, "'n_train' parameter of predict must be a positive int"),
    "negative ridge": ({"ridge": -1.0}, ValueError, r"'ridge' parameter of predict must be a real number in \[0"),
    "size 0": ({"sizes": [0, 4]}, ValueError, "'sizes' parameter of predict must be a positive int. Got 0"),
    "no colon": ({"model": "no_colon_here"}, ValueError, "must look like 'module:factory'"),
    "not a model": ({"model": 42}, TypeError, "must be a torch.nn.Module or a factory. Got int"),
    "missing module": ({"model": "no_such_module_x:make"}, ModelLoadError, "No module named 'no_such_module_x'"),
    "factory raises": ({"model": lambda: 1 / 0}, ModelLoadError, "raised ZeroDivisionError: division by zero"),
    "factory returns a function": ({"model": lambda: len}, ModelLoadError, "Got builtin_function_or_method"),
    "three tensors": ({"data": _bad_data()[:3]}, DataError, r"\(x_train, y_train, x_test, y_test\). Got 3 items"),
    "rows do not pair": ({"data": _bad_data(y_train=torch.zeros(5, dtype=torch.long))}, DataError, "24/5 rows"),
    "inputs of the wrong width": (
        {"data": _bad_data(x_train=torch.zeros(24, 4))}, DataError,
        r"x_train of the data tensors do not fit the model: .*shape \(24, 4\).*expects \(N, \.\.\., 6\)",
    ),
    "test inputs of the wrong width": (
        {"data": _bad_data(x_test=torch.zeros(10, 7))}, DataError, r"inputs x_test .*shape \(10, 7\)",
    ),
    "NaN training input": ({"data": _bad_data(x_train=_nan_row(_data()[0]))}, DataError, r"x_train .*first: sample 2"),
    "labels beyond the outputs": (
        {"data": _bad_data(y_train=torch.full((24,), 7))}, DataError, r"classes in \[0, 3\).*from 7 to 7",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PREDICT))
def test_bad_arguments_are_named(factory: Path, case: str) -> None:
    kwargs, error, fragment = PREDICT[case]
    kwargs = {"model": "usermodels:make", "data": _bad_data()} | kwargs
    with pytest.raises(error, match=fragment):
        predict(**kwargs)


def test_quantity_names() -> None:
    assert [q.value for q in PredictQuantity] == ["ntk", "effective_parameters", "measures", "learning_curve"]


def test_every_infinite_value_says_why_and_the_default_curve_stays_finite(factory: Path) -> None:
    """An untrained classifier: its margin γ <= 0 makes the margin-normalised measures inf, and without a
    checkpoint every distance to init is 0, so spec_init = log 0 = -inf. A note names each such value with its
    cause; the default learning-curve sizes stay below the n_train modes where the ridgeless curve diverges."""
    x, y, x_test = _data()
    result = predict("usermodels:make", (x, y, x_test, y[:10]), random_state=0)
    values = result.values
    assert values["margin"] <= 0 and values["dist_init"] == 0
    infinite = [k for k, v in values.items() if not np.isfinite(v)]
    assert {"inverse_margin", "spec_orig", "spec_init"} <= set(infinite)
    for name in infinite:
        assert any(name in note for note in result.notes), name
    (margin_note,) = [n for n in result.notes if "inverse_margin" in n]
    assert f"the margin γ = {values['margin']:.4g} <= 0" in margin_note and "spec_init" not in margin_note
    assert any(n.startswith("spec_init = -inf: every weight equals its initial value") for n in result.notes)
    curve = result.learning_curve
    assert list(curve["n"]) == [1, 3, 6, 12]  # 24 samples, 24 non-zero eigenvalues: m/16 (at least 1) .. m/2
    assert np.all(np.isfinite(curve["test_mse"])) and not any("learning curve" in n for n in result.notes)
    assert "note: inverse_margin" in result.summary()


def test_learning_curve_at_the_snapshot_size_says_why_it_diverges(factory: Path) -> None:
    x, y, x_test = _data()
    data = (x, y, x_test, y[:10])
    result = predict("usermodels:make", data, ["learning_curve"], sizes=[6, 24, 48])
    test_mse = dict(zip(result.learning_curve["n"], result.learning_curve["test_mse"], strict=True))
    assert np.isfinite(test_mse[6]) and test_mse[24] == np.inf and np.isfinite(test_mse[48])
    diverged, beyond = result.notes
    assert "test MSE is inf at n = [24]" in diverged and "number of non-zero eigenvalues (24)" in diverged
    assert "cut at the snapshot size" in diverged
    assert "n = [48] is at or past the 24 modes" in beyond
    ridged = predict("usermodels:make", data, ["learning_curve"], ridge=0.1, sizes=[24])
    assert np.isfinite(ridged.learning_curve["test_mse"][0]) and "n = [24] is at or past" in ridged.notes[0]


class _Silenced(torch.nn.Module):
    """Outputs 0·(a linear layer): every gradient, so the eNTK, is exactly zero."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, x):
        return 0.0 * self.lin(x)


def test_undefined_kernel_summaries_say_why() -> None:
    x, y, x_test = _data()
    silenced = predict(_Silenced(), (x, y, x_test, y[:10]), ["ntk"])
    assert silenced.values["ntk_trace"] == 0 and np.isnan(silenced.values["ntk_eff_dim"])
    assert any(n.startswith("ntk_eff_dim = nan: the eNTK is zero") for n in silenced.notes)
    torch.manual_seed(0)
    zero_targets = (x, torch.zeros(len(x)), x_test, torch.zeros(len(x_test)))
    regression = predict(torch.nn.Linear(6, 1), zero_targets, ["ntk"])
    assert np.isnan(regression.values["ntk_alignment"]) and np.isfinite(regression.values["ntk_eff_dim"])
    assert regression.notes == ("ntk_alignment = nan: the targets are zero, so there is no direction to align with",)
