"""Numbers and small expressions from untrusted text, parsed by an allow-list.

`1.3` is 13/10, `ln(2)`, `log(2)`, `sqrt(2)`, `1/3`, `-ln(2)/9`, `e`, `pi`,
`2**-3` are what they say, and `[[6, -1, 3], [-5, -1, -3]] * ln(2)/9` is a
tensor.  Python's `ast` module only *parses*; nothing is ever evaluated by
Python: each allowed node kind is interpreted here, every other kind is refused.
Size, depth and exponents are bounded so no input can exhaust memory or time.
"""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction
from functools import lru_cache

from examsolver.engine import scalar
from examsolver.engine.scalar import Exact
from examsolver.errors import EngineError, ExprError
from examsolver.spec import limits

MAX_LENGTH = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 40
MAX_DIGITS = 40
MAX_EXPONENT = 64
MAX_DECIMAL_EXPONENT = 300

EXPECTED = "a number or expression such as 1.3, 1/3, -ln(2)/9, sqrt(2), e, pi, 2**-3"

CONSTANTS = {"e": scalar.E, "pi": scalar.PI}
FUNCTIONS = {
    "ln": scalar.log,
    "log": scalar.log,
    "sqrt": scalar.sqrt,
    "exp": scalar.exp,
    "tanh": scalar.tanh,
    "sigmoid": scalar.sigmoid,
    "cosh": scalar.cosh,
    "sinh": scalar.sinh,
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
    if isinstance(text, str) and len(text) <= _CACHED_LENGTH:
        value = _parse_short(text)
        return _copy(value) if isinstance(value, list) else value
    return _parse_text(text)


_CACHED_LENGTH = 64


@lru_cache(maxsize=8192)
def _parse_short(text: str):
    """Short texts repeat by the thousand in a large tensor (3/10, -1/5): each is parsed once."""
    return _parse_text(text)


def _copy(value):
    return [_copy(v) for v in value] if isinstance(value, list) else value


def _parse_text(text):
    source, tree = _parse_tree(text, "number or expression", EXPECTED)
    try:
        return _Interpreter(source).visit(tree.body, 0)
    except limits.LimitError as err:
        raise ExprError(f"{_short(text)} would need {err}") from None
    except ZeroDivisionError:
        raise ExprError(f"division by zero in {_short(text)}") from None
    except ExprError as err:
        raise ExprError(f"{err} in {_short(text)}") from None
    except (ArithmeticError, EngineError) as err:  # e.g. ln(-1)
        raise ExprError(f"{err} in {_short(text)}") from None


MAX_DIMS = 8


def parse_nested(value, depth: int = 0, leaf=None):
    """YAML nested lists of numbers/expressions → nested lists of Exact (or one Exact); each
    number or expression read by leaf (default parse_value)."""
    if isinstance(value, list):
        if not value:
            raise ExprError("empty list")
        if depth >= MAX_DIMS:
            raise ExprError(f"a tensor of more than {MAX_DIMS} dimensions")
        if any(isinstance(v, list) for v in value):
            items = [parse_nested(v, depth + 1, leaf) for v in value]
        else:           # a row of entries (most of a large tensor): read without a call per entry
            read = leaf or parse_value
            items = [read(v) for v in value]
            if not any(isinstance(i, list) for i in items):
                return items
        if len({_shape(i) for i in items}) != 1:
            raise ExprError("ragged list: rows have different lengths")
        return items
    return (leaf or parse_value)(value)


def _parse_tree(text, what: str, expected: str):
    """(normalized source, AST) of expression text, with the size limits checked; never evaluated."""
    if not isinstance(text, str):
        raise ExprError(f"expected {expected}, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    source = text.strip().replace("−", "-").replace("·", "*")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError):
        raise ExprError(f"malformed {what} {_short(text)} (expected {expected})") from None
    _check_size(tree)
    return source, tree


def _short(text) -> str:
    text = str(text)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _check_size(tree: ast.AST) -> None:
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExprError(f"expression has more than {MAX_NODES} parts")


class _Walker:
    """Walks an allow-listed AST: a node kind without a visit_ method is an error."""

    expected = EXPECTED

    def __init__(self, source: str):
        self.source = source
        self.lines = source.encode("utf-8").splitlines()   # ast's columns count UTF-8 bytes

    def visit(self, node: ast.AST, depth: int):
        if depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels")
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"{_describe(node)} is not allowed (expected {self.expected})")
        return method(node, depth + 1)

    def literal(self, node: ast.Constant) -> Fraction:
        """A number literal, exactly, within the size limits."""
        return Fraction(self.literal_text(node))

    def literal_text(self, node: ast.Constant) -> str:
        """A number literal as written (without `_`), within the size limits."""
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExprError(f"{_describe(node)} is not allowed (expected {self.expected})")
        # the literal as written (1.30 stays 13/10 exactly); a number literal is on one line, and
        # slicing that line keeps a long list linear (ast.get_source_segment splits the source each time)
        if node.lineno == node.end_lineno and node.lineno <= len(self.lines):
            literal = self.lines[node.lineno - 1][node.col_offset:node.end_col_offset].decode("utf-8", "replace")
        else:
            literal = repr(node.value)
        if sum(ch.isdigit() for ch in literal) > MAX_DIGITS:
            raise ExprError(f"number literal longer than {MAX_DIGITS} digits")
        literal = literal.replace("_", "")
        power = literal.lower().partition("e")[2]
        # 0x…/0b…/0o… and huge decimal exponents (1e100000000 would build a 100-million-digit integer)
        if literal[:2].lower() in ("0x", "0b", "0o") or (power and abs(int(power)) > MAX_DECIMAL_EXPONENT):
            raise ExprError(f"number literal {literal!r} not allowed (decimal numbers with exponents "
                            f"up to ±{MAX_DECIMAL_EXPONENT})")
        return literal


class _Interpreter(_Walker):
    """Interprets allowed nodes as exact numbers or lists of them, within the cost model (spec/limits.py):
    every result is checked, and a power or product is estimated before it is computed."""

    def visit(self, node: ast.AST, depth: int):
        return _map(_checked, super().visit(node, depth))

    def visit_Constant(self, node: ast.Constant, depth: int):
        return Exact(self.literal(node))

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
            return _zip(_multiply, left, right)
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
        if node.func.id in _EXPONENTIAL:
            _map(limits.check_exp_argument, argument)
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


_EXPONENTIAL = ("exp", "tanh", "sigmoid", "cosh", "sinh")
_LOG10 = {"e": math.log10(math.e), "pi": math.log10(math.pi)}


def _checked(value: Exact) -> Exact:
    """value, when its numbers, its count of terms and its magnitude are within the limits."""
    if not isinstance(value, Exact) or value.is_symbolic:     # subclasses may interpret to other values
        return value
    limits.check_terms(len(value.terms))
    for mono, c in value.terms.items():
        limits.check_digits(c.numerator)
        limits.check_digits(c.denominator)
        if abs(_log10_term(mono, c)) > limits.LIMITS.digits:
            raise limits.LimitError(f"a number beyond 10^±{limits.LIMITS.digits}", "digits")
    return value


def _log10_term(mono, c: Fraction) -> float:
    """log10 of a term's magnitude, from bit lengths and the atoms' logarithms (nothing large is built)."""
    total = (c.numerator.bit_length() - c.denominator.bit_length()) * math.log10(2)
    for atom, k in mono:
        kind = atom[0]
        if kind == "ln":
            total += k * math.log10(math.log(atom[1]))
        elif kind == "sqrt":
            total += k * math.log10(atom[1]) / 2
        else:
            total += k * _LOG10[kind]
    return total


def _multiply(a: Exact, b: Exact) -> Exact:
    if not (a.is_symbolic or b.is_symbolic):
        limits.check_terms(len(a.terms) * len(b.terms))
    return a * b


def _divide(a: Exact, b: Exact) -> Exact:
    if b.sign() == 0:
        raise ZeroDivisionError
    return a / b


def _power(base: Exact, exponent: Exact) -> Exact:
    if not exponent.is_rational() or abs(exponent.as_fraction()) > MAX_EXPONENT or \
            exponent.as_fraction().denominator > MAX_EXPONENT:
        raise ExprError(f"exponent must be a rational number p/q with |p/q| and q at most {MAX_EXPONENT}")
    if not base.is_symbolic:     # estimated before it is computed: digits and terms of the result
        n = math.ceil(abs(exponent.as_fraction()))
        bits = max(max(c.numerator.bit_length(), c.denominator.bit_length()) for c in base.terms.values()) \
            if base.terms else 0
        limits.check_power_digits(bits, n)
        limits.check_terms(limits.power_terms(len(base.terms), n))
        if base.terms and max(abs(_log10_term(m, c)) for m, c in base.terms.items()) * n > limits.LIMITS.digits:
            raise limits.LimitError(f"a number beyond 10^±{limits.LIMITS.digits}", "digits")
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


# ----- answers as written: the precision of their decimals (verify, the Moodle export) -----
class Written:
    """One entry of an answer as written: its exact value and how far from it the value it stands
    for may lie.  A decimal literal with k decimals (0.33, 1.5e-3) stands for whatever rounds to it,
    ± half a unit of its last digit; integers, fractions, ln(2), e, pi are exact (radius 0)."""

    __slots__ = ("value", "radius", "places")

    def __init__(self, value: Exact, radius: Fraction, places: int | None):
        self.value = value
        self.radius = radius        # 0: exact
        self.places = places        # decimals of an entry written as one decimal literal, else None

    def __repr__(self):
        return f"Written({self.value}, ±{self.radius})"


_DECIMAL_POINT = re.compile(r"\d\.|\.\d")
_BALL_PREC = 192                    # bits of the balls carrying the decimals' uncertainty


def parse_written(value):
    """Nested like parse_nested(value), each entry a Written.

    A decimal literal's uncertainty is carried through the expression by ball arithmetic
    (`ln(2)*0.22`, `[0.33, 0.67]`, `0.5/ln(2)`): the radius bounds how far any value the
    expression takes over its literals' intervals lies from its written value.  A decimal in an
    exponent counts as exact.  An entry that is one literal keeps its half-unit exactly.
    """
    return parse_nested(value, leaf=_written_leaf)


def has_decimals(text) -> bool:
    """Whether text holds a decimal literal (whose written precision counts)."""
    return isinstance(text, str) and bool(_DECIMAL_POINT.search(text))


def decimal_radius(text: str) -> Fraction:
    """Half a unit of the last written digit of a decimal literal ('0.154' → 1/2000), 0 without a point."""
    mantissa, _, power = text.strip().lstrip("+-−").lower().partition("e")
    if "." not in mantissa:
        return Fraction(0)
    return Fraction(1, 2) * Fraction(10) ** (int(power or 0) - len(mantissa.partition(".")[2]))


def _written_leaf(text):
    exact = parse_value(text)
    if not has_decimals(text):
        return _map(lambda v: Written(v, Fraction(0), None), exact)
    source, tree = _parse_tree(text, "number or expression", EXPECTED)
    from examsolver.engine.scalar import _flint

    ctx = _flint().ctx
    saved, ctx.prec = ctx.prec, _BALL_PREC
    try:
        balls = _Balls(source).visit(tree.body, 0)
        return _zip(_written, exact, balls)
    except ExprError as err:
        raise ExprError(f"{err} in {_short(text)}") from None
    finally:
        ctx.prec = saved


def _written(value: Exact, ball: tuple) -> Written:
    ball, radius, places = ball
    if radius is None:     # an expression: how far the ball reaches from the written value
        reach = abs(ball - value.ball(_BALL_PREC)).upper()
        if not reach.is_finite():
            raise ExprError("its decimals leave the value unbounded (a division by a number that may be 0)")
        mantissa, power = reach.man_exp()
        radius = Fraction(int(mantissa)) * Fraction(2) ** int(power)
    return Written(value, radius, places)


class _Balls(_Walker):
    """Evaluates an expression already interpreted exactly (so within the limits) as arb balls, each
    decimal literal widened by its half-unit; leaves are (ball, exact radius or None, places or None)."""

    def visit_Constant(self, node: ast.Constant, depth: int):
        from flint import arb, fmpq

        text = self.literal_text(node)
        q, half = Fraction(text), decimal_radius(text)
        ball = arb(fmpq(q.numerator, q.denominator))
        if half:
            ball += arb(0, fmpq(half.numerator, half.denominator))
            places = None if "e" in text.lower() else len(text.partition(".")[2])   # truncation: plain decimals
            return ball, half, places
        return ball, Fraction(0), None

    def visit_Name(self, node: ast.Name, depth: int):
        from flint import arb

        return (arb.const_e() if node.id == "e" else arb.pi()), None, None

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int):
        operand = self.visit(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return _map(lambda b: (-b[0],) + b[1:], operand)
        return operand

    def visit_BinOp(self, node: ast.BinOp, depth: int):
        left = self.visit(node.left, depth)
        if isinstance(node.op, ast.Pow):
            exponent = _Interpreter(self.source).visit(node.right, depth)
            return _zip(_ball_power, left, exponent)
        right = self.visit(node.right, depth)
        op = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
              ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}[type(node.op)]
        return _zip(lambda a, b: (op(a[0], b[0]), None, None), left, right)

    def visit_Call(self, node: ast.Call, depth: int):
        argument = self.visit(node.args[0], depth)
        return _map(lambda b: (_BALL_FUNCTIONS[node.func.id](b[0]), None, None), argument)

    def visit_List(self, node: ast.List, depth: int):
        return [self.visit(item, depth) for item in node.elts]

    visit_Tuple = visit_List


