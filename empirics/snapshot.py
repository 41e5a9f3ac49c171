"""What a recorded quantity may look at: :class:`Snapshot`, a leaf module (torch only).

The recorder, the quantity registry, the controls and the phenomena all use it; none of them is needed to
build one, so it lives here rather than beside :class:`~empirics.phenomena.base.Phenomenon` (which re-exports
it), and ``empirics`` has no import circle through it.
"""

from __future__ import annotations

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


__all__ = ["Snapshot"]
