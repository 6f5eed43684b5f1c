"""The `vary:` block of a spec (which values an exam variant may change, and how) and the paths that
name a value of the spec: `data.x`, `data[1].y`, `model.conv1.kernels`, `model.fc2.b`.

A path walks the YAML: a mapping by key, a list by index, and the list of layers also by a layer's
`name:` (or its kind, for an unnamed layer).  Inside a tensor, indices pick an entry (`data.x[0]`).
Paths and the `where:` constraints are read with `ast.parse` and interpreted here by an allow-list:
nothing is ever evaluated by Python.  Statements may show a value of the spec as `{{data.x}}`
(a placeholder filled from the spec, so a statement never disagrees with its data, and a variant's
statement shows the variant's numbers).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Annotated, Literal, Union

from pydantic import Field

from examsolver.errors import ExprError
from examsolver.spec.model import Number, Strict, Tensor

MAX_PATHS = 20
MAX_CHOICES = 10_000
MAX_WHERE = 20

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]{1,200}?)\s*\}\}")


class Range(Strict):
    """`{from: -2, to: 3, step: 1}`: the numbers from, from + step, … up to `to`."""

    from_: Number = Field(alias="from")
    to: Number
    step: Number = 1


Choices = Annotated[Union[Range, list[Tensor]], Field(description="a list of values, or {from:, to:, step:}")]


class Each(Strict):
    """Every entry of the tensor drawn on its own from the same choices (the shape is kept)."""

    each: Choices


class Nice(Strict):
    """Every value of the worked solution must stay hand-computable."""

    denominator: int = Field(100, ge=1, le=10**6, description="largest denominator of a rational (coefficient)")
    digits: int = Field(4, ge=1, le=30, description="most digits of a numerator or denominator")


class Vary(Strict):
    values: dict[str, Union[Each, Choices]] = Field(min_length=1, max_length=MAX_PATHS,
                                                    description="spec path → choices (list, range or {each: …})")
    where: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list, max_length=MAX_WHERE, description="constraints such as 'data.x[0] != data.x[1]'")
    keep: Literal["decisions", "degeneracies", "nothing"] = Field(
        "degeneracies", description="decisions: the same ReLU masks, winners, rankings as the original; "
                                    "degeneracies: no tie or kink the original does not have")
    nice: Nice = Field(default_factory=Nice)


class VaryDocument(Strict):
    vary: Vary


# ----- the block, checked -----------------------------------------------------------------------
@dataclass
class Rule:
    """One value a variant draws: where it is in the YAML and its choices."""

    path: tuple
    loc: tuple           # YAML location of the value the rule replaces
    index: tuple         # entry inside that value's tensor (a rule on one entry)
    choices: list        # Exact values or nested lists of them
    each: bool


def check_block(doc) -> tuple[Vary, list[Rule], list]:
    """(the validated block, its rules, its constraints as (text, AST)); SpecError with every problem located."""
    from examsolver.errors import SpecError
    from examsolver.spec.load import Document
    from examsolver.spec.model import validate

    block = validate(Document(doc.path, {"vary": doc.data["vary"]}, doc.positions), VaryDocument).vary
    rules, constraints, problems = [], [], []
    for text, domain in block.values.items():
        try:
            rules.append(_rule(doc.data, text, domain))
        except ExprError as err:
            problems.append(doc.problem(("vary", "values", text), str(err)))
    for k, text in enumerate(block.where):
        try:
            constraints.append((text, parse_constraint(text)))
        except ExprError as err:
            problems.append(doc.problem(("vary", "where", k), str(err)))
    if problems:
        raise SpecError(problems)
    return block, rules, constraints


def _rule(data, text: str, domain) -> Rule:
    from examsolver.spec.expr import parse_nested

    path = parse_path(text)
    loc, index = locate(data, path)
    each = isinstance(domain, Each)
    choices = _choices(domain.each if each else domain)
    if each:
        if index:
            raise ExprError(f"{text}: `each` draws every entry of a tensor; name the tensor, not one entry")
        if any(isinstance(c, list) for c in choices):
            raise ExprError(f"{text}: the choices of `each` are numbers, one per entry")
        try:
            value = parse_nested(get(data, loc))
        except ExprError:          # a malformed value: the spec's own validation says so, where it is written
            value = []
        if not isinstance(value, list):
            raise ExprError(f"{text}: `each` draws the entries of a tensor, and this is a number")
    return Rule(path, loc, index, choices, each)


def _choices(domain) -> list:
    import numpy as np

    if isinstance(domain, Range):
        start, stop, step = domain.from_, domain.to, domain.step
        if step.sign() <= 0 or stop < start:
            raise ExprError("a range needs from ≤ to and a positive step")
        steps = (stop - start) / step
        if not steps.is_rational() or steps.as_fraction() >= MAX_CHOICES:
            raise ExprError(f"a range of more than {MAX_CHOICES} values (or a step that does not divide it)")
        return [start + step * k for k in range(int(steps.as_fraction()) + 1)]
    return [np.asarray(v, dtype=object).tolist() for v in domain]


# ----- paths -----------------------------------------------------------------------------
def parse_path(text: str) -> tuple:
    """'data[1].x' → ('data', 1, 'x'); ExprError for anything else."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        raise ExprError(f"malformed path {text!r} (expected e.g. data.x, data[1].y, model.conv1.kernels)") from None
    return _path_of(tree, text)


