"""Numbers and small expressions from untrusted text, parsed by an allow-list.

`1.3` is 13/10, `ln(2)`, `log(2)`, `sqrt(2)`, `1/3`, `-ln(2)/9`, `e`, `pi`,
`2**-3` are what they say, and `[[6, -1, 3], [-5, -1, -3]] * ln(2)/9` is a
tensor.  Python's `ast` module only *parses*; nothing is ever evaluated by
Python: each allowed node kind is interpreted here, every other kind is refused.
Size, depth and exponents are bounded so no input can exhaust memory or time.
"""

from __future__ import annotations

import ast
from fractions import Fraction

from examsolver.engine import scalar
from examsolver.engine.scalar import Exact
from examsolver.errors import EngineError, ExprError

MAX_LENGTH = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 40
MAX_DIGITS = 40
MAX_EXPONENT = 64

EXPECTED = "a number or expression such as 1.3, 1/3, -ln(2)/9, sqrt(2), e, pi, 2**-3"

CONSTANTS = {"e": scalar.E, "pi": scalar.PI}
FUNCTIONS = {
    "ln": scalar.log,
    "log": scalar.log,
    "sqrt": scalar.sqrt,
    "exp": scalar.exp,
    "tanh": scalar.tanh,
    "sigmoid": scalar.sigmoid,
}


def parse_number(text) -> Exact:
    """A scalar from YAML: int, or text such as '1.3' or 'ln(2)/9'."""
    value = parse_value(text)
    if isinstance(value, list):
        raise ExprError(f"expected a single number, got a list ({_short(text)})")
    return value


def parse_value(text):
    """A scalar (Exact) or a nested list of Exact from int or expression text."""
    if isinstance(text, bool):
        raise ExprError(f"expected {EXPECTED}, got a boolean")
    if isinstance(text, int):
        return Exact(text)
    if isinstance(text, float):  # only from Python callers; YAML floats arrive as text
        return Exact(Fraction(repr(text)))
    if not isinstance(text, str):
        raise ExprError(f"expected {EXPECTED}, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    source = text.strip().replace("−", "-").replace("·", "*")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError):
        raise ExprError(f"malformed number or expression {_short(text)} (expected {EXPECTED})") from None
    _check_size(tree)
    try:
        return _Interpreter(source).visit(tree.body, 0)
    except ZeroDivisionError:
        raise ExprError(f"division by zero in {_short(text)}") from None
    except ExprError as err:
        raise ExprError(f"{err} in {_short(text)}") from None
    except (ArithmeticError, EngineError) as err:  # e.g. ln(-1)
        raise ExprError(f"{err} in {_short(text)}") from None


def parse_nested(value):
    """YAML nested lists of numbers/expressions → nested lists of Exact (or one Exact)."""
    if isinstance(value, list):
        if not value:
            raise ExprError("empty list")
        items = [parse_nested(v) for v in value]
        if len({_shape(i) for i in items}) != 1:
            raise ExprError("ragged list: rows have different lengths")
        return items
    return parse_value(value)


def _short(text) -> str:
    text = str(text)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _check_size(tree: ast.AST) -> None:
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExprError(f"expression has more than {MAX_NODES} parts")


class _Interpreter:
    """Walks an allow-listed AST; anything not handled below is an error."""

    def __init__(self, source: str):
        self.source = source

    def visit(self, node: ast.AST, depth: int):
        if depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels")
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"{_describe(node)} is not allowed (expected {EXPECTED})")
        return method(node, depth + 1)

    def visit_Constant(self, node: ast.Constant, depth: int):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExprError(f"{_describe(node)} is not allowed (expected {EXPECTED})")
        literal = ast.get_source_segment(self.source, node) or repr(node.value)
        if sum(ch.isdigit() for ch in literal) > MAX_DIGITS:
            raise ExprError(f"number literal longer than {MAX_DIGITS} digits")
        return Exact(Fraction(literal.replace("_", "")))

    def visit_Name(self, node: ast.Name, depth: int):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise ExprError(f"unknown name {node.id!r} (known constants: e, pi)")

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int):
        operand = self.visit(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return _map(lambda a: -a, operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        raise ExprError(f"{_describe(node)} is not allowed (expected {EXPECTED})")

    def visit_BinOp(self, node: ast.BinOp, depth: int):
        left = self.visit(node.left, depth)
        right = self.visit(node.right, depth)
        op = type(node.op)
        if op is ast.Add:
            return _zip(lambda a, b: a + b, left, right)
        if op is ast.Sub:
            return _zip(lambda a, b: a - b, left, right)
        if op is ast.Mult:
            return _zip(lambda a, b: a * b, left, right)
        if op is ast.Div:
            return _zip(_divide, left, right)
        if op is ast.Pow:
            return _zip(_power, left, right)
        if op is ast.BitXor:
            raise ExprError("'^' is not a power here: write ** (e.g. 2**-3)")
        raise ExprError(f"operator {_describe(node.op)} is not allowed (expected + - * / **)")

    def visit_Call(self, node: ast.Call, depth: int):
        if not isinstance(node.func, ast.Name):
            raise ExprError(f"only these functions may be called: {', '.join(FUNCTIONS)}")
        if node.func.id not in FUNCTIONS:
            raise ExprError(f"unknown function {node.func.id!r} (known: {', '.join(FUNCTIONS)})")
        if node.keywords or len(node.args) != 1:
            raise ExprError(f"{node.func.id}() takes exactly one argument")
        argument = self.visit(node.args[0], depth)
        return _map(FUNCTIONS[node.func.id], argument)

    def visit_List(self, node: ast.List, depth: int):
        items = [self.visit(item, depth) for item in node.elts]
        if not items:
            raise ExprError("empty list")
        shapes = {_shape(item) for item in items}
        if len(shapes) != 1:
            raise ExprError("ragged list: rows have different lengths")
        return items

    visit_Tuple = visit_List


def _describe(node: ast.AST) -> str:
    return {
        "Attribute": "attribute access", "Subscript": "indexing", "Lambda": "lambda",
        "Compare": "comparison", "BoolOp": "boolean operator", "Dict": "dictionary",
        "JoinedStr": "f-string",
    }.get(type(node).__name__, type(node).__name__)


def _divide(a: Exact, b: Exact) -> Exact:
    if b.sign() == 0:
        raise ZeroDivisionError
    return a / b


def _power(base: Exact, exponent: Exact) -> Exact:
    if not exponent.is_rational() or abs(exponent.as_fraction()) > MAX_EXPONENT:
        raise ExprError(f"exponent must be a rational number of magnitude at most {MAX_EXPONENT}")
    if base.sign() == 0 and exponent.sign() < 0:
        raise ZeroDivisionError
    if not exponent.is_integer() and base.sign() < 0:
        raise ExprError("fractional power of a negative number")
    if exponent.is_integer() and not base.is_symbolic and len(base.terms) <= 1:
        return base ** int(exponent)
    if exponent.as_fraction() == Fraction(1, 2):
        return scalar.sqrt(base)
    return base ** exponent


def _shape(value) -> tuple:
    if isinstance(value, list):
        return (len(value),) + _shape(value[0])
    return ()


def _map(fn, value):
    if isinstance(value, list):
        return [_map(fn, v) for v in value]
    return fn(value)


def _zip(fn, a, b):
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise ExprError("lists of different lengths")
        return [_zip(fn, x, y) for x, y in zip(a, b)]
    if isinstance(a, list):
        return [_zip(fn, x, b) for x in a]
    if isinstance(b, list):
        return [_zip(fn, a, y) for y in b]
    return fn(a, b)
