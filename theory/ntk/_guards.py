"""Guards against a silently wrong eNTK: input checks, a probe of the model on a few samples, a memory check.

The eNTK Θ(x, x') = J(x) J(x')ᵀ (Jacot et al. 2018) is a per-sample quantity: it is defined only when the
model maps each sample on its own, deterministically, without changing its input. The implementations of
Novak et al. 2022 (structured blocks, Jacobian contraction, NTK-vector products) each batch samples
differently, so a model that breaks one of these assumptions gives a kernel that changes with ``block_size``
or the implementation, or from call to call, without any error. :func:`probe_model` detects each case on
a block of at most ``2 * PROBE_ROWS`` samples (one forward of the block and one per sample, negligible next
to the kernel) and raises a named :class:`NTKInputError`; :func:`check_kernel_memory` refuses a kernel that
cannot fit before anything is allocated.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from theory.ntk._model import ModelView

PROBE_ROWS = 4  # samples taken from each of x1 and x2 for the probe


class NTKInputError(ValueError):
    """The eNTK of this model on these inputs is undefined or cannot be computed; the message says why."""


class NonFiniteInputError(NTKInputError):
    """An input holds NaN or ±Inf: every kernel entry of that sample would be NaN."""


class InputMismatchError(NTKInputError):
    """The model cannot run on the inputs (wrong width, shape or dtype); the message names what it expects."""


class InPlaceInputError(NTKInputError):
    """The model's forward modifies its input tensor, or one of its own parameters or buffers, in place."""


class NondeterministicModelError(NTKInputError):
    """Two forward passes of the same inputs disagree (dropout, sampling): the kernel would be random."""


class SampleMixingError(NTKInputError):
    """A sample's output depends on the other samples in the batch: the per-sample kernel is undefined."""


class KernelMemoryError(NTKInputError, MemoryError):
    """The kernel would not fit in the available memory (refused before allocating)."""


def check_finite(name: str, x: Tensor | None) -> None:
    """Raise :class:`NonFiniteInputError` naming the argument, the count and the first sample with NaN/Inf."""
    if x is None or not (x.is_floating_point() or x.is_complex()):
        return
    bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        rows = bad.nonzero().flatten()
        raise NonFiniteInputError(
            f"The {name!r} argument must be finite. Got NaN or Inf in {rows.numel()} of {x.shape[0]} samples "
            f"(first: sample {int(rows[0])})."
        )


def probe_model(view: ModelView, x1: Tensor, x2: Tensor | None = None) -> int:
    """Check inputs and model on a few samples; return the number of outputs O.

    Raises, in this order: :class:`NonFiniteInputError`; :class:`InputMismatchError` when the model fails on
    the inputs (naming its first layer's expected input); :class:`InPlaceInputError` when the forward bumps
    the version counter of its input or of one of its parameters or buffers (a call counter, running
    statistics); :class:`SampleMixingError` when the model runs on the block but fails on one sample alone (batch
    statistics, e.g. ``F.batch_norm(x, None, None, training=True)``); :class:`NondeterministicModelError` when two
    passes of the same inputs disagree; :class:`SampleMixingError` when the block's outputs differ from the
    samples' outputs one at a time. The caller's tensors and its model's parameters and buffers are never passed
    to the model here (the probe runs on copies), so a failed probe leaves them as they were. On the data-free
    "meta" device (shape inference) only the number of outputs is taken: there is nothing to compare.
    """
    if x1.device.type == "meta":
        return _forward(view, view.cast_input(x1[:1]), x1).shape[1]
    check_finite("x1", x1)
    check_finite("x2", x2)
    rows = x1[:PROBE_ROWS] if x2 is None else torch.cat([x1[:PROBE_ROWS], x2[:PROBE_ROWS]])
    block = view.cast_input(rows).clone()
    state = {name: t.clone() for name, t in {**view.params, **view.buffers}.items()}
    versions = {name: t._version for name, t in state.items()} | {"": block._version}
    first = _forward(view, block, x1, state)
    if block._version != versions[""]:
        raise InPlaceInputError(
            f"The model {_name(view)} modifies its input in place (its version counter changed during forward, "
            "e.g. x.mul_(2.0)): it would overwrite the caller's tensor and change the kernel between blocks, and "
            "torch.func cannot differentiate through it. Use an out-of-place operation (x = x * 2.0)."
        )
    changed = [name for name, t in state.items() if t._version != versions[name]]
    if changed:
        what = "buffer" if changed[0] in view.buffers else "parameter"
        raise InPlaceInputError(
            f"The model {_name(view)} modifies its {what} {changed[0]!r} in place during forward (e.g. a call "
            "counter or running statistics updated with add_ or mul_): each forward pass changes the model, so the "
            "kernel would depend on how many passes ran, and computing it would change the caller's model. Freeze "
            "that state (f.eval(), or compute it out of place) before taking the kernel."
        )
    # One sample at a time must give the block's outputs; when it does not, a second pass of the block tells a
    # random forward (the block disagrees with itself) from one that mixes samples. A one-sample block's second
    # pass is the determinism check itself.
    alone = torch.cat([_alone(view, block, i, x1, state) for i in range(len(block))])
    if len(block) == 1:
        gap, mixing = _gap(first, alone), None
    else:
        mixing = _gap(first, alone)
        gap = None if mixing is None else _gap(first, _forward(view, block.clone(), x1, state))
    if gap is not None:
        raise NondeterministicModelError(
            f"The model {_name(view)} gives different outputs on two forward passes of the same {len(block)} "
            f"inputs (max difference {gap:.3g}), so its kernel would be random. Call f.eval() and make functional "
            "dropout follow it (F.dropout(x, p, training=self.training)); remove any other randomness in forward."
        )
    if mixing is not None:
        raise SampleMixingError(
            f"The model {_name(view)} mixes samples: the outputs of a batch of {len(block)} inputs differ from "
            f"the same inputs passed one at a time (max difference {mixing:.3g}), e.g. a forward with x - x.mean(0). "
            "The per-sample kernel is undefined (the structured result would change with block_size). Use "
            "per-sample operations only (BatchNorm in eval mode, statistics over features, not the batch)."
        )
    return first.shape[1]


