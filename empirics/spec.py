"""Experiment specs: a TOML file or the equivalent :class:`ExperimentSpec`, validated before anything runs.

A spec names a registered phenomenon, fixed parameters, sweep axes (runs = cartesian product of the axes
times the seeds), what to record and when, and a ``[quick]`` table of overrides for seconds-long runs::

    name = "double-descent-mlp"
    phenomenon = "double_descent_mlp"
    seeds = [0, 1, 2]
    [params]
    steps = 2000
    [sweep]
    width = [4, 8, 16, 32]
    [record]
    quantities = ["measures"]
    schedule = "log"      # ~count log-spaced steps in [0, steps]; "every": every `every` steps
    count = 20
    [quick]
    seeds = [0]
    params = { steps = 200 }

Every error names the source, the key and the reason: ``"spec.toml: key 'sweep.width': ..."``. Unknown
phenomena, parameters and quantities are rejected here, not mid-run. ``plugins`` (optional) lists modules
or ``.py`` files imported first, so that third-party phenomena and quantities can register themselves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import itertools
import json
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from empirics.phenomena import PHENOMENA, Phenomenon, get_phenomenon
from empirics.quantities import CONTROL_QUANTITIES, QUANTITIES, follows_steps, load_builtin_quantities
from empirics.recorder import log_spaced_steps

SPECS_DIR = Path(__file__).with_name("specs")
_TOP_KEYS = ("name", "phenomenon", "description", "seeds", "params", "sweep", "record", "quick", "plugins")
_RECORD_KEYS = ("quantities", "schedule", "count", "every")
_QUICK_KEYS = ("description", "seeds", "params", "sweep", "record")
MAX_RECORD_COUNT = 100_000
"""The most log-spaced recording steps a spec may ask for (``[record] count``)."""


class Schedule(StrEnum):
    """When the recorder is due. ``LOG`` (default): :func:`~empirics.recorder.log_spaced_steps` (about
    ``count`` steps in [0, steps]); ``EVERY``: steps 0, every, 2·every, ... and the last step."""

    LOG = "log"
    EVERY = "every"


class SpecError(ValueError):
    """A spec value is invalid; the message reads ``"SOURCE: key 'KEY': REASON"``."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: key {key!r}: {reason}")
        self.source, self.key, self.reason = source, key, reason


@dataclass(frozen=True)
class RecordSpec:
    """What to record (registered quantity names) and at which steps."""

    quantities: tuple[str, ...] = ()
    schedule: Schedule = Schedule.LOG
    count: int = 20
    every: int | None = None

    def steps(self, total: int) -> tuple[int, ...]:
        """The recording steps of a run of ``total`` steps (``(0,)`` for closed-form fits with 0 steps)."""
        if total == 0:
            return (0,)
        if self.schedule == Schedule.EVERY:
            return tuple(sorted(set(range(0, total + 1, self.every)) | {total}))
        return tuple(log_spaced_steps(total, self.count))


