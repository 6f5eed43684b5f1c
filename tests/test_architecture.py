"""The package's shape, read from its source with ast: imports run one way (the engine never imports a
printer or the answer-key code), and only the op modules know an op by its name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import examsolver

PACKAGE = Path(examsolver.__file__).parent
FORBIDDEN_FROM_ENGINE = ("examsolver.render", "examsolver.verify", "examsolver.diagnose")


def modules(under: str):
    for path in sorted((PACKAGE / under).rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def imported(tree) -> list[tuple[int, str]]:
    """(line, module) of every import in the module, at the top or inside a function."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def forbidden_imports(tree) -> list[tuple[int, str]]:
    return [(line, name) for line, name in imported(tree)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_FROM_ENGINE)]


def test_the_engine_imports_no_printer_and_no_answer_key_code():
    found = [f"{path.relative_to(PACKAGE)}:{line}: {name}"
             for path, tree in modules("engine") for line, name in forbidden_imports(tree)]
    assert not found, "the engine imports a printer or the answer-key code:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    "from examsolver.render.values import plain\n",
    "def f():\n    from examsolver import verify\n",
    "import examsolver.diagnose.catalogue as c\n",
])
def test_the_import_scan_flags_a_planted_import(source):
    assert forbidden_imports(ast.parse(source))
