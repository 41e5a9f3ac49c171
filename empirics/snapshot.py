"""What a recorded quantity may look at: :class:`Snapshot` (and, for quantities that follow every optimizer step,
:class:`TrainingContext`), a leaf module (torch only).

The recorder, the quantity registry, the controls and the phenomena all use it; none of them is needed to
build one, so it lives here rather than beside :class:`~empirics.phenomena.base.Phenomenon` (which re-exports
it), and ``empirics`` has no import circle through it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class Snapshot:
    """What a recorded quantity may look at: the model now, the model at initialisation, the data.

    ``y_*`` are class indices (``task="classification"``) or real targets (``task="regression"``).
    ``scale`` is the factor a phenomenon declares for scale-dependent controls (e.g. the prime count).
    """

    model: torch.nn.Module
    init_model: torch.nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: Literal["classification", "regression"] = "classification"
    scale: float = 1.0

    def to(self, device: torch.device | str) -> Snapshot:
        """The snapshot with copies of both models and the data on ``device`` (the run's models are not moved)."""
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_test", "y_test")}
        model, init_model = (copy.deepcopy(m).to(device) for m in (self.model, self.init_model))
        return Snapshot(model, init_model, **moved, task=self.task, scale=self.scale)


@dataclass(frozen=True)
class TrainingContext:
    """What a quantity following every optimizer step sees once, before the first step.

    ``targets`` are the real ``(n, O)`` targets the loss compares the outputs of all ``n`` training inputs with
    (one-hot class indicators for classification with ``loss="mse"``); ``loss_scale`` is ``c`` in a squared loss
    ``(c/2)·mean_{i∈B} ‖f(x_i) − y_i‖²`` (``c = 2/O`` for ``torch.nn.functional.mse_loss``); ``x_test`` are the
    evaluated held-out inputs; ``output`` is the output a one-number quantity reports (None: the model has one).
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    x_train: torch.Tensor
    targets: torch.Tensor
    x_test: torch.Tensor
    loss: str
    loss_scale: float
    output: int | None = None


__all__ = ["Snapshot", "TrainingContext"]
