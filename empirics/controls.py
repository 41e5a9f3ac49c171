"""Negative controls recorded along every run: the prime count, the parameter count and a random measure.

The position paper this project serves (Jeffares & van der Schaar 2025, Fig. 4 and App. A) shows that "the
number of primes among the rounded parameters" tracks test performance in double descent and grokking without
looking at test labels: rounding is confounded with weight magnitude (0 and ±1 are not prime). Any explanation
that a falsification test accepts should be run against these controls too.

- ``prime_count`` (recorder quantity): round every parameter times ``Snapshot.scale`` to the nearest integer and
  count the primes among them (negative integers, 0 and 1 are not prime). The scale a phenomenon declares differs
  between phenomena (its weights' typical size), so the same quantity also records the count under one rounding
  rule shared by every phenomenon, at each scale of :data:`PRIME_SCALES`: ``prime_count_x1``, ``prime_count_x10``,
  ``prime_count_x100`` (round(s·θ) for s = 1, 10, 100), so that a claim can name one rule across phenomena, or
  sweep the rounding scale, without training anything again.
- ``param_count`` (recorder quantity): number of parameters that are not pruned (masks of
  :mod:`torch.nn.utils.prune` are honoured, so lottery tickets report their remaining weights).
- ``random_measure`` (post-hoc, :func:`finalize_controls`): seeded noise with the autocorrelation of a real
  trajectory of the run (:func:`random_measure`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from enum import StrEnum

import numpy as np
import sympy
import torch

from empirics.quantities import CONTROL_QUANTITIES, quantity
from empirics.snapshot import Snapshot
from theory._validation import check_option

#: rounding scales of the fixed-rule prime counts ``prime_count_x{s}`` every run records with ``prime_count``
PRIME_SCALES: tuple[int, ...] = (1, 10, 100)
RANDOM_MEASURE = "random_measure"
SOURCE_PREFERENCE = "test_loss"
_CONTROL_NAMES = frozenset({*CONTROL_QUANTITIES, RANDOM_MEASURE, *(f"prime_count_x{s}" for s in PRIME_SCALES)})


class SurrogateMethod(StrEnum):
    """How :func:`random_measure` builds noise with the autocorrelation of a trajectory.

    - ``PHASE`` (default): phase-randomised Fourier surrogate (Theiler et al. 1992): keep the amplitude of every
      Fourier coefficient of the standardised trajectory, draw the phases uniformly. Reproduces the circular
      sample autocorrelation exactly. Cost O(n log n).
    - ``AR1``: fit an AR(1) model ``z_t = c + φ z_{t-1} + σ e_t`` with statsmodels ``AutoReg``, simulate it
      (|φ| clipped to 0.99 to stay stationary) and standardise. Matches the lag-1 autocorrelation in expectation.
    """

    PHASE = "phase"
    AR1 = "ar1"


def effective_parameters(model: torch.nn.Module) -> Iterator[torch.Tensor]:
    """The parameters the model computes with: ``weight_orig * weight_mask`` for pruned tensors, else as stored."""
    buffers = dict(model.named_buffers())
    for name, param in model.named_parameters():
        if name.endswith("_orig") and f"{name[: -len('_orig')]}_mask" in buffers:
            yield param.detach() * buffers[f"{name[: -len('_orig')]}_mask"]
        else:
            yield param.detach()


def count_primes(values: np.ndarray) -> int:
    """Number of entries of an integer array that are prime (``sympy.isprime`` on the distinct values)."""
    uniques, counts = np.unique(np.asarray(values, dtype=np.int64), return_counts=True)
    keep = uniques >= 2
    is_prime = np.fromiter((sympy.isprime(int(v)) for v in uniques[keep]), dtype=bool, count=int(keep.sum()))
    return int(counts[keep][is_prime].sum())


def prime_count(model: torch.nn.Module, scale: float = 1.0) -> int:
    """Primes among the parameters after scaling and rounding (Jeffares & van der Schaar 2025, Fig. 4, App. A).

    ``#{i : round(scale · θ_i) is prime}``, rounding to the nearest integer (ties to even, as ``torch.round``).

    Args:
        model: the network; pruned weights (torch prune masks) count as 0.
        scale: the declared factor applied before rounding (``Snapshot.scale``).

    Example:
        >>> layer = torch.nn.Linear(3, 1, bias=False)
        >>> _ = torch.nn.init.constant_(layer.weight, 0.7)
        >>> prime_count(layer, scale=3.0)  # round(2.1) = 2 is prime, three times
        3
    """
    if not np.isfinite(scale):
        raise ValueError(f"The 'scale' parameter of prime_count must be a finite real number. Got {scale!r} instead.")
    total = 0
    for tensor in effective_parameters(model):
        rounded = torch.round(tensor.to(torch.float64) * scale)
        total += count_primes(rounded.reshape(-1).cpu().numpy())
    return total


def param_count(model: torch.nn.Module) -> int:
    """Number of parameters the model computes with: all entries minus the zeros of any torch prune mask."""
    total = sum(p.numel() for p in model.parameters())
    pruned = sum(int((buf == 0).sum()) for name, buf in model.named_buffers() if name.endswith("_mask"))
    return total - pruned


@quantity("prime_count")
def _prime_count_quantity(snapshot: Snapshot) -> dict[str, float]:
    """The count at the phenomenon's declared scale and under the shared rule at every scale of PRIME_SCALES."""
    fixed = {f"prime_count_x{s}": float(prime_count(snapshot.model, float(s))) for s in PRIME_SCALES}
    return {"prime_count": float(prime_count(snapshot.model, snapshot.scale)), **fixed}


