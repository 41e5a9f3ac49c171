"""The telescoping model of training (Jeffares, Curth & van der Schaar 2024, "Deep Learning Through A Telescoping
Lens").

The trained network is approximated by the sum of its first-order steps, f̃_t(x) = f̃_{t−1}(x) + ∇f_{t−1}(x)ᵀΔθ̃_t,
where Δθ̃_t is the optimizer's update computed from the squared-loss gradient at the telescoping model's own training
predictions, g̃_t = J_{t−1,B}ᵀ(f̃_{t−1}(X_B) − y_B)/|B|. Every step is then affine in the labels, so
f̃_t(x) = S_t(x) y + c_t(x): a smoother whose effective parameters p = (n/|I|) Σ_{j∈I} ‖ŝ(x_j)‖² (Curth et al. 2023)
are tracked along training. For plain SGD/GD (Eq. 11 of the paper):
    S_t = S_{t−1} − (γ/|B|) K_t(X, X_B) (S_{t−1} − I)_{B,:},   c_t = c_{t−1} − (γ/|B|) K_t(X, X_B) c_{t−1}(X_B),
with S_0 = 0, c_0 = f_0 and K_t the eNTK at θ_{t−1}. Momentum, weight decay and AdamW carry the update as an affine
function of the labels instead (see :class:`TelescopeMethod`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from theory._validation import check_option, check_positive_int
from theory.ntk import NTKImplementation, empirical_ntk, jacobian, resolve_implementation
from theory.telescoping._result import TelescopeResult
from theory.telescoping._spec import OptimizerName, OptimizerSpec, OutputLink, TelescopeMethod


class _Linked(nn.Module):
    """The network followed by its output link, outputs flattened to (N, O)."""

    def __init__(self, net: nn.Module, link: OutputLink) -> None:
        super().__init__()
        self.net = net
        self.link = link

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        out = out.reshape(out.shape[0], -1)
        return torch.sigmoid(out) if self.link is OutputLink.SIGMOID else out


def _kernel(f: nn.Module, x1: Tensor, x2: Tensor, implementation: NTKImplementation) -> Tensor:
    """eNTK rows (N1·O, N2·O) between ``x1`` and ``x2`` at the current parameters (``theory.empirical_ntk``).

    Blocks of at least 2048 samples: the batch x2 is small, and per-block feature passes dominate otherwise.
    """
    k = empirical_ntk(f, x1, x2, implementation=implementation, block_size=min(x1.shape[0], max(x2.shape[0], 2048)))
    n1, n2, o, _ = k.shape
    return k.permute(0, 2, 1, 3).reshape(n1 * o, n2 * o)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Indices of successive minibatches: a fresh permutation each epoch (the full range when B = n)."""
    while True:
        if batch_size >= n:
            yield torch.arange(n)
            continue
        perm = torch.randperm(n, generator=generator)
        yield from perm.split(batch_size)


def _flat_params(params: list[Tensor]) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


