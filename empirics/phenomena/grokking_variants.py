"""Grokking beyond modular arithmetic: large-initialisation MNIST-1D (Omnigrok) and the lazy-to-rich teacher.

- ``grokking_mnist1d``: Liu et al. 2023 ("Omnigrok") make an MLP grok on MNIST by scaling its initial weights
  by α and training with AdamW and MSE: the large-norm network memorises first and generalises only as weight
  decay shrinks its norm. MNIST-1D test accuracy tops out far below 95%, so the test threshold of the gap is a
  parameter (default: the accuracy an α = 1 network reaches at n_train = 1000, ≈ 40%, measured here).
- ``grokking_teacher``: Kumar et al. 2024 ("Grokking as the transition from lazy to rich training dynamics"):
  f(x) = (α/N) Σ_j φ(θ_jᵀx), φ(h) = h + (ε/2) h², full-batch GD with learning rate ``lr_scale · N / α²`` on
  y = ½(βᵀx)². Thresholds use R² = 1 − MSE / Var(y): fitted at R²_train ≥ 0.99, generalised at R²_test ≥ 0.95.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from empirics.data import load_dataset
from empirics.models import build_model
from empirics.phenomena import register
from empirics.phenomena._train import LOSSES, OPTIMIZERS, TrainData, make_optimizer, train
from empirics.phenomena.base import Phenomenon
from empirics.phenomena.constraints import FINITE, FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Interval
from empirics.phenomena.grokking import (
    ALL_DEVICES,
    GAP_OUTCOMES,
    TRAIN_ACCURACY,
    NormDrop,
    gap_outcomes,
    grokking_gap,
)
from empirics.recorder import Recorder


@register
class GrokkingMNIST1D(Phenomenon):
    """Omnigrok on MNIST-1D: MLP (``depth`` hidden layers of ``width``) with initial weights × ``init_scale``,
    AdamW, MSE on one-hot targets, minibatches of ``batch_size`` (Liu et al. 2023).

    ``classes`` keeps the digits 0..k−1; ``classes = 2`` is the binary 0-vs-1 task with one output regressed on
    the 0/1 label and read as the class 1{f > ½} (the one-output setting of Jeffares et al. 2024, where the
    telescoping smoother is small enough to carry along training).
    """

    name = "grokking_mnist1d"
    parameters: Mapping[str, Any] = {
        "classes": 10,
        "n_train": 1000,
        "n_test": 1000,
        "width": 200,
        "depth": 2,
        "init_scale": 6.0,
        "loss": "mse",
        "optimizer": "adamw",
        "lr": 1e-3,
        "weight_decay": 0.1,
        "batch_size": 200,
        "test_threshold": 0.4,
        "steps": 20000,
        "eval_every": 100,
        "snapshot_size": 256,
        "prime_scale": 10.0,
        "seed": 0,
    }
    constraints = {
        "classes": Interval(2, 10, integer=True),
        "n_train": POSITIVE_INT,
        "n_test": POSITIVE_INT,
        "width": POSITIVE_INT,
        "depth": NON_NEGATIVE,
        "init_scale": POSITIVE,
        "loss": LOSSES,
        "optimizer": OPTIMIZERS,
        "lr": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "batch_size": POSITIVE_INT,
        "test_threshold": FRACTION,
        "steps": POSITIVE_INT,
        "eval_every": POSITIVE_INT,
        "snapshot_size": POSITIVE_INT,
        "prime_scale": FINITE,
    }
    outcomes = GAP_OUTCOMES
    devices = ALL_DEVICES
    follows_steps = True

    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        """Minibatch training; the gap uses train accuracy ≥ 99% and test accuracy ≥ ``test_threshold``."""
        q = self.resolve(params)
        classes = q["classes"]
        ds = load_dataset(
            "mnist1d", n_train=q["n_train"], n_test=q["n_test"], classes=None if classes == 10 else range(classes)
        )
        data = TrainData(*ds.tensors(), "classification", q["snapshot_size"]).to(recorder.device)
        model = build_model(
            "mlp",
            seed=q["seed"],
            input_dim=40,
            output_dim=1 if classes == 2 else classes,
            width=q["width"],
            depth=q["depth"],
            init_scale=q["init_scale"],
        ).to(recorder.device)
        optimizer = make_optimizer(q["optimizer"], model.parameters(), q["lr"], q["weight_decay"])
        history = train(
            model,
            data,
            loss=q["loss"],
            optimizer=optimizer,
            steps=q["steps"],
            recorder=recorder,
            seed=q["seed"],
            batch_size=q["batch_size"],
            eval_every=q["eval_every"],
            scale=q["prime_scale"],
            extra=NormDrop(),
        )
        out = gap_outcomes(history)
        t_train, t_test, gap = grokking_gap(
            history.steps,
            [1 - e for e in history.train_error],
            [1 - e for e in history.test_error],
            test_threshold=q["test_threshold"],
        )
        return out | {"step_train_fit": t_train, "step_test_fit": t_test, "grokking_gap": gap}


@register
class GrokkingTeacher(Phenomenon):
    """The lazy-vs-rich quadratic teacher of Kumar et al. 2024 (D = 100, P = 550 samples, N = 500 neurons).

    Controls: ``epsilon`` (ε, the quadratic part of φ) and ``alpha`` (α, the output scale: large α is lazy).
    REFERENCE §8 flags these settings as unverified; the quick variant records what this port shows.
    """

    name = "grokking_teacher"
    parameters: Mapping[str, Any] = {
        "dim": 100,
        "n_train": 550,
        "n_test": 1000,
        "width": 500,
        "epsilon": 1.0,
        "alpha": 1.0,
        "lr_scale": 1.0,
        "weight_decay": 0.0,
        "steps": 10000,
        "eval_every": 10,
        "snapshot_size": 256,
        "prime_scale": 1.0,
        "seed": 0,
    }
    outcomes = ("train_loss", "test_loss", "train_r2", "test_r2", "step_train_fit", "step_test_fit", "grokking_gap")
    constraints = {
        "dim": POSITIVE_INT,
        "n_train": POSITIVE_INT,
        "n_test": POSITIVE_INT,
        "width": POSITIVE_INT,
        "epsilon": NON_NEGATIVE,
        "alpha": POSITIVE,
        "lr_scale": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "steps": POSITIVE_INT,
        "eval_every": POSITIVE_INT,
        "snapshot_size": POSITIVE_INT,
        "prime_scale": FINITE,
    }
    devices = ALL_DEVICES
    follows_steps = True

    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        """Full-batch GD, lr = lr_scale · N / α² (the kernel scale of f is α²/N); data seeded by ``seed``."""
        q = self.resolve(params)
        ds = load_dataset(
            "quadratic_teacher", dim=q["dim"], n_train=q["n_train"], n_test=q["n_test"], data_seed=q["seed"]
        )
        data = TrainData(*ds.tensors(), "regression", q["snapshot_size"]).to(recorder.device)
        model = build_model(
            "lazy_rich", seed=q["seed"], input_dim=q["dim"], width=q["width"], epsilon=q["epsilon"], alpha=q["alpha"]
        ).to(recorder.device)
        lr = q["lr_scale"] * q["width"] / q["alpha"] ** 2
        optimizer = make_optimizer("sgd", model.parameters(), lr, q["weight_decay"])
        history = train(
            model,
            data,
            loss="mse",
            optimizer=optimizer,
            steps=q["steps"],
            recorder=recorder,
            seed=q["seed"],
            eval_every=q["eval_every"],
            scale=q["prime_scale"],
            extra=NormDrop(),
        )
        var_train, var_test = float(data.y_train.var()), float(data.y_test.var())
        train_r2 = [1 - v / var_train for v in history.train_loss]
        test_r2 = [1 - v / var_test for v in history.test_loss]
        t_train, t_test, gap = grokking_gap(history.steps, train_r2, test_r2, train_threshold=TRAIN_ACCURACY)
        return {
            "train_loss": history.train_loss[-1],
            "test_loss": history.test_loss[-1],
            "train_r2": train_r2[-1],
            "test_r2": test_r2[-1],
            "step_train_fit": t_train,
            "step_test_fit": t_test,
            "grokking_gap": gap,
        }


__all__ = ["GrokkingMNIST1D", "GrokkingTeacher"]
