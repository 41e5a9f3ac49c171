"""The README's set-up commands (issue 11, item 1): CI runs exactly them, and the extras they install cover every
package the tests import (``tests/empirics/test_ray.py`` imported ray while ``dev`` did not install it)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shlex
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"theory", "empirics", "bridge", "tests"}


def _readme_bash_blocks() -> list[str]:
    return re.findall(r"^```bash\n(.*?)\n```$", (ROOT / "README.md").read_text(), flags=re.S | re.M)


def _ci_command(name: str) -> str:
    match = re.search(rf"^{name}=(.+)$", (ROOT / ".ci" / "run").read_text(), flags=re.M)
    assert match, f".ci/run defines no {name}"
    return shlex.split(match.group(1))[0]


def test_ci_runs_the_readme_set_up_and_test_commands_verbatim():
    setup, tests = _readme_bash_blocks()[:2]
    assert (_ci_command("SETUP"), _ci_command("TESTS")) == (setup, tests)
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'bash -euo pipefail -c "$SETUP"' in ci and 'bash -euo pipefail -c "$TESTS"' in ci
    assert "ruff check ." in ci and tests == "python -m pytest -q"


def _extras_of_readme_install() -> set[str]:
    (target,) = re.findall(r'pip install -e "\.\[([^\]]*)\]"', _readme_bash_blocks()[0])
    return {e.strip() for e in target.split(",")}


def _installed_by(extras: set[str]) -> set[str]:
    """Distributions the README's install brings: the project's dependencies and extras (its own extras expanded),
    then everything they require in turn (from the installed metadata, extras of dependencies left out)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(r) for r in project["dependencies"]]
    seen_extras: set[str] = set()
    todo = set(extras)
    while todo:
        extra = todo.pop()
        seen_extras.add(extra)
        for req in map(Requirement, project["optional-dependencies"][extra]):
            if canonicalize_name(req.name) == canonicalize_name(project["name"]):
                todo |= set(req.extras) - seen_extras
            else:
                pending.append(req)
    found: set[str] = set()
    while pending:
        req = pending.pop()
        name = canonicalize_name(req.name)
        if name in found or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        found.add(name)
        try:
            pending += [Requirement(r) for r in importlib.metadata.requires(req.name) or []]
        except importlib.metadata.PackageNotFoundError:
            pass  # not installed here: the test below names the import it would miss
    return found


def _third_party_imports() -> set[str]:
    """Top-level modules the tests import, less the standard library, this project and the test modules (those in
    tests/ and the ``NAME.py`` files a test writes before importing them)."""
    local = LOCAL | {p.stem for p in (ROOT / "tests").rglob("*.py")}
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"\w+\.py", node.value):
                local.add(node.value.removesuffix(".py"))
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in local}


def test_the_readme_install_brings_every_package_the_tests_import():
    extras = _extras_of_readme_install()
    assert "dev" in extras
    installed = _installed_by(extras)
    providers = importlib.metadata.packages_distributions()
    missing = {
        module: providers.get(module, [])
        for module in sorted(_third_party_imports())
        if not {canonicalize_name(d) for d in providers.get(module, [])} & installed
    }
    assert missing == {}, f"tests import these, the README's install ({sorted(extras)}) does not bring them"
    assert {"ray", "pytest", "hypothesis", "pyarrow"} <= installed
