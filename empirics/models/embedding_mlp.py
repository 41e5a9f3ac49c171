"""An MLP on learned token embeddings for modular arithmetic (Liu et al. 2022)."""

from __future__ import annotations

import torch
from torch import nn

from empirics.models import register_model
from theory._validation import check_in_range, check_positive_int


class EmbeddingMLP(nn.Module):
    """f(a, b) = W₂ ReLU(W₁ [E_a; E_b] + b₁) + b₂ with learned embeddings E ∈ R^{p×d} (Liu et al. 2022).

    Liu et al. sum the two embeddings for addition; concatenating them also represents non-commutative
    operations (a − b, a / b). Every parameter is multiplied by ``init_scale`` after PyTorch's default init.
    """

    def __init__(self, p: int, embed_dim: int = 128, width: int = 256, init_scale: float = 1.0) -> None:
        super().__init__()
        for name, value in (("p", p), ("embed_dim", embed_dim), ("width", width)):
            check_positive_int(name, value, owner="EmbeddingMLP")
        check_in_range("init_scale", init_scale, 0.0, None, inclusive=(False, True), owner="EmbeddingMLP")
        self.embed = nn.Embedding(p, embed_dim)
        self.mlp = nn.Sequential(nn.Linear(2 * embed_dim, width), nn.ReLU(), nn.Linear(width, p))
        with torch.no_grad():
            for param in self.parameters():
                param.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(x.long()).flatten(1))


@register_model("embedding_mlp")
def embedding_mlp(p: int = 97, embed_dim: int = 128, width: int = 256, init_scale: float = 1.0) -> EmbeddingMLP:
    """An :class:`EmbeddingMLP` on pairs of residues mod ``p``."""
    return EmbeddingMLP(p, embed_dim, width, init_scale)
