"""The contract between a phenomenon and the runner.

A *phenomenon* trains one configuration (a flat mapping of parameters, seed included) and reports along
training through a :class:`~empirics.recorder.Recorder`. The runner expands a spec's sweep axes into
configurations, calls :meth:`Phenomenon.run` for each, and writes the recorder's rows to the store.

Two promises a phenomenon may declare: ``devices`` (the torch device types it moves its model and data to,
``recorder.device``; CPU only by default) and ``follows_steps`` (its training loop calls the recorder's per-step
hooks, so quantities that follow every optimizer step, such as ``telescope``, can be recorded).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch

if TYPE_CHECKING:
    from empirics.recorder import Recorder


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
        return Snapshot(copy.deepcopy(self.model).to(device), copy.deepcopy(self.init_model).to(device), **moved,
                        task=self.task, scale=self.scale)  # fmt: skip


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


class Phenomenon(ABC):
    """A canonical experiment.

    Subclasses set ``name``, ``parameters`` (every accepted parameter with its default) and
    ``outcomes`` (the final scalars :meth:`run` returns), and implement :meth:`run`.
    """

    name: ClassVar[str]
    parameters: ClassVar[Mapping[str, Any]]
    outcomes: ClassVar[tuple[str, ...]] = ()
    #: torch device types :meth:`run` moves its model and data to (``recorder.device``)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    #: whether :meth:`run`'s training loop calls ``recorder.attach``, ``before_step`` and ``after_step``
    follows_steps: ClassVar[bool] = False

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``params``; unknown keys raise ``ValueError`` naming them."""
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} for phenomenon {self.name!r}; "
                f"expected some of {sorted(self.parameters)}."
            )
        return {**self.parameters, **params}

    @abstractmethod
    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        """Train one configuration, calling ``recorder.record`` at ``recorder.due`` steps.

        Must be deterministic given ``params["seed"]`` on CPU. Returns the final outcomes. A phenomenon that lists
        more than ``"cpu"`` in :attr:`devices` trains on ``recorder.device``.
        """
