"""The one-layer modular-arithmetic transformer of Nanda et al. 2023 (progress measures for grokking)."""

from __future__ import annotations

import torch
from torch import nn

from empirics.models import register_model
from theory._validation import check_in_range, check_positive_int


class ModularTransformer(nn.Module):
    """Tokens ``a, b, =`` → embedding + learned positions → one attention layer → ReLU MLP → unembed at ``=``.

    Residual stream x₀ = W_E[t] + W_pos; x₁ = x₀ + Attn(x₀); x₂ = x₁ + W_out ReLU(W_in x₁ + b_in) + b_out;
    logits = W_U x₂ at the last position. No LayerNorm, no attention biases (Nanda et al. 2023: d_model 128,
    4 heads, d_mlp 512, vocabulary p + 1 with "=" as token p). Weights are scaled by ``init_scale``.
    """

    def __init__(self, p: int, d_model: int = 128, heads: int = 4, d_mlp: int = 512, init_scale: float = 1.0) -> None:
        super().__init__()
        for name, value in (("p", p), ("d_model", d_model), ("heads", heads), ("d_mlp", d_mlp)):
            check_positive_int(name, value, owner="ModularTransformer")
        if d_model % heads:
            raise ValueError(
                f"The 'heads' parameter of ModularTransformer must divide d_model={d_model}. Got {heads!r} instead."
            )
        check_in_range("init_scale", init_scale, 0.0, None, inclusive=(False, True), owner="ModularTransformer")
        self.p = p
        self.embed = nn.Embedding(p + 1, d_model)
        self.pos = nn.Parameter(torch.randn(3, d_model) / d_model**0.5)
        self.attn = nn.MultiheadAttention(d_model, heads, bias=False, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d_model))
        self.unembed = nn.Linear(d_model, p, bias=False)
        with torch.no_grad():
            self.embed.weight.normal_(0.0, d_model**-0.5)
            for param in self.parameters():
                param.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pairs = x.long()
        equals = torch.full_like(pairs[:, :1], self.p)
        h = self.embed(torch.cat([pairs, equals], dim=1)) + self.pos
        h = h + self.attn(h, h, h, need_weights=False)[0]
        h = h + self.mlp(h)
        return self.unembed(h[:, -1])


@register_model("modular_transformer")
def modular_transformer(
    p: int = 113, d_model: int = 128, heads: int = 4, d_mlp: int = 512, init_scale: float = 1.0
) -> ModularTransformer:
    """A :class:`ModularTransformer` on pairs of residues mod ``p``."""
    return ModularTransformer(p, d_model, heads, d_mlp, init_scale)
