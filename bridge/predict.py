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
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bridge._predict_inputs import (
    CheckpointError,
    DataError,
    ModelLoadError,
    build_model,
    check_output_path,
    load_checkpoint,
    load_data,
    load_factory,
)
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
    ``notes`` (fallbacks, skipped measures, why a value is infinite or undefined), the top ``spectrum`` and the
    predicted ``learning_curve``."""

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


def _targets(n_outputs: int, y: torch.Tensor, task: str, source: str) -> np.ndarray:
    """One-hot class targets (labels checked against the model's outputs) or the regression targets, float64."""
    if task == "classification":
        labels = y.long()
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_outputs):
            raise DataError(
                f"The labels y_train of {source} must be classes in [0, {n_outputs}) for a model with {n_outputs} "
                f"outputs. Got labels from {int(labels.min())} to {int(labels.max())}."
            )
        return torch.nn.functional.one_hot(labels, n_outputs).double().numpy()
    return y.double().reshape(len(y), -1).numpy()


def _tensors(data: Sequence[torch.Tensor], n_train: int, n_test: int):
    if len(data) != 4:
        raise DataError(f"The 'data' tensors must be (x_train, y_train, x_test, y_test). Got {len(data)} items.")
    x, y, x_test, y_test = (torch.as_tensor(t) for t in data)
    if len(x) != len(y) or len(x_test) != len(y_test):
        raise DataError(
            f"The 'data' tensors must pair inputs with targets. Got x_train/y_train with {len(x)}/{len(y)} rows and "
            f"x_test/y_test with {len(x_test)}/{len(y_test)}."
        )
    task = "regression" if y.is_floating_point() else "classification"
    return x[:n_train].float(), y[:n_train], x_test[:n_test].float(), y_test[:n_test], task


