"""Follow a training run step by step with its telescoping smoother (Jeffares, Curth & van der Schaar 2024).

:class:`TelescopeTracker` does not train: the caller's loop does, and calls :meth:`~TelescopeTracker.before_step`
between ``loss.backward()`` and ``optimizer.step()`` and :meth:`~TelescopeTracker.after_step` after it. The
telescoping model accumulates a first-order step at every optimizer step, so it cannot be rebuilt from snapshots;
this is how a training loop that is not :func:`~theory.telescoping.telescope`'s own (a phenomenon's, with its
minibatches, optimizer and schedule) carries it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from theory._validation import check_in_range, check_option, check_positive_int
from theory.ntk import NTKImplementation, empirical_ntk, jacobian, resolve_implementation
from theory.telescoping._spec import OptimizerName, OptimizerSpec, OutputLink, TelescopeMethod

#: default bound (bytes) on the tracker's carried state; larger runs are refused, never approximated
DEFAULT_MAX_MEMORY = 2 * 2**30
#: relative tolerance of the first step's check that the run's gradient is the declared squared loss's
_GRADIENT_RTOL = 1e-3


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


def _flat(tensors: list[Tensor], dtype: torch.dtype) -> Tensor:
    return torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])


def check_inputs(train: object, test: object) -> tuple[Tensor, Tensor, Tensor]:
    """``(x, y as (n, O), x_test)`` from ``train = (x, y)`` and ``test`` (inputs, ``(x, y)`` or None)."""
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


def state_bytes(
    method: TelescopeMethod, *, n: int, m: int, outputs: int, params: int, batch: int, itemsize: int
) -> int:
    """Memory of the carried state: the smoother ``(n + m)·O × (n·O + 1)``, the step kernel and residual (kernel
    method) or the Jacobian ``(n + m)·O × P`` and four ``P × (n·O + 1)`` affine states (parameter method)."""
    rows, cols = (n + m) * outputs, n * outputs + 1
    total = rows * cols + batch * outputs * cols
    if method is TelescopeMethod.KERNEL:
        total += rows * batch * outputs
    else:
        total += rows * params + 4 * params * cols
    return total * itemsize


class TelescopeTracker:
    """The telescoping smoother ``f̃_t(x) = ŝ_t(x)ᵀy + c_t(x)`` of a run trained by the caller's loop.

    At step t the telescoping model adds the first-order step ``∇f_{t−1}(x)ᵀΔθ̃_t``, where ``Δθ̃_t`` is the
    optimizer's update computed from the gradient ``g̃_t = c·J_{t−1,B}ᵀ(f̃_{t−1}(X_B) − y_B)/|B|`` at the telescoping
    model's own training predictions (Jeffares, Curth & van der Schaar 2024, Eqs. 5-11); every step is affine in the
    labels, so ``f̃_t(x) = ŝ_t(x)ᵀy + c_t(x)`` and the effective parameters ``p = (n/|I|) Σ_{j∈I} ‖ŝ(x_j)‖²`` of
    Curth et al. 2023 follow along training. The optimizer is read from the run's torch optimizer at every step
    (SGD with momentum and weight decay, Adam, AdamW with the preconditioner ``diag(1/φ_t)`` of its second moments;
    a learning-rate schedule is followed).

    Args:
        model: the trained network (not copied: its parameters are read at every step).
        optimizer: the torch optimizer training every parameter of ``model`` that requires grad.
        x_train, y_train: all ``n`` training inputs and their real targets ``(n,)`` or ``(n, O)``; minibatches are
            index tensors into them.
        x_test: evaluated held-out inputs ``(m, ...)`` or None.
        loss_scale: ``c`` in the run's loss ``(c/2)·mean_{i∈B} ‖f(x_i) − y_i‖²`` (``torch.nn.functional.mse_loss``
            averages over the O outputs too: ``c = 2/O``). Checked against the run's gradient at the first step.
        link: the output link ``f = link(g)`` of :class:`OutputLink`.
        method: a :class:`TelescopeMethod` (``"auto"``: kernel for plain SGD/GD, else parameter).
        dtype: floating dtype of the smoother, kernels and Jacobians (the model keeps its own dtype).
        max_memory: bound in bytes on the carried state (:func:`state_bytes`); a larger run raises ``ValueError``.

    Raises:
        ValueError / TypeError: malformed data, an optimizer or option the model does not follow, float64 on MPS,
            or a state above ``max_memory``, each naming the argument, the expected and the actual value.

    Example:
        >>> net = torch.nn.Linear(3, 1).double()
        >>> x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> tracker = TelescopeTracker(net, opt, x, y)
        >>> for _ in range(3):
        ...     opt.zero_grad()
        ...     (0.5 * ((net(x)[:, 0] - y) ** 2).mean()).backward()
        ...     tracker.before_step(None)
        ...     opt.step()
        ...     tracker.after_step()
        >>> rec = tracker.record()
        >>> bool(abs(rec["telescoping"] - rec["real"]).max() < 1e-12)
        True
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        x_train: Tensor,
        y_train: Tensor,
        x_test: Tensor | None = None,
        *,
        loss_scale: float = 1.0,
        link: OutputLink | str = OutputLink.IDENTITY,
        method: TelescopeMethod | str = TelescopeMethod.AUTO,
        dtype: torch.dtype = torch.float64,
        max_memory: int = DEFAULT_MAX_MEMORY,
    ) -> None:
        owner = "TelescopeTracker"
        if not isinstance(model, nn.Module):
            raise TypeError(f"The 'model' argument must be a torch.nn.Module. Got {type(model).__name__} instead.")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"The 'optimizer' argument must be a torch optimizer. Got {type(optimizer).__name__}.")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"The 'dtype' argument must be a floating torch.dtype. Got {dtype!r} instead.")
        self.loss_scale = check_in_range("loss_scale", loss_scale, 0, None, inclusive=(False, True), owner=owner)
        check_positive_int("max_memory", max_memory, owner=owner)
        link = OutputLink(check_option("link", link, [v.value for v in OutputLink], owner=owner))
        method = TelescopeMethod(check_option("method", method, [v.value for v in TelescopeMethod], owner=owner))
        spec = OptimizerSpec.from_torch(optimizer)
        self.params = [p for p in model.parameters() if p.requires_grad]  # the order theory.jacobian uses
        if not self.params:
            raise ValueError(f"The model {type(model).__name__} has no parameter with requires_grad=True.")
        trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if trained != {id(p) for p in self.params}:
            raise ValueError(
                "The 'optimizer' argument must train exactly the model's parameters that require grad "
                f"({len(self.params)} tensors). Got an optimizer over {len(trained)} tensors, not the same ones."
            )
        device = self.params[0].device
        if device.type == "mps" and dtype == torch.float64:
            raise ValueError("The 'dtype' argument must be float32 on an MPS device (MPS has no float64). Got float64.")
        x, y, x_test = check_inputs((x_train, y_train), x_test)
        if method is TelescopeMethod.AUTO:
            method = TelescopeMethod.KERNEL if spec.is_plain else TelescopeMethod.PARAMETER
        self._check_method(method, spec)
        self.model, self.optimizer, self.method, self.dtype = model, optimizer, method, dtype
        self.f = _Linked(model, link)
        self.n, self.out = x.shape[0], y.shape[1]
        x_all = torch.cat([x, x_test])
        self.x_all = x_all.to(device=device, dtype=dtype)
        self.x_real = x_all.to(device=device, dtype=self.params[0].dtype)  # the real network's own inputs
        self.y = y.to(device=device, dtype=dtype)
        self.y_real = y.to(device=device, dtype=self.params[0].dtype)
        with torch.no_grad():
            width = self.f(self.x_real[:1]).shape[1]
        if width != self.out:
            raise ValueError(f"The model has {width} outputs but the labels have {self.out} columns; they must match.")
        itemsize = torch.finfo(dtype).bits // 8
        n_params = sum(p.numel() for p in self.params)
        need = state_bytes(
            method, n=self.n, m=x_test.shape[0], outputs=self.out, params=n_params, batch=self.n, itemsize=itemsize
        )
        if need > max_memory:
            raise ValueError(
                f"The telescoping state of this run needs {need / 2**30:.2f} GiB (method {method.value!r}, "
                f"P = {n_params} parameters, n = {self.n} training and m = {x_test.shape[0]} test inputs, "
                f"O = {self.out} outputs, {itemsize}-byte values), over max_memory = {max_memory / 2**30:.2f} GiB. "
                "Use fewer inputs, outputs or parameters (or raise max_memory where the machine has it)."
            )
        total = self.x_all.shape[0] * self.out
        self.f_cur = self._forward()
        self.smoother = self.y.new_zeros(total, self.n * self.out + 1)
        self.smoother[:, -1] = self.f_cur.reshape(-1)
        self.linearised = self.f_cur.reshape(-1).clone()
        self.y_aug = torch.cat([self.y.reshape(-1), self.y.new_ones(1)])
        self.steps = 0
        self._pending: tuple[Any, ...] | None = None
        self._buffer: Tensor | None = None
        if method is TelescopeMethod.PARAMETER:
            self.theta = self.y.new_zeros(n_params, self.n * self.out + 1)  # θ̃ = θ[:, :-1] y + θ[:, -1]
            self.theta[:, -1] = _flat(self.params, dtype)
        else:
            self.ntk_implementation = resolve_implementation(self.f, self.x_all[:1])

    @staticmethod
    def _check_method(method: TelescopeMethod, spec: OptimizerSpec) -> None:
        if method is TelescopeMethod.KERNEL and not spec.is_plain:
            raise ValueError(
                "The 'method' parameter of the telescoping model must be 'parameter' or 'auto' for momentum, weight "
                f"decay, Adam or AdamW (the kernel recursion covers plain SGD/GD only). Got 'kernel' with {spec!r}."
            )

    def _forward(self) -> Tensor:
        with torch.no_grad():
            return self.f(self.x_real).to(self.dtype)

    def _residual(self, rows: Tensor) -> Tensor:
        """[S_B − E_B | c_B]: the affine map y ↦ f̃_{t−1}(X_B) − y_B."""
        resid = self.smoother.index_select(0, rows)
        resid[torch.arange(rows.numel(), device=rows.device), rows] -= 1.0
        return resid

    def _batch(self, batch: Tensor | None) -> Tensor:
        device = self.x_all.device
        if batch is None:
            return torch.arange(self.n, device=device)
        batch = torch.as_tensor(batch).reshape(-1).to(device=device, dtype=torch.long)
        if batch.numel() == 0 or int(batch.min()) < 0 or int(batch.max()) >= self.n:
            raise ValueError(f"The 'batch' argument must hold indices in [0, {self.n}). Got {batch.tolist()[:8]}...")
        return batch

    def _check_gradient(self, batch: Tensor) -> None:
        """The run's gradient (``p.grad`` after its backward) must be that of the declared squared loss."""
        out = self.f(self.x_real[batch])
        loss = 0.5 * self.loss_scale * ((out - self.y_real[batch]) ** 2).sum(dim=1).mean()
        declared = _flat(list(torch.autograd.grad(loss, self.params)), torch.float64)
        real = _flat([p.grad for p in self.params], torch.float64)
        diff, norm = float((real - declared).norm()), float(declared.norm())
        if diff > _GRADIENT_RTOL * norm + 1e-12:
            raise ValueError(
                "The run's gradient is not that of the declared squared loss (loss_scale/2)·mean_B ‖f(x) − y‖² with "
                f"loss_scale = {self.loss_scale:g} (relative difference {diff / max(norm, 1e-300):.3g}). The "
                "telescoping smoother follows squared-loss training: check the loss, loss_scale, link and batch."
            )

    def before_step(self, batch: Tensor | None) -> None:
        """At θ_{t−1}, after the run's ``loss.backward()`` and before ``optimizer.step()``: the step kernel
        (kernel method: the smoother is updated here) or the Jacobian and the telescoped gradient g̃_t.

        Args:
            batch: indices of this step's minibatch into the training inputs (None: all of them).
        """
        if self._pending is not None:
            raise RuntimeError("TelescopeTracker.before_step was called twice without after_step in between.")
        if any(p.grad is None for p in self.params):
            raise RuntimeError(
                "TelescopeTracker.before_step needs the step's gradients: call it after loss.backward() and before "
                "optimizer.step()."
            )
        spec = OptimizerSpec.from_torch(self.optimizer)
        self._check_method(self.method, spec)
        batch = self._batch(batch)
        if self.steps == 0:
            self._check_gradient(batch)
        out, b = self.out, batch.numel()
        rows = (batch[:, None] * out + torch.arange(out, device=batch.device)).reshape(-1)
        resid = self._residual(rows)
        scale = self.loss_scale / b
        if self.method is TelescopeMethod.KERNEL:
            real_resid = (self.f_cur[batch] - self.y[batch]).reshape(-1)
            k = _kernel(self.f, self.x_all, self.x_all[batch], self.ntk_implementation)
            self.smoother.addmm_(k, resid, alpha=-spec.lr * scale)
            self.linearised.addmv_(k, real_resid, alpha=-spec.lr * scale)
            self._pending = (spec,)
        else:
            jac = jacobian(self.f, self.x_all).reshape(self.x_all.shape[0] * out, -1)
            grad = (jac[rows].T @ resid).mul_(scale)  # g̃_t, affine in [y; 1]
            self._pending = (spec, jac, grad, _flat(self.params, self.dtype))

    def after_step(self) -> None:
        """After ``optimizer.step()``: the telescoped update (parameter method) and the real predictions f_t."""
        if self._pending is None:
            raise RuntimeError("TelescopeTracker.after_step was called without a before_step for this step.")
        if self.method is TelescopeMethod.PARAMETER:
            spec, jac, grad, before = self._pending
            update = self._update(spec, grad)
            self.theta += update
            self.smoother.addmm_(jac, update)
            self.linearised.addmv_(jac, _flat(self.params, self.dtype) - before)
        self._pending = None
        self.f_cur = self._forward()
        self.steps += 1

    def _update(self, spec: OptimizerSpec, grad: Tensor) -> Tensor:
        """Δθ̃_t as a (P, n·O + 1) affine map of [y; 1], following torch's SGD / Adam / AdamW updates."""
        lr, wd = spec.lr, spec.weight_decay
        if spec.name is OptimizerName.SGD:
            direction = grad + wd * self.theta if wd else grad
            if spec.momentum:
                buffer = self._buffer
                self._buffer = direction if buffer is None else buffer.mul_(spec.momentum).add_(direction)
                direction = self._buffer
            return -lr * direction
        if spec.name is OptimizerName.ADAM and wd:
            grad = grad + wd * self.theta
        beta1, beta2 = spec.betas
        states = [self.optimizer.state[p] for p in self.params]
        t = float(states[0]["step"])
        sq = torch.cat([s["exp_avg_sq"].reshape(-1) for s in states]).to(self.dtype)
        phi = (sq / (1 - beta2**t)).sqrt_().add_(spec.eps)  # the real optimizer's preconditioner φ_t
        if self._buffer is None:
            self._buffer = (1 - beta1) * grad
        else:
            self._buffer.mul_(beta1).add_(grad, alpha=1 - beta1)
        step = self._buffer / phi[:, None]
        step.mul_(-lr / (1 - beta1**t))
        if spec.name is OptimizerName.ADAMW and wd:
            step.add_(self.theta, alpha=-lr * wd)
        return step

    def record(self) -> dict[str, np.ndarray | float]:
        """Now (after :attr:`steps` steps): p_train, p_test and tr(S_train) per output ``(O,)``, the real,
        telescoping and linearised predictions ``(n + m, O)`` and the declared loss ``(c/2)·mean ‖f − y‖²``."""
        n, out = self.n, self.out
        total = self.x_all.shape[0]
        s = self.smoother[:, :-1].reshape(total, out, n * out)
        sq = (s**2).sum(dim=2)
        m = total - n
        idx = torch.arange(n, device=s.device)
        diag = s.reshape(total, out, n, out)[idx, :, idx, :].diagonal(dim1=1, dim2=2)

        def to_np(t: Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float64)

        tele = (self.smoother @ self.y_aug).reshape(total, out)
        loss = 0.5 * self.loss_scale * ((self.f_cur[:n] - self.y) ** 2).sum(dim=1).mean()
        return {
            "p_train": to_np(sq[:n].sum(0)),
            "p_test": to_np(sq[n:].sum(0) * (n / m)) if m else np.full(out, np.nan),
            "trace_train": to_np(diag.sum(0)),
            "real": to_np(self.f_cur),
            "telescoping": to_np(tele),
            "linearised": to_np(self.linearised.reshape(total, out)),
            "train_loss": float(loss),
        }
