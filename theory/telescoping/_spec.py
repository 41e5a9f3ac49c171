"""Declared options of the telescoping model: optimizer spec, output link, computation method."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import torch

from theory._validation import check_in_range, check_option

_OWNER = "OptimizerSpec"


class OptimizerName(StrEnum):
    """Optimizers the telescoping model follows (torch semantics, Jeffares et al. 2024 Eqs. 11-21).

    - ``"sgd"``: ``torch.optim.SGD`` (GD with a full batch), optional heavy-ball momentum and coupled weight
      decay ``g + λθ``.
    - ``"adamw"``: ``torch.optim.AdamW``: decoupled decay ``θ ← (1 − γλ)θ`` and the Adam step
      ``−γ m̂_t / φ_t`` with the preconditioner ``φ_t = √v̂_t + ε`` read from the real optimizer.
    """

    SGD = "sgd"
    ADAMW = "adamw"


class OutputLink(StrEnum):
    """Output link ``f = link(g)`` of the trained network ``g``; the squared loss is taken on ``f``.

    - ``"identity"`` (default): ``f = g``.
    - ``"sigmoid"``: ``f = σ(g)``, so the step kernel is ``σ'(g(x)) σ'(g(x_i)) K^g(x, x_i)`` (Eq. 21).
    """

    IDENTITY = "identity"
    SIGMOID = "sigmoid"


class TelescopeMethod(StrEnum):
    """How the smoother is carried from step to step.

    - ``"auto"`` (default): ``"kernel"`` for plain SGD/GD (no momentum, no weight decay), else
      ``"parameter"``.
    - ``"kernel"``: ``S_t = S_{t−1} − (γ/|B|) K_t(X, X_B) (S_{t−1} − I)_{B,:}`` with the eNTK ``K_t`` at
      ``θ_{t−1}``. Per step ``N·|B|·O²`` kernel entries plus a ``(N·O × |B|·O)(|B|·O × n·O)`` GEMM; memory
      ``N·O·n·O`` for the smoother. Plain SGD/GD only.
    - ``"parameter"``: the parameter update is carried as an affine function of the labels,
      ``Δθ_t = A_t y + b_t`` (a ``P × (n·O + 1)`` matrix), which is exact for momentum, weight decay and
      AdamW and equivalent to the paper's cross-temporal kernels. Per step: the Jacobian ``J_t`` (N·O × P,
      memory ``N·O·P``) and the product ``J_t [A_t | b_t]``: ``N·O·P·n·O`` flops; memory
      ``3·P·n·O`` for the carried affine states. Meant for small networks.
    """

    AUTO = "auto"
    KERNEL = "kernel"
    PARAMETER = "parameter"


@dataclass(frozen=True)
class OptimizerSpec:
    """A small declared optimizer: ``name``, learning rate ``lr`` and its options (torch semantics).

    Args:
        name: ``"sgd"`` or ``"adamw"`` (see :class:`OptimizerName`).
        lr: learning rate ``γ > 0``.
        momentum: heavy-ball momentum ``μ ∈ [0, 1)`` (``"sgd"`` only).
        weight_decay: ``λ ≥ 0`` (coupled for ``"sgd"``, decoupled for ``"adamw"``).
        betas: Adam moment coefficients ``(β₁, β₂)`` in ``[0, 1)`` (``"adamw"`` only).
        eps: Adam's ``ε > 0``.

    Example:
        >>> OptimizerSpec("sgd", lr=0.1, momentum=0.9).build([torch.zeros(2, requires_grad=True)]).defaults["lr"]
        0.1
    """

    name: OptimizerName | str = OptimizerName.SGD
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        name = check_option("name", self.name, [o.value for o in OptimizerName], owner=_OWNER)
        object.__setattr__(self, "name", OptimizerName(name))
        check_in_range("lr", self.lr, 0, None, inclusive=(False, True), owner=_OWNER)
        check_in_range("momentum", self.momentum, 0, 1, inclusive=(True, False), owner=_OWNER)
        check_in_range("weight_decay", self.weight_decay, 0, None, owner=_OWNER)
        check_in_range("eps", self.eps, 0, None, inclusive=(False, True), owner=_OWNER)
        if not isinstance(self.betas, tuple | list) or len(self.betas) != 2:
            raise ValueError(f"The 'betas' parameter of {_OWNER} must be a pair of floats. Got {self.betas!r} instead.")
        for beta in self.betas:
            check_in_range("betas", beta, 0, 1, inclusive=(True, False), owner=_OWNER)
        object.__setattr__(self, "betas", (float(self.betas[0]), float(self.betas[1])))
        if self.name is OptimizerName.ADAMW and self.momentum != 0:
            raise ValueError(
                f"The 'momentum' parameter of {_OWNER} must be 0 for 'adamw' (use betas). "
                f"Got {self.momentum!r} instead."
            )

    @property
    def is_plain(self) -> bool:
        """True for SGD/GD without momentum or weight decay: the kernel recursion applies."""
        return self.name is OptimizerName.SGD and self.momentum == 0 and self.weight_decay == 0

    def build(self, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
        """The real torch optimizer this spec declares."""
        if self.name is OptimizerName.SGD:
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)
