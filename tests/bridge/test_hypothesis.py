"""Hypothesis TOML files: the worked examples parse; malformed files name file, key and reason."""

from pathlib import Path

import pytest

from bridge.hypothesis import DEFAULT_CONTROLS, HypothesisFileError, Kind, Test, load_hypotheses, parse_hypotheses

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "bridge" / "hypotheses").glob("*.toml"))

RANK = """
alpha = 0.01
[[hypothesis]]
name = "h"
quantity = "q"
outcome = "test_error"
scope = { axes = ["width"] }
prediction = { kind = "rank", direction = "decreasing" }
"""


def test_worked_examples_parse():
    assert len(EXAMPLES) >= 2
    kinds = {h.prediction.kind for path in EXAMPLES for h in load_hypotheses(path)}
    assert kinds == set(Kind)


def test_defaults_and_file_level_settings():
    (h,) = parse_hypotheses(RANK)
    assert h.alpha == 0.01
    assert h.prediction.direction == -1
    assert h.controls == DEFAULT_CONTROLS
    # robust_sign_error is opt-in: with <= 10 seeds it almost never passes (benchmarks/calibration.py)
    assert h.tests == (Test.KENDALL, Test.PSI, Test.CMI, Test.PARTIAL)
    (opted,) = parse_hypotheses(RANK.replace('name = "h"', 'name = "h"\ntests = ["kendall", "robust_sign_error"]'))
    assert opted.tests == (Test.KENDALL, Test.ROBUST)
    assert h.at == "final" and h.scope.environment == "spec"
    # a default (or file-level) control that is the quantity itself is dropped: a quantity is never its own control
    (prime,) = parse_hypotheses(RANK.replace('quantity = "q"', 'quantity = "prime_count"'))
    assert prime.controls == tuple(c for c in DEFAULT_CONTROLS if c != "prime_count") and len(prime.controls) == 2
    (file_level,) = parse_hypotheses('controls = ["q", "random_measure"]\n' + RANK)
    assert file_level.controls == ("random_measure",)


def test_functional_and_event_predictions():
    text = """
[[hypothesis]]
name = "f"
quantity = "p_test"
outcome = "err"
prediction = { kind = "functional", expression = "err = a + b*p_test", p0 = { a = 0.5 } }
[[hypothesis]]
name = "e"
quantity = "p_test"
outcome = "test_error"
[hypothesis.prediction]
kind = "event_order"
first = { expression = "p_train - p_test", above = 0.1 }
second = { expression = "test_error", below = 0.5 }
tolerance = 10
"""
    f, e = parse_hypotheses(text)
    assert f.prediction.null.text == "err = c_null"
    assert f.prediction.p0 == (("a", 0.5),)
    assert e.prediction.first.quantities == ("p_test", "p_train") and e.prediction.first.above
    assert not e.prediction.second.above and e.prediction.tolerance == 10.0
    (at_event,) = parse_hypotheses(
        RANK.replace(
            'outcome = "test_error"', 'outcome = "test_error"\nat = { expression = "test_error", below = 0.5 }'
        )
    )
    assert at_event.at.text == "test_error" and at_event.at.threshold == 0.5


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (('name = "h"', 'nom = "h"'), r"hypothesis\[0\]\.name", "missing required key"),
        (('quantity = "q"', 'quantity = "q"\ncolour = 1'), r"hypothesis\[0\]\.colour", "unknown key"),
        (('kind = "rank"', 'kind = "ranking"'), r"hypothesis\[0\]\.prediction\.kind", "must be one of"),
        (('"decreasing"', '"down"'), r"hypothesis\[0\]\.prediction\.direction", "'increasing' or 'decreasing'"),
        (("alpha = 0.01", "alpha = 0.7"), r"hypothesis\[0\]\.alpha", r"\(0, 0\.5\)"),
        (("alpha = 0.01", 'alpha = "small"'), "alpha", "expected a number"),
        (('axes = ["width"]', "axes = []"), r"hypothesis\[0\]\.scope\.axes", "need hyperparameter axes"),
        (('axes = ["width"]', "axes = [1]"), r"hypothesis\[0\]\.scope\.axes", "non-empty strings"),
        (
            ('outcome = "test_error"', 'outcome = "test_error"\ntests = ["fit"]'),
            r"hypothesis\[0\]\.tests",
            "does not apply",
        ),
        (
            ('outcome = "test_error"', 'outcome = "test_error"\nat = -3'),
            r"hypothesis\[0\]\.at",
            "'final', 'initial', a step",
        ),
        (
            ('outcome = "test_error"', 'outcome = "test_error"\ncontrols = ["random_measure", "q"]'),
            r"hypothesis\[0\]\.controls",
            "'q' is the hypothesis's quantity: a quantity is never its own control",
        ),
        (("[[hypothesis]]", "[hypothesis]"), "hypothesis", "expected an array"),
        (("prediction = {", "prediction = {{"), "<toml>", ""),
    ],
)
def test_malformed_files_name_file_key_reason(tmp_path, edit, key, reason):
    path = tmp_path / "bad.toml"
    path.write_text(RANK.replace(*edit))
    with pytest.raises(HypothesisFileError, match=rf"bad\.toml: {key}: .*{reason}"):
        load_hypotheses(path)


