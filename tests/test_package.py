"""The package layout: data flows theory <- empirics <- bridge, never the other way."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"theory": {"empirics", "bridge"}, "empirics": {"bridge"}, "bridge": set()}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN[package]]
    assert offenders == []


def test_validation_errors_name_argument_expected_and_actual():
    from theory._validation import check_in_range, check_option, check_positive_int

    with pytest.raises(ValueError, match=r"'method' parameter of f must be one of 'a', 'b'\. Got 'c'"):
        check_option("method", "c", ["a", "b"], owner="f")
    with pytest.raises(ValueError, match="positive int"):
        check_positive_int("n", 0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        check_in_range("alpha", 0.0, 0, 1, inclusive=(False, True))
    assert check_in_range("alpha", 0.5, 0, 1) == 0.5


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_every_public_name_resolves(package):
    module = __import__(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert module.__all__ and missing == []
