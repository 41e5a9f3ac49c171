"""Boundary checks shared by every unitheory package: one error style naming argument, expected, actual."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


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


def check_seed(name: str, value: Any, *, owner: str | None = None) -> int:
    """Return ``value`` if it is an int >= 0 (a seed numpy's generators accept); else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        where = f" of {owner}" if owner else ""
        raise ValueError(f"The {name!r} parameter{where} must be a non-negative int (a seed). Got {value!r} instead.")
    return value


def check_output_dir(name: str, path: str | Path, *, owner: str | None = None) -> Path:
    """Return ``Path(path)`` if it is a directory, or does not exist yet and can be created (it is created later);
    else raise ``ValueError``: an existing file there, a file on its way (``file.txt/out``) or a folder this user
    may not write would fail only after the work that was to be written to it."""
    path = Path(path)
    where = f" of {owner}" if owner else ""
    expected = f"The {name!r} parameter{where} must be a directory (existing or not)"
    if path.exists() and not path.is_dir():
        raise ValueError(f"{expected}. Got {str(path)!r}, an existing file, instead.")
    folder = path  # the folder that receives the output, or the nearest existing one that will hold it
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{expected}. Got {str(path)!r}, but {str(folder)!r} on its way is a file, not a folder.")
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"{expected} this user may write. Got {str(path)!r}, but {str(folder)!r} is read-only for them."
        )
    return path


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


#: torch device types unitheory runs on
DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(name: str, value: Any, *, owner: str | None = None, available: bool = True) -> torch.device:
    """Return ``torch.device(value)`` if it names a CPU, CUDA or MPS device available here (with ``available=False``
    any such device); else raise ``ValueError`` saying which (an unknown string, another device type, no CUDA/MPS
    here, a CUDA index out of range)."""
    import torch

    where = f" of {owner}" if owner else ""
    expected = f"The {name!r} parameter{where} must be an available torch device ('cpu', 'cuda', 'cuda:N' or 'mps')"
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{expected}. Got {value!r} instead.") from None
    if device.type not in DEVICE_TYPES:
        raise ValueError(f"{expected}. Got {value!r} (device type {device.type!r}) instead.")
    if not available:
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            reason = "CUDA is not available here (torch.cuda.is_available() is False)"
            raise ValueError(f"{expected}. Got {value!r}, but {reason}.")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{expected}. Got {value!r}, but this machine has {count} CUDA device(s).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        reason = "MPS is not available here (torch.backends.mps.is_available() is False)"
        raise ValueError(f"{expected}. Got {value!r}, but {reason}.")
    return device