@pytest.mark.parametrize(
    ("prediction", "key", "reason"),
    [
        ('{ kind = "functional", expression = "gap = a*q" }', "expression", "must be the hypothesis outcome"),
        ('{ kind = "functional", expression = "err = a +* q" }', "expression", "Cannot parse"),
        ('{ kind = "equivalence", by = "init", levels = [1] }', "levels", "exactly two values"),
        ('{ kind = "equivalence", by = "init", levels = [1, 2] }', "equivalence_margin", "needs a margin"),
        (
            '{ kind = "event_order", first = { expression = "a", above = 1, below = 2 }, second = '
            '{ expression = "b", below = 1 } }',
            "first.above",
            "exactly one",
        ),
    ],
)
def test_malformed_predictions(prediction, key, reason):
    text = f'[[hypothesis]]\nname = "h"\nquantity = "q"\noutcome = "err"\nprediction = {prediction}\n'
    with pytest.raises(HypothesisFileError, match=rf"^x\.toml: hypothesis\[0\]\.(prediction\.)?{key}: .*{reason}"):
        parse_hypotheses(text, source="x.toml")


def test_duplicate_names_and_empty_files():
    with pytest.raises(HypothesisFileError, match="duplicate names"):
        parse_hypotheses(RANK + RANK.replace("alpha = 0.01", ""))
    with pytest.raises(HypothesisFileError, match="missing required key"):
        parse_hypotheses("alpha = 0.05")
    with pytest.raises(FileNotFoundError):
        load_hypotheses("/nonexistent/h.toml")


LAW = """
[[hypothesis]]
name = "law"
quantity = "p_test"
outcome = "err"
tests = ["fit"]
scope = {{ axes = ["width"] }}
[hypothesis.prediction]
kind = "functional"
expression = "err = a + b*log(p_test) + c*log(p_test)**2"
constraints = {constraints}
"""


def test_law_constraints_parse_without_evaluation():
    (h,) = parse_hypotheses(LAW.format(constraints='["c > 0", " b<=-1.5e-3 ", "a >= 0"]'))
    assert [c.text for c in h.prediction.constraints] == ["c > 0", "b <= -0.0015", "a >= 0"]
    assert [(c.parameter, c.op, c.bound) for c in h.prediction.constraints][1] == ("b", "<=", -0.0015)
    (plain,) = parse_hypotheses(LAW.format(constraints="[]"))
    assert plain.prediction.constraints == ()


@pytest.mark.parametrize(
    ("constraints", "reason"),
    [
        ('["c >> 0"]', "must read 'PARAM OP NUMBER'"),
        ('["c > 1 + 1"]', "must read 'PARAM OP NUMBER'"),
        ('["c != 0"]', "must read 'PARAM OP NUMBER'"),
        ('["0 < c"]', "must read 'PARAM OP NUMBER'"),
        ('["c > 1e999"]', "finite number"),
        ("[\"__import__('os').system('touch pwned') > 0\"]", "must read 'PARAM OP NUMBER'"),
        ('["d > 0"]', r"names 'd', not a free parameter of the expression \['a', 'b', 'c'\]"),
        ('["p_test > 0"]', "names 'p_test', not a free parameter"),  # the quantity is data
        ('["err > 0"]', "names 'err', not a free parameter"),
        ('"c > 0"', "expected a list of names"),
    ],
)
def test_malformed_constraints_name_file_and_key(tmp_path, constraints, reason):
    with pytest.raises(HypothesisFileError, match=rf"^x\.toml: hypothesis\[0\]\.prediction\.constraints: .*{reason}"):
        parse_hypotheses(LAW.format(constraints=constraints), source="x.toml")
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_constraints_on_axes_or_without_a_fit_test_are_refused():
    on_axis = LAW.replace("b*log(p_test)", "b*log(width)").format(constraints='["width > 0"]')
    with pytest.raises(HypothesisFileError, match="names 'width', not a free parameter"):
        parse_hypotheses(on_axis, source="x.toml")
    no_fit = LAW.replace('tests = ["fit"]', 'tests = ["out_of_setting"]').format(constraints='["c > 0"]')
    with pytest.raises(HypothesisFileError, match=r"prediction\.constraints: .*judged by the 'fit' test"):
        parse_hypotheses(no_fit, source="x.toml")
