"""Theory predictions for a user's own torch model: ``predict(model, data, quantities)`` and ``unitheory predict``.

Quantities (:class:`PredictQuantity`), all on the output-traced empirical NTK Θ(x, x') = (1/O) Σ_o ∂f_o(x)·∂f_o(x')
(Jacot et al. 2018) of ``n_train`` training inputs, computed once in float64 by ``theory.empirical_ntk``
(``implementation="auto"``: the per-layer structured kernels when every parameter-owning module has a closed form,
else the Jacobian or kernel-vector-product fallback, which the result names in its ``notes``):

- ``ntk``: trace, λ_max, N_eff(z) = Σ λ_i/(λ_i + z) at z = tr Θ/n (Maddox et al. 2020), centred kernel-target
  alignment with the (one-hot) training targets (Cortes et al. 2012), and the top eigenvalues.
- ``effective_parameters``: p_train and p_test of the kernel ridge smoother ŝ(x)ᵀ = Θ(x, X)(Θ(X, X) + δI)⁺,
  p̂(I) = (n/|I|) Σ_{j∈I} ‖ŝ(x_j)‖² (Curth, Jeffares & van der Schaar 2023).
- ``measures``: the cheap norms and generalisation measures of ``theory.measures`` (Jiang et al. 2020 numbering).
- ``learning_curve``: the eigenlearning prediction of the kernel ridge test MSE at sample sizes n (Simon et al.
  2023; Bordelon et al. 2020) from the eigenvalues λ_i/n of Θ and the targets' coefficients in its eigenbasis.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from theory._validation import check_device, check_in_range, check_option, check_positive_int


class PredictQuantity(StrEnum):
    """What :func:`predict` computes (default: all four)."""

    NTK = "ntk"
    EFFECTIVE_PARAMETERS = "effective_parameters"
    MEASURES = "measures"
    LEARNING_CURVE = "learning_curve"


@dataclass(frozen=True)
class ModelPrediction:
    """Theory quantities of one model on one data set: ``values`` (name -> number), the eNTK ``implementation``,
    ``notes`` (fallbacks, skipped measures), the top ``spectrum`` and the predicted ``learning_curve``."""

    values: dict[str, float]
    implementation: str
    notes: tuple[str, ...] = ()
    spectrum: tuple[float, ...] = ()
    learning_curve: pd.DataFrame | None = field(default=None, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """Two columns, ``quantity`` and ``value``."""
        return pd.DataFrame({"quantity": list(self.values), "value": list(self.values.values())})

    def to_dict(self) -> dict[str, Any]:
        curve = None if self.learning_curve is None else self.learning_curve.to_dict(orient="list")
        return {
            "values": self.values,
            "implementation": self.implementation,
            "notes": list(self.notes),
            "spectrum": list(self.spectrum),
            "learning_curve": curve,
        }

    def summary(self) -> str:
        lines = [f"eNTK implementation: {self.implementation}", *[f"note: {n}" for n in self.notes]]
        lines.append(self.to_frame().to_string(index=False, float_format="{:.6g}".format))
        if self.learning_curve is not None:
            lines += ["predicted learning curve (eigenlearning):", self.learning_curve.to_string(index=False)]
        return "\n".join(lines)

    def write(self, path: str | Path) -> Path:
        """Write ``.json`` (everything) or ``.csv`` (the quantity table) by the file's suffix."""
        path = Path(path)
        suffix = check_option("suffix", path.suffix, [".json", ".csv"], owner="ModelPrediction.write")
        if suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2, default=float, allow_nan=True))
        else:
            self.to_frame().to_csv(path, index=False)
        return path


def load_factory(target: str) -> Callable[[], torch.nn.Module]:
    """``"package.module:factory"`` or ``"path/to/file.py:factory"`` -> the zero-argument model factory."""
    if not isinstance(target, str) or target.count(":") < 1:
        raise ValueError(f"The 'model' argument must look like 'module:factory' or 'file.py:factory'. Got {target!r}.")
    module_name, _, attr = target.rpartition(":")
    if module_name.endswith(".py"):
        spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
        if spec is None or not Path(module_name).is_file():
            raise FileNotFoundError(f"No model file {module_name!r}.")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"{module_name!r} has no callable {attr!r} (the model factory).")
    return factory


