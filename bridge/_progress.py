"""Progress bars for the slow bridge phases (prediction bands, report figures), on stderr like the sweep's.

One switch for all bars: they show when stderr is a terminal and ``UNITHEORY_PROGRESS`` is not ``"0"`` (as
:func:`empirics.sweep.run_sweep` decides); ``unitheory study --quiet`` and ``unitheory report --quiet`` set it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
QUIET_ENV = "UNITHEORY_PROGRESS"


def progress_enabled() -> bool:
    """True when bars should be drawn: stderr is a terminal and ``UNITHEORY_PROGRESS`` is not ``"0"``."""
    return os.environ.get(QUIET_ENV) != "0" and sys.stderr.isatty()


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterable[T]:
    """``iterable`` wrapped in a tqdm bar on stderr (a plain pass-through when :func:`progress_enabled` is False)."""
    if not progress_enabled():
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, file=sys.stderr)


def status(message: str) -> None:
    """One status line on stderr (e.g. a phase without a per-item bar), shown under the same switch as the bars."""
    if progress_enabled():
        tqdm.write(message, file=sys.stderr)


@contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Within the block no bar or status line is drawn (``UNITHEORY_PROGRESS=0``) when ``enabled``; the previous
    setting is restored on exit."""
    previous = os.environ.get(QUIET_ENV)
    if enabled:
        os.environ[QUIET_ENV] = "0"
    try:
        yield
    finally:
        if enabled and previous is None:
            del os.environ[QUIET_ENV]
        elif enabled:
            os.environ[QUIET_ENV] = previous