def _alone(view: ModelView, block: Tensor, i: int, x1: Tensor, state: dict[str, Tensor]) -> Tensor:
    """The outputs of sample ``i`` of ``block`` passed alone; a model that ran on the block but fails on one sample
    computes statistics over the batch: a :class:`SampleMixingError`."""
    try:
        with torch.no_grad():
            return view(block[i : i + 1].clone(), state)
    except (RuntimeError, IndexError, ValueError) as err:
        torch_says = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SampleMixingError(
            f"The model {_name(view)} mixes samples: it runs on a batch of {len(block)} inputs but fails on one "
            f"input alone (torch: {torch_says}), so its forward computes statistics over the batch, e.g. "
            "F.batch_norm(x, None, None, training=True). The per-sample kernel is undefined. Use per-sample "
            "operations only (BatchNorm in eval mode with running statistics, statistics over features)."
        ) from err


def _name(view: ModelView) -> str:
    return type(view.module).__name__


def _gap(a: Tensor, b: Tensor) -> float | None:
    """Max |a − b| when a and b differ beyond round-off: √eps of the dtype (of TF32 for float32 on CUDA with TF32
    allowed, since batched and single-sample kernels may round differently) relative to the outputs' scale."""
    eps = torch.finfo(a.dtype).eps if a.is_floating_point() else 0.0
    tf32 = torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
    if a.device.type == "cuda" and a.dtype == torch.float32 and tf32:
        eps = 2.0**-10  # TF32 keeps 10 mantissa bits
    tol = eps**0.5
    finite = a[torch.isfinite(a)]
    scale = float(finite.abs().max()) if finite.numel() else 1.0
    if a.shape == b.shape and bool(torch.isclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True).all()):
        return None
    return float((a - b).abs().nan_to_num(nan=float("inf")).max()) if a.shape == b.shape else float("inf")


def _forward(view: ModelView, x: Tensor, x1: Tensor, state: dict[str, Tensor] | None = None) -> Tensor:
    """``view(x, state)`` without grad; a failure of the model on the inputs becomes an :class:`InputMismatchError`
    (``state``: copies of the parameters and buffers to run on, so the caller's model is never modified)."""
    try:
        with torch.no_grad():
            return view(x, state)
    except NTKInputError:
        raise
    except (RuntimeError, IndexError, ValueError) as err:
        failure = err
    entered: list[tuple[str, nn.Module]] = []  # a second pass finds the first layer the forward entered
    state = None if state is None else {name: t.clone() for name, t in state.items()}
    with contextlib.suppress(RuntimeError, IndexError, ValueError), _record_layers(view.module, entered):
        with torch.no_grad():
            view(x, state)
    path, layer = entered[0] if entered else _first_owner(view.module)
    expects = _expected_input(layer, view.dtype)
    torch_says = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
    where = f"; it failed after entering {type(entered[-1][1]).__name__} at {entered[-1][0]!r}" if entered else ""
    where = where if len(entered) > 1 else ""
    raise InputMismatchError(
        f"The model {_name(view)} cannot run on inputs of shape {tuple(x1.shape)} and dtype {x1.dtype}: "
        f"its first layer, {type(layer).__name__} at {path or '<root>'!r}, expects {expects}{where} "
        f"(torch: {torch_says})."
    ) from failure


