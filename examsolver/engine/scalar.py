"""Exact where the ring allows, certified beyond it: the value tower.

Exam numbers almost always live in Q[ln 2, ln 3, …, √2, π, e].  Such a value is
held exactly: a rational (`Rat`, gmpy2's mpq — the fastest exact rational we
measured end to end) or a polynomial with rational coefficients over those atoms
(`Poly`, canonical, so equality is structural).  A value that leaves the ring —
tanh(3/5), e^{1/2}/(1 + e^{1/2}) — becomes a `Cert`: a node of the computation
(operation and operands) with a ball enclosing its value (python-flint's arb).
The node keeps a short closed form for display while it is short, and lets the
ball be recomputed at any precision.  A ring value is bounded by MPFR's correctly
rounded atoms instead (gmpy2; arb is loaded only past the ring).  Every printed
digit is certified, and every decision (a ReLU mask, a max-pool winner, a
ranking) is taken from bounds that exclude the tie, or else by an exact test —
never from a rounded float alone.

Every value has a size budget (digits of a rational, terms of a polynomial,
nodes of a closed form); past it the certified form takes over.  What cannot be
enclosed (an overflowing exponent) is refused with an EngineError.
"""

from __future__ import annotations

import math
import operator
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

import gmpy2
from gmpy2 import mpq as Q

from examsolver.errors import EngineError
from examsolver.notation.values import plain

# An atom is a tuple: ("e",), ("ln", p) for a prime p, ("pi",), ("sqrt", n) for a
# square-free n > 1.  A monomial is a sorted tuple of (atom, exponent) pairs.
Atom = tuple
Mono = tuple

_FACTOR_LIMIT = 10**12      # larger integers are not factored; the value is certified instead
_MAX_POWER = 4096           # |n| above which x**n is not expanded exactly
_MAX_BITS = 2048            # a rational whose numerator or denominator is longer is certified
_MAX_TERMS = 64             # a ring value with more monomials is certified
_FORM_NODES = 12            # closed forms with more nodes are not kept (decimals are shown)
_MAX_EXP = 10**6            # |x| above which e^x, and |n| above which x**n, are refused
_WORK_PREC = 192            # bits of the working balls (~57 digits)
_MAX_PREC = 1 << 13         # beyond this a tie is left to the exact test
_EXACT_TEST_NODES = 80      # a closed form larger than this is not handed to sympy

# While a list, every sign the engine decides (ReLU masks, winners, rankings, ties) is appended to it:
# an exam variant keeps the original's decisions when it decides the same signs in the same order.
DECISIONS: list | None = None