@quantity("param_count")
def _param_count_quantity(snapshot: Snapshot) -> dict[str, float]:
    return {"param_count": float(param_count(snapshot.model))}


def random_measure(
    trajectory: Sequence[float] | np.ndarray,
    seed: int | Sequence[int],
    *,
    method: SurrogateMethod | str = SurrogateMethod.PHASE,
) -> np.ndarray:
    """Seeded noise with the autocorrelation of ``trajectory`` (a negative control for "measure tracks outcome").

    The trajectory is standardised first, z = (x − mean x)/std x, and the surrogate is built from z, so it has
    mean 0 and carries no information about the level or scale of the run's outcome: across runs it is noise,
    along a run it is as smooth as the real trajectory. With fewer than 3 points, or a constant trajectory (no
    autocorrelation to copy), it is i.i.d. N(0, 1).

    Args:
        trajectory: the values of one quantity at the recorded steps, in step order.
        seed: seeds ``numpy.random.default_rng`` (an int or a sequence of ints); the same (trajectory, seed)
            gives the same noise.
        method: a :class:`SurrogateMethod` (default ``"phase"``).

    Returns:
        float64 array of the trajectory's length.

    Example:
        >>> random_measure([3.0, 2.0, 1.5, 1.2, 1.1], seed=0).shape
        (5,)
    """
    method = SurrogateMethod(check_option("method", method, list(SurrogateMethod), owner="random_measure"))
    x = np.asarray(trajectory, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError("The 'trajectory' parameter of random_measure must be finite. Got non-finite values instead.")
    rng = np.random.default_rng(seed)
    n = x.size
    if n < 3 or np.std(x) == 0:
        return rng.standard_normal(n)
    z = (x - x.mean()) / x.std()
    return _SURROGATES[method](z, rng)


def _phase_surrogate(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    coeffs = np.fft.rfft(z)
    phases = rng.uniform(0.0, 2.0 * np.pi, coeffs.size)
    phases[0] = 0.0
    if z.size % 2 == 0:
        phases[-1] = 0.0  # the Nyquist coefficient of a real signal is real
    return np.fft.irfft(np.abs(coeffs) * np.exp(1j * phases), n=z.size)


def _ar1_surrogate(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from statsmodels.tsa.ar_model import AutoReg  # imported here: the default surrogate does not need it
    from statsmodels.tsa.arima_process import ArmaProcess

    phi = float(np.clip(AutoReg(z, lags=1, trend="c").fit().params[1], -0.99, 0.99))
    sample = ArmaProcess(ar=[1.0, -phi]).generate_sample(z.size, distrvs=rng.standard_normal, burnin=100)
    return (sample - sample.mean()) / sample.std()


_SURROGATES = {SurrogateMethod.PHASE: _phase_surrogate, SurrogateMethod.AR1: _ar1_surrogate}


def finalize_controls(
    rows: Sequence[tuple[int, str, float]],
    seed: int,
    *,
    method: SurrogateMethod | str = SurrogateMethod.PHASE,
) -> list[tuple[int, str, float]]:
    """``rows`` plus one ``(step, "random_measure", value)`` row per recorded step of the source trajectory.

    The source is ``test_loss`` when the run recorded it, else the first recorded name that is not a control.
    The noise is seeded by ``seed`` and a CRC32 of the source values, so runs of one sweep that share a seed
    still get different noise. Rows already holding ``random_measure`` are returned unchanged (idempotent);
    a run that recorded nothing but controls gets no rows added.

    Args:
        rows: the recorder's ``(step, name, value)`` rows of one run.
        seed: the run's seed.
        method: passed to :func:`random_measure`.
    """
    rows = [(int(s), str(n), float(v)) for s, n, v in rows]
    names = [n for _, n, _ in rows]
    if RANDOM_MEASURE in names:
        return rows
    candidates = [n for n in dict.fromkeys(names) if n not in _CONTROL_NAMES]
    if not candidates:
        return rows
    source = SOURCE_PREFERENCE if SOURCE_PREFERENCE in candidates else candidates[0]
    by_step = {s: v for s, n, v in rows if n == source}  # the last value recorded at a step wins
    steps = sorted(by_step)
    values = np.array([by_step[s] for s in steps])
    salt = zlib.crc32(np.nan_to_num(values).tobytes())
    finite = np.isfinite(values)
    noise = np.full(values.size, np.nan)
    noise[finite] = random_measure(values[finite], [int(seed) & 0xFFFFFFFF, salt], method=method)
    return rows + [(s, RANDOM_MEASURE, float(v)) for s, v in zip(steps, noise, strict=True)]


__all__ = [
    "CONTROL_QUANTITIES",
    "PRIME_SCALES",
    "RANDOM_MEASURE",
    "SurrogateMethod",
    "count_primes",
    "effective_parameters",
    "finalize_controls",
    "param_count",
    "prime_count",
    "random_measure",
]