@contextlib.contextmanager
def _record_layers(module: nn.Module, entered: list[tuple[str, nn.Module]]) -> Iterator[None]:
    """Record the parameter-owning modules in the order the forward enters them."""

    def hook(path: str):
        return lambda mod, args: entered.append((path, mod))

    owners = [(p, m) for p, m in module.named_modules() if any(v is not None for v in m._parameters.values())]
    handles = [m.register_forward_pre_hook(hook(p)) for p, m in owners]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _first_owner(module: nn.Module) -> tuple[str, nn.Module]:
    for path, m in module.named_modules():
        if any(v is not None for v in m._parameters.values()):
            return path, m
    return "", module


def _expected_input(layer: nn.Module, dtype: torch.dtype) -> str:
    """What a layer takes, e.g. "(N, ..., 40) floating inputs (computed in torch.float64)"."""
    floating = f"floating inputs (computed in {dtype})"
    if isinstance(layer, nn.Linear):
        return f"(N, ..., {layer.in_features}) {floating}"
    if isinstance(layer, nn.modules.conv._ConvNd):
        spatial = ("L", "H, W", "D, H, W")[len(layer.kernel_size) - 1]
        return f"(N, {layer.in_channels}, {spatial}) {floating}"
    if isinstance(layer, nn.Embedding | nn.EmbeddingBag):
        return f"integer token ids in [0, {layer.num_embeddings}) (int64)"
    if isinstance(layer, nn.LayerNorm):
        return f"(N, ..., {', '.join(map(str, layer.normalized_shape))}) {floating}"
    if isinstance(layer, nn.modules.batchnorm._NormBase):
        return f"(N, {layer.num_features}, ...) {floating}"
    if isinstance(layer, nn.GroupNorm):
        return f"(N, {layer.num_channels}, ...) {floating}"
    if isinstance(layer, nn.RNNBase):
        return f"({'N, L' if layer.batch_first else 'L, N'}, {layer.input_size}) {floating}"
    return floating


def check_memory(
    backend: Any, x1: Tensor, x2: Tensor | None, n_out: int, dtype: torch.dtype, workspace: int, block_size: int | None
) -> None:
    """:func:`check_kernel_memory` for an ``empirical_ntk`` call about to run ``backend`` (its groups and mode).

    ``workspace`` is the blocked driver's own estimate for its plan (``theory.ntk._blocks.plan_kernel``): held
    features, the working memory of the samples whose features are computed at once, and the contraction
    temporaries. Without ``block_size`` the driver's blocks already shrink to what the memory left after the
    result allows, so only the result, or one sample's features, can fail to fit.
    """
    n2 = None if x2 is None else x2.shape[0]
    mode = backend.mode
    options = None if block_size is not None else _options(x1.shape[0], n2 or x1.shape[0], n_out, mode, dtype, 0)
    check_kernel_memory(
        x1.shape[0], n2, n_out, trace_outputs=mode == "trace", diagonal_outputs=mode == "diag", dtype=dtype,
        device=x1.device, n_groups=len(backend.groups), workspace=workspace, options=options,
        workspace_use="block temporaries" if block_size is not None else "features and working memory of the blocks",
    )  # fmt: skip


