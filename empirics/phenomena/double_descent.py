"""Model-wise and epoch-wise double descent of one-hidden-layer ReLU networks on MNIST-1D with label noise.

Model-wise (Nakkiran et al. 2019; Belkin et al. 2019): the final test error, swept over the width, peaks near
the interpolation threshold, the smallest width whose training error reaches zero (about n·K/(d+K) hidden
units by parameter counting; with Adam for 2,000 steps on 4,000 MNIST-1D examples the peak sits near h = 96,
REFERENCE §8). Epoch-wise (Nakkiran et al. 2019): the test error along the training of one wide network.

Two kinds of effective parameters (Curth, Jeffares & van der Schaar 2023) can be recorded:

- ``p_train``/``p_test`` of the telescoping model of the run itself (Jeffares, Curth & van der Schaar 2024): the
  recorder quantity ``telescope``, carried over every optimizer step, for the one-output binary task
  (``one_output``, squared loss). This is the paper's double-descent lens.
- ``p_train_ntk_interp``/``p_test_ntk_interp`` (option ``ntk_interp``): the ridgeless interpolator of the final
  network's eNTK on the snapshot examples, a different smoother (not the trained network's), whose p_train is the
  kernel's rank, min(P, n). Stores written before this name existed are migrated by :mod:`empirics.store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from empirics.data import load_dataset
from empirics.models import build_model
from empirics.phenomena import register
from empirics.phenomena._train import LOSSES, OPTIMIZERS, TrainData, make_optimizer, train
from empirics.phenomena.base import Phenomenon
from empirics.phenomena.constraints import FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Each, Interval, Rule
from empirics.phenomena.grokking import ALL_DEVICES
from empirics.recorder import Recorder
from theory.ntk import empirical_ntk
from theory.smoothers import KernelRidgeSmoother

MNIST1D_CLASSES = Rule(
    lambda v, q: v == [] or Each(Interval(0, 9, integer=True), min_len=2, distinct=True).holds(v, q),
    "[] (all ten digits) or a list of at least 2 distinct digits in 0..9",
)
ONE_OUTPUT = Rule(
    lambda v, q: not v or (len(q["classes"]) == 2 and q["loss"] == "mse"),
    "false, or true with two 'classes' and loss 'mse' (one output regressed on the 0/1 label)",
    refs=("classes", "loss"),
)


def entk_effective_parameters(model: torch.nn.Module, x_train: torch.Tensor, x_test: torch.Tensor) -> dict[str, float]:
    """p_train_ntk_interp, p_test_ntk_interp of the ridgeless eNTK smoother of ``model`` (Curth et al. 2023).

    The linearised network's interpolator ŝ(x)ᵀ = Θ(x, X) Θ(X, X)⁺ with Θ the output-traced empirical NTK at the
    current parameters (``theory.ntk.empirical_ntk``, float64), and p̂(I) = (n/|I|) Σ_{j∈I} ‖ŝ(x_j)‖²
    (``theory.smoothers.KernelRidgeSmoother``). The kernel's rank is at most the parameter count P, so p_train =
    min(P, n) and p_test peaks where P ≈ n, the feature-wise double descent of the linearised model.
    """

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return empirical_ntk(model, a, b, trace_outputs=True, dtype=torch.float64)

    smoother = KernelRidgeSmoother(kernel).fit(x_train)
    return {
        "p_train_ntk_interp": smoother.effective_parameters(),
        "p_test_ntk_interp": smoother.effective_parameters(x_test),
    }


@register
class DoubleDescentMLP(Phenomenon):
    """Model-wise double descent: a ``depth``-hidden-layer ReLU MLP of ``width`` units on noisy MNIST-1D.

    Parameters (defaults: REFERENCE §8's measured setting): ``width``, ``depth``; data ``n_train``, ``n_test``,
    ``classes`` (empty: all ten digits; e.g. ``[0, 1]`` for the binary task of Jeffares et al. 2024),
    ``label_noise`` (training labels flipped to another class, seeded by ``seed``); ``one_output``: with two
    ``classes``, a single output regressed on the 0/1 label with the squared loss and read as the class 1{f > ½}
    (the one-output task on which Jeffares et al. 2024 telescope double descent; record ``telescope`` for its
    p_train/p_test); training ``steps`` of ``optimizer`` (``adam``/``adamw``/``sgd``) at ``lr`` with ``momentum``
    (SGD), ``batch_size`` (0: full batch), ``loss`` (``cross_entropy``/``mse``) and ``init_scale`` α;
    ``lr_reference_width`` w₀ (0: off): train at lr · min(1, w₀/width). Under PyTorch's default (standard)
    parameterisation the eNTK grows linearly with the width, so one step size either stalls the narrow networks
    or throws the wide ones out of the regime where a first-order (telescoping) model follows them; the scaling
    keeps the step in kernel units fixed past w₀ (as the NTK parameterisation does, Jacot et al. 2018).
    ``snapshot_size`` training/test examples passed to recorded quantities (the test inputs of the telescope's
    p_test); ``ntk_interp``: also return p_train_ntk_interp/p_test_ntk_interp of the eNTK interpolator of the
    final network on the snapshot examples (:func:`entk_effective_parameters`), NaN otherwise; ``prime_scale``:
    the factor the ``prime_count`` control applies before rounding. The data pool (MNIST-1D seed 42) is the same
    for every seed; ``seed`` drives the noise, the initialisation and the batch order.

    Records ``train_loss``, ``test_loss``, ``train_error``, ``test_error`` and ``weight_norm`` at due steps.
    """

    name = "double_descent_mlp"
    parameters: Mapping[str, Any] = {
        "width": 96,
        "depth": 1,
        "n_train": 4000,
        "n_test": 4000,
        "classes": [],
        "one_output": False,
        "label_noise": 0.15,
        "steps": 2000,
        "optimizer": "adam",
        "lr": 1e-2,
        "lr_reference_width": 0,
        "momentum": 0.0,
        "batch_size": 0,
        "loss": "cross_entropy",
        "init_scale": 1.0,
        "snapshot_size": 256,
        "ntk_interp": False,
        "prime_scale": 1.0,
        "seed": 0,
    }
    constraints = {
        "width": POSITIVE_INT,
        "depth": NON_NEGATIVE,
        "n_train": POSITIVE_INT,
        "n_test": POSITIVE_INT,
        "classes": MNIST1D_CLASSES,
        "one_output": ONE_OUTPUT,
        "label_noise": FRACTION,
        "steps": NON_NEGATIVE,
        "optimizer": OPTIMIZERS,
        "lr": POSITIVE,
        "lr_reference_width": NON_NEGATIVE,
        "momentum": Interval(0, 1, closed="left"),
        "batch_size": NON_NEGATIVE,
        "loss": LOSSES,
        "init_scale": POSITIVE,
        "snapshot_size": POSITIVE_INT,
        "prime_scale": POSITIVE,
    }
    outcomes = ("train_loss", "test_loss", "train_error", "test_error", "p_train_ntk_interp", "p_test_ntk_interp")
    devices = ALL_DEVICES
    follows_steps = True

    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        q = self.resolve(params)
        data = load_dataset(
            "mnist1d",
            n_train=q["n_train"],
            n_test=q["n_test"],
            classes=list(q["classes"]) or None,
            label_noise=q["label_noise"],
            noise_seed=q["seed"],
        )
        device = recorder.device
        tensors = TrainData(*data.tensors(), snapshot_size=q["snapshot_size"]).to(device)
        model = build_model(
            "mlp",
            seed=q["seed"],
            input_dim=data.input_dim,
            output_dim=1 if q["one_output"] else data.num_classes,
            width=q["width"],
            depth=q["depth"],
            init_scale=q["init_scale"],
        ).to(device)
        lr = q["lr"] * min(1.0, q["lr_reference_width"] / q["width"]) if q["lr_reference_width"] else q["lr"]
        optimizer = make_optimizer(q["optimizer"], model.parameters(), lr, momentum=q["momentum"])
        history = train(
            model,
            tensors,
            loss=q["loss"],
            optimizer=optimizer,
            steps=q["steps"],
            recorder=recorder,
            seed=q["seed"],
            batch_size=q["batch_size"] or None,
            eval_every=max(q["steps"], 1),
            scale=q["prime_scale"],
        )
        outcomes = history.final() | {"p_train_ntk_interp": float("nan"), "p_test_ntk_interp": float("nan")}
        if q["ntk_interp"]:
            k = q["snapshot_size"]
            outcomes |= entk_effective_parameters(model, tensors.x_train[:k], tensors.x_test[:k])
        return outcomes


@register
class DoubleDescentEpochwise(DoubleDescentMLP):
    """Epoch-wise double descent: test error along training of one wide MLP on noisy MNIST-1D.

    The same parameters as :class:`DoubleDescentMLP`; the defaults (width 512, 1,000 examples, 20% noise, Adam
    lr 1e-3 for 2,000 full-batch steps) put the curve on log-spaced recorded steps. REFERENCE §8 found no cheap
    setting with a clean second descent: on this one the test error falls, rises by a few points while the
    noisy labels are memorised (train error → 0), then stays flat; read the recorded ``test_error`` curve.
    """

    name = "double_descent_epochwise"
    parameters: Mapping[str, Any] = {
        **DoubleDescentMLP.parameters,
        "width": 512,
        "n_train": 1000,
        "n_test": 2000,
        "label_noise": 0.2,
        "lr": 1e-3,
    }
