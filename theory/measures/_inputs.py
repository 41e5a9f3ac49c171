"""What every registered measure sees, with the intermediate results shared between measures cached."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import nn

from theory.measures._layers import Layer, paired_layers, weight_layers
from theory.measures.norms import margin
from theory.measures.pacbayes import SigmaSearch, pacbayes_sigma
from theory.measures.spectral import ConvNorm, spectral_norms
from theory.measures.weight_spectrum import WeightSpectrum, weight_spectrum


@dataclass(frozen=True)
class MeasureInputs:
    """What a measure sees: the prepared (float64, eval, BatchNorm-folded) models, data and options; the shared
    intermediate results (layers, spectral norms, margin, σ searches) are computed once per call."""

    model: nn.Module
    init_model: nn.Module | None
    x: torch.Tensor | None
    y: torch.Tensor | None
    random_state: int | None
    conv_norm: ConvNorm

    @cached_property
    def layers(self) -> list[Layer]:
        return weight_layers(self.model)

    @cached_property
    def spec(self) -> np.ndarray:
        return spectral_norms(self.model, conv_norm=self.conv_norm, x=self.x, random_state=self.random_state)

    @cached_property
    def fro2(self) -> np.ndarray:
        return np.array([float((layer.matrix**2).sum()) for layer in self.layers])

    @cached_property
    def dist2(self) -> np.ndarray:
        pairs = paired_layers(self.model, self.init_model)
        return np.array([float(((a.matrix - b.matrix) ** 2).sum()) for a, b in pairs])

    @cached_property
    def log_prod_spec(self) -> float:
        return float(2 * np.log(self.spec).sum())

    @cached_property
    def gamma(self) -> float:
        return margin(self.model, self.x, self.y)

    @cached_property
    def sigma(self) -> SigmaSearch:
        return pacbayes_sigma(self.model, self.x, self.y, random_state=self.random_state)

    @cached_property
    def mag_sigma(self) -> SigmaSearch:
        return pacbayes_sigma(self.model, self.x, self.y, magnitude_aware=True, random_state=self.random_state)

    @cached_property
    def spectrum(self) -> WeightSpectrum:
        return weight_spectrum(self.model)

    def over_margin(self, log_value: float) -> float:
        """log value − 2 log γ, ``inf`` when γ <= 0."""
        return log_value - 2 * math.log(self.gamma) if self.gamma > 0 else math.inf
