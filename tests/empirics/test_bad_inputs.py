"""Bad input to the Python entry points (issue 11, item 7): one table per entry point, bad input -> error class and a
fragment of its message; and fuzzing of the spec parser: any TOML tree gives a valid spec or a SpecError.

Add a row to a table when a new bad input is found; the CLI's table is tests/bridge/test_bad_inputs_cli.py.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empirics.phenomena import PHENOMENA, get_phenomenon
from empirics.quantities import QUANTITIES
from empirics.spec import SpecError, load_spec, spec_from_dict
from empirics.store import SCHEMA_VERSION, Store, StoreError

get_phenomenon("double_descent_mlp")  # registers the built-in phenomena

# --- Store ------------------------------------------------------------------------------------------------------


def _file(root: Path) -> Path:
    (root / "f").write_text("not a store")
    return root / "f"


def _db_dir(root: Path) -> Path:
    (root / "d" / "store.sqlite").mkdir(parents=True)
    return root / "d"


def _noise(root: Path) -> Path:
    (root / "n").mkdir()
    (root / "n" / "store.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    return root / "n"


def _empty_file(root: Path) -> Path:
    (root / "e").mkdir()
    (root / "e" / "store.sqlite").write_bytes(b"")
    return root / "e"


def _foreign(root: Path) -> Path:
    (root / "x").mkdir()
    with sqlite3.connect(root / "x" / "store.sqlite") as conn:
        conn.execute("CREATE TABLE results (a, b)")
    return root / "x"


def _foreign_columns(root: Path) -> Path:
    Store(root / "c").close()
    with sqlite3.connect(root / "c" / "store.sqlite") as conn:
        conn.execute("DROP TABLE results")
        conn.execute("CREATE TABLE results (kind TEXT)")
    return root / "c"


def _newer(root: Path) -> Path:
    Store(root / "v").close()
    with sqlite3.connect(root / "v" / "store.sqlite") as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    return root / "v"


def _missing(root: Path) -> Path:
    return root / "missing"


def _under_a_file(root: Path) -> Path:
    return _file(root) / "store"


STORE_CASES: list[tuple[Callable[[Path], Path], dict, type[Exception], str]] = [
    (_file, {}, StoreError, "is a file, not a unitheory store"),
    (_db_dir, {}, StoreError, "is a directory, not an SQLite database file"),
    (_noise, {}, StoreError, "is corrupt or not an SQLite database"),
    (_noise, {"readonly": True}, StoreError, "is corrupt or not an SQLite database"),
    (_empty_file, {"readonly": True}, StoreError, "is an empty database, not a unitheory store"),
    (_foreign, {}, StoreError, "is an SQLite database but not a unitheory store"),
    (_foreign_columns, {"readonly": True}, StoreError, "has a 'results' table that is not unitheory's"),
    (_newer, {}, StoreError, f"schema version {SCHEMA_VERSION + 1}, newer than this unitheory's"),
    (_under_a_file, {}, StoreError, r"Cannot create a store at '.*/f/store': Not a directory"),
    (_missing, {"create": False}, FileNotFoundError, "No unitheory store at"),
    (_missing, {"readonly": True}, FileNotFoundError, "No unitheory store at"),
]


@pytest.mark.parametrize(("make", "options", "error", "fragment"), STORE_CASES, ids=lambda v: getattr(v, "__name__", v))
def test_store_refuses_bad_stores_in_plain_words(tmp_path, make, options, error, fragment):
    path = make(tmp_path)
    with pytest.raises(error, match=fragment) as caught:
        Store(path, **options).runs()
    assert "\n" not in str(caught.value)


# --- spec loading ----------------------------------------------------------------------------------------------

SPEC_CASES: list[tuple[str, dict, type[Exception], str]] = [
    ("", {}, SpecError, "key 'name': missing"),
    ("name = 'x'\nphenomenon = 'double_descent_mlp'\n[params]\nn_train = -100", {}, SpecError, "key 'params.n_train'"),
    ("name = 'x'\nphenomenon = 'double_descent_rff'", {"quick": True}, SpecError, "no [quick] table"),
    ("name = 'x'\nphenomenon = ['double_descent_mlp']", {}, SpecError, "key 'phenomenon': expected the name"),
    ("name = 'x'\nphenomenon = 'double_descent_mlp'\n[record]\ncount = 10_000_000", {}, SpecError, "record.count"),
    ("name = 'x'\nphenomenon = 'grokking_modular'\n[params]\nlr = nan", {}, SpecError, "key 'params.lr'"),
    ("name = 'x'\nphenomenon = 'grokking_modular'\n[params]\np = 91", {}, SpecError, "expected a prime, got 91"),
    ("name = 'x'\nphenomenon = 'lottery_ticket'\n[params]\nhidden = [300, 0]", {}, SpecError, "key 'params.hidden'"),
    ("name = 'x'\nphenomenon = 'double_descent_mlp'\n[sweep]\nwidth = 4", {}, SpecError, "non-empty list"),
    ("name = 'x'\nphenomenon = 'double_descent_mlp'\ncreated = 2024-01-01", {}, SpecError, "key 'created': unknown"),
    ("name = [", {}, SpecError, "invalid TOML"),
    ("no-such-builtin-spec", {}, FileNotFoundError, "built-ins:"),
]


@pytest.mark.parametrize(("text", "options", "error", "fragment"), SPEC_CASES)
def test_load_spec_refuses_bad_specs_naming_the_key(tmp_path, text, options, error, fragment):
    target = text
    if "=" in text or text == "":
        target = tmp_path / "bad.toml"
        target.write_text(text + "\n")
    with pytest.raises(error) as caught:
        load_spec(target, **options)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


SPEC = b"name = 'x'\nphenomenon = 'double_descent_mlp'\n"
_PLUGIN = b"from empirics.phenomena import Phenomenon, register\nfrom empirics.quantities import quantity\n\n\n"
#: (files written beside the spec, the spec's bytes, fragment): a plugin whose own code fails, an unreadable spec
FILE_CASES: dict[str, tuple[dict[str, bytes], bytes, str]] = {
    "plugin with a syntax error": (
        {"broken.py": b"def f(:\n"}, SPEC + b"plugins = ['broken.py']", "raised SyntaxError: invalid syntax",
    ),
    "plugin that raises": (
        {"raises.py": b"raise RuntimeError('plugin exploded')\n"}, SPEC + b"plugins = ['raises.py']",
        r"key 'plugins': cannot import: importing plugin '.*raises.py' raised RuntimeError: plugin exploded",
    ),
    "plugin reusing a control's name": (
        {"q.py": _PLUGIN + b"@quantity('prime_count')\ndef fake(s):\n    return {}\n"},
        SPEC + b"plugins = ['q.py']", r"raised ValueError: Two definitions of the quantity 'prime_count': .* and fake",
    ),
    "plugin reusing a built-in phenomenon's name": (
        {"p.py": _PLUGIN + b"@register\nclass Fake(Phenomenon):\n    name = 'double_descent_mlp'\n"},
        SPEC + b"plugins = ['p.py']", r"Two definitions of the phenomenon 'double_descent_mlp': DoubleDescentMLP",
    ),
    "spec that is not UTF-8": ({}, b"\xff\xfe" + SPEC, r"key '<file>': not UTF-8 text \(invalid start byte at byte 0"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_load_spec_names_a_failing_plugin_or_an_unreadable_file(tmp_path, case):
    files, spec, fragment = FILE_CASES[case]
    for name, content in {**files, "bad.toml": spec}.items():
        (tmp_path / name).write_bytes(content)
    for _ in range(2):  # a failed plugin is not kept half-imported: loading the spec again fails again
        with pytest.raises(SpecError, match=fragment) as caught:
            load_spec(tmp_path / "bad.toml")
        assert "\n" not in str(caught.value)
    assert PHENOMENA["double_descent_mlp"].__module__ == "empirics.phenomena.double_descent"  # nothing replaced
    assert QUANTITIES["prime_count"].__module__ == "empirics.controls"


DICT_CASES: list[tuple[dict, str]] = [
    ({"name": "x", "phenomenon": "double_descent_mlp", "seeds": [2**63]}, "key 'seeds': expected a non-empty list"),
    ({"name": "x", "phenomenon": {"a": 1}}, "key 'phenomenon': expected the name of a registered phenomenon"),
    ({"name": 3, "phenomenon": "double_descent_mlp"}, "key 'name': expected a non-empty string"),
    ({"name": "x", "phenomenon": "double_descent_mlp", "quick": {"seeds": "0"}}, "key 'quick.seeds'"),
    ({"name": "x", "phenomenon": "double_descent_mlp", "plugins": "mod"}, "key 'plugins': expected a list"),
    ({"name": "x", "phenomenon": "double_descent_mlp", "plugins": [""]}, "key 'plugins': expected dotted module"),
    ({"name": "x", "phenomenon": "double_descent_mlp", "plugins": [".rel"]}, "key 'plugins': expected dotted module"),
]


@pytest.mark.parametrize(("table", "fragment"), DICT_CASES)
def test_spec_from_dict_refuses_bad_trees_naming_the_key(table, fragment):
    with pytest.raises(SpecError, match=fragment):
        spec = spec_from_dict(table, source="t.toml").validate()
        spec.quick_variant().validate()


# --- fuzzing the spec parser -----------------------------------------------------------------------------------

_INT64 = st.integers(-(2**63), 2**63 - 1)
_SCALARS = st.one_of(
    st.text(max_size=8),
    _INT64,
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),  # conftest flushes denormals
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
    st.times(),
)
_TOML = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_DEFAULTS: dict[str, list] = {}
for _cls in PHENOMENA.values():
    for _name, _default in _cls.parameters.items():
        _DEFAULTS.setdefault(_name, []).append(_default)


def _near(name: str) -> st.SearchStrategy:
    """Values of the kind of ``name``'s defaults, in and out of range, so the fuzz reaches the constraints."""
    default = _DEFAULTS[name][0]
    if isinstance(default, bool):
        near = st.booleans()
    elif isinstance(default, int):
        near = st.integers(-2, 2 * abs(default) + 3)
    elif isinstance(default, float):
        near = st.floats(-0.5, 2 * abs(default) + 1, allow_subnormal=False)
    elif isinstance(default, str):
        near = st.sampled_from([*_DEFAULTS[name], "bogus", ""])
    else:
        near = st.lists(st.integers(-1, 12), max_size=3)
    return st.one_of(st.sampled_from(_DEFAULTS[name]), near)


