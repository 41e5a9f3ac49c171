"""Spectral summaries of kernels: eigendecomposition, Lanczos top-k, Hutchinson trace, N_eff, alignment, distance.

Kernels may be (N, N) matrices or (N, N, O, O) eNTKs (flattened to (N·O, N·O) with rows (sample, output)),
as numpy arrays or torch tensors on any device; matrix-free operators are scipy ``LinearOperator`` s such as
:func:`theory.ntk_operator`. Results are numpy float64. :func:`kernel_eigh` of a torch tensor runs on the
tensor's device (``torch.linalg.eigh`` in float64; on the host for MPS, which has no float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import scipy.linalg
import scipy.stats
import torch
from scipy.sparse.linalg import LinearOperator, aslinearoperator, eigsh

from theory._validation import check_in_range, check_option, check_positive_int

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class KernelEigh:
    """Eigenpairs in descending order: ``eigenvalues`` (k,), ``eigenvectors`` (M, k) as columns.

    ``n_clipped`` negative eigenvalues (round-off of a PSD kernel) were set to 0; ``min_raw`` is the
    smallest eigenvalue before clipping.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    n_clipped: int = 0
    min_raw: float = float("nan")


@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson estimate of tr(A): ``statistic`` = mean of vᵀAv over ``n_probes`` probes, its ``std_error``."""

    statistic: float
    std_error: float
    n_probes: int

    def conf_int(self, alpha: float = 0.05) -> tuple[float, float]:
        """Normal-approximation (1 − alpha) interval statistic ± z_{1−alpha/2} · std_error."""
        check_in_range("alpha", alpha, 0, 1, inclusive=(False, False), owner="TraceEstimate.conf_int")
        half = scipy.stats.norm.ppf(1 - alpha / 2) * self.std_error
        return self.statistic - half, self.statistic + half

    def summary(self, alpha: float = 0.05) -> str:
        low, high = self.conf_int(alpha)
        return (
            f"Hutchinson trace = {self.statistic:.6g} (s.e. {self.std_error:.3g}, "
            f"{100 * (1 - alpha):.0f}% CI [{low:.6g}, {high:.6g}], {self.n_probes} probes)"
        )


class AlignmentMethod(StrEnum):
    """Kernel-target alignment variants; the default is ``CENTERED``.

    - ``CENTERED`` (Cortes et al. 2012, after Cristianini et al. 2002): <K_c, Y Yᵀ>_F / (‖K_c‖_F ‖Y Yᵀ‖_F),
      K_c = H K H, H = I − 11ᵀ/n.
    - ``KUMAR2024`` (Kumar et al. 2024): <K, Y Yᵀ>_F / (‖K‖_F ‖Y‖_F²), i.e. yᵀKy / (‖K‖_F ‖y‖²) for one target.
    """

    CENTERED = "centered"
    KUMAR2024 = "kumar2024"


def as_matrix(kernel: ArrayLike, name: str = "kernel") -> np.ndarray:
    """A square float64 matrix from an (M, M) or (N, N, O, O) kernel (rows ordered by sample, then output)."""
    return _square(kernel, name).cpu().numpy()


def _square(kernel: ArrayLike, name: str = "kernel") -> torch.Tensor:
    """:func:`as_matrix` as a float64 torch tensor, on the kernel's device (the host for numpy and MPS)."""
    if isinstance(kernel, torch.Tensor):
        if kernel.is_complex():  # a cast would drop the imaginary part silently
            found = str(kernel.dtype).removeprefix("torch.")
            raise ValueError(f"The {name!r} argument must be a real-valued numeric array. Got {found} instead.")
        k = kernel.detach()
        k = k.cpu() if k.device.type == "mps" else k
        k = k.double()
    else:
        k = torch.as_tensor(_real_array(name, kernel))
    if k.dim() == 4 and k.shape[0] == k.shape[1] and k.shape[2] == k.shape[3]:
        n, _, o, _ = k.shape
        k = k.permute(0, 2, 1, 3).reshape(n * o, n * o)
    if k.dim() != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"The {name!r} argument must be a square (M, M) or (N, N, O, O) kernel. Got {tuple(k.shape)}.")
    if not bool(torch.isfinite(k).all()):
        raise ValueError(f"The {name!r} argument must be finite. Got NaN or inf entries.")
    return k