def load_data(spec: str, *, n_train: int, n_test: int):
    """``"NAME[:key=value,...]"`` (a built-in data set of :mod:`empirics.data`, values parsed as JSON when they
    can be) or a ``.npz`` file with ``x_train, y_train, x_test, y_test`` (read with ``allow_pickle=False``).
    Returns ``(x_train, y_train, x_test, y_test, task)`` with at most ``n_train``/``n_test`` rows."""
    if spec.endswith(".npz"):
        with np.load(spec, allow_pickle=False) as z:
            arrays = [torch.as_tensor(z[k]) for k in ("x_train", "y_train", "x_test", "y_test")]
        task = "classification" if not arrays[1].is_floating_point() else "regression"
    else:
        from empirics.data import load_dataset

        name, _, rest = spec.partition(":")
        kwargs = {}
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"The 'data' argument items must be key=value. Got {item!r} in {spec!r}.")
            try:
                kwargs[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                kwargs[key.strip()] = value
        ds = load_dataset(name, **kwargs)
        arrays, task = list(ds.tensors()), ds.task
    x_train, y_train, x_test, y_test = arrays
    x_train, x_test = x_train.float(), x_test.float()
    return x_train[:n_train], y_train[:n_train], x_test[:n_test], y_test[:n_test], task


def _targets(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str) -> np.ndarray:
    if task == "classification":
        with torch.no_grad():
            classes = model(x[:1]).shape[-1]
        return torch.nn.functional.one_hot(y.long(), classes).double().numpy()
    return y.double().reshape(len(y), -1).numpy()


def _load_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never a general unpickle."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model.load_state_dict(state)


def predict(
    model: torch.nn.Module | Callable[[], torch.nn.Module] | str,
    data: str | Sequence[torch.Tensor],
    quantities: Sequence[str] | None = None,
    *,
    checkpoint: str | Path | None = None,
    init_model: torch.nn.Module | None = None,
    n_train: int = 256,
    n_test: int = 256,
    ridge: float = 0.0,
    sizes: Sequence[int] | None = None,
    top: int = 10,
    random_state: int = 0,
    device: str = "cpu",
) -> ModelPrediction:
    """Compute theory ``quantities`` (:class:`PredictQuantity` names; None: all) of a model on data.

    Args:
        model: a module, a zero-argument factory, or ``"module:factory"`` / ``"file.py:factory"``.
        data: a data spec for :func:`load_data`, or ``(x_train, y_train, x_test, y_test)`` tensors (integer
            ``y`` means classification).
        checkpoint: a state dict saved with ``torch.save``, loaded with ``weights_only=True``.
        init_model: the initial model for the measures that need one; default: a fresh factory model seeded by
            ``random_state`` when a checkpoint is loaded, else a copy of ``model`` (distances are then 0).
        n_train, n_test: how many training/test inputs the kernel and measures use.
        ridge: δ of the kernel smoother and of the learning-curve prediction.
        sizes: sample sizes of the learning curve (default n_train/8, /4, /2, n_train).
        top: how many leading eNTK eigenvalues to keep in ``spectrum``.
        random_state: seeds the factory and the stochastic measures.
        device: where the eNTK and its spectrum are computed ('cpu', 'cuda[:index]', 'mps' or 'auto'); the
            model stays where it is and the measures run on the host.
    """
    from theory import (
        CHEAP_MEASURES,
        MEASURES,
        KernelRidgeSmoother,
        compute_measures,
        effective_dimension,
        empirical_ntk,
        kernel_eigh,
        kernel_target_alignment,
        predict_learning_curve,
        resolve_implementation,
    )

    names = [q.value for q in PredictQuantity] if quantities is None else list(quantities)
    for q in names:
        check_option("quantities", q, [m.value for m in PredictQuantity], owner="predict")
    for name, value in (("n_train", n_train), ("n_test", n_test), ("top", top)):
        check_positive_int(name, value, owner="predict")
    check_in_range("ridge", ridge, 0, None, owner="predict")
    device = check_device("device", device, owner="predict")
    factory = load_factory(model) if isinstance(model, str) else model
    if isinstance(factory, torch.nn.Module):
        net, make = factory, None
    elif callable(factory):
        torch.manual_seed(random_state)
        net, make = factory(), factory
    else:
        raise TypeError(f"The 'model' argument must be a torch.nn.Module or a factory. Got {type(model).__name__}.")
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"The model factory must return a torch.nn.Module. Got {type(net).__name__}.")
    if init_model is None and checkpoint is not None and make is not None:
        torch.manual_seed(random_state)
        init_model = make()
    if checkpoint is not None:
        _load_checkpoint(net, checkpoint)
    init_model = init_model if init_model is not None else copy.deepcopy(net)
    net.eval()
    if isinstance(data, str):
        x, y, x_test, y_test, task = load_data(data, n_train=n_train, n_test=n_test)
    else:
        x, y, x_test, y_test = (torch.as_tensor(t) for t in data)
        x, y, x_test = x[:n_train].float(), y[:n_train], x_test[:n_test].float()
        task = "regression" if y.is_floating_point() else "classification"
    x_dev, x_test_dev = x.to(device), x_test.to(device)
    implementation = resolve_implementation(net, x_dev).value
    notes = []
    if implementation != "structured":
        notes.append(
            f"the structured per-layer kernels do not cover this model; the eNTK was computed with the "
            f"'{implementation}' fallback (exact, slower)"
        )
    values: dict[str, float] = {}
    spectrum: tuple[float, ...] = ()
    curve = None
    kernel_needed = {"ntk", "effective_parameters", "learning_curve"} & set(names)
    if kernel_needed:
        kernel_t = empirical_ntk(net, x_dev, trace_outputs=True, dtype=torch.float64)
        eig = kernel_eigh(kernel_t)
        kernel = kernel_t.cpu().numpy()
        targets = _targets(net, x, y, task)
        spectrum = tuple(float(v) for v in eig.eigenvalues[:top])
    if "ntk" in names:
        trace = float(np.trace(kernel))
        values |= {
            "ntk_trace": trace,
            "ntk_lambda_max": float(eig.eigenvalues[0]),
            "ntk_eff_dim": float(effective_dimension(eig.eigenvalues, trace / len(x))),
            "ntk_alignment": float(kernel_target_alignment(kernel, targets)),
        }
    if "effective_parameters" in names:

        def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return empirical_ntk(net, a, b, trace_outputs=True, dtype=torch.float64)

        smoother = KernelRidgeSmoother(k, ridge=ridge).fit(x_dev)
        values |= {"p_train": smoother.effective_parameters(), "p_test": smoother.effective_parameters(x_test_dev)}
    if "learning_curve" in names:
        n = len(x)
        lam = np.clip(eig.eigenvalues, 0, None) / n
        centred = targets - targets.mean(axis=0)
        coeffs = np.sqrt(((eig.eigenvectors.T @ centred) ** 2).mean(axis=1) / n)
        grid = sorted({max(1, int(s)) for s in (sizes or (n // 8, n // 4, n // 2, n))})
        frame = predict_learning_curve(lam, coeffs, grid, ridge=ridge).to_frame()
        curve = frame[["n", "kappa", "test_mse", "train_mse"]]
        values |= {f"lc_test_mse_n{int(r.n)}": float(r.test_mse) for r in curve.itertuples()}
    if "measures" in names:
        labelled = task == "classification"
        wanted = [m for m in CHEAP_MEASURES if labelled or not MEASURES[m].needs_labels]
        for m in wanted:
            try:
                values |= compute_measures(net, init_model, x, y, [m], random_state=random_state)
            except ValueError as err:
                notes.append(f"measure {m} skipped: {err}")
    return ModelPrediction(values, implementation, tuple(notes), spectrum, curve)


__all__ = ["ModelPrediction", "PredictQuantity", "load_data", "load_factory", "predict"]