_NAMES = st.sampled_from(sorted(_DEFAULTS))
_PARAMS = st.lists(_NAMES.flatmap(lambda n: st.tuples(st.just(n), _near(n))), max_size=3).map(dict)
_SWEEP = st.lists(_NAMES.flatmap(lambda n: st.tuples(st.just(n), st.lists(_near(n), max_size=3))), max_size=2).map(dict)
_RECORD = st.fixed_dictionaries(
    {},
    optional={
        "quantities": st.lists(st.sampled_from(["prime_count", "measures", "nope"]), max_size=2),
        "schedule": st.sampled_from(["log", "every", "sometimes"]),
        "count": st.integers(-2, 50),
        "every": st.integers(-2, 50),
    },
)
#: specs of the right shape with values in and out of range: the fuzz reaches the constraints, sweeps and [quick]
_WELL_FORMED = st.fixed_dictionaries(
    {"name": st.just("fuzz"), "phenomenon": st.sampled_from(sorted(PHENOMENA))},
    optional={
        "seeds": st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True) | st.lists(st.integers(-1, 3)),
        "params": _PARAMS,
        "sweep": _SWEEP,
        "record": _RECORD,
        "quick": st.fixed_dictionaries({}, optional={"seeds": st.lists(st.integers(-1, 3)), "params": _PARAMS}),
    },
)
_KEYS = ["name", "phenomenon", "description", "seeds", "params", "sweep", "record", "plugins", "quick", "colour"]
_SAFE_PLUGINS = st.lists(  # names that import nothing: a fuzz must not import arbitrary installed modules
    st.sampled_from(["no_such_plugin_module", "missing.py", "", ".relative", "a..b", "1abc", "no_such.sub"]), max_size=2
)
#: any tree at all under the spec's keys and below (plugins are left to names that import nothing)
_ANY = st.tuples(
    st.fixed_dictionaries({}, optional={"name": st.just("fuzz"), "phenomenon": st.sampled_from(sorted(PHENOMENA))}),
    st.dictionaries(st.sampled_from(_KEYS), _TOML, max_size=6),
    _SAFE_PLUGINS,
).map(lambda t: {**t[1], **t[0], **({"plugins": t[2]} if "plugins" in t[1] else {})})


def _valid_or_spec_error(table: dict) -> None:
    try:
        spec = spec_from_dict(table, source="fuzz.toml").validate()
        if spec.quick:
            spec.quick_variant().validate()
    except SpecError as err:
        assert str(err).startswith("fuzz.toml: key ") and "\n" not in str(err)
        return
    assert len(spec.runs()) >= 1  # what validates, resolves: every run's parameters pass the phenomenon's checks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(_ANY)
def test_any_toml_tree_gives_a_valid_spec_or_a_spec_error(table):
    """Never a TypeError, KeyError or AttributeError from a malformed spec: a ``SpecError`` naming a key."""
    _valid_or_spec_error(table)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(_WELL_FORMED)
def test_well_formed_specs_with_any_values_give_a_valid_spec_or_a_spec_error(table):
    _valid_or_spec_error(table)