_BALL_FUNCTIONS = {
    "ln": lambda b: b.log(), "log": lambda b: b.log(), "sqrt": lambda b: b.sqrt(), "exp": lambda b: b.exp(),
    "tanh": lambda b: b.tanh(), "sigmoid": lambda b: 1 / (1 + (-b).exp()),
    "cosh": lambda b: b.cosh(), "sinh": lambda b: b.sinh(),
}


def _ball_power(base: tuple, exponent: Exact) -> tuple:
    from flint import arb, fmpq

    q = exponent.as_fraction()
    ball = base[0] ** int(q) if q.denominator == 1 else base[0] ** arb(fmpq(q.numerator, q.denominator))
    return ball, None, None


# ----- symbolic expressions (sympy), for the symbolic problem kind --------------
SYMBOLIC_FUNCTIONS = ("ln", "log", "exp", "sqrt", "tanh", "sigmoid", "softplus", "max", "min", "abs", "sin", "cos")
SYMBOLIC_EXPECTED = ("an expression in the declared symbols with numbers, + - * / **, and the functions "
                     + ", ".join(SYMBOLIC_FUNCTIONS))


def parse_symbolic(text, symbols: dict):
    """A sympy expression built from untrusted text by walking the allow-listed AST.

    `symbols` maps each allowed name to a sympy object (a Symbol, or an expression
    or Matrix a name stands for); every other name is refused.  Numbers are exact
    (1.3 is 13/10); `e` and `pi` are the constants unless declared as symbols.  A
    list is a column vector, a list of lists a matrix.  sympy is never asked to
    parse text (no sympify, no parse_expr): it only receives objects built here.
    """
    if isinstance(text, bool):
        raise ExprError(f"expected {SYMBOLIC_EXPECTED}, got a boolean")
    if isinstance(text, int):
        text = str(text)
    source, tree = _parse_tree(text, "expression", SYMBOLIC_EXPECTED)
    try:
        return _SymbolicBuilder(source, symbols).visit(tree.body, 0)
    except limits.LimitError as err:
        raise ExprError(f"{_short(text)} would need {err}") from None
    except ExprError as err:
        raise ExprError(f"{err} in {_short(text)}") from None
    except (ArithmeticError, TypeError, ValueError) as err:   # e.g. adding a matrix to a scalar
        raise ExprError(f"{err} in {_short(text)}") from None