def kernel_nbytes(
    n1: int, n2: int, n_outputs: int, *, mode: str = "full", dtype: torch.dtype = torch.float64, n_groups: int = 1
) -> int:
    """Bytes of the result: n_groups kernels of shape (N1, N2, O, O) full, (N1, N2, O) diag or (N1, N2) trace."""
    per_pair = {"full": n_outputs * n_outputs, "diag": n_outputs, "trace": 1}[mode]
    return n_groups * n1 * n2 * per_pair * (torch.finfo(dtype).bits // 8)


def check_kernel_memory(
    n1: int,
    n2: int | None,
    n_outputs: int,
    *,
    trace_outputs: bool = False,
    diagonal_outputs: bool = False,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    n_groups: int = 1,
    workspace: int = 0,
    workspace_use: str = "block temporaries",
    options: Sequence[str] | None = None,
) -> int:
    """Refuse an ``empirical_ntk`` result that would not fit in the memory available on ``device``.

    Needed = the result (:func:`kernel_nbytes`) + ``workspace`` bytes (by default described as ``empirical_ntk``'s
    per-block temporaries and cached features; ``workspace_use`` names another use, e.g. an eigendecomposition).
    ``options`` replaces the listed ways to need less (``empirical_ntk``'s arguments) for another caller.
    Available: free CUDA memory plus the caching allocator's unused reserve; on CPU the smaller of
    ``MemAvailable`` (psutil, else /proc/meminfo, else ``os.sysconf``) and the cgroup limit's headroom. Devices
    whose free memory is unknown are not checked.

    Returns:
        The bytes needed.

    Raises:
        KernelMemoryError: needed > available, with the estimate and the options that need less.

    Example:
        >>> check_kernel_memory(10, 10, 2)  # 10·10·2·2 float64 entries
        3200
    """
    n2 = n1 if n2 is None else n2
    mode = "trace" if trace_outputs else "diag" if diagonal_outputs else "full"
    result = kernel_nbytes(n1, n2, n_outputs, mode=mode, dtype=dtype, n_groups=n_groups)
    needed = result + workspace
    device = torch.device(device)
    available, source = available_memory(device)
    if available is None or needed <= available:
        return needed
    shape = {"full": f"({n1}, {n2}, {n_outputs}, {n_outputs})", "diag": f"({n1}, {n2}, {n_outputs})"}
    kernel = f"{n_groups} x " if n_groups > 1 else ""
    kernel += f"{shape.get(mode, f'({n1}, {n2})')} {str(dtype).removeprefix('torch.')}"
    if options is None:
        options = _options(n1, n2, n_outputs, mode, dtype, workspace if result <= available else 0)
    raise KernelMemoryError(
        f"The empirical NTK would need about {needed:,} bytes ({_bytes(needed)}: a {kernel} kernel"
        f"{f' and {_bytes(workspace)} of {workspace_use}' if workspace else ''}) but only {available:,} bytes "
        f"({_bytes(available)}) are available on {device} ({source}). Options: {'; '.join(options)}."
    )


def check_operator_memory(block: int, saved_bytes: int, params_bytes: int, device: torch.device) -> int:
    """Refuse an ``ntk_operator`` whose products cannot fit: one block of ``block`` samples with ``saved_bytes``
    of activations saved per sample for its vjp and jvp, plus three parameter-space tangents (the running sum,
    one block's part and the jvp's tangent input) of ``params_bytes`` each. Returns the bytes needed."""
    needed = block * saved_bytes + 3 * params_bytes
    available, source = available_memory(device)
    if available is None or needed <= available:
        return needed
    raise KernelMemoryError(
        f"The NTK operator would need about {needed:,} bytes ({_bytes(needed)}: the activations of {block} samples "
        f"saved for its vjp and jvp and {_bytes(3 * params_bytes)} of parameter-space tangents) but only "
        f"{available:,} bytes ({_bytes(available)}) are available on {device} ({source}). Options: a smaller "
        f"block_size ({_bytes(saved_bytes)} per sample); fewer selected params."
    )


def _options(n1: int, n2: int, n_outputs: int, mode: str, dtype: torch.dtype, block_workspace: int) -> list[str]:
    """The ``empirical_ntk`` arguments that need less memory; ``block_workspace``: the temporaries of a user's
    ``block_size`` that alone do not fit (0: the result does not, or the blocks are the driver's own)."""
    options = []
    if mode != "trace":
        options.append(f"trace_outputs=True ({_bytes(kernel_nbytes(n1, n2, n_outputs, mode='trace', dtype=dtype))})")
    if mode == "full":
        options.append(f"diagonal_outputs=True ({_bytes(kernel_nbytes(n1, n2, n_outputs, mode='diag', dtype=dtype))})")
    if block_workspace:
        options.append(f"a smaller block_size (its temporaries take {_bytes(block_workspace)})")
    return options + ["fewer inputs", "ntk_operator(f, x) for matrix-free products Θv (eigenvalues, traces) without Θ"]


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def available_memory(device: torch.device) -> tuple[int | None, str]:
    """Bytes a new allocation on ``device`` can use, and where the figure comes from (None: unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        unused_reserve = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + unused_reserve, "torch.cuda.mem_get_info and the caching allocator's reserve"
    if device.type != "cpu":
        return None, "unknown"
    system, source = _system_available()
    limit = _cgroup_headroom()
    if limit is not None and (system is None or limit < system):
        return limit, "the cgroup memory limit minus its current use"
    return system, source


def _system_available() -> tuple[int | None, str]:
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.virtual_memory().available), "psutil.virtual_memory().available"
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "os.sysconf('SC_AVPHYS_PAGES')"
    return None, "unknown"


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this process's cgroup (v2, else v1); None without a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        with contextlib.suppress(OSError, ValueError):
            limit = Path(limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 2**60:
                return None
            return max(int(limit) - int(Path(usage_file).read_text().strip()), 0)
    return None
