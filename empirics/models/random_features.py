"""Random-features models: a fixed random feature map and a trainable linear read-out (Rahimi & Recht 2007)."""

from __future__ import annotations

import math

import torch
from torch import nn

from empirics.models import register_model
from theory._validation import check_in_range, check_option, check_positive_int

FEATURE_MAPS = ("fourier", "cos", "relu")


class RandomFeatures(nn.Module):
    """f(x) = W φ(x) with a frozen random map φ: R^d → R^N and a trainable read-out W (no bias, zero init).

    Feature maps (frequencies / weights V ~ N(0, σ² I), σ = ``bandwidth``):

    - ``"fourier"``: √2 [cos(Vx), sin(Vx)] / √N with ⌈N/2⌉ frequencies, truncated to N (random Fourier features
      of Rahimi & Recht 2007, as in Curth et al. 2023 with σ = 0.2);
    - ``"cos"``: √2 cos(Vx + b) / √N with b ~ U[0, 2π] (the single-cosine variant; REFERENCE §8 uses σ² = 9/64);
    - ``"relu"``: max(Vx, 0) / √N.

    The 1/√N factor makes φ(x)ᵀφ(x') converge to a fixed kernel as N grows (for "fourier" and "cos" the
    Gaussian kernel exp(−σ²‖x − x'‖²/2)). The read-out starts at zero, so
    gradient descent on the squared loss converges to the min-norm least-squares fit (Belkin et al. 2019).
    """

    def __init__(
        self, input_dim: int, output_dim: int, n_features: int, feature_map: str = "fourier", bandwidth: float = 0.2
    ) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim), ("n_features", n_features)):
            check_positive_int(name, value, owner="RandomFeatures")
        self.feature_map = check_option("feature_map", feature_map, FEATURE_MAPS, owner="RandomFeatures")
        check_in_range("bandwidth", bandwidth, 0.0, None, inclusive=(False, True), owner="RandomFeatures")
        self.n_features = n_features
        n_freq = math.ceil(n_features / 2) if feature_map == "fourier" else n_features
        self.register_buffer("frequencies", bandwidth * torch.randn(input_dim, n_freq, dtype=torch.float64))
        self.register_buffer("phases", 2 * math.pi * torch.rand(n_freq, dtype=torch.float64))
        self.readout = nn.Linear(n_features, output_dim, bias=False)
        nn.init.zeros_(self.readout.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x), shape (batch, N), in the dtype of ``x``."""
        z = x.flatten(1) @ self.frequencies.to(x.dtype)
        if self.feature_map == "fourier":
            phi = math.sqrt(2.0) * torch.cat([torch.cos(z), torch.sin(z)], dim=1)[:, : self.n_features]
        elif self.feature_map == "cos":
            phi = math.sqrt(2.0) * torch.cos(z + self.phases.to(x.dtype))
        else:
            phi = torch.relu(z)
        return phi / math.sqrt(self.n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(x).to(self.readout.weight.dtype))


@register_model("random_features")
def random_features(
    input_dim: int, output_dim: int, n_features: int = 100, feature_map: str = "fourier", bandwidth: float = 0.2
) -> RandomFeatures:
    """A :class:`RandomFeatures` model."""
    return RandomFeatures(input_dim, output_dim, n_features, feature_map, bandwidth)
