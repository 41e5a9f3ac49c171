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
from bridge.predict import PredictQuantity, load_data, predict

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
    result = predict(model, data, ["ntk", "learning_curve"], ridge=ridge)
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
    assert list(curve["n"]) == [1, 3, 6, 12]
    assert np.all(np.isfinite(curve["test_mse"].to_numpy()[:-1])) and np.all(curve["test_mse"] > 0)
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
    # a checkpoint that needs a general unpickle is refused
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"0.weight": Path("x")}, fh)
    with pytest.raises(pickle.UnpicklingError):
        predict("usermodels:make", data, ["ntk"], checkpoint=tmp_path / "evil.pt")


def test_cli_writes_json_and_csv(factory: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    x, y, x_test = _data(4)
    np.savez(tmp_path / "d.npz", x_train=x.numpy(), y_train=y.numpy(), x_test=x_test.numpy(), y_test=y[:10].numpy())
    out = tmp_path / "p.json"
    code = main(["predict", f"{factory}:make", "--data", str(tmp_path / "d.npz"), "--quantities", "ntk",
                 "learning_curve", "--n-train", "16", "-o", str(out)])  # fmt: skip
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["implementation"] == "structured" and payload["learning_curve"]["n"] == [2, 4, 8, 16]
    assert "ntk_alignment" in capsys.readouterr().out
    assert main(["predict", "usermodels:make", "--data", str(tmp_path / "d.npz"), "--quantities", "ntk", "-o",
                 str(tmp_path / "p.csv")]) == 0  # fmt: skip
    assert (tmp_path / "p.csv").read_text().startswith("quantity,value")


def test_builtin_data_spec() -> None:
    x, y, xt, yt, task = load_data("mnist1d:n_train=40,n_test=20", n_train=32, n_test=8)
    assert x.shape == (32, 40) and xt.shape == (8, 40) and task == "classification" and y.dtype == torch.int64


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantities": ["ntk", "norms"]}, "quantities"),
        ({"n_train": 0}, "n_train"),
        ({"ridge": -1.0}, "ridge"),
    ],
)
def test_bad_arguments_are_named(factory: Path, kwargs: dict, match: str) -> None:
    x, y, x_test = _data()
    with pytest.raises(ValueError, match=match):
        predict("usermodels:make", (x, y, x_test, y[:10]), **kwargs)


def test_bad_model_strings() -> None:
    with pytest.raises(ValueError, match="module:factory"):
        predict("no_colon_here", "mnist1d")
    with pytest.raises(TypeError, match="model"):
        predict(42, "mnist1d")  # type: ignore[arg-type]
    assert [q.value for q in PredictQuantity] == ["ntk", "effective_parameters", "measures", "learning_curve"]