@dataclass(frozen=True)
class RunConfig:
    """One fully resolved run: what a backend executes and the store keys by :attr:`run_id`.

    ``params`` are the phenomenon's defaults overlaid by ``[params]``, one sweep point and ``{"seed": s}``;
    ``quantities`` include the always-recorded controls.
    """

    spec: str
    phenomenon: str
    params: Mapping[str, Any]
    quantities: tuple[str, ...]
    schedule: tuple[int, ...]
    plugins: tuple[str, ...] = ()

    @property
    def seed(self) -> int:
        return int(self.params["seed"])

    @cached_property
    def run_id(self) -> str:
        """First 16 hex digits of sha256 of the canonical JSON of (phenomenon, params, quantities, schedule)."""
        payload = {
            "phenomenon": self.phenomenon,
            "params": dict(self.params),
            "quantities": list(self.quantities),
            "schedule": list(self.schedule),
        }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ExperimentSpec:
    """The Python form of a spec file; :meth:`validate` checks it against the registries.

    Args:
        name: unique spec name.
        phenomenon: a registered phenomenon (:data:`empirics.phenomena.PHENOMENA`).
        seeds: each configuration runs once per seed (the phenomenon sees ``params["seed"]``).
        params: fixed parameters (keys of ``Phenomenon.parameters``).
        sweep: axis name -> list of values; runs are the cartesian product of the axes and the seeds.
        record: the :class:`RecordSpec`.
        quick: overrides applied by :meth:`quick_variant` (keys description, seeds, params, sweep, record).
        plugins: modules or ``.py`` files imported before validation (register extra phenomena/quantities).
        source: where the spec came from, used in error messages.
    """

    name: str
    phenomenon: str
    description: str = ""
    seeds: tuple[int, ...] = (0,)
    params: Mapping[str, Any] = field(default_factory=dict)
    sweep: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    record: RecordSpec = RecordSpec()
    quick: Mapping[str, Any] = field(default_factory=dict)
    plugins: tuple[str, ...] = ()
    source: str = "<python>"

    def validate(self) -> ExperimentSpec:
        """Check every value against the registries; returns ``self`` or raises :class:`SpecError`."""
        _check_spec(self)
        if self.quick:
            variant = self.quick_variant()
            try:
                _check_spec(variant)
            except SpecError as err:
                raise SpecError(self.source, f"quick.{err.key}", err.reason) from None
        return self

    def quick_variant(self) -> ExperimentSpec:
        """The spec with ``[quick]`` applied: seeds/description replaced, params/sweep/record tables merged."""
        q = self.quick
        _check_keys(self.source, "quick", q, _QUICK_KEYS)
        for key in ("params", "sweep", "record"):
            if key in q and not isinstance(q[key], Mapping):
                raise SpecError(self.source, f"quick.{key}", f"expected a table, got {type(q[key]).__name__}")
        record = self.record
        if "record" in q:
            record = _parse_record(self.source, {**_record_table(record), **q["record"]}, "quick.record")
        return dataclasses.replace(
            self,
            description=q.get("description", self.description),
            seeds=_parse_seeds(self.source, q["seeds"], "quick.seeds") if "seeds" in q else self.seeds,
            params={**self.params, **q.get("params", {})},
            sweep={**self.sweep, **{k: tuple(v) if isinstance(v, list) else v for k, v in q.get("sweep", {}).items()}},
            record=record,
            quick={},
        )

    def runs(self) -> list[RunConfig]:
        """Every run of the sweep, in a stable order (axes in spec order, seeds innermost)."""
        self.validate()
        phenomenon = find_phenomenon(self.phenomenon)
        quantities = tuple(dict.fromkeys((*self.record.quantities, *CONTROL_QUANTITIES)))
        axes = list(self.sweep)
        out = []
        for point in itertools.product(*(self.sweep[a] for a in axes)):
            for seed in self.seeds:
                params = phenomenon.resolve({**self.params, **dict(zip(axes, point, strict=True))})
                floats = {k for k, v in phenomenon.parameters.items() if isinstance(v, float)}
                params = {**{k: float(v) if k in floats else v for k, v in params.items()}, "seed": seed}
                steps = self.record.steps(int(params["steps"]))
                out.append(RunConfig(self.name, self.phenomenon, params, quantities, steps, self.plugins))
        return out


