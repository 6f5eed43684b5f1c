"""Hostile inputs drawn from a random.Random: expressions, mutated problem files and answer files.

One generator serves both the bounded fuzz tests (tests/test_hostile_fuzz.py, hypothesis supplies the
Random) and the long run (benchmarks/fuzz_hostile.py, 10⁵ inputs).  `run_one` says how examsolver
answered an input: "ok", "refused" (a located SpecError or another user error), or "internal" with
the exception: the only outcome that is a bug.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = sorted((ROOT / "problems").glob("*.yaml"))

TOKENS = ["0", "1", "2", "3", "7", "64", "10", "1e300", "25e-141", "1.3", "0.5", "-1", "2**64", "18446744073709551616",
          "e", "pi", "x", "y", "ln", "log", "exp", "sqrt", "tanh", "sigmoid", "cosh", "sinh", "max", "abs",
          "(", ")", "[", "]", ",", "+", "-", "*", "/", "**", "^", " ", "ln(0)", "1/0", "exp(exp(10))",
          "__import__", "lambda", ".", "'", "\"", "{", "}", ":", "0x10", "1_000", "−", "·", "√", "\0", "\n"]

HOSTILE_VALUES = [
    None, True, False, 0, -1, 10**18, 2**64, -10**30, "", " ", "x", "1/0", "ln(0)", "e**1000", "exp(exp(exp(10)))",
    "(((2**64)**64)**64)**64", "1e300**64", "25e-141**25e-141", "[1, 2", "<script>alert(1)</script>", "２", "NaN",
    "inf", [], {}, [[]], {"a": 1}, {"value": 1}, [1, [2]], "1" * 500, "[" * 30 + "1" + "]" * 30, [[1] * 50] * 50,
    {"shape": [10000, 10000, 10000], "entries": [{"at": [0, 0, 0]}]}, "sqrt(-1)", "x**64**64", "!!python/object",
]


def random_expression(rng: random.Random) -> str:
    if rng.random() < 0.3:      # a mutation of a well-formed expression
        base = rng.choice(["ln(2)/9*6", "[[6, -1, 3], [-5, -1, -3]] * ln(2)/9", "sqrt(2)**3", "1/(1+exp(-x))",
                           "2**-3", "tanh(1)", "(x+1)**64", "max(x, y)", "1.25e-3", "[1, 2]*pi"])
        chars = list(base)
        for _ in range(rng.randint(1, 4)):
            k = rng.randrange(len(chars) + 1)
            chars.insert(k, rng.choice(TOKENS))
        return "".join(chars)
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 25)))


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


def _set(root, path, value):
    node = root
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _get(root, path):
    for part in path:
        root = root[part]
    return root


def mutate(data, rng: random.Random, count: int | None = None):
    """A copy of a problem's data with a few nodes replaced, deleted, duplicated or retyped."""
    data = copy.deepcopy(data)
    for _ in range(count or rng.randint(1, 3)):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent, last = _get(data, path[:-1]), path[-1]
        action = rng.random()
        if action < 0.5:
            _set(data, path, copy.deepcopy(rng.choice(HOSTILE_VALUES + [random_expression(rng)])))
        elif action < 0.65:
            del parent[last]
        elif action < 0.8:      # copies, not shared references: a later mutation changes one place
            value = _get(data, path)
            copies = [value] * rng.randint(2, 40) if not isinstance(value, list) else value * 2
            _set(data, path, copy.deepcopy(copies))
        else:
            value = _get(data, path)
            _set(data, path, str(value) if not isinstance(value, str) else rng.choice([1, [value], {value: 1}]))
    return data


def random_answers(results: list, rng: random.Random) -> dict:
    names = list(results) + ["nope", ""]
    return {rng.choice(names): copy.deepcopy(rng.choice(HOSTILE_VALUES + [random_expression(rng)]))
            for _ in range(rng.randint(1, 4))}


def load_problems() -> list:
    return [(p.name, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in PROBLEMS]


def _classify(action):
    from examsolver.errors import ExamsolverError, ExprError

    try:
        action()
    except (ExamsolverError, ExprError):
        return "refused", None
    except Exception as err:      # noqa: BLE001 - what the fuzzer is looking for
        return "internal", err
    return "ok", None


def run_expression(text: str):
    import sympy

    from examsolver.spec.expr import parse_symbolic, parse_value

    symbols = {"x": sympy.Symbol("x"), "y": sympy.Symbol("y")}
    first = _classify(lambda: parse_value(text))
    if first[0] == "internal":
        return first
    return _classify(lambda: parse_symbolic(text, symbols))


def run_spec(data) -> tuple:
    from examsolver.pipeline import solve_document
    from examsolver.render.output import render_document
    from examsolver.spec.load import load_text

    def action():
        text = yaml.safe_dump(data, allow_unicode=True)
        solution = solve_document(load_text(text, "fuzz.yaml"), with_alternatives=False)
        render_document([solution], "md", "en")
        render_document([solution], "json", "en")      # the machine-readable results too

    return _classify(action)


def run_answers(data, answers: dict, tmp: Path) -> tuple:
    from examsolver.verify import verify_file

    spec, key = tmp / "spec.yaml", tmp / "answers.yaml"
    spec.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    key.write_text(yaml.safe_dump({"answers": answers}, allow_unicode=True), encoding="utf-8")

    def action():
        report = verify_file(spec, answers_file=key)
        if report.internal:
            raise AssertionError(report.errors)

    return _classify(action)