def learning_curve_sizes(n: int, n_modes: int, ridge: float) -> list[int]:
    """Default sample sizes of the predicted learning curve: m/16, m/8, m/4, m/2 of m = n (ridge > 0) or of m =
    min(n, M⁺) ridgeless, M⁺ the number of non-zero eigenvalues: the spectrum of an n-sample kernel is cut at n
    modes, so the ridgeless prediction diverges at n = M⁺ (E_0 = n/(n − Σ L_i²) → ∞; Simon et al. 2023)."""
    m = n if ridge > 0 else min(n, n_modes)
    return sorted({max(1, m // d) for d in (16, 8, 4, 2)})


def _curve_notes(sizes: np.ndarray, test_mse: np.ndarray, n: int, n_modes: int) -> list[str]:
    """Why a learning-curve value is infinite, or why it extrapolates past what an n-sample spectrum can tell."""
    notes = []
    diverged = [int(s) for s, v in zip(sizes, test_mse, strict=True) if not np.isfinite(v)]
    if diverged:
        notes.append(
            f"learning curve: test MSE is inf at n = {diverged}: the ridgeless curve diverges at n = number of "
            f"non-zero eigenvalues ({n_modes}), where E_0 = n/(n − Σ L_i²) is infinite. The spectrum is cut at the "
            f"snapshot size (an {n} x {n} kernel has at most {n} modes), so this peak is an artefact of n_train; "
            "use sizes well below it or a ridge > 0"
        )
    beyond = [int(s) for s, v in zip(sizes, test_mse, strict=True) if np.isfinite(v) and s >= min(n, n_modes)]
    if beyond:
        notes.append(
            f"learning curve: n = {beyond} is at or past the {min(n, n_modes)} modes of the {n}-sample spectrum; "
            "the prediction there extrapolates a spectrum cut at the snapshot size"
        )
    return notes


def _value_notes(values: dict[str, float], measures: Any) -> list[str]:
    """Why each infinite or NaN value of the measures and eNTK summaries is so (one note per cause)."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v) and not k.startswith("lc_test_mse_n")}
    notes = []
    margin = values.get("margin")
    by_margin = [k for k, v in bad.items() if v == math.inf and k in measures and measures[k].needs_labels]
    if margin is not None and margin <= 0 and by_margin:
        notes.append(
            f"{', '.join(by_margin)} = inf: the margin γ = {margin:.4g} <= 0 (the 10th percentile of correct minus "
            "best other logit: at least 10% of the training points are misclassified or tied), and these measures "
            "divide by γ or γ², so they take their limit as γ -> 0+"
        )
        bad = {k: v for k, v in bad.items() if k not in by_margin}
    if bad.get("spec_init") == -math.inf:
        notes.append(
            "spec_init = -inf: every weight equals its initial value (dist_init = 0 and log 0 = -inf); without a "
            "checkpoint the model is compared with itself; pass one (--checkpoint) to compare trained weights with init"
        )
        bad.pop("spec_init")
    for k, v in bad.items():
        if k in ("ntk_eff_dim", "ntk_alignment") and values.get("ntk_trace") == 0:
            why = "the eNTK is zero (the outputs do not depend on the parameters at these inputs)"
        elif k == "ntk_alignment":
            why = "the targets are zero, so there is no direction to align with"
        elif v == math.inf:
            why = "the bound exceeds the float64 range"
        else:
            why = "undefined for this model and data"
        notes.append(f"{k} = {v}: {why}")
    return notes


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
        sizes: sample sizes of the learning curve (default :func:`learning_curve_sizes`: below the point where
            the ridgeless curve of the n_train-sample spectrum diverges).
        top: how many leading eNTK eigenvalues to keep in ``spectrum``.
        random_state: seeds the factory and the stochastic measures.
        device: where the eNTK and its spectrum are computed ('cpu', 'cuda[:index]' or 'mps'); the
            model stays where it is and the measures run on the host.

    Raises:
        ModelLoadError, CheckpointError, DataError (ValueErrors naming the module, file or array), and the
        ``theory.ntk`` errors for a model whose eNTK is undefined or too large.
    """
    from theory import (
        CHEAP_MEASURES,
        MEASURES,
        KernelRidgeSmoother,
        NTKInputError,
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
    sizes = [int(s) if isinstance(s, np.integer) else s for s in sizes or ()]
    for size in sizes:
        check_positive_int("sizes", size, owner="predict")
    factory = load_factory(model) if isinstance(model, str) else model
    label = repr(model) if isinstance(model, str) else getattr(factory, "__name__", type(factory).__name__)
    if isinstance(factory, torch.nn.Module):
        net, make = factory, None
    elif callable(factory):
        torch.manual_seed(random_state)
        net, make = build_model(factory, label), factory
    else:
        raise TypeError(f"The 'model' argument must be a torch.nn.Module or a factory. Got {type(model).__name__}.")
    if init_model is None and checkpoint is not None and make is not None:
        torch.manual_seed(random_state)
        init_model = build_model(make, label)
    if checkpoint is not None:
        load_checkpoint(net, checkpoint)
    init_model = init_model if init_model is not None else copy.deepcopy(net)
    net.eval()
    if isinstance(data, str):
        x, y, x_test, y_test, task = load_data(data, n_train=n_train, n_test=n_test)
        source = repr(data)
    else:
        x, y, x_test, y_test, task = _tensors(data, n_train, n_test)
        source = "the data tensors"
    for name, inputs in (("x_train", x), ("x_test", x_test)):
        bad = ~torch.isfinite(inputs.reshape(len(inputs), -1)).all(dim=1)
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            raise DataError(f"The inputs {name} of {source} must be finite. Got NaN or Inf in {int(bad.sum())} of "
                            f"{len(inputs)} samples (first: sample {first}).")  # fmt: skip
    x_dev, x_test_dev = x.to(device), x_test.to(device)
    resolved = {}
    for name, inputs in (("x_train", x_dev), ("x_test", x_test_dev)):  # the model must run on both, before a kernel
        try:
            resolved[name] = resolve_implementation(net, inputs).value
        except NTKInputError as err:
            raise DataError(f"The inputs {name} of {source} do not fit the model: {err}") from err
    implementation = resolved["x_train"]
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
        with torch.no_grad():
            n_outputs = net(x[:1]).reshape(1, -1).shape[1]
        targets = _targets(n_outputs, y, task, source)
        spectrum = tuple(float(v) for v in eig.eigenvalues[:top])
    if "ntk" in names:
        trace = float(np.trace(kernel))
        values |= {
            "ntk_trace": trace,
            "ntk_lambda_max": float(eig.eigenvalues[0]),
            "ntk_eff_dim": float(effective_dimension(eig.eigenvalues, trace / len(x))) if trace > 0 else math.nan,
            "ntk_alignment": float(kernel_target_alignment(kernel, targets)) if trace > 0 else math.nan,
        }
    if "effective_parameters" in names:

        def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return empirical_ntk(net, a, b, trace_outputs=True, dtype=torch.float64)

        smoother = KernelRidgeSmoother(k, ridge=ridge).fit(x_dev)
        values |= {"p_train": smoother.effective_parameters(), "p_test": smoother.effective_parameters(x_test_dev)}
    if "learning_curve" in names:
        n = len(x)
        # eigenvalues below the numerical-rank tolerance n·eps·λ_max are round-off: they count as 0 (unlearnable)
        lam = np.where(eig.eigenvalues > n * np.finfo(float).eps * eig.eigenvalues[0], eig.eigenvalues, 0.0) / n
        n_modes = int(np.count_nonzero(lam))
        centred = targets - targets.mean(axis=0)
        coeffs = np.sqrt(((eig.eigenvectors.T @ centred) ** 2).mean(axis=1) / n)
        grid = sorted(set(sizes)) if sizes else learning_curve_sizes(n, n_modes, ridge)
        frame = predict_learning_curve(lam, coeffs, grid, ridge=ridge).to_frame()
        curve = frame[["n", "kappa", "test_mse", "train_mse"]].astype({"n": int})
        values |= {f"lc_test_mse_n{int(r.n)}": float(r.test_mse) for r in curve.itertuples()}
        notes += _curve_notes(frame["n"].to_numpy(), frame["test_mse"].to_numpy(), n, n_modes)
    if "measures" in names:
        labelled = task == "classification"
        wanted = [m for m in CHEAP_MEASURES if labelled or not MEASURES[m].needs_labels]
        for m in wanted:
            try:
                values |= compute_measures(net, init_model, x, y, [m], random_state=random_state)
            except ValueError as err:
                notes.append(f"measure {m} skipped: {err}")
    notes += _value_notes(values, MEASURES)
    return ModelPrediction(values, implementation, tuple(notes), spectrum, curve)


__all__ = [
    "CheckpointError",
    "DataError",
    "ModelLoadError",
    "ModelPrediction",
    "PredictQuantity",
    "check_output_path",
    "load_data",
    "learning_curve_sizes",
    "load_factory",
    "predict",
]
