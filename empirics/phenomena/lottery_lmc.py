"""Linear mode connectivity and instability to SGD noise (Frankle et al. 2020).

One run = one (network, rewind step k, seed): train a network for k steps, copy it, train both copies to
``steps`` with different data orders (SGD noise), and evaluate the linear path θ(α) = (1 − α) θ_A + α θ_B.
The barrier is the error (or loss) on the path above the mean of the endpoints,
``max_α E(θ(α)) − ½ (E(θ_A) + E(θ_B))`` (Frankle et al. 2020, "instability"). Recorded along copy A's
training: the standard scalars and the recorder's quantities; at the last step also ``error_barrier``,
``loss_barrier``; the path itself is saved as the array ``interpolation`` (columns α, test error, test loss).
Frankle et al. find the barrier ≈ 0 only once k is past an early phase of training.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from empirics.data import load_dataset
from empirics.phenomena import register
from empirics.phenomena._train import OPTIMIZERS, TrainData, error_rate, loss_value, make_optimizer, train
from empirics.phenomena.base import Phenomenon
from empirics.phenomena.constraints import FINITE, POSITIVE, POSITIVE_INT, Interval
from empirics.phenomena.lottery import NETWORK_CONSTRAINTS, build_network
from empirics.recorder import Recorder
from theory._validation import check_positive_int


def interpolate(model_a: nn.Module, model_b: nn.Module, x: torch.Tensor, y: torch.Tensor, points: int) -> np.ndarray:
    """Rows ``(α, error, cross-entropy)`` of θ(α) = (1 − α) θ_A + α θ_B on ``(x, y)`` for ``points`` values of α."""
    check_positive_int("points", points - 1, owner="interpolate")
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    scratch = copy.deepcopy(model_a)
    rows = []
    with torch.no_grad():
        for alpha in np.linspace(0.0, 1.0, points):
            scratch.load_state_dict({k: (1 - alpha) * state_a[k] + alpha * state_b[k] for k in state_a})
            out = scratch(x)
            rows.append((alpha, error_rate(out, y), float(loss_value("cross_entropy", out, y))))
    return np.array(rows)


def barrier(path: np.ndarray) -> float:
    """``max_α v(α) − ½ (v(0) + v(1))`` for a path of values (Frankle et al. 2020)."""
    values = np.asarray(path, dtype=float)
    return float(values.max() - 0.5 * (values[0] + values[-1]))


@register
class LinearModeConnectivity(Phenomenon):
    """Instability of SGD from rewind step k on MNIST-1D (Frankle et al. 2020); defaults follow this project's
    measured recipe: 40-300-100-10 MLP, SGD lr 0.05 momentum 0.9, batch 60, 3000 steps."""

    name = "linear_mode_connectivity"
    parameters: Mapping[str, Any] = {
        "network": "mlp",
        "hidden": [300, 100],
        "channels": 32,
        "n_train": 4000,
        "n_test": 1000,
        "rewind_step": 0,
        "optimizer": "sgd",
        "lr": 0.05,
        "momentum": 0.9,
        "batch_size": 60,
        "interpolation_points": 11,
        "eval_every": 500,
        "snapshot_size": 256,
        "prime_scale": 10.0,
        "steps": 3000,
        "seed": 0,
    }
    constraints = {
        **NETWORK_CONSTRAINTS,
        "steps": POSITIVE_INT,
        "rewind_step": Interval(0, "steps", closed="left"),
        "optimizer": OPTIMIZERS,
        "lr": POSITIVE,
        "momentum": Interval(0, 1, closed="left"),
        "batch_size": POSITIVE_INT,
        "interpolation_points": Interval(2, None),
        "eval_every": POSITIVE_INT,
        "snapshot_size": POSITIVE_INT,
        "prime_scale": FINITE,
    }
    outcomes = ("error_barrier", "loss_barrier", "test_error_a", "test_error_b")

    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        """Shared training to k, two copies with data orders seeded ``seed + 1`` and ``seed + 2``, the path."""
        q = self.resolve(params)
        ds = load_dataset("mnist1d", n_train=q["n_train"], n_test=q["n_test"])
        data = TrainData(*ds.tensors(), "classification", q["snapshot_size"])
        seed, k = q["seed"], q["rewind_step"]
        model = build_network(q["network"], q["hidden"], q["channels"], seed)
        init = copy.deepcopy(model).requires_grad_(False)

        def fit(net: nn.Module, steps: int, offset: int, data_seed: int, rec: Recorder | None) -> None:
            opt = make_optimizer(q["optimizer"], net.parameters(), q["lr"], momentum=q["momentum"])
            train(
                net,
                data,
                loss="cross_entropy",
                optimizer=opt,
                steps=steps,
                recorder=rec,
                seed=data_seed,
                batch_size=q["batch_size"],
                eval_every=q["eval_every"],
                scale=q["prime_scale"],
                init_model=init,
                step_offset=offset,
            )

        fit(model, k, 0, seed, recorder)
        copy_b = copy.deepcopy(model)
        fit(model, q["steps"] - k, k, seed + 1, recorder)
        fit(copy_b, q["steps"] - k, k, seed + 2, None)
        path = interpolate(model, copy_b, data.x_test, data.y_test, q["interpolation_points"])
        recorder.save_array("interpolation", path)
        out = {
            "error_barrier": barrier(path[:, 1]),
            "loss_barrier": barrier(path[:, 2]),
            "test_error_a": float(path[0, 1]),
            "test_error_b": float(path[-1, 1]),
        }
        if recorder.due(q["steps"]):
            recorder.record(q["steps"], error_barrier=out["error_barrier"], loss_barrier=out["loss_barrier"])
        return out


__all__ = ["LinearModeConnectivity", "barrier", "interpolate"]