class _Telescope:
    """Mutable state of one run: the real network, its optimizer and the smoother [S | c] (N·O, n·O + 1)."""

    def __init__(self, f: _Linked, x_all: Tensor, y: Tensor, n: int, spec: OptimizerSpec, method: TelescopeMethod):
        self.f, self.x_all, self.y, self.n, self.spec, self.method = f, x_all, y, n, spec, method
        self.out = y.shape[1]
        self.y_aug = torch.cat([y.reshape(-1), y.new_ones(1)])
        self.params = [p for p in f.parameters() if p.requires_grad]  # the order theory.jacobian uses
        self.opt = spec.build(self.params)
        with torch.no_grad():
            self.f_cur = f(x_all)
        total = x_all.shape[0] * self.out
        self.smoother = y.new_zeros(total, n * self.out + 1)
        self.smoother[:, -1] = self.f_cur.reshape(-1)
        self.linearised = self.f_cur.reshape(-1).clone()
        if method is TelescopeMethod.PARAMETER:
            theta0 = _flat_params(self.params)
            self.theta = y.new_zeros(theta0.numel(), n * self.out + 1)  # θ̃ = θ[:, :-1] y + θ[:, -1]
            self.theta[:, -1] = theta0
            self.buffer: Tensor | None = None
        else:
            self.ntk_implementation = resolve_implementation(f, x_all[:1])

    def _residual(self, rows: Tensor) -> Tensor:
        """[S_B − E_B | c_B]: the affine map y ↦ f̃_{t−1}(X_B) − y_B."""
        resid = self.smoother.index_select(0, rows)
        resid[torch.arange(rows.numel(), device=rows.device), rows] -= 1.0
        return resid

    def _real_step(self, batch: Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        pred = self.f(self.x_all[batch])
        loss = 0.5 * ((pred - self.y[batch]) ** 2).sum(dim=1).mean()
        loss.backward()
        self.opt.step()

    def step(self, batch: Tensor) -> None:
        out, b, lr, device = self.out, batch.numel(), self.spec.lr, self.x_all.device
        batch = batch.to(device)
        rows = (batch[:, None] * out + torch.arange(out, device=device)).reshape(-1)
        resid = self._residual(rows)
        real_resid = (self.f_cur[batch] - self.y[batch]).reshape(-1)
        if self.method is TelescopeMethod.KERNEL:
            k = _kernel(self.f, self.x_all, self.x_all[batch], self.ntk_implementation)
            self.smoother.addmm_(k, resid, alpha=-lr / b)
            self.linearised.addmv_(k, real_resid, alpha=-lr / b)
            self._real_step(batch)
        else:
            jac = jacobian(self.f, self.x_all).reshape(self.x_all.shape[0] * out, -1)
            grad = jac[rows].T @ resid / b  # g̃_t, affine in [y; 1]
            before = _flat_params(self.params)
            self._real_step(batch)
            update = self._update(grad)
            self.theta += update
            self.smoother.addmm_(jac, update)
            self.linearised.addmv_(jac, _flat_params(self.params) - before)
        with torch.no_grad():
            self.f_cur = self.f(self.x_all)

    def _update(self, grad: Tensor) -> Tensor:
        """Δθ̃_t as a (P, n·O + 1) affine map of [y; 1], following torch's SGD / AdamW updates."""
        spec, lr, wd = self.spec, self.spec.lr, self.spec.weight_decay
        if spec.name is OptimizerName.SGD:
            direction = grad + wd * self.theta if wd else grad
            if spec.momentum:
                self.buffer = direction if self.buffer is None else spec.momentum * self.buffer + direction
                direction = self.buffer
            return -lr * direction
        beta1, beta2 = spec.betas
        states = [self.opt.state[p] for p in self.params]
        t = float(states[0]["step"])
        sq = torch.cat([s["exp_avg_sq"].reshape(-1) for s in states])
        phi = (sq / (1 - beta2**t)).sqrt() + spec.eps  # the real optimizer's preconditioner φ_t
        self.buffer = (1 - beta1) * grad if self.buffer is None else beta1 * self.buffer + (1 - beta1) * grad
        return -lr * wd * self.theta - (lr / (1 - beta1**t)) * self.buffer / phi[:, None]

    def record(self) -> dict[str, np.ndarray | float]:
        n, out = self.n, self.out
        total = self.x_all.shape[0]
        s = self.smoother[:, :-1].reshape(total, out, n * out)
        sq = (s**2).sum(dim=2)
        m = total - n
        idx = torch.arange(n, device=s.device)
        diag = s.reshape(total, out, n, out)[idx, :, idx, :].diagonal(dim1=1, dim2=2)
        to_np = lambda t: t.detach().cpu().numpy().astype(np.float64)
        tele = (self.smoother @ self.y_aug).reshape(total, out)
        loss = 0.5 * ((self.f_cur[:n] - self.y) ** 2).sum(dim=1).mean()
        return {
            "p_train": to_np(sq[:n].sum(0)),
            "p_test": to_np(sq[n:].sum(0) * (n / m)) if m else np.full(out, np.nan),
            "trace_train": to_np(diag.sum(0)),
            "real": to_np(self.f_cur),
            "telescoping": to_np(tele),
            "linearised": to_np(self.linearised.reshape(total, out)),
            "train_loss": float(loss),
        }


def _check_inputs(train: object, test: object) -> tuple[Tensor, Tensor, Tensor]:
    if not (isinstance(train, tuple | list) and len(train) == 2 and all(isinstance(t, Tensor) for t in train)):
        raise TypeError(f"The 'train' argument must be a pair (x, y) of tensors. Got {type(train).__name__} instead.")
    x, y = train
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"The 'train' argument must hold as many labels as inputs (at least one). Got {x.shape[0]} inputs "
            f"and {y.shape[0]} labels instead."
        )
    if y.dim() not in (1, 2) or not y.is_floating_point():
        raise ValueError(f"The training labels must be a real (n,) or (n, O) tensor. Got {y.dtype} {tuple(y.shape)}.")
    if isinstance(test, tuple | list) and len(test) == 2:
        test = test[0]
    if test is None:
        test = x[:0]
    if not isinstance(test, Tensor) or test.shape[1:] != x.shape[1:]:
        got = tuple(test.shape) if isinstance(test, Tensor) else type(test).__name__
        raise ValueError(f"The 'test' argument must be inputs shaped (m, {tuple(x.shape[1:])}). Got {got} instead.")
    return x, y.reshape(y.shape[0], -1), test