def _real_array(name: str, value: object) -> np.ndarray:
    """``value`` as a float64 array; text, objects and complex numbers (whose imaginary part a cast would drop
    silently) raise ``ValueError`` naming the argument and the type found."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value) if not isinstance(value, str) else np.asarray(value, dtype=object)
    if array.dtype.kind not in "biuf":
        found = type(value).__name__ if array.dtype.kind in "OUS" and array.ndim == 0 else str(array.dtype)
        raise ValueError(f"The {name!r} argument must be a real-valued numeric array. Got {found} instead.")
    return array.astype(np.float64)


def kernel_eigh(kernel: ArrayLike, *, clip: bool = True) -> KernelEigh:
    """Eigendecomposition of the symmetrised kernel (K + Kᵀ)/2, descending, negatives clipped to 0 if ``clip``.

    Example:
        >>> kernel_eigh(np.diag([1.0, -1e-12, 3.0])).eigenvalues
        array([3., 1., 0.])
    """
    if isinstance(kernel, torch.Tensor):
        k = _square(kernel)
        values, vectors = (t.cpu().numpy() for t in torch.linalg.eigh((k + k.T) / 2))
    else:
        k = as_matrix(kernel)
        values, vectors = scipy.linalg.eigh((k + k.T) / 2)
    values, vectors = values[::-1].copy(), vectors[:, ::-1].copy()
    n_clipped = int(np.sum(values < 0)) if clip else 0
    return KernelEigh(np.clip(values, 0, None) if clip else values, vectors, n_clipped, float(values[-1]))


def top_eigenpairs(
    kernel: ArrayLike | LinearOperator, k: int, *, tol: float = 0.0, random_state: int | None = None
) -> KernelEigh:
    """The k largest eigenpairs by Lanczos (``scipy.sparse.linalg.eigsh``, which="LA"), matrix-free for operators.

    Pass :func:`theory.ntk_operator` for the model's kernel without forming it: each Lanczos step costs one
    NTK-vector product (a vjp and a jvp). ``random_state`` seeds the Lanczos start vector.

    Example:
        >>> top_eigenpairs(np.diag([1.0, 5.0, 2.0, 4.0]), 2).eigenvalues
        array([5., 4.])
    """
    op = kernel if isinstance(kernel, LinearOperator) else aslinearoperator(as_matrix(kernel))
    size = op.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < size:
        raise ValueError(f"The 'k' parameter of top_eigenpairs must be an int in [1, {size - 1}]. Got {k!r}.")
    start = np.random.default_rng(random_state).standard_normal(size)
    values, vectors = eigsh(op, k=k, which="LA", tol=tol, v0=start)
    order = np.argsort(values)[::-1]
    return KernelEigh(values[order], vectors[:, order], 0, float(values.min()))


def hutchinson_trace(
    kernel: ArrayLike | LinearOperator, *, n_probes: int = 64, random_state: int | None = None
) -> TraceEstimate:
    """tr(A) ≈ (1/m) Σ_i v_iᵀ A v_i with Rademacher probes v_i (Hutchinson 1989); exact for diagonal A.

    Example:
        >>> hutchinson_trace(np.diag([1.0, 2.0, 3.0]), n_probes=4, random_state=0).statistic
        6.0
    """
    check_positive_int("n_probes", n_probes, owner="hutchinson_trace")
    op = kernel if isinstance(kernel, LinearOperator) else aslinearoperator(as_matrix(kernel))
    rng = np.random.default_rng(random_state)
    probes = rng.choice([-1.0, 1.0], size=(op.shape[0], n_probes))
    quad = np.array([probes[:, i] @ op.matvec(probes[:, i]) for i in range(n_probes)])
    std_error = float(quad.std(ddof=1) / np.sqrt(n_probes)) if n_probes > 1 else float("inf")
    return TraceEstimate(float(quad.mean()), std_error, n_probes)


def effective_dimension(eigenvalues: ArrayLike, z: float | ArrayLike) -> float | np.ndarray:
    """N_eff(z) = Σ_i λ_i / (λ_i + z) (Maddox et al. 2020; MacKay 1992), negative λ_i clipped to 0.

    Compute it on the N·O kernel's eigenvalues: they equal the non-zero eigenvalues of the GGN JᵀJ.
    ``z`` may be an array, giving the curve over z.

    Example:
        >>> float(effective_dimension([1.0, 3.0], 1.0))
        1.25
    """
    lam = np.clip(_real_array("eigenvalues", eigenvalues).reshape(-1), 0, None)
    zs = np.asarray(z, dtype=np.float64)
    if not np.all(np.isfinite(lam)):
        raise ValueError("The 'eigenvalues' argument of effective_dimension must be finite. Got NaN or inf.")
    if zs.size == 0 or not np.all(zs > 0) or not np.all(np.isfinite(zs)):
        raise ValueError(f"The 'z' parameter of effective_dimension must be finite and > 0. Got {z!r} instead.")
    out = (lam[:, None] / (lam[:, None] + zs.reshape(-1)[None, :])).sum(0).reshape(zs.shape)
    return float(out) if zs.ndim == 0 else out


def kernel_target_alignment(
    kernel: ArrayLike, y: ArrayLike, *, method: AlignmentMethod | str = AlignmentMethod.CENTERED
) -> float:
    """Alignment of an (N, N) kernel with targets y (N,) or (N, C); see :class:`AlignmentMethod` for formulas.

    NaN when the cosine is 0/0: a zero (centred) kernel or zero targets.

    Example:
        >>> y = np.array([1.0, -1.0, 1.0, -1.0])
        >>> round(kernel_target_alignment(np.outer(y, y), y), 12)
        1.0
    """
    valid = [m.value for m in AlignmentMethod]
    method = AlignmentMethod(check_option("method", method, valid, owner="kernel_target_alignment"))
    k = as_matrix(kernel)
    targets = _real_array("y", y)
    targets = targets[:, None] if targets.ndim == 1 else targets
    if targets.ndim != 2 or targets.shape[0] != k.shape[0]:
        raise ValueError(f"The 'y' argument must have {k.shape[0]} rows like the kernel. Got shape {targets.shape}.")
    if not np.all(np.isfinite(targets)):
        raise ValueError("The 'y' argument of kernel_target_alignment must be finite. Got NaN or inf entries.")
    gram = targets @ targets.T
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 (zero kernel, constant targets) is NaN
        if method is AlignmentMethod.KUMAR2024:
            return float(np.sum(k * gram) / (np.linalg.norm(k) * np.sum(targets**2)))
        centred = k - k.mean(0, keepdims=True) - k.mean(1, keepdims=True) + k.mean()
        return float(np.sum(centred * gram) / (np.linalg.norm(centred) * np.linalg.norm(gram)))


def kernel_distance(kernel1: ArrayLike, kernel2: ArrayLike) -> float:
    """Kernel distance 1 − <K1, K2>_F / (‖K1‖_F ‖K2‖_F) (Fort et al. 2020), the "kernel velocity" along training.

    NaN when a kernel is zero (the cosine is 0/0).

    Example:
        >>> kernel_distance(np.eye(2), 3 * np.eye(2))
        0.0
    """
    k1, k2 = as_matrix(kernel1, "kernel1"), as_matrix(kernel2, "kernel2")
    if k1.shape != k2.shape:
        raise ValueError(f"The 'kernel2' argument must have the shape of kernel1 {k1.shape}. Got {k2.shape}.")
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 for a zero kernel is NaN
        return float(1 - np.sum(k1 * k2) / (np.linalg.norm(k1) * np.linalg.norm(k2)))