class _SymbolicBuilder(_Walker):
    """Like _Interpreter, but every node becomes a sympy object."""

    expected = SYMBOLIC_EXPECTED

    def __init__(self, source: str, symbols: dict):
        import sympy

        super().__init__(source)
        self.sp = sympy
        self.symbols = dict(symbols)
        self.constants = {"e": sympy.E, "pi": sympy.pi}
        self.degrees: dict = {}

    def visit(self, node: ast.AST, depth: int):
        """Every result within the cost model: exact numbers of bounded length, bounded degree (the
        degree bounds what expanding or differentiating it can cost), no undefined values (ln(0))."""
        value = super().visit(node, depth)
        sp = self.sp
        if getattr(value, "is_Rational", False):
            limits.check_digits(value.p)
            limits.check_digits(value.q)
        elif isinstance(value, (sp.Pow, sp.Mul)):
            limits.check_degree(self.degree(value))
        if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise ExprError("undefined value (division by zero, ln(0), …)")
        return value

    def degree(self, expr) -> int:
        """The total degree a polynomial view of expr would have (powers multiply, products add)."""
        if expr.is_Atom:
            return 1 if expr.is_Symbol else 0
        if expr in self.degrees:
            return self.degrees[expr]
        if isinstance(expr, self.sp.MatrixBase):
            result = max((self.degree(e) for e in expr), default=0)
        elif expr.is_Pow and expr.exp.is_Number:
            result = self.degree(expr.base) * math.ceil(abs(expr.exp))
        elif expr.is_Mul:
            result = sum(self.degree(a) for a in expr.args)
        else:
            result = max((self.degree(a) for a in expr.args), default=0)
        self.degrees[expr] = result
        return result

    def visit_Constant(self, node: ast.Constant, depth: int):
        q = self.literal(node)
        return self.sp.Rational(q.numerator, q.denominator)

    def visit_Name(self, node: ast.Name, depth: int):
        if node.id in self.symbols:
            return self.symbols[node.id]
        if node.id in self.constants:
            return self.constants[node.id]
        known = ", ".join(sorted(self.symbols)) or "none"
        raise ExprError(f"unknown name {node.id!r} (declared symbols: {known}; constants: e, pi)")

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int):
        operand = self.visit(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise ExprError(f"{_describe(node)} is not allowed (expected {SYMBOLIC_EXPECTED})")

    def visit_BinOp(self, node: ast.BinOp, depth: int):
        left = self.visit(node.left, depth)
        right = self.visit(node.right, depth)
        op = type(node.op)
        if op is ast.Add:
            return left + right
        if op is ast.Sub:
            return left - right
        if op is ast.Mult:
            return left * right
        if op is ast.Div:
            if right == 0:
                raise ExprError("division by zero")
            return left / right
        if op is ast.Pow:
            if left is self.sp.E and not isinstance(right, self.sp.MatrixBase):   # e**x is exp(x)
                return self.sp.exp(right)
            if not getattr(right, "is_number", False) or not right.is_Rational or abs(right) > MAX_EXPONENT \
                    or right.q > MAX_EXPONENT:      # .252**64e-30: a 10³⁰-th root exhausted memory
                raise ExprError(f"exponent must be a rational number p/q with |p/q| and q at most {MAX_EXPONENT}")
            if left == 0 and right < 0:
                raise ExprError("division by zero")
            if isinstance(left, self.sp.MatrixBase):
                raise ExprError("powers of vectors or matrices are not allowed")
            if left.is_Rational and len(str(abs(left.p))) + len(str(left.q)) > MAX_DIGITS // abs(right.p or 1) + 2:
                raise ExprError("number too large (a power of a long number)")
            return left ** right
        if op is ast.BitXor:
            raise ExprError("'^' is not a power here: write ** (e.g. x**2)")
        raise ExprError(f"operator {_describe(node.op)} is not allowed (expected + - * / **)")

    def visit_Call(self, node: ast.Call, depth: int):
        if not isinstance(node.func, ast.Name):
            raise ExprError(f"only these functions may be called: {', '.join(SYMBOLIC_FUNCTIONS)}")
        name = node.func.id
        if name not in SYMBOLIC_FUNCTIONS:
            raise ExprError(f"unknown function {name!r} (known: {', '.join(SYMBOLIC_FUNCTIONS)})")
        if node.keywords:
            raise ExprError(f"{name}() takes no keyword arguments")
        args = [self.visit(a, depth) for a in node.args]
        two = name in ("max", "min")
        if (two and len(args) < 2) or (not two and len(args) != 1):
            raise ExprError(f"{name}() takes {'two or more arguments' if two else 'exactly one argument'}")
        if any(isinstance(a, self.sp.MatrixBase) for a in args):
            raise ExprError(f"{name}() applies to scalars, not to vectors or matrices")
        sp = self.sp
        build = {
            "ln": sp.log, "log": sp.log, "exp": sp.exp, "sqrt": sp.sqrt, "tanh": sp.tanh,
            "sin": sp.sin, "cos": sp.cos, "abs": sp.Abs,
            "sigmoid": lambda u: 1 / (1 + sp.exp(-u)),
            "softplus": lambda u: sp.log(1 + sp.exp(u)),
        }
        if name == "max":
            return sp.Max(*args)
        if name == "min":
            return sp.Min(*args)
        return build[name](args[0])

    def visit_List(self, node: ast.List, depth: int):
        items = [self.visit(item, depth) for item in node.elts]
        if not items:
            raise ExprError("empty list")
        if all(isinstance(i, self.sp.MatrixBase) for i in items):
            if len({i.shape for i in items}) != 1 or items[0].shape[1] != 1:
                raise ExprError("ragged list: rows have different lengths")
            return self.sp.Matrix([list(i) for i in items])
        if any(isinstance(i, self.sp.MatrixBase) for i in items):
            raise ExprError("ragged list: rows have different lengths")
        return self.sp.Matrix(items)

    visit_Tuple = visit_List