def load_spec(path_or_name: str | Path, *, quick: bool = False) -> ExperimentSpec:
    """Parse and validate a spec file, or a built-in spec by name (``empirics/specs/NAME.toml``).

    Args:
        path_or_name: a ``.toml`` path, or the name of a built-in spec.
        quick: apply the spec's ``[quick]`` overrides.

    Raises:
        FileNotFoundError: neither a file nor a built-in spec; lists the built-ins.
        SpecError: (a ``ValueError``) ``"FILE: key 'x': reason"``, also for ``quick=True`` on a spec without a
            ``[quick]`` table (no silent full run).
    """
    path = Path(path_or_name)
    if not path.is_file():
        builtin = SPECS_DIR / f"{path_or_name}.toml"
        if not builtin.is_file():
            known = sorted(p.stem for p in SPECS_DIR.glob("*.toml"))
            raise FileNotFoundError(
                f"No spec file {str(path_or_name)!r} and no built-in spec of that name; built-ins: {known}."
            )
        path = builtin
    source = str(path)
    try:
        table = tomllib.loads(path.read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecError(source, "<file>", f"invalid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise SpecError(source, "<file>", f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise SpecError(source, "<file>", f"cannot read it ({err.strerror or err})") from None
    spec = spec_from_dict(table, source=source, base_dir=path.parent).validate()
    if quick and not spec.quick:
        raise SpecError(source, "quick", "the spec has no [quick] table; add one, or run the full spec without --quick")
    return spec.quick_variant().validate() if quick else spec


def spec_from_dict(table: Mapping[str, Any], *, source: str = "<dict>", base_dir: Path | None = None) -> ExperimentSpec:
    """Build an :class:`ExperimentSpec` from a parsed TOML table (type checks only; see :meth:`validate`).

    Relative ``.py`` plugin paths resolve against ``base_dir`` (the spec file's folder).
    """
    _check_keys(source, "", table, _TOP_KEYS)
    for key in ("name", "phenomenon"):
        if key not in table:
            raise SpecError(source, key, "missing (required)")
    for key in ("params", "sweep", "record", "quick"):
        if key in table and not isinstance(table[key], Mapping):
            raise SpecError(source, key, f"expected a table, got {type(table[key]).__name__}")
    plugins = table.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise SpecError(source, "plugins", f"expected a list of module names or .py paths, got {plugins!r}")
    if base_dir is not None:
        plugins = [str((base_dir / p).resolve()) if p.endswith(".py") else p for p in plugins]
    return ExperimentSpec(
        name=table["name"],
        phenomenon=table["phenomenon"],
        description=table.get("description", ""),
        seeds=_parse_seeds(source, table["seeds"], "seeds") if "seeds" in table else (0,),
        params=dict(table.get("params", {})),
        sweep={k: tuple(v) if isinstance(v, list) else v for k, v in table.get("sweep", {}).items()},
        record=_parse_record(source, table.get("record", {}), "record"),
        quick=dict(table.get("quick", {})),
        plugins=tuple(plugins),
        source=source,
    )


def load_plugins(plugins: Sequence[str]) -> None:
    """Import each plugin once: a dotted module name, or a ``.py`` file loaded under a name derived from its path.

    Raises:
        FileNotFoundError: a ``.py`` plugin that does not exist.
        ImportError: a module that cannot be found, or a plugin whose own code fails (a ``SyntaxError``, any
            exception at its import), naming the plugin and the error; a failed ``.py`` plugin is not kept.
    """
    for plugin in plugins:
        try:
            _load_plugin(plugin)
        except (ImportError, FileNotFoundError):
            raise
        except Exception as err:  # the plugin's own code: user code, so any exception is a bad plugin
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ImportError(f"importing plugin {plugin!r} raised {type(err).__name__}: {first}") from err


def _load_plugin(plugin: str) -> None:
    if not plugin.endswith(".py"):
        importlib.import_module(plugin)
        return
    name = "unitheory_plugin_" + hashlib.sha256(str(Path(plugin).resolve()).encode()).hexdigest()[:12]
    if name in sys.modules:
        return
    module_spec = importlib.util.spec_from_file_location(name, plugin)
    if module_spec is None or not Path(plugin).is_file():
        raise FileNotFoundError(f"Plugin file {plugin!r} not found.")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # a later load runs the file again instead of finding a half-imported module
        raise


def find_phenomenon(name: str) -> Phenomenon:
    """An instance of phenomenon ``name``; the built-in modules are imported only if it is not registered yet
    (a plugin's phenomenon starts a worker process without importing every built-in's dependencies)."""
    cls = PHENOMENA.get(name)
    return cls() if cls is not None else get_phenomenon(name)


def _check_spec(spec: ExperimentSpec) -> None:
    src = spec.source
    if not isinstance(spec.name, str) or not spec.name:
        raise SpecError(src, "name", f"expected a non-empty string, got {spec.name!r}")
    if not isinstance(spec.description, str):
        raise SpecError(src, "description", f"expected a string, got {spec.description!r}")
    if not isinstance(spec.phenomenon, str):
        raise SpecError(src, "phenomenon", f"expected the name of a registered phenomenon, got {spec.phenomenon!r}")
    _parse_seeds(src, list(spec.seeds), "seeds")
    malformed = [p for p in spec.plugins if not _plugin_name(p)]
    if malformed:
        raise SpecError(src, "plugins", f"expected dotted module names or .py paths, got {malformed!r}")
    # The controls are recorded on every run and enter its run_id: register them whatever was imported before, so
    # that a fresh process (a CLI call, a pool or Ray worker) computes the same run ids as this one; and before the
    # plugins, so that a plugin reusing a built-in quantity's name is refused as it registers it.
    if any(q not in QUANTITIES for q in (*spec.record.quantities, *CONTROL_QUANTITIES)):
        load_builtin_quantities()
    try:
        load_plugins(spec.plugins)
    except (ImportError, FileNotFoundError) as err:
        raise SpecError(src, "plugins", f"cannot import: {err}") from None
    try:
        phenomenon = find_phenomenon(spec.phenomenon)
        if not type(phenomenon).__module__.startswith("empirics.phenomena."):
            get_phenomenon(spec.phenomenon)  # a plugin's phenomenon: importing the built-ins refuses one's name
    except ValueError as err:
        raise SpecError(src, "phenomenon", str(err)) from None
    defaults = phenomenon.parameters
    if "steps" not in defaults:
        raise SpecError(
            src, "phenomenon", f"{spec.phenomenon!r} declares no 'steps' parameter (required by the runner)"
        )
    for key in spec.params:
        _check_name(src, f"params.{key}", key, defaults, spec.phenomenon)
    for key, values in spec.sweep.items():
        _check_name(src, f"sweep.{key}", key, defaults, spec.phenomenon)
        if key in spec.params:
            raise SpecError(src, f"sweep.{key}", "also set in [params]; a parameter is either fixed or swept")
        if not isinstance(values, Sequence) or isinstance(values, str) or len(values) == 0:
            raise SpecError(src, f"sweep.{key}", f"expected a non-empty list of values, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise SpecError(src, f"sweep.{key}", f"values repeat: {list(values)}")
    axes = list(spec.sweep)
    for point in itertools.product(*(spec.sweep[a] for a in axes)):
        params = {**defaults, **spec.params, **dict(zip(axes, point, strict=True))}
        found = phenomenon.problem(params)
        if found is not None:
            raise SpecError(src, *_explain_problem(spec, params, *found))
    outcomes = set(getattr(phenomenon, "outcomes", ()))
    if outcomes & set(defaults):
        raise SpecError(src, "phenomenon", f"outcome names collide with parameters: {sorted(outcomes & set(defaults))}")
    _parse_record(src, _record_table(spec.record), "record")
    unknown = [q for q in spec.record.quantities if q not in QUANTITIES]
    if unknown:
        raise SpecError(src, "record.quantities", f"unknown quantity(ies) {unknown}; registered: {sorted(QUANTITIES)}")
    stepped = [q for q in spec.record.quantities if follows_steps(q)]
    if stepped and not phenomenon.follows_steps:
        able = sorted(name for name, cls in PHENOMENA.items() if cls.follows_steps)
        reason = f"{stepped} follow every optimizer step, but phenomenon {spec.phenomenon!r} does not call the "
        raise SpecError(src, "record.quantities", reason + f"recorder's step hooks; phenomena that do: {able}")


def _plugin_name(plugin: Any) -> bool:
    """A ``.py`` path or a dotted module name (``import_module`` refuses '' and relative names otherwise)."""
    return isinstance(plugin, str) and (plugin.endswith(".py") or all(p.isidentifier() for p in plugin.split(".")))


def _check_name(src: str, key: str, name: str, defaults: Mapping[str, Any], phenomenon: str) -> None:
    if name == "seed":
        raise SpecError(src, key, "the seed is set by the top-level 'seeds' list")
    if name not in defaults:
        raise SpecError(src, key, f"unknown parameter of phenomenon {phenomenon!r}; expected one of {sorted(defaults)}")


def _explain_problem(
    spec: ExperimentSpec, params: Mapping[str, Any], name: str, expected: str, refs: tuple[str, ...]
) -> tuple[str, str]:
    """``(key, reason)`` of a parameter problem: the key where the spec sets the parameter, else where it sets a
    parameter the broken constraint reads (then the reason names both), else the phenomenon's default."""

    def key_of(param: str) -> str | None:
        return f"sweep.{param}" if param in spec.sweep else f"params.{param}" if param in spec.params else None

    reason = f"expected {expected}, got {params[name]!r}"
    if (key := key_of(name)) is not None:
        return key, reason
    for ref in refs:
        if (key := key_of(ref)) is not None:
            return key, f"makes the default {name} = {params[name]!r} invalid: {name} must be {expected}"
    return f"params.{name}", f"{reason} (the default of phenomenon {spec.phenomenon!r})"


def _check_keys(source: str, prefix: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in table:
        if key not in allowed:
            where = f"{prefix}.{key}" if prefix else key
            raise SpecError(source, where, f"unknown key; expected one of {list(allowed)}")


def _parse_seeds(source: str, seeds: Any, key: str) -> tuple[int, ...]:
    if (
        not isinstance(seeds, (list, tuple))
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63 for s in seeds)
    ):
        raise SpecError(
            source, key, f"expected a non-empty list of non-negative integers below 2**63 (SQLite), got {seeds!r}"
        )
    if len(set(seeds)) != len(seeds):
        raise SpecError(source, key, f"seeds repeat: {list(seeds)}")
    return tuple(seeds)


def _parse_record(source: str, table: Mapping[str, Any], key: str) -> RecordSpec:
    _check_keys(source, key, table, _RECORD_KEYS)
    quantities = table.get("quantities", [])
    if not isinstance(quantities, (list, tuple)) or not all(isinstance(q, str) for q in quantities):
        raise SpecError(source, f"{key}.quantities", f"expected a list of quantity names, got {quantities!r}")
    schedule = table.get("schedule", Schedule.LOG.value)
    if schedule not in list(Schedule):
        raise SpecError(source, f"{key}.schedule", f"expected one of {[s.value for s in Schedule]}, got {schedule!r}")
    for name, most in (("count", MAX_RECORD_COUNT), ("every", None)):
        value = table.get(name)
        valid = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= (most or value)
        if value is not None and not valid:
            bound = f" up to {most}" if most else ""
            raise SpecError(source, f"{key}.{name}", f"expected a positive integer{bound}, got {value!r}")
    if schedule == Schedule.EVERY and table.get("every") is None:
        raise SpecError(source, f"{key}.every", "required when schedule = 'every'")
    return RecordSpec(tuple(dict.fromkeys(quantities)), Schedule(schedule), table.get("count", 20), table.get("every"))


def _record_table(record: RecordSpec) -> dict[str, Any]:
    table = {"quantities": list(record.quantities), "schedule": str(record.schedule), "count": record.count}
    return table if record.every is None else {**table, "every": record.every}


__all__ = [
    "ExperimentSpec",
    "RecordSpec",
    "RunConfig",
    "Schedule",
    "SpecError",
    "find_phenomenon",
    "load_plugins",
    "load_spec",
    "spec_from_dict",
]
