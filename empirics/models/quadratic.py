"""Networks with a quadratic activation: the grokking MLP of Gromov 2023 and the lazy/rich net of Kumar et al. 2024."""

from __future__ import annotations

import torch
from torch import nn

from empirics.models import register_model
from theory._validation import check_in_range, check_positive_int


class QuadraticMLP(nn.Module):
    """f(a, b) = W₂ (W₁ [e_a; e_b])², no biases (Gromov 2023, "Grokking modular arithmetic").

    ``W₁ [e_a; e_b]`` on the one-hot encoding of the pair is computed as ``U[a] + V[b]`` (``W₁ = [U; V]ᵀ``), the
    same function without materialising the 2p-dimensional one-hot input. Weights ~ N(0, σ²) with
    σ = init_scale · 0.5 / (2N)^{1/3} (Doshi et al. 2024's scaling of Gromov's init).
    Inputs are integer pairs ``(n, 2)`` (any dtype).
    """

    def __init__(self, p: int, width: int = 500, init_scale: float = 1.0) -> None:
        super().__init__()
        check_positive_int("p", p, owner="QuadraticMLP")
        check_positive_int("width", width, owner="QuadraticMLP")
        check_in_range("init_scale", init_scale, 0.0, None, inclusive=(False, True), owner="QuadraticMLP")
        std = init_scale * 0.5 / (2 * width) ** (1 / 3)
        # Standard modules (not raw parameters), so the structured eNTK of theory.ntk covers the model.
        self.embed_a = nn.Embedding(p, width, _weight=torch.randn(p, width) * std)
        self.embed_b = nn.Embedding(p, width, _weight=torch.randn(p, width) * std)
        self.readout = nn.Linear(width, p, bias=False)
        with torch.no_grad():
            self.readout.weight.copy_(torch.randn(p, width) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pairs = x.long()
        hidden = self.embed_a(pairs[:, 0]) + self.embed_b(pairs[:, 1])
        return self.readout(hidden.square())


class LazyRichNet(nn.Module):
    """f(x) = (α/N) Σ_j φ(θ_jᵀx), φ(h) = h + (ε/2) h², θ_j ~ N(0, I_D) (Kumar et al. 2024).

    The rows θ_j are the weight of ``hidden``, an ``nn.Linear(D, N, bias=False)``.

    ε interpolates between a linear model (ε = 0) and a quadratic one; a large output scale α keeps training
    lazy (kernel regime), a small one makes it rich and, per the paper, grokking appears in between.
    """

    def __init__(self, input_dim: int, width: int = 500, epsilon: float = 1.0, alpha: float = 1.0) -> None:
        super().__init__()
        check_positive_int("input_dim", input_dim, owner="LazyRichNet")
        check_positive_int("width", width, owner="LazyRichNet")
        check_in_range("epsilon", epsilon, 0.0, None, owner="LazyRichNet")
        check_in_range("alpha", alpha, 0.0, None, inclusive=(False, True), owner="LazyRichNet")
        self.epsilon, self.alpha = float(epsilon), float(alpha)
        # An nn.Linear (not a raw parameter), so the structured eNTK of theory.ntk covers the model; its weight is
        # the same N(0, 1) draw θ (width × input_dim) as before, so seeded runs keep their numbers.
        theta = torch.randn(width, input_dim)  # drawn before nn.Linear's own init consumes the generator
        self.hidden = nn.Linear(input_dim, width, bias=False)
        with torch.no_grad():
            self.hidden.weight.copy_(theta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x)
        return self.alpha * (h + 0.5 * self.epsilon * h.square()).mean(dim=1)


@register_model("quadratic_mlp")
def quadratic_mlp(p: int = 97, width: int = 500, init_scale: float = 1.0) -> QuadraticMLP:
    """A :class:`QuadraticMLP` on pairs of residues mod ``p``."""
    return QuadraticMLP(p, width, init_scale)


@register_model("lazy_rich")
def lazy_rich(input_dim: int = 100, width: int = 500, epsilon: float = 1.0, alpha: float = 1.0) -> LazyRichNet:
    """A :class:`LazyRichNet` (Kumar et al. 2024)."""
    return LazyRichNet(input_dim, width, epsilon, alpha)