def telescope(
    model: nn.Module,
    train: tuple[Tensor, Tensor],
    test: Tensor | tuple[Tensor, Tensor] | None,
    optimizer: OptimizerSpec,
    steps: int,
    record_every: int = 1,
    *,
    seed: int,
    batch_size: int | None = None,
    link: OutputLink | str = OutputLink.IDENTITY,
    method: TelescopeMethod | str = TelescopeMethod.AUTO,
    dtype: torch.dtype = torch.float64,
) -> TelescopeResult:
    """Train a copy of ``model`` and track its telescoping smoother (Jeffares, Curth & van der Schaar 2024).

    The copy is trained on the squared loss ½ mean_{i∈B} ‖f(x_i) − y_i‖² with the declared optimizer; at every
    step the smoother [S_t | c_t] of all evaluated inputs (train then test) is updated from the eNTK (plain SGD/GD)
    or from the affine parameter update (momentum, weight decay, AdamW); each output o has its own smoother
    ŝ_o(x) ∈ R^{n·O} over all training labels. Recorded at steps 0, record_every, 2·record_every, ... and ``steps``.

    Args:
        model: a deterministic torch module (call ``.eval()`` on dropout/batch-norm models); it is not modified.
        train: ``(x, y)`` with ``y`` of shape (n,) or (n, O), real targets.
        test: held-out inputs (m, ...), or ``(x, y)`` (labels unused), or None.
        optimizer: the :class:`OptimizerSpec` of the real training.
        steps: number of optimizer steps T.
        record_every: record every this many steps.
        seed: seed of the minibatch order.
        batch_size: minibatch size |B| (None: full-batch GD).
        link: ``"identity"`` or ``"sigmoid"`` output link (:class:`OutputLink`).
        method: ``"auto"``, ``"kernel"`` or ``"parameter"`` (:class:`TelescopeMethod`).
        dtype: floating dtype of the network copy and of the smoother.

    Returns:
        A :class:`TelescopeResult`.

    Raises:
        TypeError / ValueError: for malformed data or options, naming the argument, expected and actual.

    Example:
        >>> x, y = torch.randn(8, 3), torch.randn(8)
        >>> res = telescope(torch.nn.Linear(3, 1), (x, y), x[:2], OptimizerSpec("sgd", lr=0.1), steps=5, seed=0)
        >>> bool(abs(res.gap).max() < 1e-12)
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"The 'model' argument must be a torch.nn.Module. Got {type(model).__name__} instead.")
    if not isinstance(optimizer, OptimizerSpec):
        raise TypeError(f"The 'optimizer' argument must be an OptimizerSpec. Got {type(optimizer).__name__} instead.")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"The 'dtype' argument must be a floating torch.dtype. Got {dtype!r} instead.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"The 'seed' argument must be an int. Got {type(seed).__name__} instead.")
    check_positive_int("steps", steps, owner="telescope")
    check_positive_int("record_every", record_every, owner="telescope")
    link = OutputLink(check_option("link", link, [v.value for v in OutputLink], owner="telescope"))
    method = TelescopeMethod(check_option("method", method, [v.value for v in TelescopeMethod], owner="telescope"))
    x, y, x_test = _check_inputs(train, test)
    n = x.shape[0]
    check_positive_int("batch_size", batch_size, allow_none=True, owner="telescope")
    if batch_size is not None and batch_size > n:
        raise ValueError(f"The 'batch_size' parameter of telescope must be at most n = {n}. Got {batch_size} instead.")
    if method is TelescopeMethod.AUTO:
        method = TelescopeMethod.KERNEL if optimizer.is_plain else TelescopeMethod.PARAMETER
    if method is TelescopeMethod.KERNEL and not optimizer.is_plain:
        raise ValueError(
            "The 'method' parameter of telescope must be 'parameter' or 'auto' for momentum, weight decay or AdamW "
            f"(the kernel recursion covers plain SGD/GD only). Got 'kernel' with {optimizer!r} instead."
        )
    f = _Linked(copy.deepcopy(model).to(dtype), link)
    x_all = torch.cat([x, x_test]).to(dtype)
    y = y.to(dtype)
    with torch.no_grad():
        width = f(x_all[:1]).shape[1]
    if width != y.shape[1]:
        raise ValueError(f"The model has {width} outputs but the labels have {y.shape[1]} columns; they must match.")
    state = _Telescope(f, x_all, y, n, optimizer, method)
    batches = _batches(n, batch_size or n, torch.Generator().manual_seed(seed))
    recorded_steps, records = [0], [state.record()]
    for t in range(1, steps + 1):
        state.step(next(batches))
        if t % record_every == 0 or t == steps:
            recorded_steps.append(t)
            records.append(state.record())
    stack = {key: np.stack([r[key] for r in records]) for key in records[0]}
    total, out = x_all.shape[0], y.shape[1]
    return TelescopeResult(
        steps=np.asarray(recorded_steps),
        smoother=state.smoother[:, :-1].reshape(total, out, n, out).detach().cpu().numpy(),
        offset=state.smoother[:, -1].reshape(total, out).detach().cpu().numpy(),
        n_train=n,
        optimizer=optimizer,
        link=link,
        method=method,
        **stack,
    )