class Exact:
    """An exact (or certified) real number.  Immutable; mixes freely with int and Fraction.

    `Exact(v)` gives the right member of the tower for an int, Fraction or Exact.
    """

    __slots__ = ()

    def __new__(cls, value=0):
        if isinstance(value, Exact):
            return value
        if isinstance(value, int):
            return _rat(Q(value))
        if isinstance(value, Fraction):
            return _rat(Q(value.numerator, value.denominator))
        raise TypeError(f"cannot make an exact number from {type(value).__name__}")

    # ----- construction -------------------------------------------------
    @classmethod
    def _terms(cls, terms: dict) -> Exact:
        return _poly({m: Q(c) for m, c in terms.items()})

    @classmethod
    def _sympy(cls, expr) -> Exact:
        back = _from_sympy(expr)
        return back if back is not None else _sympy_leaf(expr)

    @classmethod
    def atom(cls, atom: Atom, power: int = 1) -> Exact:
        coeff, mono = _mono_mul((), ((atom, power),))
        return _poly({mono: coeff})

    # ----- inspection -----------------------------------------------------
    @property
    def is_symbolic(self) -> bool:
        """True when the value lies outside the ring (held as a certified node)."""
        return False

    @property
    def terms(self) -> dict:
        """{monomial: Fraction} of a ring value."""
        return {m: _fraction(c) for m, c in self._poly().items()}

    def is_rational(self) -> bool:
        return False

    def as_fraction(self) -> Fraction:
        raise EngineError(f"{self} is not rational")

    def denominator(self) -> int:
        return self.as_fraction().denominator

    def is_integer(self) -> bool:
        return False

    def has_exact_form(self) -> bool:
        """False for a certified value whose closed form outgrew its budget."""
        return True

    def closed_form(self):
        """(operation, operands) of a certified value with a short closed form, else None."""
        return None

    def _sympy_(self):
        """sympy's conversion hook: an exact value meeting a sympy expression stays exact (not a float)."""
        return self.sympy()

    def sympy(self):
        """The value as a sympy expression (imports sympy)."""
        import sympy

        total = sympy.Integer(0)
        for mono, c in self._poly().items():
            term = sympy.Rational(int(c.numerator), int(c.denominator))
            for atom, k in mono:
                term *= _atom_sympy(atom) ** k
            total += term
        return total

    # ----- arithmetic -----------------------------------------------------
    def __neg__(self):
        return _poly({m: -c for m, c in self._poly().items()})

    def __pos__(self):
        return self

    def __add__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else _add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else _sub(self, other)

    def __rsub__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else _sub(other, self)

    def __mul__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else _mul(self, other)

    __rmul__ = __mul__

    def reciprocal(self) -> Exact:
        return _div(_ONE, self)

    def __truediv__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else _div(self, other)

    def __rtruediv__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else _div(other, self)

    def __pow__(self, exponent):
        exponent = _coerce(exponent)
        return NotImplemented if exponent is NotImplemented else _pow(self, exponent)

    def __rpow__(self, base):
        base = _coerce(base)
        return NotImplemented if base is NotImplemented else _pow(base, self)

    def __abs__(self):
        return -self if self.sign() < 0 else self

    # ----- order and equality ---------------------------------------------
    def sign(self) -> int:
        """-1, 0 or 1, decided exactly or from a certified ball (recorded as a decision of the solver)."""
        sign = self._sign()
        if DECISIONS is not None:
            DECISIONS.append(sign)
        return sign

    def _sign(self) -> int:
        """The sign, not recorded: for the tower's own arithmetic (a division's zero test is no decision)."""
        terms = self._poly()
        if not terms:
            return 0
        positive = {c > 0 for c in terms.values()}
        if len(positive) == 1:      # every atom is positive: terms of one sign cannot cancel
            return 1 if True in positive else -1
        sign = _bounds_sign(self, 64)
        if sign is None:
            raise EngineError(f"cannot decide the sign of {self}")
        return sign

    def __eq__(self, other):
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        if type(other) is Cert:
            return other == self
        return self._poly() == other._poly()

    def __hash__(self):
        return hash(frozenset(self._poly().items()))

    def __lt__(self, other):
        return (self - other).sign() < 0

    def __le__(self, other):
        return (self - other).sign() <= 0

    def __gt__(self, other):
        return (self - other).sign() > 0

    def __ge__(self, other):
        return (self - other).sign() >= 0

    def __bool__(self):
        return self.sign() != 0

    # ----- numeric views --------------------------------------------------
    def ball(self, prec: int = _WORK_PREC):
        """An arb ball enclosing the value, computed at `prec` bits."""
        with _precision(prec):
            total = _flint().arb(0)
            for mono, c in self._poly().items():
                term = _q_arb(c)
                for atom, k in mono:
                    term *= _atom_ball(atom, prec) ** k
                total += term
            return total

    def rounded(self, fmt) -> str:
        """fmt(x) for a monotone rounding `fmt` (Fraction → str), certified: the same text for
        every point between bounds that enclose the value."""
        prec = 64
        while prec <= _MAX_PREC:
            low, high = self.bounds(prec)
            text = fmt(low)
            if fmt(high) == text:
                return text
            prec *= 4
        if self._sign() == 0:
            return fmt(Fraction(0))
        raise EngineError(f"cannot round {self} with certainty")

    def bounds(self, prec: int) -> tuple[Fraction, Fraction]:
        """Rationals low ≤ value ≤ high, about `prec` bits apart.  A ring value's come from MPFR's
        correctly rounded atoms (gmpy2), so that a solve that never leaves the ring never imports arb."""
        low = high = Q(0)
        for mono, c in self._poly().items():
            below, above = _mono_bounds(mono, prec)
            if c > 0:
                low, high = low + c * below, high + c * above
            else:
                low, high = low + c * above, high + c * below
        return _fraction(low), _fraction(high)

    def decimal(self, digits: int = 30) -> Decimal:
        """The value to about `digits` significant digits."""
        low, high = self.bounds(int(digits * 3.33) + 64)
        return _to_decimal((low + high) / 2, digits)

    def __float__(self):
        low, high = self.bounds(64)
        try:
            return float((low + high) / 2)
        except OverflowError:           # e^1000: past the largest float, as float arithmetic says it
            return math.inf if low > 0 else -math.inf

    def __int__(self):
        return int(self.as_fraction())

    def __repr__(self):
        return f"Exact({self})"

    def __str__(self):
        return plain(self)


