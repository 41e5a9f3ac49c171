"""Boundary checks shared by every unitheory package: one error style naming argument, expected, actual."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def check_option(name: str, value: Any, options: Iterable[Any], *, owner: str | None = None) -> Any:
    """Return ``value`` if it is one of ``options``; else raise ``ValueError`` listing the valid ones."""
    options = list(options)
    if value not in options:
        where = f" of {owner}" if owner else ""
        valid = ", ".join(repr(o) for o in options)
        raise ValueError(f"The {name!r} parameter{where} must be one of {valid}. Got {value!r} instead.")
    return value


def check_positive_int(name: str, value: Any, *, allow_none: bool = False, owner: str | None = None) -> Any:
    """Return ``value`` if it is an int >= 1 (or None when allowed); else raise ``ValueError``."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        where = f" of {owner}" if owner else ""
        expected = "a positive int" + (" or None" if allow_none else "")
        raise ValueError(f"The {name!r} parameter{where} must be {expected}. Got {value!r} instead.")
    return value


def check_in_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    inclusive: tuple[bool, bool] = (True, True),
    owner: str | None = None,
) -> float:
    """Return ``float(value)`` if it is a real number in the interval; else raise ``ValueError``."""
    where = f" of {owner}" if owner else ""
    lo_br = "[" if inclusive[0] else "("
    hi_br = "]" if inclusive[1] else ")"
    interval = f"{lo_br}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_br}"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"The {name!r} parameter{where} must be a real number in {interval}. Got {value!r} instead."
        ) from None
    bad_low = low is not None and (v < low or (v == low and not inclusive[0]))
    bad_high = high is not None and (v > high or (v == high and not inclusive[1]))
    if bad_low or bad_high or v != v:
        raise ValueError(f"The {name!r} parameter{where} must be a real number in {interval}. Got {value!r} instead.")
    return v


def check_device(name: str, value: Any, *, owner: str | None = None) -> Any:
    """Return the ``torch.device`` named by ``value`` ('cpu', 'cuda', 'cuda:1', 'mps' or 'auto': CUDA, then
    MPS, then the CPU) if torch can use it on this machine; else raise ``ValueError`` saying why."""
    import torch

    where = f" of {owner}" if owner else ""
    if value == "auto":
        value = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"The {name!r} parameter{where} must be 'cpu', 'cuda[:index]', 'mps' or 'auto'. Got {value!r} instead."
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(device.type, False):
        raise ValueError(
            f"The {name!r} parameter{where} names {str(device)!r}, which torch cannot use on this machine "
            f"(cuda available: {torch.cuda.is_available()}, mps available: {torch.backends.mps.is_available()})."
        )
    return device
