"""Bad hypothesis files (issue 11 item 7, hypothesis-file half): a table of bad files with the error each must
give, and hypothesis-based fuzzing of ``load_hypotheses``: random TOML trees and random mutations of the committed
files give a ``HypothesisFileError`` naming the file, or valid hypotheses, never another exception.

The fuzzing is derandomised (the same examples on every run); ``UNITHEORY_FUZZ_EXAMPLES=5000`` searches deeper.
"""

import copy
import datetime as dt
import math
import os
import re
import tempfile
import tomllib
from pathlib import Path

import pytest
from attacks import ATTACKS
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bridge.hypothesis import MAX_FILE_BYTES, Hypothesis, HypothesisFileError, Kind, Test, load_hypotheses

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted((ROOT / "bridge" / "hypotheses").glob("*.toml")) + sorted(
    (ROOT / "bridge" / "studies").glob("*.toml")
)
FUZZ = settings(
    max_examples=int(os.environ.get("UNITHEORY_FUZZ_EXAMPLES", "40")),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped."""
    escaped = "".join(
        f"\\{ch}" if ch in '"\\' else f"\\u{ord(ch):04X}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text
    )
    return f'"{escaped}"'


def toml_value(value) -> str:
    """One TOML value (inline tables and arrays), for the trees of this module."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(tree: dict) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in tree.items())


def check(text: str) -> None:
    """``load_hypotheses`` of ``text`` gives valid hypotheses or a HypothesisFileError naming the file; nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.toml"
        path.write_text(text, encoding="utf-8")
        try:
            out = load_hypotheses(path)
        except HypothesisFileError as err:
            assert str(err).startswith(f"{path}: "), str(err)
            event(
                re.sub(r"\[\d+\]", "[i]", str(err)[len(f"{path}: ") :].split(": ")[0])
            )  # --hypothesis-show-statistics
            return
    assert out and all(isinstance(h, Hypothesis) for h in out)
    event("valid")


# ---- a table of bad files -> error class and message fragment ----

GOOD = """
[[hypothesis]]
name = "h"
quantity = "q"
outcome = "test_error"
scope = { axes = ["w"] }
prediction = { kind = "functional", expression = "test_error = a + b*q" }
"""
_FUNCTIONAL = 'kind = "functional", expression = "test_error = a + b*q"'
_EVENT = 'kind = "event_order", first = { expression = "a", above = 1 }, second = { expression = "b", below = 1 }'
BAD_FILES = [
    ("not-utf8", b"\xff\xfe[[hypothesis]]", HypothesisFileError, "<file>: not UTF-8 text"),
    ("too-large", "# " + "x" * MAX_FILE_BYTES, HypothesisFileError, "<file>: 1000002 bytes, more than the 1000000"),
    ("nested-arrays", "a = " + "[" * 2000 + "]" * 2000, HypothesisFileError, "<toml>: arrays or tables nested too"),
    ("nested-tables", "a = " + "{b=" * 2000 + "1" + "}" * 2000, HypothesisFileError, "<toml>: arrays or tables"),
    ("bad-toml", "[[hypothesis]\n", HypothesisFileError, "<toml>: "),
    ("empty", "", HypothesisFileError, "hypothesis: missing required key"),
    ("no-hypothesis", "hypothesis = []", HypothesisFileError, "hypothesis: the file declares no hypothesis"),
    ("hypothesis-not-table", "hypothesis = [1]", HypothesisFileError, "hypothesis[0]: expected a table, got int"),
    ("top-alpha-string", 'alpha = "x"\n' + GOOD, HypothesisFileError, "alpha: expected a number in (0, 0.5)"),
    ("top-unknown", "colour = 1\n" + GOOD, HypothesisFileError, "colour: unknown key"),
    ("controls-not-names", "controls = [1]\n" + GOOD, HypothesisFileError, "controls: expected a list of non-empty"),
    ("alpha-nan", GOOD.replace('name = "h"', 'name = "h"\nalpha = nan'), HypothesisFileError, "alpha: must be in"),
    ("name-int", GOOD.replace('"h"', "1"), HypothesisFileError, "hypothesis[0].name: expected a string, got 1"),
    (
        "missing-expression",
        GOOD.replace(', expression = "test_error = a + b*q"', ""),
        HypothesisFileError,
        "hypothesis[0].prediction.expression: missing required key",
    ),
    (
        "expression-not-string",
        GOOD.replace('"test_error = a + b*q"', "1.5"),
        HypothesisFileError,
        "hypothesis[0].prediction.expression: expected 'target = formula', got 1.5",
    ),
    (
        "expression-no-equals",
        GOOD.replace('"test_error = a + b*q"', '"a + b*q"'),
        HypothesisFileError,
        "prediction.expression: Cannot parse the formula 'a + b*q': equation: must read 'target = rhs'",
    ),
    (
        "expression-attribute",
        GOOD.replace("b*q", "q.__class__"),
        HypothesisFileError,
        "expression: Cannot parse the formula 'a + q.__class__': attribute access 'q.__class__': not allowed",
    ),
    (
        "expression-tower",
        GOOD.replace("b*q", "9**9**9**9"),
        HypothesisFileError,
        "prediction.expression: Cannot parse the formula 'a + 9**9**9**9': exponent tower '9**9**9'",
    ),
    (
        "null-other-target",
        GOOD.replace("b*q", 'b*q", null = "err = c'),
        HypothesisFileError,
        "hypothesis[0].prediction.null: its target 'err' must be the hypothesis outcome 'test_error'",
    ),
    (
        "null-import",
        GOOD.replace("b*q", "b*q\", null = \"test_error = __import__('os')"),
        HypothesisFileError,
        "prediction.null: Cannot parse the formula \"__import__('os')\": call \"__import__('os')\": unknown function",
    ),
    ("p0-string", GOOD.replace("b*q", 'b*q", p0 = { a = "1" }, x="'), HypothesisFileError, "p0: start values"),
    (
        "p0-unknown-parameter",
        GOOD.replace("b*q", 'b*q", p0 = { bb = 1.0 }, x="'),
        HypothesisFileError,
        "hypothesis[0].prediction.p0: names ['bb'], not a free parameter of the expression or the null ['a', 'b', "
        "'c_null']",
    ),
    ("fit-on-bool", GOOD.replace("b*q", 'b*q", fit_on = true, x="'), HypothesisFileError, "fit_on: expected an"),
    ("method", GOOD.replace("b*q", 'b*q", method = "ols", x="'), HypothesisFileError, "method: must be one of"),
    (
        "event-formula",
        GOOD.replace(_FUNCTIONAL, _EVENT.replace('"a"', '"lambda: 0"')),
        HypothesisFileError,
        "hypothesis[0].prediction.first.expression: Cannot parse the formula 'lambda: 0': lambda 'lambda: 0'",
    ),
    (
        "event-threshold-string",
        GOOD.replace(_FUNCTIONAL, _EVENT.replace("above = 1", 'above = "1"')),
        HypothesisFileError,
        "hypothesis[0].prediction.first.above: expected a number, got '1'",
    ),
    (
        "at-event-formula",
        GOOD.replace('name = "h"', 'name = "h"\nat = { expression = "x[0]", below = 1 }'),
        HypothesisFileError,
        "hypothesis[0].at.expression: Cannot parse the formula 'x[0]': subscript 'x[0]'",
    ),
    ("at-date", GOOD.replace('name = "h"', 'name = "h"\nat = 2020-01-01'), HypothesisFileError, "at: expected"),
    (
        "tolerance-negative",
        GOOD.replace(_FUNCTIONAL, _EVENT + ", tolerance = -1"),
        HypothesisFileError,
        "hypothesis[0].prediction.tolerance: must be >= 0, got -1",
    ),
    (
        "levels-one",
        GOOD.replace(_FUNCTIONAL, 'kind = "equivalence", by = "x", levels = [1]'),
        HypothesisFileError,
        "hypothesis[0].prediction.levels: expected exactly two values, got [1]",
    ),
    ("tests-wrong-kind", GOOD.replace('name = "h"', 'name = "h"\ntests = ["kendall"]'), HypothesisFileError, "tests"),
    ("duplicate-names", GOOD + GOOD, HypothesisFileError, "hypothesis.name: duplicate names ['h']"),
]


@pytest.mark.parametrize(("ident", "content", "error", "fragment"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_give_a_named_error(ident, content, error, fragment, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(error) as info:
        load_hypotheses(path)
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_missing_and_directory_paths_name_the_path(tmp_path):
    for path in (tmp_path / "missing.toml", tmp_path):
        with pytest.raises(FileNotFoundError, match=f"No hypothesis file at '{path}'"):
            load_hypotheses(path)


def test_the_committed_files_are_valid():
    for path in COMMITTED:
        assert load_hypotheses(path), path


# ---- fuzzing ----

KEYS = (
    "hypothesis alpha controls name quantity outcome prediction kind direction expression null method fit_on p0 first "
    "second above below tolerance variable by levels paired scope specs phenomena axes environment tests at "
    "equivalence_margin confounders n_test description"
).split()
SAFE_TEXT = st.text(max_size=12)
#: formulas from the allowed and the forbidden grammars, and the attacks
FORMULAS = st.one_of(
    st.sampled_from(["test_error = a + b*q", "a*log(q) + c", "p_train - p_test", "x**2", "Max(a, b)", "q"]),
    st.sampled_from([text for _, text, _ in ATTACKS if len(text) < 2000]),
    st.sampled_from(["test_error = ", "test_error = " + "x+" * 600 + "x"]),
    st.tuples(st.sampled_from(["test_error", "_t", "a b", ""]), SAFE_TEXT).map(lambda t: f"{t[0]} = {t[1]}"),
)
SCALARS = st.one_of(
    SAFE_TEXT,
    FORMULAS,
    st.sampled_from([k.value for k in Kind] + [t.value for t in Test] + ["increasing", "decreasing", "final"]),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_subnormal=False),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | SAFE_TEXT, inner, max_size=4),
    max_leaves=12,
)


def near(good):
    """Mostly ``good`` values, one time in twenty a random tree in their place."""
    return st.integers(0, 19).flatmap(lambda i: TREES if i == 0 else good)


def table(required, optional):
    return st.fixed_dictionaries(
        {k: near(v) for k, v in required.items()}, optional={k: near(v) for k, v in optional.items()}
    )


NAMES = st.sampled_from(["q", "p_test", "width", "init_scale", "test_error", "a", ""])
LAWS = st.sampled_from(["test_error = a + b*q", "test_error = a*log(q)/width + c", "test_error = Max(a, b*q**2)"])
EVENTS = table(
    {"expression": st.sampled_from(["p_train - p_test", "test_error", "sqrt(q)"]) | FORMULAS},
    {"above": st.floats(-1, 1, allow_subnormal=False), "below": st.integers(-1, 1)},
)
PREDICTIONS = st.one_of(
    table({"kind": st.just("rank")}, {"direction": st.sampled_from(["increasing", "decreasing", "up"])}),
    table(
        {"kind": st.just("functional"), "expression": LAWS | FORMULAS},
        {
            "null": LAWS | FORMULAS,
            "method": st.sampled_from(["curve_fit", "huber", "ols"]),
            "fit_on": NAMES | st.integers(),
            "p0": st.dictionaries(NAMES, st.floats(allow_subnormal=False) | st.booleans(), max_size=2),
        },
    ),
    table({"kind": st.just("event_order"), "first": EVENTS, "second": EVENTS}, {"tolerance": st.integers(-2, 50)}),
    table(
        {"kind": st.just("equivalence"), "by": NAMES, "levels": st.lists(st.integers(0, 3), max_size=3)},
        {"variable": NAMES, "paired": st.booleans()},
    ),
)
HYPOTHESIS_TABLES = table(
    {"name": st.text(max_size=4), "quantity": NAMES, "outcome": st.just("test_error"), "prediction": PREDICTIONS},
    {
        "scope": table({}, {"specs": st.lists(NAMES, max_size=2), "axes": st.lists(NAMES, max_size=2)}),
        "tests": st.lists(st.sampled_from([t.value for t in Test] + ["t"]), max_size=3),
        "at": st.sampled_from(["final", "initial", "last"]) | st.integers(-1, 10) | EVENTS,
        "alpha": st.floats(0, 0.6, allow_subnormal=False),
        "equivalence_margin": st.floats(-0.1, 1, allow_subnormal=False),
        "confounders": st.lists(NAMES, max_size=2),
        "controls": st.lists(NAMES, max_size=2),
        "n_test": st.integers(-1, 1000),
        "description": st.text(max_size=8),
    },
)


@FUZZ
@given(tree=st.dictionaries(st.sampled_from(KEYS) | SAFE_TEXT, TREES, max_size=5))
def test_random_trees_give_a_named_error(tree):
    check(to_toml(tree))


@FUZZ
@given(tables=st.lists(HYPOTHESIS_TABLES, min_size=1, max_size=2), alpha=st.none() | near(st.floats(0.001, 0.4)))
def test_random_hypothesis_tables_give_a_named_error(tables, alpha):
    tree = {"hypothesis": tables} if alpha is None else {"alpha": alpha, "hypothesis": tables}
    check(to_toml(tree))


def _places(tree):
    """Every (container, key) of a parsed TOML tree."""
    for key, value in list(tree.items() if isinstance(tree, dict) else enumerate(tree)):
        yield tree, key
        if isinstance(value, dict | list):
            yield from _places(value)


COMMITTED_TREES = [tomllib.loads(p.read_text()) for p in COMMITTED]


@FUZZ
@given(data=st.data())
def test_mutated_committed_files_give_a_named_error(data):
    tree = copy.deepcopy(data.draw(st.sampled_from(COMMITTED_TREES), label="file"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        places = list(_places(tree))
        if not places:
            break
        container, key = data.draw(st.sampled_from(places), label="where")
        action = data.draw(st.sampled_from(["drop", "value", "formula", "tree"]), label="action")
        if action == "drop":
            del container[key]
        else:
            strategy = {"value": SCALARS, "formula": FORMULAS, "tree": TREES}[action]
            container[key] = data.draw(strategy, label="new")
    check(to_toml(tree))


@FUZZ
@given(data=st.data())
def test_mutated_committed_texts_give_a_named_error(data):
    text = data.draw(st.sampled_from([p.read_text() for p in COMMITTED]), label="file")
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        at = data.draw(st.integers(0, len(text)), label="at")
        cut = data.draw(st.integers(0, 20), label="cut")
        text = text[:at] + data.draw(st.text(max_size=8), label="insert") + text[at + cut :]
    check(text)


def test_the_fuzzers_toml_writer_round_trips():
    for tree in COMMITTED_TREES:
        assert tomllib.loads(to_toml(tree)) == tree
    odd = {'k"\\\n\x7f': [1.5, -0.0, True, dt.date(1, 1, 1), dt.datetime(2020, 1, 1, 0, 0, 0, 1), dt.time(1, 2), {}]}
    assert tomllib.loads(to_toml(odd)) == odd
