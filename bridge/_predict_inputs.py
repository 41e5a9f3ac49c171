"""What ``predict`` loads from a user: the model factory, a checkpoint, the data and the output path.

Each failure is a ``ValueError`` (or ``FileNotFoundError``) with one line naming the file, module or key,
what was expected and what was found: ``unitheory predict`` prints it and exits with code 2. The user's
module is imported as Python does (it is the user's own code); files are read as data only: checkpoints with
``torch.load(weights_only=True)``, data with ``numpy.load(allow_pickle=False)``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


class ModelLoadError(ValueError):
    """The ``module:factory`` target cannot be imported, or its factory fails or returns no module."""


class CheckpointError(ValueError):
    """The checkpoint is not a state dict that fits the model."""


class DataError(ValueError):
    """The data cannot be read, or does not fit the model."""


def load_factory(target: str) -> Callable[[], torch.nn.Module]:
    """``"package.module:factory"`` or ``"path/to/file.py:factory"`` -> the zero-argument model factory.

    Modules are found on ``sys.path`` (``unitheory predict`` puts the working directory first, as ``python -m``
    does). Raises :class:`ModelLoadError` naming the module and what went wrong, ``FileNotFoundError`` for a
    missing ``.py`` file.
    """
    if not isinstance(target, str) or target.count(":") < 1:
        raise ValueError(f"The 'model' argument must look like 'module:factory' or 'file.py:factory'. Got {target!r}.")
    module_name, _, attr = target.rpartition(":")
    if module_name.endswith(".py"):
        if not Path(module_name).is_file():
            raise FileNotFoundError(f"No model file {module_name!r} (from the model argument {target!r}).")
        spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
        module = importlib.util.module_from_spec(spec)
        with _user_code(f"Importing the model file {module_name!r}"):
            spec.loader.exec_module(module)
    else:
        try:
            with _user_code(f"Importing the model module {module_name!r}", passthrough=ModuleNotFoundError):
                module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is None or not (module_name + ".").startswith(err.name + "."):
                raise ModelLoadError(f"Importing the model module {module_name!r} failed: {err}.") from err
            raise ModelLoadError(
                f"No module named {err.name!r} (from the model argument {target!r}); modules are searched on "
                f"sys.path, with the working directory first for unitheory predict. Run from the folder that holds "
                f"it, or pass 'path/to/file.py:{attr}'."
            ) from err
    factory = getattr(module, attr, None)
    if not callable(factory):
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))[:10]
        raise ModelLoadError(
            f"{module_name!r} has no callable {attr!r} (the model factory); its callables include {public}."
        )
    return factory


def build_model(factory: Callable[[], torch.nn.Module], name: str) -> torch.nn.Module:
    """Call a zero-argument factory; its exceptions and a non-module result become :class:`ModelLoadError`."""
    with _user_code(f"The model factory {name}"):
        net = factory()
    if not isinstance(net, torch.nn.Module):
        raise ModelLoadError(f"The model factory {name} must return a torch.nn.Module. Got {type(net).__name__}.")
    if bad := _non_finite(net.state_dict()):
        raise ModelLoadError(f"The model factory {name} returned a model with NaN or Inf in {_few(bad)}.")
    return net


def _non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating tensors of a state dict that hold NaN or Inf (every kernel entry would be NaN)."""
    return [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


@contextlib.contextmanager
def _user_code(what: str, passthrough: type[Exception] | None = None) -> Iterator[None]:
    """Turn any exception of a user's code into one :class:`ModelLoadError` line (the cause is kept)."""
    try:
        yield
    except Exception as err:
        if passthrough is not None and isinstance(err, passthrough):
            raise
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ModelLoadError(f"{what} raised {type(err).__name__}{': ' + text if text else ''}.") from err


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load a state dict saved with ``torch.save`` into ``model`` with ``torch.load(weights_only=True)``.

    Only tensors and plain containers load: a pickled whole module (``torch.save(model)``) is refused, because
    unpickling arbitrary objects can run arbitrary code. Missing/unexpected keys and shape mismatches are all
    listed in one :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file '{path}'.")
    try:
        with warnings.catch_warnings():  # e.g. torch's note on pickle protocols: the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises UnpicklingError, RuntimeError, EOFError, ... for foreign files
        raise CheckpointError(_unreadable_checkpoint(path, err)) from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        kind = type(state).__name__ if not isinstance(state, dict) else "dict with non-tensor values"
        raise CheckpointError(
            f"The checkpoint '{path}' holds a {kind}, not a state dict of tensors: save torch.save(model.state_dict(), "
            "path)."
        )
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: model {tuple(expected[k].shape)}, checkpoint {tuple(state[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = [
        f"{label} {_few(items)}"
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if items
    ]
    if problems:
        raise CheckpointError(
            f"The checkpoint '{path}' does not fit the model {type(model).__name__}: {'; '.join(problems)}."
        )
    if bad := _non_finite(state):
        raise CheckpointError(
            f"The checkpoint '{path}' holds NaN or Inf in {_few(bad)}: every kernel entry and measure of the model "
            "would be NaN (did the training run that saved it diverge?)."
        )
    model.load_state_dict(state)


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{f', ... ({len(items)} in all)' if len(items) > limit else ''}]"


def _unreadable_checkpoint(path: Path, err: Exception) -> str:
    text = str(err)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return (
            f"The checkpoint '{path}' is a pickled Python object ({found.group(1)}), not a state dict. Only state "
            "dicts load, with torch.load(weights_only=True): unpickling other objects can run arbitrary code. "
            "Save torch.save(model.state_dict(), path) instead."
        )
    if path.stat().st_size == 0:
        return f"The checkpoint '{path}' is empty (0 bytes): save torch.save(model.state_dict(), path)."
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|Check the documentation|$)", text, re.DOTALL)
    detail = found.group(1) if found else (text.strip().splitlines()[0] if text.strip() else "unreadable")
    return (
        f"The checkpoint '{path}' is not a state dict written by torch.save ({type(err).__name__}: {detail}). "
        "Only state dicts of tensors load, with torch.load(weights_only=True)."
    )


def load_data(spec: str, *, n_train: int, n_test: int):
    """``"NAME[:key=value,...]"`` (a built-in data set of :mod:`empirics.data`, values parsed as JSON when they
    can be) or a ``.npz`` file with ``x_train, y_train, x_test, y_test`` (read with ``allow_pickle=False``).
    Returns ``(x_train, y_train, x_test, y_test, task)`` with at most ``n_train``/``n_test`` rows."""
    if spec.endswith(".npz"):
        arrays = _read_npz(Path(spec))
        task = "classification" if not arrays[1].is_floating_point() else "regression"
    else:
        from empirics.data import load_dataset

        name, _, rest = spec.partition(":")
        kwargs = {}
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"The 'data' argument items must be key=value. Got {item!r} in {spec!r}.")
            try:
                kwargs[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                kwargs[key.strip()] = value
        ds = load_dataset(name, **kwargs)
        arrays, task = list(ds.tensors()), ds.task
    x_train, y_train, x_test, y_test = arrays
    x_train, x_test = x_train.float(), x_test.float()
    return x_train[:n_train], y_train[:n_train], x_test[:n_test], y_test[:n_test], task


def _read_npz(path: Path) -> list[torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"No data file '{path}'.")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise DataError(f"The data file '{path}' lacks the arrays {missing}; it holds {sorted(z.files)}.")
            arrays = {k: z[k] for k in NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, DataError):
            raise
        first = str(err).split(". ")[0].rstrip(".")
        raise DataError(f"The data file '{path}' is not a .npz archive of numeric arrays (numpy: {first}).") from err
    for k, v in arrays.items():
        if v.dtype.kind not in "biuf" or v.ndim == 0 or len(v) == 0:
            raise DataError(f"The array {k!r} of '{path}' must be non-empty and numeric. Got {v.dtype} {v.shape}.")
    for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
        if len(arrays[x]) != len(arrays[y]):
            raise DataError(f"In '{path}', {x} has {len(arrays[x])} rows but {y} has {len(arrays[y])}.")
    return [torch.as_tensor(arrays[k]) for k in NPZ_KEYS]


def check_output_path(path: str | Path) -> Path:
    """Check, before any work, that ``path`` ends in .json or .csv and that its folder exists."""
    path = Path(path)
    if path.suffix not in (".json", ".csv"):
        raise ValueError(f"The output '{path}' must end in .json or .csv. Got {path.suffix or 'no suffix'!r}.")
    if path.is_dir():
        raise ValueError(f"The output '{path}' is a directory; give a file name ending in .json or .csv.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"The output folder '{path.parent}' of '{path}' does not exist; create it first.")
    return path


def add_working_directory() -> None:
    """Put the working directory first on ``sys.path``, as ``python -m`` does (a console script does not)."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