def _path_of(node, text: str) -> tuple:
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Attribute):
        return _path_of(node.value, text) + (node.attr,)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
            and type(node.slice.value) is int and 0 <= node.slice.value < 10**6:
        return _path_of(node.value, text) + (node.slice.value,)
    raise ExprError(f"malformed path {text!r} (expected e.g. data.x, data[1].y, model.conv1.kernels)")


def locate(data, path: tuple) -> tuple[tuple, tuple]:
    """(YAML location of the value, indices into its tensor) of a path; ExprError when it names nothing."""
    loc, node = (), data
    for i, part in enumerate(path):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            key = part
        elif isinstance(node, list) and type(part) is int and node and all(isinstance(v, dict) for v in node):
            if part >= len(node):
                raise ExprError(f"{_text(path)}: index {part} past the end ({len(node)} items)")
            key = part
        elif isinstance(node, list) and isinstance(part, str) and _layer_index(node, part) is not None:
            key = _layer_index(node, part)
        elif isinstance(node, dict) and len(node) == 1 and isinstance(next(iter(node.values())), dict) \
                and isinstance(part, str) and part in next(iter(node.values())):
            loc, node = loc + (next(iter(node)),), next(iter(node.values()))   # a layer's parameters
            key = part
        elif all(type(p) is int for p in path[i:]):
            return loc, tuple(path[i:])
        else:
            raise ExprError(f"{_text(path)} names nothing in the spec (no {part!r} there)")
        loc, node = loc + (key,), node[key]
    return loc, ()


def _layer_index(items: list, name: str) -> int | None:
    """The layer entry named `name` (its `name:`), else the first of that kind."""
    for want_name in (True, False):
        for i, item in enumerate(items):
            if not isinstance(item, dict) or len(item) != 1:
                continue
            kind, params = next(iter(item.items()))
            if want_name and isinstance(params, dict) and params.get("name") == name:
                return i
            if not want_name and kind == name:
                return i
    return None


def get(data, loc: tuple):
    for part in loc:
        data = data[part]
    return data


def put(data, loc: tuple, value) -> None:
    get(data, loc[:-1])[loc[-1]] = value


def _text(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if type(part) is int else ("." if out else "") + part
    return out


# ----- constraints --------------------------------------------------------------------------
_COMPARE = {ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b,
            ast.GtE: lambda a, b: a >= b, ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}
_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b}


def parse_constraint(text: str):
    """The AST of a constraint (checked: comparisons of sums and products of paths and numbers)."""
    from examsolver.spec.expr import _parse_tree

    _, tree = _parse_tree(text, "constraint", "a comparison such as data.x[0] != data.x[1]")
    _check_constraint(tree.body, text, top=True)
    return tree.body


def _check_constraint(node, text: str, top: bool = False) -> None:
    if isinstance(node, ast.BoolOp) and top:
        for value in node.values:
            _check_constraint(value, text, top=True)
    elif isinstance(node, ast.Compare) and top:
        if not all(type(op) in _COMPARE for op in node.ops):
            raise ExprError(f"unknown comparison in {text!r} (expected <, <=, >, >=, ==, !=)")
        for value in (node.left, *node.comparators):
            _check_constraint(value, text)
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC and not top:
        _check_constraint(node.left, text)
        _check_constraint(node.right, text)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not top:
        _check_constraint(node.operand, text)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not top:
        pass
    elif isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)) and not top:
        _path_of(node, text)
    else:
        raise ExprError(f"{text!r} is not a constraint (expected comparisons of paths and numbers, "
                        "joined by and/or)")


