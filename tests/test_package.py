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


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports anywhere (top level, functions, ``TYPE_CHECKING`` blocks,
    ``importlib.import_module("literal")``): a lazy import still closes a circle when it runs. Imports of a
    module's own ancestor packages are left out: a registry package's ``__init__`` runs before the submodules that
    register into it (``empirics.models``, ``empirics.phenomena``), the one circle Python resolves by design."""
    root = ROOT / package
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in root.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                parent = ".".join(base.split(".")[: len(base.split(".")) - node.level + 1]) if node.level else ""
                module = ".".join(filter(None, [parent, node.module]))
                targets |= {f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names}
            elif (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in ("importlib.import_module", "import_module")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                targets.add(node.args[0].value)
        graph[name] = {t for t in targets if t in modules and t != name and not name.startswith(f"{t}.")}
    return graph


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_circle_inside_a_package(package):
    """Issue 11: ``empirics.controls -> phenomena.base -> recorder -> controls/quantities`` was a circle; Snapshot
    lives in ``empirics.snapshot`` now. ``graphlib`` raises ``CycleError`` naming the modules of any circle."""
    import graphlib

    graph = _import_graph(package)
    assert graph and any(graph.values())  # the walk found the package's imports
    graphlib.TopologicalSorter(graph).prepare()


def test_snapshot_keeps_its_public_import_paths():
    from empirics.phenomena import Snapshot as from_package
    from empirics.phenomena.base import Snapshot as from_base
    from empirics.snapshot import Snapshot

    assert from_base is from_package is Snapshot
