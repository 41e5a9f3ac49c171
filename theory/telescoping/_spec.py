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
    - ``"adam"``: ``torch.optim.Adam``: coupled decay (``g + λθ`` enters the moments) and the step
      ``−γ m̂_t / φ_t`` with the preconditioner ``φ_t = √v̂_t + ε`` read from the real optimizer.
    - ``"adamw"``: ``torch.optim.AdamW``: decoupled decay ``θ ← (1 − γλ)θ`` and the same Adam step.
    """

    SGD = "sgd"
    ADAM = "adam"
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
      ``Δθ_t = A_t y + b_t`` (a ``P × (n·O + 1)`` matrix), which is exact for momentum, weight decay, Adam and
      AdamW (the preconditioner ``diag(1/φ_t)`` read from the real optimizer) and equivalent to the paper's
      cross-temporal kernels. Per step: the Jacobian ``J_t`` (N·O × P) and the product ``J_t [A_t | b_t]``:
      ``2·N·O·P·(n·O + 1)`` flops; memory ``N·O·P + 4·P·(n·O + 1)`` values for the Jacobian and the carried
      affine states (θ̃, the momentum or first moment, the gradient, the update). Meant for small networks:
      e.g. P = 14k, n = 200, N = 400 is 0.1 GiB and ~2 GFLOP a step; P = 50k, n = 1000 (an MLP 40-200-200-1 on
      MNIST-1D) is 1.9 GiB and ~0.1 TFLOP a step, past this project's 2-core machine.
    """

    AUTO = "auto"
    KERNEL = "kernel"
    PARAMETER = "parameter"


@dataclass(frozen=True)
class OptimizerSpec:
    """A small declared optimizer: ``name``, learning rate ``lr`` and its options (torch semantics).

    Args:
        name: ``"sgd"``, ``"adam"`` or ``"adamw"`` (see :class:`OptimizerName`).
        lr: learning rate ``γ > 0``.
        momentum: heavy-ball momentum ``μ ∈ [0, 1)`` (``"sgd"`` only).
        weight_decay: ``λ ≥ 0`` (coupled for ``"sgd"`` and ``"adam"``, decoupled for ``"adamw"``).
        betas: Adam moment coefficients ``(β₁, β₂)`` in ``[0, 1)`` (``"adam"``, ``"adamw"``).
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
        if self.name is not OptimizerName.SGD and self.momentum != 0:
            raise ValueError(
                f"The 'momentum' parameter of {_OWNER} must be 0 for {self.name.value!r} (use betas). "
                f"Got {self.momentum!r} instead."
            )

    @classmethod
    def from_torch(cls, optimizer: torch.optim.Optimizer) -> OptimizerSpec:
        """The spec of a torch ``SGD``, ``Adam`` or ``AdamW`` optimizer, read from its (single) parameter group.

        Raises:
            ValueError: another optimizer class, parameter groups with different settings, or an option the
                telescoping model does not follow (SGD dampening or Nesterov, AMSGrad, ``maximize``), named.
        """
        kinds = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adamw"}
        if type(optimizer) not in kinds:
            raise ValueError(
                f"The telescoping model follows torch.optim.SGD, Adam and AdamW. Got {type(optimizer).__name__}."
            )
        group = optimizer.param_groups[0]
        settings = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "eps", "amsgrad", "maximize")
        for other in optimizer.param_groups[1:]:
            differ = [k for k in settings if k in group and other.get(k) != group[k]]
            if differ:
                raise ValueError(
                    f"The telescoping model needs one optimizer setting for every parameter; the parameter groups of "
                    f"this {type(optimizer).__name__} differ in {differ}."
                )
        unsupported = {"dampening": 0, "nesterov": False, "amsgrad": False, "maximize": False}
        bad = {k: group[k] for k, ok in unsupported.items() if k in group and group[k] != ok}
        if bad:
            raise ValueError(
                f"The telescoping model follows {type(optimizer).__name__} without {sorted(bad)}. Got {bad} instead."
            )
        name = kinds[type(optimizer)]
        if name == "adam" and group.get("decoupled_weight_decay", False):
            name = "adamw"
        lr = float(group["lr"])
        if name == "sgd":
            return cls(name, lr=lr, momentum=float(group["momentum"]), weight_decay=float(group["weight_decay"]))
        betas = (float(group["betas"][0]), float(group["betas"][1]))
        return cls(name, lr=lr, weight_decay=float(group["weight_decay"]), betas=betas, eps=float(group["eps"]))

    @property
    def is_plain(self) -> bool:
        """True for SGD/GD without momentum or weight decay: the kernel recursion applies."""
        return self.name is OptimizerName.SGD and self.momentum == 0 and self.weight_decay == 0

    def build(self, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
        """The real torch optimizer this spec declares."""
        if self.name is OptimizerName.SGD:
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.name is OptimizerName.ADAM:
            return torch.optim.Adam(params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)
