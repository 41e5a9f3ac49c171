"""Parameter constraints as data: every built-in phenomenon declares one for each parameter, a spec breaking one is
rejected at load naming the file and the key, and the run checks the same rules (issue 11: ``n_train = -100``
passed validation and failed only when the run started)."""

from __future__ import annotations

import math

import pytest

from empirics.phenomena import PHENOMENA, get_phenomenon
from empirics.phenomena.constraints import Each, Interval, OneOf, Rule, first_problem
from empirics.spec import SpecError, load_spec

get_phenomenon("double_descent_mlp")  # registers every built-in phenomenon
BUILTINS = sorted(name for name, cls in PHENOMENA.items() if cls.__module__.startswith("empirics.phenomena."))

#: values that break a Rule, which no generic generator can invent: (phenomenon, parameter) -> (params, value)
RULE_BREAKERS = {
    ("double_descent_mlp", "classes"): ({}, [3]),
    ("double_descent_epochwise", "classes"): ({}, [2, 2]),
    ("double_descent_mlp", "one_output"): ({"loss": "mse"}, True),  # ten classes, one output
    ("double_descent_epochwise", "one_output"): ({"classes": [0, 1]}, True),  # cross-entropy, one output
    ("double_descent_rff", "n_test"): ({"n_train": 1000}, 1000),
    ("grokking_modular", "p"): ({}, 12),
    ("grokking_modular", "train_fraction"): ({"p": 5}, 0.01),
    ("grokking_modular", "heads"): ({"model": "modular_transformer", "d_model": 6}, 4),
}


def _constraints(name: str) -> dict:
    cls = PHENOMENA[name]
    return {k: v if isinstance(v, tuple) else (v,) for k, v in cls.constraints.items()}


def _breaking_values(name: str, param: str) -> list[tuple[dict, object]]:
    """Invalid values generated from the declared constraints (scikit-learn's habit), plus the Rule examples."""
    default = PHENOMENA[name].parameters[param]
    out = []
    for constraint in _constraints(name)[param]:
        if isinstance(constraint, Interval):
            if isinstance(constraint.low, (int, float)):
                out.append(({}, type(default)(constraint.low - 1)))
            if isinstance(constraint.high, (int, float)):
                out.append(({}, type(default)(constraint.high + 1)))
            if constraint.low is None and constraint.high is None:
                out.append(({}, math.inf))
        elif isinstance(constraint, OneOf):
            out.append(({}, "no-such-option" if isinstance(default, str) else 7))
        elif isinstance(constraint, Each):
            out.append(({}, [0.5]))
        elif isinstance(constraint, Rule):
            out.append(RULE_BREAKERS[(name, param)])
    return out


CASES = [
    pytest.param(name, param, other, value, id=f"{name}.{param}={value!r}")
    for name in BUILTINS
    for param in PHENOMENA[name].constraints
    for other, value in _breaking_values(name, param)
]


@pytest.mark.parametrize("name", BUILTINS)
def test_every_parameter_of_every_builtin_phenomenon_is_constrained(name):
    cls = PHENOMENA[name]
    typed_only = {k for k, v in cls.parameters.items() if isinstance(v, bool)} | {"seed"}  # the type says it all
    assert set(cls.parameters) - typed_only - set(cls.constraints) == set()
    assert set(cls.constraints) <= set(cls.parameters)
    assert first_problem(cls.parameters, cls.constraints, dict(cls.parameters)) is None  # the defaults are valid


def _toml(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "inf" if value == math.inf else repr(value)


@pytest.mark.parametrize(("name", "param", "other", "value"), CASES)
def test_a_spec_breaking_a_constraint_is_rejected_at_load_naming_file_and_key(tmp_path, name, param, other, value):
    path = tmp_path / "bad.toml"
    params = "\n".join(f"{k} = {_toml(v)}" for k, v in {**other, param: value}.items())
    path.write_text(f"name = 'bad'\nphenomenon = '{name}'\n[params]\n{params}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert (err.value.source, err.value.key) == (str(path), f"params.{param}")
    assert f"got {value!r}" in err.value.reason
    with pytest.raises(ValueError, match=f"The '{param}' parameter of {name} must be"):
        get_phenomenon(name).resolve({**other, param: value})  # the run checks the very same rules


def test_the_issue_probe_n_train_minus_100(tmp_path):
    path = tmp_path / "dd.toml"
    path.write_text("name = 'dd'\nphenomenon = 'double_descent_mlp'\n[params]\nn_train = -100\n")
    with pytest.raises(SpecError, match=r"key 'params.n_train': expected a value in \[1, inf\), got -100$"):
        load_spec(path)


def test_a_swept_value_and_a_bound_set_elsewhere_are_named_where_the_spec_sets_them(tmp_path):
    path = tmp_path / "lmc.toml"
    path.write_text(
        "name = 'x'\nphenomenon = 'linear_mode_connectivity'\n[params]\nrewind_step = 2\n[sweep]\nsteps = [5, 1]\n"
    )
    with pytest.raises(SpecError, match=r"key 'params.rewind_step': expected a value in \[0, steps=1\), got 2"):
        load_spec(path)
    path.write_text("name = 'x'\nphenomenon = 'linear_mode_connectivity'\n[sweep]\nrewind_step = [0, 3000]\n")
    with pytest.raises(SpecError, match=r"key 'sweep.rewind_step': expected a value in \[0, steps=3000\), got 3000"):
        load_spec(path)
    path.write_text(
        "name = 'x'\nphenomenon = 'grokking_modular'\n[params]\nmodel = 'modular_transformer'\nd_model = 6\n"
    )
    with pytest.raises(SpecError, match=r"key 'params.d_model': makes the default heads = 4 invalid: heads must be"):
        load_spec(path)


def test_quick_overrides_are_checked_against_the_constraints_too(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text("name = 'x'\nphenomenon = 'grokking_teacher'\n[quick]\nparams = { alpha = 0.0 }\n")
    with pytest.raises(SpecError, match=r"key 'quick.params.alpha': expected a value in \(0, inf\), got 0.0"):
        load_spec(path)


def test_intervals_describe_their_ends_and_read_bounds_from_the_run():
    assert Interval(0, 1, closed="left").problem(1.0, {}) == "a value in [0, 1)"
    assert Interval(0, 1, closed="left").problem(0, {}) is None
    assert Interval(0, "steps", closed="left").problem(5, {"steps": 5}) == "a value in [0, steps=5)"
    assert Interval(1, None, integer=True).problem(2.0, {}) == "an integer in [1, inf)"
    assert Interval().problem(math.nan, {}) == "a value in (-inf, inf)"
    assert Interval(None, 0).problem(True, {}) is not None  # a boolean is no number
    assert Each(Interval(1, None, integer=True), min_len=1).problem([], {}).startswith("a list of at least 1 values")