class Rat(Exact):
    """A rational number (the fast path: most exam arithmetic never leaves it)."""

    __slots__ = ("_q", "_b")

    @property
    def _t(self) -> dict:
        return {(): self._q} if self._q else {}

    def _poly(self) -> dict:
        return {(): self._q} if self._q else {}

    def __reduce__(self):
        return _rat, (self._q,)

    def is_rational(self) -> bool:
        return True

    def as_fraction(self) -> Fraction:
        return _fraction(self._q)

    def denominator(self) -> int:
        return int(self._q.denominator)

    def is_integer(self) -> bool:
        return self._q.denominator == 1

    def __neg__(self):
        return _rat(-self._q)

    def __add__(self, other):
        if type(other) is Rat:
            return _rat(self._q + other._q)
        if isinstance(other, Exact):
            return _add(self, other)
        return Exact.__add__(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        if type(other) is Rat:
            return _rat(self._q - other._q)
        if isinstance(other, Exact):
            return _sub(self, other)
        return Exact.__sub__(self, other)

    def __mul__(self, other):
        if type(other) is Rat:
            return _rat(self._q * other._q)
        if isinstance(other, Exact):
            return _mul(self, other)
        return Exact.__mul__(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if type(other) is Rat and other._q:
            return _rat(self._q / other._q)
        return Exact.__truediv__(self, other)

    def _sign(self) -> int:
        q = self._q
        return (q > 0) - (q < 0)

    def sign(self) -> int:         # the hot path of every ReLU mask: no extra call
        q = self._q
        sign = (q > 0) - (q < 0)
        if DECISIONS is not None:
            DECISIONS.append(sign)
        return sign

    def __eq__(self, other):
        if type(other) is Rat:
            return self._q == other._q
        return Exact.__eq__(self, other)

    def __hash__(self):
        return hash(self._q)

    def __lt__(self, other):
        if type(other) is Rat:
            if DECISIONS is not None:
                DECISIONS.append((self._q > other._q) - (self._q < other._q))
            return self._q < other._q
        return Exact.__lt__(self, other)

    def __gt__(self, other):
        if type(other) is Rat:
            if DECISIONS is not None:
                DECISIONS.append((self._q > other._q) - (self._q < other._q))
            return self._q > other._q
        return Exact.__gt__(self, other)

    def ball(self, prec: int = _WORK_PREC):
        if prec == _WORK_PREC:
            if self._b is None:
                _flint()                # arb works at _WORK_PREC outside a _precision block
                self._b = _q_arb(self._q)
            return self._b
        with _precision(prec):
            return _q_arb(self._q)

    def rounded(self, fmt) -> str:
        return fmt(self.as_fraction())

    def decimal(self, digits: int = 30) -> Decimal:
        return _to_decimal(self.as_fraction(), digits)

    def __float__(self):
        return float(self._q)


class Poly(Exact):
    """A value of the ring: {monomial: rational coefficient}, canonical."""

    __slots__ = ("_t", "_b")

    def _poly(self) -> dict:
        return self._t

    def __reduce__(self):
        return _poly, (self._t,)

    def ball(self, prec: int = _WORK_PREC):
        if prec == _WORK_PREC:
            if self._b is None:
                self._b = Exact.ball(self, prec)
            return self._b
        return Exact.ball(self, prec)


class Cert(Exact):
    """A value outside the ring: an operation on operands, with a ball enclosing it."""

    __slots__ = ("_op", "_args", "_b", "_size", "_rep")

    _t = None

    @property
    def is_symbolic(self) -> bool:
        return True

    @property
    def terms(self) -> dict:
        raise EngineError("value lies outside the exact ring")

    def _poly(self):
        return None

    def __reduce__(self):       # balls do not pickle: recomputed from the operands
        return _revive, (self._op, self._args, self._size)

    def has_exact_form(self) -> bool:
        return self._size is not None

    def closed_form(self):
        return (self._op, self._args) if self._size is not None else None

    def sympy(self):
        return _to_sympy(self)

    def __neg__(self):
        return _node("neg", (self,), -self._b)

    def _sign(self) -> int:
        ball = self._b
        if ball > 0:
            return 1
        if ball < 0:
            return -1
        sign = _bounds_sign(self, _WORK_PREC * 4)
        return sign if sign is not None else _exact_sign(self)

    def __eq__(self, other):
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        if other is self:
            return True
        if not self._b.overlaps(other.ball()):
            return False
        return _same_form(self, other) or (self - other)._sign() == 0

    def __hash__(self):
        return 0x5E11   # equal values must hash alike, and equality here is a sign test

    def ball(self, prec: int = _WORK_PREC):
        return self._b if prec <= _WORK_PREC else _ball_at(self, prec)

    def bounds(self, prec: int) -> tuple[Fraction, Fraction]:
        return _endpoints(self.ball(prec))

    def decimal(self, digits: int = 30) -> Decimal:
        ball = self.ball(int(digits * 3.33) + 64)
        return _to_decimal(_dyadic(ball.mid()), digits)

    def __float__(self):
        return float(self._b.mid())


_ONE_Q = Q(1)


def _rat(q) -> Rat:
    if q.denominator.bit_length() > _MAX_BITS or q.numerator.bit_length() > _MAX_BITS:
        return _big(q)
    obj = object.__new__(Rat)
    obj._q = q
    obj._b = None
    return obj


def _poly(terms: dict) -> Exact:
    terms = {m: c for m, c in terms.items() if c}
    if not terms:
        return _ZERO
    if len(terms) == 1 and () in terms:
        return _rat(terms[()])
    if len(terms) > _MAX_TERMS or any(_too_long(c) for c in terms.values()):
        return _big_poly(terms)
    obj = object.__new__(Poly)
    obj._t = terms
    obj._b = None
    return obj


def _too_long(q) -> bool:
    return q.denominator.bit_length() > _MAX_BITS or q.numerator.bit_length() > _MAX_BITS


def _big(q) -> Cert:
    """A rational past the budget: certified from here on (its digits are not printed)."""
    obj = object.__new__(Rat)
    obj._q, obj._b = q, None
    return _node("val", (obj,), obj.ball(), size=None)


def _big_poly(terms: dict) -> Cert:
    obj = object.__new__(Poly)
    obj._t, obj._b = terms, None
    return _node("val", (obj,), obj.ball(), size=None)


_ZERO = _rat(Q(0))
_ONE = _rat(Q(1))


def _coerce(value):
    if isinstance(value, Exact):
        return value
    if isinstance(value, int):
        return _rat(Q(value))
    if isinstance(value, Fraction):
        return _rat(Q(value.numerator, value.denominator))
    return NotImplemented


def exact(value) -> Exact:
    """int, Fraction or Exact → Exact."""
    result = _coerce(value)
    if result is NotImplemented:
        raise TypeError(f"not an exact number: {value!r}")
    return result


# ----- arithmetic on the tower ----------------------------------------------
def _add(a: Exact, b: Exact) -> Exact:
    if type(a) is Cert or type(b) is Cert:
        if _is_zero(a):
            return b
        if _is_zero(b):
            return a
        return _made("add", a, b)
    pa, pb = a._poly(), b._poly()
    if pa is not None and pb is not None:
        out = dict(pa)
        for m, c in pb.items():
            out[m] = out.get(m, 0) + c
        return _poly(out)
    if not pa and pa is not None:
        return b
    if not pb and pb is not None:
        return a
    return _made("add", a, b)


def _sub(a: Exact, b: Exact) -> Exact:
    if a is b:
        return _ZERO
    if type(a) is not Cert and type(b) is not Cert:
        return _add(a, -b)
    if _is_zero(b):
        return a
    if _is_zero(a):             # 0 − x is −x (a weight 0 minus its step), not a closed form "0 − x"
        return -b
    return _made("sub", a, b)


def _is_zero(x: Exact) -> bool:
    return type(x) is Rat and not x._q


def _mul(a: Exact, b: Exact) -> Exact:
    if type(a) is Cert or type(b) is Cert:
        if type(b) is Rat:
            a, b = b, a
        if type(a) is Rat:
            if not a._q:
                return _ZERO
            if a._q == 1:
                return b
        elif a._poly() == {}:
            return _ZERO
        return _made("mul", a, b)
    pa, pb = a._poly(), b._poly()
    if pa is not None and pb is not None:
        out: dict = {}
        for m1, c1 in pa.items():
            for m2, c2 in pb.items():
                k, m = _mono_mul(m1, m2)
                out[m] = out.get(m, 0) + c1 * c2 * k
        return _poly(out)
    for x, y, px in ((a, b, pa), (b, a, pb)):
        if px == {}:
            return _ZERO
        if px == {(): _ONE_Q}:
            return y
    return _made("mul", a, b)


def _div(a: Exact, b: Exact) -> Exact:
    if type(b) is Rat and b._q == 1:
        return a
    if type(b) is Rat and b._q:
        return _mul(a, _rat(1 / b._q))
    pb = b._poly()
    if pb is not None and len(pb) == 1:
        (mono, c), = pb.items()
        k, inv = _mono_mul((), tuple((x, -e) for x, e in mono))
        return _mul(a, _poly({inv: k / c}))
    if b._sign() == 0:
        raise EngineError("division by zero")
    if a._poly() == {}:
        return _ZERO
    return _made("div", a, b)


def _pow(base: Exact, exponent: Exact) -> Exact:
    if exponent.is_integer():
        n = int(exponent.as_fraction())
        if abs(n) > _MAX_EXP:
            raise EngineError(f"exponent {n} is too large (at most {_MAX_EXP} in magnitude)")
        if base.is_rational() and (n >= 0 or base._sign() != 0):
            q = base._q
            if abs(n) * max(q.numerator.bit_length(), q.denominator.bit_length()) <= 2 * _MAX_BITS:
                return _rat(q ** n if n >= 0 else (1 / q) ** -n)
        if abs(n) <= _MAX_POWER and base._poly() is not None and (n >= 0 or len(base._poly()) == 1):
            result, factor = _ONE, (base if n >= 0 else base.reciprocal())
            for _ in range(abs(n)):
                result = result * factor
            return result
        if n < 0 and base._sign() == 0:
            raise EngineError("division by zero")
        return _node("pow", (base, n), base.ball() ** n)
    if exponent.is_rational() and exponent.as_fraction().denominator == 2 and base.is_rational():
        return sqrt(base) ** (exponent * 2)
    if base._sign() <= 0:
        raise EngineError(f"power of a non-positive number ({base})")
    return exp(log(base) * exponent)


def dot(xs, ys) -> Exact:
    """Σ xᵢ·yᵢ.  The ring's terms are summed exactly; the certified ones make one node (not 2n), its
    ball summed in place: a matrix product with certified entries costs ball arithmetic, not objects."""
    ring, args = _ZERO, [None]
    for x, y in zip(xs, ys):
        if type(x) is Cert or type(y) is Cert:
            if not (_is_zero(x) or _is_zero(y)):
                args += (x, y)
        else:
            ring = ring + x * y
    if len(args) == 1:
        return ring
    if len(args) == 3 and _is_zero(ring):
        return _mul(args[1], args[2])
    args[0] = ring
    key = ("dot", ring, *map(id, args[1:]))
    node = _MADE.get(key)
    if node is None or not _holds(node, args):
        ball = ring.ball()
        for k in range(1, len(args), 2):
            ball += args[k].ball() * args[k + 1].ball()
        node = _MADE[key] = _node("dot", tuple(args), ball)
    return node


# ----- certified nodes --------------------------------------------------------
# Value numbering: the same operation on the same operand objects gives the same node, so a value
# computed twice (x − x, or a gradient recomputed under another convention from shared inputs) is one
# object, found equal at once and not enclosed again.  Keys hold operand ids; a node holds its operands
# alive, and _holds checks them, so a reused id never returns a stranger.  Cleared by forget_nodes().
_MADE: dict = {}
_BALL = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def _made(op: str, a: Exact, b: Exact) -> Cert:
    key = (op, id(a), id(b))
    node = _MADE.get(key)
    if node is None or node._args[0] is not a or node._args[1] is not b:
        node = _MADE[key] = _node(op, (a, b), _BALL[op](a.ball(), b.ball()))
    return node


def _holds(node: Cert, args: list) -> bool:
    return all(p is q for p, q in zip(node._args[1:], args[1:]))


def forget_nodes() -> None:
    """Drop the memo of operations (a solve starts afresh; the memo would keep every node alive)."""
    _MADE.clear()


def _node(op: str, args: tuple, ball, size=0) -> Cert:
    obj = object.__new__(Cert)
    obj._op, obj._args, obj._b, obj._rep = op, args, ball, None
    if size is not None:
        size = 1
        for a in args:
            t = type(a)
            s = a._size if t is Cert else 1 if t is Rat else len(a._t) if t is Poly else 0
            if s is None:
                size = None
                break
            size += s
        if size is not None and size > _FORM_NODES:
            size = None
    obj._size = size
    if not ball.is_finite():
        raise EngineError(f"a value overflows: {op} of {', '.join(map(str, args))} cannot be enclosed")
    return obj


def _revive(op: str, args: tuple, size) -> Cert:
    with _precision(_WORK_PREC):
        ball = _apply(op, [a.ball() if isinstance(a, Exact) else a for a in args])
    return _node(op, args, ball, size=size if size is None else 0)


def _apply(op: str, args: list):
    arb = _flint().arb
    if op == "add":
        return args[0] + args[1]
    if op == "sub":
        return args[0] - args[1]
    if op == "mul":
        return args[0] * args[1]
    if op == "div":
        return args[0] / args[1]
    if op == "neg":
        return -args[0]
    if op == "pow":
        return args[0] ** args[1]
    if op == "val":
        return args[0]
    if op == "dot":
        total = args[0]
        for k in range(1, len(args), 2):
            total += args[k] * args[k + 1]
        return total
    if op == "sigmoid":
        return 1 / (1 + (-args[0]).exp())
    if op == "sympy":
        return _sympy_ball(args[0], _flint().ctx.prec)
    return getattr(arb, op)(args[0])       # exp, log, sqrt, tanh


def _ball_at(x: Cert, prec: int):
    """x's ball recomputed at `prec` bits: the DAG walked without recursion (it can be deep)."""
    memo: dict = {}
    stack = [x]
    with _precision(prec):
        while stack:
            node = stack[-1]
            if id(node) in memo:
                stack.pop()
                continue
            if type(node) is not Cert:
                memo[id(node)] = node.ball(prec) if isinstance(node, Exact) else node
                stack.pop()
                continue
            pending = [a for a in node._args if isinstance(a, Exact) and id(a) not in memo]
            if node._op == "sympy":
                pending = []
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            args = [memo[id(a)] if isinstance(a, Exact) else a for a in node._args]
            memo[id(node)] = _apply(node._op, args)
    return memo[id(x)]


def _same_form(a: Exact, b: Exact) -> bool:
    """Whether a and b are the same computation (so the same number): the cheap exact test that
    recognises the ties between values computed twice, e.g. in two solves."""
    if type(a) is Cert and type(b) is Cert and _same_operands(_rep(a), _rep(b)):
        return True
    stack, seen, linked = [(a, b)], set(), []
    while stack:
        x, y = stack.pop()
        if type(x) is Cert and type(y) is Cert:
            x, y = _rep(x), _rep(y)
        if x is y or (id(x), id(y)) in seen:
            continue
        seen.add((id(x), id(y)))
        if type(x) is Cert and type(y) is Cert:
            if x._op != y._op or len(x._args) != len(y._args):
                return False
            stack.extend(zip(x._args, y._args))
            linked.append((x, y))
        elif type(x) is Cert or type(y) is Cert:
            return False
        elif isinstance(x, Exact) and isinstance(y, Exact):
            if x._poly() != y._poly():
                return False
        elif isinstance(x, Exact) or isinstance(y, Exact) or x != y:
            return False
    for x, y in linked:         # remembered: the next comparison of these is immediate
        y._rep = x
    return True


def _same_operands(x: Cert, y: Cert, depth: int = 4) -> bool:
    """The common case of _same_form, without its walk: the same operations, a few levels deep, on
    operands that are the same objects or equal rationals (a value recomputed from shared inputs,
    e.g. under another convention).  False only means "not shown this way"."""
    if x is y:
        return True
    if depth == 0 or x._op != y._op or len(x._args) != len(y._args):
        return False
    for p, q in zip(x._args, y._args):
        if p is q or type(p) is Rat and type(q) is Rat and p._q == q._q:
            continue
        if type(p) is not Cert or type(q) is not Cert or not _same_operands(_rep(p), _rep(q), depth - 1):
            return False
    y._rep = x
    return True


def _rep(x: Cert) -> Cert:
    """The node x was found to be the same computation as (itself if none)."""
    while x._rep is not None:
        x = x._rep
    return x


def _exact_sign(x: Cert) -> int:
    """The exact test behind a tie no ball can break: the same computation on both sides of a
    difference is 0; otherwise sympy decides whether x is 0."""
    if x._op == "sub" and _same_form(*x._args):
        return 0
    if _dag_size(x, _EXACT_TEST_NODES) > _EXACT_TEST_NODES:
        raise EngineError(f"cannot decide the sign of a value within 2^-{_MAX_PREC} of 0 "
                          f"(its closed form is too large for an exact test)")
    import sympy

    expr = x.sympy()
    if expr == 0 or sympy.simplify(expr) == 0:
        return 0
    value = expr.evalf(_MAX_PREC // 3)
    if value.is_real and value != 0:
        return 1 if value > 0 else -1
    raise EngineError(f"cannot decide the sign of {sympy.sstr(expr)}")


def _dag_size(x, limit: int) -> int:
    seen, stack = set(), [x]
    while stack and len(seen) <= limit:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if type(node) is Cert:
            stack.extend(a for a in node._args if isinstance(a, Exact))
    return len(seen)


def _to_sympy(x: Exact):
    import sympy

    if type(x) is not Cert:
        return Exact.sympy(x)
    op, args = x._op, x._args
    if op == "sympy":
        return args[0]
    a = [_to_sympy(v) if isinstance(v, Exact) else sympy.Integer(v) for v in args]
    binary = {"add": lambda: a[0] + a[1], "sub": lambda: a[0] - a[1], "mul": lambda: a[0] * a[1],
              "div": lambda: a[0] / a[1], "pow": lambda: a[0] ** a[1]}
    if op in binary:
        return binary[op]()
    if op == "neg":
        return -a[0]
    if op == "val":
        return a[0]
    if op == "dot":
        return a[0] + sympy.Add(*(a[k] * a[k + 1] for k in range(1, len(a), 2)))
    if op == "sigmoid":
        return 1 / (1 + sympy.exp(-a[0]))
    return getattr(sympy, op)(a[0])


# ----- arb helpers --------------------------------------------------------------
_FLINT = None


def _flint():
    global _FLINT
    if _FLINT is None:
        import flint

        flint.ctx.prec = _WORK_PREC
        _FLINT = flint
    return _FLINT


class _precision:
    """Temporarily set arb's working precision."""

    def __init__(self, prec: int):
        self.prec = prec

    def __enter__(self):
        ctx = _flint().ctx
        self.saved, ctx.prec = ctx.prec, self.prec

    def __exit__(self, *exc):
        _FLINT.ctx.prec = self.saved


def _q_arb(q):
    flint = _flint()
    if q.denominator == 1:
        return flint.arb(int(q.numerator))
    return flint.arb(flint.fmpq(int(q.numerator), int(q.denominator)))


@lru_cache(maxsize=512)
def _atom_ball(atom: Atom, prec: int):
    arb = _flint().arb
    with _precision(prec + 10):
        kind = atom[0]
        if kind == "ln":
            return arb(atom[1]).log()
        if kind == "sqrt":
            return arb(atom[1]).sqrt()
        if kind == "pi":
            return arb.pi()
        return arb.const_e()


def _mono_bounds(mono: Mono, prec: int) -> tuple:
    """mpq bounds of a monomial (atoms are positive): every factor, power and product rounded outward."""
    return _mono_bound(mono, prec, False), _mono_bound(mono, prec, True)


@lru_cache(maxsize=4096)
def _mono_bound(mono: Mono, prec: int, up: bool):
    value = _ONE_Q
    if mono:
        with gmpy2.context(precision=prec + 10, round=gmpy2.RoundUp if up else gmpy2.RoundDown):
            value = gmpy2.mpfr(1)
            for atom, k in mono:      # x**k falls with x when k < 0: the other bound of x
                value *= _atom_bound(atom, prec, up == (k > 0)) ** k
    return Q(value)


@lru_cache(maxsize=1024)
def _atom_bound(atom: Atom, prec: int, up: bool):
    """An atom rounded up or down by MPFR (correctly rounded: a certified bound)."""
    kind = atom[0]
    bits = prec + 10 + (atom[1].bit_length() if len(atom) > 1 else 0)    # the integer itself is exact
    with gmpy2.context(precision=bits, round=gmpy2.RoundUp if up else gmpy2.RoundDown):
        if kind == "ln":
            return gmpy2.log(atom[1])
        if kind == "sqrt":
            return gmpy2.sqrt(atom[1])
        if kind == "pi":
            return gmpy2.const_pi()
        return gmpy2.exp(1)


def _fraction(q) -> Fraction:
    return Fraction(int(q.numerator), int(q.denominator))


def _dyadic(point) -> Fraction:
    m, e = point.man_exp()
    m, e = int(m), int(e)
    return Fraction(m * 2**e) if e >= 0 else Fraction(m, 2**-e)


def _endpoints(ball) -> tuple[Fraction, Fraction]:
    mid, rad = _dyadic(ball.mid()), _dyadic(ball.rad())
    return mid - rad, mid + rad


def _to_decimal(q: Fraction, digits: int) -> Decimal:
    from decimal import localcontext

    with localcontext() as ctx:
        ctx.prec = digits + 5
        return Decimal(q.numerator) / Decimal(q.denominator)


# ----- monomials -----------------------------------------------------------
def _mono_mul(a: Mono, b: Mono) -> tuple:
    """Product of two monomials as (rational factor, canonical monomial)."""
    if not a:
        if not b or all(x[0] != "sqrt" for x, _ in b) and all(k for _, k in b):
            return _ONE_Q, b
    elif not b:
        return _ONE_Q, a
    powers: dict = dict(a)
    for atom, k in b:
        powers[atom] = powers.get(atom, 0) + k
    factor = Q(1)
    radicand = 1
    for atom in [x for x in powers if x[0] == "sqrt"]:
        k = powers.pop(atom)
        factor *= Q(atom[1]) ** (k // 2)
        if k % 2:
            radicand *= atom[1]
    if radicand > 1:
        square, rest = _split_square(radicand)
        factor *= square
        if rest > 1:
            powers[("sqrt", rest)] = 1
    return factor, tuple(sorted((x, k) for x, k in powers.items() if k))


def _split_square(n: int) -> tuple[int, int]:
    """n = s² · t with t square-free; returns (s, t)."""
    s, t = 1, 1
    for p, k in factorize(n).items():
        s *= p ** (k // 2)
        t *= p ** (k % 2)
    return s, t


@lru_cache(maxsize=4096)
def _factorize_cached(n: int) -> tuple:
    factors: dict = {}
    d = 2
    while d * d <= n:
        while n % d == 0:
            factors[d] = factors.get(d, 0) + 1
            n //= d
        d += 1 if d == 2 else 2
    if n > 1:
        factors[n] = factors.get(n, 0) + 1
    return tuple(factors.items())


def factorize(n: int) -> dict:
    """Prime factors of 1 ≤ n ≤ 10¹² by trial division."""
    if not 1 <= n <= _FACTOR_LIMIT:
        raise _TooLarge
    return dict(_factorize_cached(int(n)))


class _TooLarge(Exception):
    pass


# ----- atoms -----------------------------------------------------------------
def _atom_sympy(atom: Atom):
    import sympy

    kind = atom[0]
    if kind == "ln":
        return sympy.log(sympy.Integer(atom[1]), evaluate=False)
    if kind == "sqrt":
        return sympy.sqrt(sympy.Integer(atom[1]))
    if kind == "pi":
        return sympy.pi
    return sympy.E


E = Exact.atom(("e",))
PI = Exact.atom(("pi",))


def ln_prime(p: int) -> Exact:
    return Exact.atom(("ln", p))


# ----- functions -------------------------------------------------------------
def _function(op: str, x: Exact) -> Cert:
    """op(x) outside the ring; the same (op, x) gives the same node (value numbering, _MADE)."""
    key = (op, x) if type(x) is not Cert else (op, id(x))
    node = _MADE.get(key)
    if node is None or (type(x) is Cert and node._args[0] is not x):
        with _precision(_WORK_PREC):
            node = _node(op, (x,), _apply(op, [x.ball()]))
        _MADE[key] = node
    return node


def _bounds_sign(value, prec: int) -> int | None:
    """The sign from ever closer bounds, from `prec` bits up to the limit; None when all of them hold 0."""
    while prec <= _MAX_PREC:
        low, high = value.bounds(prec)
        if low > 0:
            return 1
        if high < 0:
            return -1
        prec *= 4
    return None


def _check_exponent(x: Exact) -> None:
    """|x| of e^x within the cost model's limit (spec/limits.py, one flag raises it for a trusted file)."""
    from examsolver.spec.limits import check_exp_argument

    check_exp_argument(x)


def exp(x) -> Exact:
    """e^x: exact when x is an integer plus rational multiples of ln p, certified otherwise."""
    x = exact(x)
    terms = x._poly()
    if terms is not None:
        result = _exp_fast(terms)
        if result is not None:
            return result
    _check_exponent(x)
    return _function("exp", x)


def _exp_fast(terms: dict) -> Exact | None:
    result = _ONE
    for mono, c in terms.items():
        if mono == ():
            if c.denominator != 1 or abs(c) > _MAX_POWER:
                return None
            result = result * Exact.atom(("e",), int(c))
        elif len(mono) == 1 and mono[0][0][0] == "ln" and mono[0][1] == 1:
            p = mono[0][0][1]
            if c.denominator not in (1, 2) or abs(c) > _MAX_POWER:
                return None
            whole = int(c.numerator // c.denominator)
            result = result * _rat(Q(p) ** whole)
            if c.denominator == 2:
                result = result * Exact.atom(("sqrt", p))
        else:
            return None
    return result


def log(x) -> Exact:
    """Natural logarithm; exact for products of rationals, √n and powers of e."""
    x = exact(x)
    if x._sign() <= 0:
        raise EngineError(f"logarithm of a non-positive number ({x})")
    terms = x._poly()
    if terms is not None and len(terms) == 1:
        (mono, c), = terms.items()
        try:
            return _log_fast(mono, c)
        except _TooLarge:
            pass
    return _function("log", x)


def _log_fast(mono: Mono, c) -> Exact:
    result = _log_rational(c)
    for atom, k in mono:
        if atom[0] == "e":
            result = result + k
        elif atom[0] == "sqrt":
            result = result + _log_rational(Q(atom[1])) * Fraction(k, 2)
        else:
            raise _TooLarge
    return result


def _log_rational(q) -> Exact:
    result = _ZERO
    for p, k in factorize(q.numerator).items():
        result = result + ln_prime(p) * k
    for p, k in factorize(q.denominator).items():
        result = result - ln_prime(p) * k
    return result


def sqrt(x) -> Exact:
    """Square root; exact (a rational times √n) for non-negative rationals."""
    x = exact(x)
    if x._sign() < 0:
        raise EngineError(f"square root of a negative number ({x})")
    if x.is_rational():
        q = x._q
        try:
            s, t = _split_square(int(q.numerator * q.denominator))
        except _TooLarge:
            return _function("sqrt", x)
        root = _rat(Q(s, int(q.denominator)))
        return root * Exact.atom(("sqrt", t)) if t > 1 else root
    return _function("sqrt", x)


def _rational_exp(x: Exact) -> Exact | None:
    """e^x when it is rational, else None."""
    terms = x._poly()
    if terms is None:
        return None
    value = _exp_fast(terms)
    return value if value is not None and value.is_rational() else None


def tanh(x) -> Exact:
    x = exact(x)
    e2x = _rational_exp(x * 2)
    if e2x is not None:
        return (e2x - 1) / (e2x + 1)
    _check_exponent(x)
    return _function("tanh", x)


def cosh(x) -> Exact:
    x = exact(x)
    return (exp(x) + exp(-x)) / 2


def sinh(x) -> Exact:
    x = exact(x)
    return (exp(x) - exp(-x)) / 2


def sigmoid(x) -> Exact:
    x = exact(x)
    e = _rational_exp(-x)
    if e is not None:
        return _ONE / (e + 1)
    _check_exponent(x)
    return _function("sigmoid", x)


def softplus(x) -> Exact:
    return log(exp(x) + 1)


# ----- sympy bridge -----------------------------------------------------------
def _sympy_leaf(expr) -> Cert:
    """A sympy number outside the ring (from the symbolic solver): enclosed by evalf."""
    if not expr.is_number or expr.is_real is False:
        raise EngineError(f"not a real number: {expr}")
    with _precision(_WORK_PREC):
        return _node("sympy", (expr,), _sympy_ball(expr, _WORK_PREC))


def _sympy_ball(expr, prec: int):
    import sympy

    digits = int(prec / 3.33) + 10
    value = expr.evalf(digits)
    if not value.is_real:
        if value.is_number and abs(sympy.im(value)) < sympy.Float(10) ** -(digits - 10):
            value = sympy.re(value)
        else:
            raise EngineError(f"cannot enclose {expr}")
    flint = _flint()
    mid = flint.arb(sympy.sstr(sympy.Float(value, digits), full_prec=True))
    return mid + flint.arb(0, flint.arb(2) ** (-(prec - 4)) * (abs(mid) + 1))


def _from_sympy(expr) -> Exact | None:
    """Back to the canonical form when the expression lies in our ring."""
    import sympy

    if expr.is_Rational:
        return Exact(Fraction(int(expr.p), int(expr.q)))
    if expr is sympy.pi:
        return PI
    if expr is sympy.E:
        return E
    if isinstance(expr, sympy.log) and expr.args[0].is_Integer and expr.args[0] > 0:
        try:
            return _log_rational(Q(int(expr.args[0])))
        except _TooLarge:
            return None
    if expr.is_Add or expr.is_Mul:
        parts = [_from_sympy(a) for a in expr.args]
        if any(p is None for p in parts):
            return None
        result = parts[0]
        for p in parts[1:]:
            result = result + p if expr.is_Add else result * p
        return result if type(result) is not Cert else None
    if expr.is_Pow and expr.exp.is_Integer and abs(int(expr.exp)) <= _MAX_POWER:
        base = _from_sympy(expr.base)
        if base is None or (len(base._poly()) > 1 and expr.exp < 0):
            return None
        return base ** int(expr.exp)
    if expr.is_Pow and expr.exp == sympy.Rational(1, 2) and expr.base.is_Rational and expr.base >= 0 \
            and expr.base.p * expr.base.q <= _FACTOR_LIMIT:     # beyond it sqrt() hands back to sympy: a loop
        return sqrt(Fraction(int(expr.base.p), int(expr.base.q)))
    if isinstance(expr, sympy.exp):
        arg = _from_sympy(expr.args[0])
        if arg is not None and arg._poly() is not None:
            return _exp_fast(arg._poly())
    return None
