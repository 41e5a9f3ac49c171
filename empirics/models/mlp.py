"""Fully connected networks with a chosen depth, width, activation and initialisation scale."""

from __future__ import annotations

import torch
from torch import nn

from empirics.models import register_model
from theory._validation import check_in_range, check_option, check_positive_int

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
}


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units, then a linear read-out: f(x) = W_L σ(… σ(W_1 x + b_1) …) + b_L.

    Weights use PyTorch's default ``nn.Linear`` initialisation (U(±1/√fan_in)) multiplied by ``init_scale``
    (the α of Liu et al. 2023, Omnigrok). Inputs of any shape are flattened after the batch axis.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        width: int,
        depth: int = 1,
        activation: str = "relu",
        bias: bool = True,
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim), ("width", width)):
            check_positive_int(name, value, owner="MLP")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"The 'depth' parameter of MLP must be a non-negative int. Got {depth!r} instead.")
        check_option("activation", activation, ACTIVATIONS, owner="MLP")
        check_in_range("init_scale", init_scale, 0.0, None, inclusive=(False, True), owner="MLP")
        dims = [input_dim] + [width] * depth + [output_dim]
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            layers.append(nn.Linear(d_in, d_out, bias=bias))
            if i < depth:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            for p in self.parameters():
                p.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


@register_model("mlp")
def mlp(
    input_dim: int,
    output_dim: int,
    width: int = 100,
    depth: int = 1,
    activation: str = "relu",
    bias: bool = True,
    init_scale: float = 1.0,
) -> MLP:
    """An :class:`MLP`; ``depth`` counts hidden layers (one hidden layer by default)."""
    return MLP(input_dim, output_dim, width, depth, activation, bias, init_scale)
