"""One definition per registered name: the phenomenon and quantity registries refuse a second, different one.

A plugin that registers a phenomenon or a quantity under a name already taken (a built-in's, or another
plugin's) would otherwise replace it silently, or be replaced by it, depending on which module is imported
first: runs would then record another computation under a known name. Registering the same definition again
(one file imported under two module names, e.g. a plugin loaded by path and by pytest) is allowed.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import MutableMapping
from typing import Any


def register_once(registry: MutableMapping[str, Any], kind: str, name: str, obj: Any) -> None:
    """``registry[name] = obj``, unless ``name`` holds another definition: then ``ValueError`` naming both."""
    old = registry.get(name)
    if old is not None and old is not obj and _origin(old) != _origin(obj):
        raise ValueError(
            f"Two definitions of the {kind} {name!r}: {_describe(old)} and {_describe(obj)}. A plugin may not reuse "
            f"the name of a built-in {kind} or of another plugin's; give it another name."
        )
    registry[name] = obj


def _origin(obj: Any) -> tuple[str, str]:
    """(source file, qualified name) of a function or class; the module name stands in for the file it lacks."""
    try:
        where = os.path.realpath(inspect.getfile(obj))
    except (TypeError, OSError):
        where = getattr(obj, "__module__", "?")
    return where, getattr(obj, "__qualname__", repr(obj))


def _describe(obj: Any) -> str:
    where, qualname = _origin(obj)
    return f"{qualname} ({where})"
