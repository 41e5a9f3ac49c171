"""Grokking on modular arithmetic: the grokking gap and its interval over seeds.

Power et al. 2022 found that small networks trained on a fraction of a modular arithmetic table reach 100%
training accuracy long before test accuracy rises ("grokking"). This module runs the canonical settings:

- ``model="quadratic_mlp"``: a 2-layer MLP with activation x² on one-hot pairs, MSE, full-batch AdamW
  (Gromov 2023): grokking within a few hundred steps, seconds on a CPU (the ``--quick`` signature run).
- ``model="embedding_mlp"``: an MLP on learned embeddings (Liu et al. 2022), cross-entropy, AdamW.
- ``model="modular_transformer"``: the one-layer transformer of Nanda et al. 2023 (p = 113, fraction 0.3,
  AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98), full batch): ~10⁴ steps, a full run only.

Signature: the *grokking gap*, steps from train accuracy ≥ 99% to test accuracy ≥ 95% (:func:`grokking_gap`),
summarised over seeds by :func:`gap_summary`. Every grokking phenomenon records ``weight_norm`` and
``weight_norm_drop`` (:class:`NormDrop`) at due steps, and accepts the step-following ``telescope`` quantity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

from empirics.data import load_dataset
from empirics.data.modular import ModularOperation, is_prime, split_sizes
from empirics.models import build_model
from empirics.phenomena import register
from empirics.phenomena._train import (
    LOSSES,
    OPTIMIZERS,
    History,
    TrainData,
    first_step,
    make_optimizer,
    train,
    weight_norm,
)
from empirics.phenomena.base import Phenomenon
from empirics.phenomena.constraints import FINITE, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Interval, OneOf, Rule
from empirics.recorder import Recorder

TRAIN_ACCURACY = 0.99
TEST_ACCURACY = 0.95
#: the torch device types the grokking phenomena train on (``recorder.device``)
ALL_DEVICES = ("cpu", "cuda", "mps")


def grokking_gap(
    steps: Sequence[int],
    train_accuracy: Sequence[float],
    test_accuracy: Sequence[float],
    *,
    train_threshold: float = TRAIN_ACCURACY,
    test_threshold: float = TEST_ACCURACY,
) -> tuple[float, float, float]:
    """``(t_train, t_test, t_test − t_train)``: first steps with train accuracy ≥ 99% and test accuracy ≥ 95%.

    The grokking gap of Power et al. 2022 (NaN where a threshold is never reached). For regression pass
    "accuracies" such as ``1 − loss / var(y)``.

    Example:
        >>> grokking_gap([0, 10, 20, 30], [0.1, 1.0, 1.0, 1.0], [0.0, 0.1, 0.5, 0.97])
        (10.0, 30.0, 20.0)
    """
    t_train = first_step(list(steps), list(train_accuracy), train_threshold)
    t_test = first_step(list(steps), list(test_accuracy), test_threshold)
    return t_train, t_test, t_test - t_train


@dataclass(frozen=True)
class GapSummary:
    """Grokking gap over seeds: ``statistic`` the mean gap over the seeds that grokked, a Student-t interval,
    and ``pvalue`` of the one-sided t-test of H0: mean gap ≤ 0 (no delay)."""

    statistic: float
    pvalue: float
    n_seeds: int
    n_grokked: int
    std: float

    def conf_int(self, alpha: float = 0.05) -> tuple[float, float]:
        """The (1 − alpha) Student-t interval of the mean gap (NaN with fewer than two grokked seeds)."""
        if self.n_grokked < 2:
            return (float("nan"), float("nan"))
        half = stats.t.ppf(1 - alpha / 2, self.n_grokked - 1) * self.std / np.sqrt(self.n_grokked)
        return (self.statistic - half, self.statistic + half)

    def summary(self, alpha: float = 0.05) -> str:
        low, high = self.conf_int(alpha)
        return (
            f"grokking gap {self.statistic:.1f} steps, {100 * (1 - alpha):.0f}% CI [{low:.1f}, {high:.1f}], "
            f"{self.n_grokked}/{self.n_seeds} seeds grokked, p(no delay) = {self.pvalue:.3g}"
        )

    def __iter__(self):
        return iter((self.statistic, self.pvalue))


def gap_summary(gaps: Sequence[float]) -> GapSummary:
    """Summarise per-seed grokking gaps (NaN = the seed did not grok within its steps).

    Example:
        >>> round(gap_summary([20.0, 30.0, float("nan")]).statistic, 1)
        25.0
    """
    values = np.asarray(gaps, dtype=float)
    done = values[np.isfinite(values)]
    if done.size == 0:
        return GapSummary(float("nan"), float("nan"), values.size, 0, float("nan"))
    std = float(done.std(ddof=1)) if done.size > 1 else float("nan")
    if done.size > 1 and std > 0:
        pvalue = float(stats.ttest_1samp(done, 0.0, alternative="greater").pvalue)
    else:
        pvalue = float("nan")
    return GapSummary(float(done.mean()), pvalue, values.size, int(done.size), std)


def gap_outcomes(history: History) -> dict[str, float]:
    """Final metrics plus ``step_train_fit``, ``step_test_fit`` and ``grokking_gap`` of a classification run."""
    train_acc = [1 - e for e in history.train_error]
    test_acc = [1 - e for e in history.test_error]
    t_train, t_test, gap = grokking_gap(history.steps, train_acc, test_acc)
    return {**history.final(), "step_train_fit": t_train, "step_test_fit": t_test, "grokking_gap": gap}


class NormDrop:
    """``weight_norm_drop`` = 1 − ‖θ_t‖ / max_{s≤t} ‖θ_s‖ at recorded steps (the peak over recorded steps): how
    far the weight norm has fallen below its running peak, 0 while it grows. Omnigrok's explanation of grokking
    (Liu et al. 2023) has the norm fall (weight decay) before the test accuracy rises; an event ordering on this
    record tests that on the weight norm itself."""

    def __init__(self) -> None:
        self.peak = 0.0

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        norm = weight_norm(model)
        self.peak = max(self.peak, norm)
        return {"weight_norm_drop": 1.0 - norm / self.peak if self.peak > 0 else 0.0}


_MODEL_ARGS = {
    "quadratic_mlp": ("width",),
    "embedding_mlp": ("embed_dim", "width"),
    "modular_transformer": ("d_model", "heads", "d_mlp"),
}


#: the outcomes of a classification grokking run (:func:`gap_outcomes`)
GAP_OUTCOMES = (
    "train_loss",
    "test_loss",
    "train_error",
    "test_error",
    "step_train_fit",
    "step_test_fit",
    "grokking_gap",
)


@register
class GrokkingModular(Phenomenon):
    """a ∘ b mod p with a network trained on ``train_fraction`` of the table (Power et al. 2022; Gromov 2023;
    Liu et al. 2022; Nanda et al. 2023). Defaults: Gromov's quadratic MLP, p = 97, fraction 0.3, wd 1.

    ``seed`` draws the train/test split and the initialisation; ``init_scale`` multiplies the initial weights
    (α of Liu et al. 2023); ``prime_scale`` is the factor the prime-count control applies before rounding.
    """

    name = "grokking_modular"
    parameters: Mapping[str, Any] = {
        "p": 97,
        "operation": "add",
        "train_fraction": 0.3,
        "model": "quadratic_mlp",
        "width": 500,
        "embed_dim": 128,
        "d_model": 128,
        "heads": 4,
        "d_mlp": 512,
        "init_scale": 1.0,
        "loss": "mse",
        "optimizer": "adamw",
        "lr": 1e-2,
        "weight_decay": 1.0,
        "beta2": 0.98,
        "steps": 400,
        "eval_every": 1,
        "snapshot_size": 256,
        "prime_scale": 100.0,
        "seed": 0,
    }
    constraints = {
        "p": Rule(lambda p, q: is_prime(p), "a prime"),
        "operation": OneOf([o.value for o in ModularOperation]),
        "train_fraction": (
            Interval(0, 1, closed="neither"),
            Rule(
                lambda f, q: min(split_sizes(q["p"], q["operation"], f)) > 0,
                "a fraction that leaves both splits of the p-table non-empty",
                refs=("p", "operation"),
            ),
        ),
        "model": OneOf(list(_MODEL_ARGS)),
        "width": POSITIVE_INT,
        "embed_dim": POSITIVE_INT,
        "d_model": POSITIVE_INT,
        "heads": (
            POSITIVE_INT,
            Rule(
                lambda h, q: q["model"] != "modular_transformer" or q["d_model"] % h == 0,
                "a divisor of d_model (the transformer splits d_model across heads)",
                refs=("d_model", "model"),
            ),
        ),
        "d_mlp": POSITIVE_INT,
        "init_scale": POSITIVE,
        "loss": LOSSES,
        "optimizer": OPTIMIZERS,
        "lr": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "beta2": Interval(0, 1, closed="left"),
        "steps": NON_NEGATIVE,
        "eval_every": POSITIVE_INT,
        "snapshot_size": POSITIVE_INT,
        "prime_scale": FINITE,
    }
    outcomes = GAP_OUTCOMES
    devices = ALL_DEVICES
    follows_steps = True

    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        """Full-batch training on the table split; records every due step (see :func:`~._train.train`)."""
        q = self.resolve(params)
        ds = load_dataset(
            "modular", p=q["p"], operation=q["operation"], train_fraction=q["train_fraction"], split_seed=q["seed"]
        )
        x_train, y_train, x_test, y_test = ds.tensors()
        data = TrainData(x_train, y_train, x_test, y_test, "classification", q["snapshot_size"]).to(recorder.device)
        kwargs = {k: q[k] for k in _MODEL_ARGS[q["model"]]}
        model = build_model(q["model"], seed=q["seed"], p=q["p"], init_scale=q["init_scale"], **kwargs)
        model = model.to(recorder.device)
        optimizer = make_optimizer(
            q["optimizer"], model.parameters(), q["lr"], q["weight_decay"], betas=(0.9, q["beta2"])
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(q["seed"])
            history = train(
                model,
                data,
                loss=q["loss"],
                optimizer=optimizer,
                steps=q["steps"],
                recorder=recorder,
                seed=q["seed"],
                eval_every=q["eval_every"],
                scale=q["prime_scale"],
                extra=NormDrop(),
            )
        return gap_outcomes(history)
