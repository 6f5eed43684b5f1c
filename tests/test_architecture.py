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


def test_the_notation_imports_no_printer_and_no_engine():
    """notation/ is what the engine and the printers share: it reads neither (no circle through it)."""
    found = [f"{path.relative_to(PACKAGE)}:{line}: {name}"
             for path, tree in modules("notation") for line, name in imported(tree)
             if name.startswith(("examsolver.render", "examsolver.engine", "examsolver.verify", "examsolver.diagnose"))]
    assert not found, "notation/ imports a printer or the engine:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    "from examsolver.render.values import plain\n",
    "def f():\n    from examsolver import verify\n",
    "import examsolver.diagnose.catalogue as c\n",
])
def test_the_import_scan_flags_a_planted_import(source):
    assert forbidden_imports(ast.parse(source))


# ----- only engine/ops knows an op by its name ---------------------------------------------
# Words an op shares with another vocabulary, recognised by what they are compared with: the
# operators of formulas and of closed forms (node.op == "mul", op == "sigmoid"), a reduction
# (loss_over == "sum"), a plot's axis scale ("linear").
OTHER_VOCABULARIES = {"op", "loss_over", "get_scale"}


def op_names() -> set[str]:
    from examsolver.engine.ops import LAYERS, LOSSES
    from examsolver.engine.ops.base import DERIVATION_ONLY

    return set(LAYERS) | set(LOSSES) | set(DERIVATION_ONLY)


def _strings(node) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for e in node.elts for s in _strings(e)]
    return []


def _identifier(node) -> str | None:
    """The last name in `a.b.kind`, `kind`, `axis.get_scale()`."""
    if isinstance(node, ast.Call):
        node = node.func
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None


def branches_on_op_names(tree, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) where code compares with an op's name (==, !=, in, match) or keeps a table
    keyed by op names (a dict literal whose keys are mostly op names)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_identifier(side) in OTHER_VOCABULARIES for side in sides):
                continue
            found += [(node.lineno, s) for side in sides for s in _strings(side) if s in names]
        elif isinstance(node, ast.MatchValue):
            found += [(node.lineno, s) for s in _strings(node.value) if s in names]
        elif isinstance(node, ast.Dict):
            keys = [s for k in node.keys if k is not None for s in _strings(k)]
            hits = [k for k in keys if k in names]
            if keys and 2 * len(hits) > len(keys):
                found += [(node.lineno, k) for k in hits]
    return found


def test_no_code_outside_the_op_modules_branches_on_an_op_name():
    names = op_names()
    found = [f"{path.relative_to(PACKAGE)}:{line}: {name!r}"
             for path, tree in modules(".") if "engine/ops" not in path.as_posix()
             for line, name in branches_on_op_names(tree, names)]
    assert not found, "code outside engine/ops branches on an op's name:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    "if kind == 'linear':\n    pass\n",
    "if task.loss != 'nll':\n    pass\n",
    "ok = layer.kind in ('relu', 'sigmoid')\n",
    "RULES = {'relu': 1, 'tanh': 2}\n",
    "match kind:\n    case 'softmax':\n        pass\n",
])
def test_the_op_name_scan_flags_a_planted_branch(source):
    assert branches_on_op_names(ast.parse(source), op_names())


@pytest.mark.parametrize("source", [
    "if node.op == 'mul':\n    pass\n",
    "FUNCTIONS = {'ln': 1, 'exp': 2, 'tanh': 3}\n",
])
def test_the_op_name_scan_leaves_other_vocabularies_alone(source):
    assert not branches_on_op_names(ast.parse(source), op_names())
