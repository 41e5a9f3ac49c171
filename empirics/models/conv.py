"""The 1-D convolutional network of the MNIST-1D benchmark (Greydanus & Kobak 2020)."""

from __future__ import annotations

import torch
from torch import nn

from empirics.models import register_model
from theory._validation import check_positive_int


class Conv1dNet(nn.Module):
    """Three ``Conv1d(kernel 5, stride 2, padding 1)`` + ReLU layers of ``channels`` channels, then a linear head.

    Follows the MNIST-1D paper's ConvNet (Greydanus & Kobak 2020) with 32 channels; inputs are ``(N, L)``
    signals (a channel axis is added) or ``(N, 1, L)``.
    """

    def __init__(self, input_length: int = 40, output_dim: int = 10, channels: int = 32) -> None:
        super().__init__()
        for name, value in (("input_length", input_length), ("output_dim", output_dim), ("channels", channels)):
            check_positive_int(name, value, owner="Conv1dNet")
        length = input_length
        layers: list[nn.Module] = []
        for c_in in (1, channels, channels):
            layers += [nn.Conv1d(c_in, channels, kernel_size=5, stride=2, padding=1), nn.ReLU()]
            length = (length + 2 - 5) // 2 + 1
        if length < 1:
            raise ValueError(f"The 'input_length' parameter of Conv1dNet must be >= 15. Got {input_length!r} instead.")
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * length, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.head(self.features(x).flatten(1))


@register_model("conv1d")
def conv1d(input_length: int = 40, output_dim: int = 10, channels: int = 32) -> Conv1dNet:
    """A :class:`Conv1dNet` for MNIST-1D."""
    return Conv1dNet(input_length, output_dim, channels)