def holds(node, value_at) -> bool:
    """Whether a checked constraint holds; value_at(path) gives a spec value as Exact."""
    if isinstance(node, ast.BoolOp):
        results = [holds(v, value_at) for v in node.values]
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.Compare):
        left = _value(node.left, value_at)
        for op, right_node in zip(node.ops, node.comparators):
            right = _value(right_node, value_at)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise ExprError("not a constraint")


def _value(node, value_at):
    from fractions import Fraction

    from examsolver.engine.scalar import Exact

    if isinstance(node, ast.BinOp):
        return _ARITHMETIC[type(node.op)](_value(node.left, value_at), _value(node.right, value_at))
    if isinstance(node, ast.UnaryOp):
        return -_value(node.operand, value_at)
    if isinstance(node, ast.Constant):
        return Exact(Fraction(repr(node.value)) if isinstance(node.value, float) else node.value)
    return value_at(_path_of(node, ""))


# ----- statements -----------------------------------------------------------------------------
def placeholders(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(text or "")]


def fill_statement(text: str, data, lang: str) -> str:
    """A statement with every `{{path}}` replaced by the spec's value, as inline LaTeX written the way
    the spec writes it (a decimal stays a decimal, with the language's separator)."""

    return PLACEHOLDER.sub(lambda match: math_text(value_at(data, parse_path(match.group(1))), lang), text)


def fill_statements(statement: dict, doc) -> dict:
    """Every language's statement with its placeholders filled (after the spec solved); a value that
    cannot be shown is refused at the statement."""
    from examsolver.errors import SpecError

    out = {}
    for lang, text in statement.items():
        try:
            out[lang] = text and fill_statement(text, doc.data, lang)
        except ExprError as err:
            raise SpecError([doc.problem(("statement", lang), f"a placeholder: {err}")]) from None
    return out


def value_at(data, path: tuple):
    """The YAML value a path names, an entry of a tensor included; ExprError when it names nothing."""
    loc, index = locate(data, path)
    value = get(data, loc)
    for i in index:
        entries = _entries(value)
        if i >= len(entries):
            raise ExprError(f"{_text(path)}: index {i} past the end ({len(entries)} entries)")
        value = entries[i]
    return value


def _entries(value) -> list:
    if isinstance(value, list):
        return value
    from examsolver.spec.expr import parse_nested

    nested = parse_nested(value)
    if not isinstance(nested, list):
        raise ExprError("an index into a number")
    return nested


def math_text(value, lang: str) -> str:
    """A YAML value in a statement's LaTeX: [a; b] in Croatian, [a, b] in English, matrices as bmatrix."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        value = _entries(value)
    if not isinstance(value, list):
        return _scalar_text(value, lang)
    from examsolver.spec.expr import parse_nested

    parse_nested(value)          # ExprError for an empty or ragged list: rows of equal length from here on
    separator = "; " if lang == "hr" else ", "
    if not isinstance(value[0], list):
        return "[" + separator.join(_scalar_text(v, lang) for v in value) + "]"
    rows = (" & ".join(_scalar_text(v, lang) for v in row) for row in value)
    return "\\begin{bmatrix} " + " \\\\ ".join(rows) + " \\end{bmatrix}"


def _scalar_text(value, lang: str) -> str:
    from examsolver.spec.load import DecimalText

    if isinstance(value, DecimalText):
        return str(value).replace(".", "," if lang == "hr" else ".")
    if type(value) is int:
        return str(value)
    if not isinstance(value, str):
        raise ExprError(f"{value!r} is not a number to show")
    from examsolver.notation import values as V
    from examsolver.spec.expr import parse_number

    return V.latex(parse_number(value))


def check_placeholders(doc) -> list:
    """Located problems of the statement's placeholders (a path that names nothing)."""
    statement = doc.data.get("statement") if isinstance(doc.data, dict) else None
    problems = []
    for lang, text in (statement or {}).items() if isinstance(statement, dict) else ():
        for path in placeholders(text) if isinstance(text, str) else ():
            try:     # a malformed number there is the kind's to report, where it is written
                value = value_at(doc.data, parse_path(path))
                if value is None or isinstance(value, (bool, dict)):
                    raise ExprError(f"{path} holds no number or tensor to show")
            except ExprError as err:
                problems.append(doc.problem(("statement", lang), f"placeholder {{{{{path}}}}}: {err}"))
    return problems

