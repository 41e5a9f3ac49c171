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

from theory._validation import check_device, check_option, check_positive_int
from theory.telescoping._result import TelescopeResult
from theory.telescoping._spec import OptimizerSpec, OutputLink, TelescopeMethod
from theory.telescoping._tracker import DEFAULT_MAX_MEMORY, TelescopeTracker, check_inputs


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Indices of successive minibatches: a fresh permutation each epoch (the full range when B = n)."""
    while True:
        if batch_size >= n:
            yield torch.arange(n)
            continue
        perm = torch.randperm(n, generator=generator)
        yield from perm.split(batch_size)


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
    device: torch.device | str | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> TelescopeResult:
    """Train a copy of ``model`` and track its telescoping smoother (Jeffares, Curth & van der Schaar 2024).

    The copy is trained on the squared loss ½ mean_{i∈B} ‖f(x_i) − y_i‖² with the declared optimizer; at every
    step the smoother [S_t | c_t] of all evaluated inputs (train then test) is updated from the eNTK (plain SGD/GD)
    or from the affine parameter update (momentum, weight decay, Adam, AdamW); each output o has its own smoother
    ŝ_o(x) ∈ R^{n·O} over all training labels. Recorded at steps 0, record_every, 2·record_every, ... and ``steps``.
    A training loop of your own carries the same smoother with :class:`TelescopeTracker`.

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
        device: where the copy, the data and the smoother live (default: the model's device).
        max_memory: bound in bytes on the carried state; a larger run raises ``ValueError`` (never approximated).

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
    x, y, x_test = check_inputs(train, test)
    n = x.shape[0]
    check_positive_int("batch_size", batch_size, allow_none=True, owner="telescope")
    if batch_size is not None and batch_size > n:
        raise ValueError(f"The 'batch_size' parameter of telescope must be at most n = {n}. Got {batch_size} instead.")
    if device is not None:
        device = check_device("device", device, owner="telescope")
    net = copy.deepcopy(model).to(dtype=dtype, device=device)
    opt = optimizer.build([p for p in net.parameters() if p.requires_grad])
    tracker = TelescopeTracker(net, opt, x, y, x_test, link=link, method=method, dtype=dtype, max_memory=max_memory)
    x_train, y_train = tracker.x_all[:n], tracker.y
    batches = _batches(n, batch_size or n, torch.Generator().manual_seed(seed))
    recorded_steps, records = [0], [tracker.record()]
    for t in range(1, steps + 1):
        batch = next(batches).to(x_train.device)
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * ((tracker.f(x_train[batch]) - y_train[batch]) ** 2).sum(dim=1).mean()
        loss.backward()
        tracker.before_step(batch)
        opt.step()
        tracker.after_step()
        if t % record_every == 0 or t == steps:
            recorded_steps.append(t)
            records.append(tracker.record())
    stack = {key: np.stack([r[key] for r in records]) for key in records[0]}
    total, out = tracker.x_all.shape[0], tracker.out
    return TelescopeResult(
        steps=np.asarray(recorded_steps),
        smoother=tracker.smoother[:, :-1].reshape(total, out, n, out).detach().cpu().numpy(),
        offset=tracker.smoother[:, -1].reshape(total, out).detach().cpu().numpy(),
        n_train=n,
        optimizer=optimizer,
        link=link,
        method=tracker.method,
        **stack,
    )
