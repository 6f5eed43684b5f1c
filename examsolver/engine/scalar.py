"""Exact scalars: rationals extended with ln p, √n, π and e; sympy as the fallback.

Why not sympy everywhere: `import sympy` alone costs more than a whole solve of a
typical exam problem, and sympy arithmetic on a + b·ln 2 is an order of magnitude
slower.  Exam numbers almost always live in Q[ln 2, ln 3, …, √2, π, e], which this
module keeps in a canonical form (a polynomial with Fraction coefficients over those
atoms), so equality is structural and every decision (a ReLU mask, a max-pool
winner, a ranking) is taken exactly.  A value that leaves that ring — tanh(1),
1/(1 + ln 2) — silently becomes a sympy expression, imported only then.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction
from functools import lru_cache

from examsolver.errors import EngineError

# An atom is a tuple: ("e",), ("ln", p) for a prime p, ("pi",), ("sqrt", n) for a
# square-free n > 1.  A monomial is a sorted tuple of (atom, exponent) pairs.
Atom = tuple
Mono = tuple

_FACTOR_LIMIT = 10**12      # larger integers are not factored; sympy takes over
_MAX_POWER = 4096           # |exponent| above which powers are left to sympy
_SIGN_DIGITS = 60           # working precision when a sign must be decided


class Exact:
    """An exact real number.  Immutable; mixes freely with int and Fraction."""

    __slots__ = ("_t", "_s")

    def __init__(self, value=0):
        if isinstance(value, Exact):
            self._t, self._s = value._t, value._s
        elif isinstance(value, (int, Fraction)):
            q = Fraction(value)
            self._t, self._s = ({(): q} if q else {}), None
        else:
            raise TypeError(f"cannot make an exact number from {type(value).__name__}")

    # ----- construction -------------------------------------------------
    @classmethod
    def _terms(cls, terms: dict) -> Exact:
        obj = object.__new__(cls)
        obj._t, obj._s = {m: c for m, c in terms.items() if c}, None
        return obj

    @classmethod
    def _sympy(cls, expr) -> Exact:
        back = _from_sympy(expr)
        if back is not None:
            return back
        obj = object.__new__(cls)
        obj._t, obj._s = None, expr
        return obj

    @classmethod
    def atom(cls, atom: Atom, power: int = 1) -> Exact:
        coeff, mono = _mono_mul((), ((atom, power),))
        return cls._terms({mono: coeff})

    # ----- inspection -----------------------------------------------------
    @property
    def is_symbolic(self) -> bool:
        """True when the value is held as a sympy expression."""
        return self._t is None

    @property
    def terms(self) -> dict:
        if self._t is None:
            raise EngineError("value is held symbolically")
        return self._t

    def is_rational(self) -> bool:
        return self._t is not None and all(m == () for m in self._t)

    def as_fraction(self) -> Fraction:
        if not self.is_rational():
            raise EngineError(f"{self} is not rational")
        return self._t.get((), Fraction(0))

    def is_integer(self) -> bool:
        return self.is_rational() and self.as_fraction().denominator == 1

    def sympy(self):
        """The value as a sympy expression (imports sympy)."""
        if self._s is not None:
            return self._s
        import sympy

        total = sympy.Integer(0)
        for mono, c in self._t.items():
            term = sympy.Rational(c.numerator, c.denominator)
            for atom, k in mono:
                term *= _atom_sympy(atom) ** k
            total += term
        return total

    # ----- arithmetic -----------------------------------------------------
    def __neg__(self):
        if self._t is None:
            return Exact._sympy(-self._s)
        return Exact._terms({m: -c for m, c in self._t.items()})

    def __pos__(self):
        return self

    def __add__(self, other):
        other = _coerce(other)
        if other is NotImplemented:
            return other
        if self._t is None or other._t is None:
            return Exact._sympy(self.sympy() + other.sympy())
        out = dict(self._t)
        for m, c in other._t.items():
            out[m] = out.get(m, 0) + c
        return Exact._terms(out)

    __radd__ = __add__

    def __sub__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else self + (-other)

    def __rsub__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else other + (-self)

    def __mul__(self, other):
        other = _coerce(other)
        if other is NotImplemented:
            return other
        if self._t is None or other._t is None:
            return Exact._sympy(self.sympy() * other.sympy())
        out: dict = {}
        for m1, c1 in self._t.items():
            for m2, c2 in other._t.items():
                k, m = _mono_mul(m1, m2)
                out[m] = out.get(m, 0) + c1 * c2 * k
        return Exact._terms(out)

    __rmul__ = __mul__

    def reciprocal(self) -> Exact:
        if self._t is not None and len(self._t) == 1:
            (mono, c), = self._t.items()
            k, inv = _mono_mul((), tuple((a, -e) for a, e in mono))
            return Exact._terms({inv: k / c})
        if not self._t and self._t is not None:
            raise EngineError("division by zero")
        if self.sign() == 0:
            raise EngineError("division by zero")
        return Exact._sympy(1 / self.sympy())

    def __truediv__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else self * other.reciprocal()

    def __rtruediv__(self, other):
        other = _coerce(other)
        return NotImplemented if other is NotImplemented else other * self.reciprocal()

    def __pow__(self, exponent):
        exponent = _coerce(exponent)
        if exponent is NotImplemented:
            return exponent
        if exponent.is_integer():
            n = int(exponent.as_fraction())
            if abs(n) <= _MAX_POWER and self._t is not None:
                base = self if n >= 0 else self.reciprocal()
                result = Exact(1)
                for _ in range(abs(n)):
                    result = result * base
                return result
        elif exponent.is_rational() and exponent.as_fraction().denominator == 2 and self.is_rational():
            return sqrt(self) ** (exponent * 2)
        return Exact._sympy(self.sympy() ** exponent.sympy())

    def __rpow__(self, base):
        base = _coerce(base)
        return NotImplemented if base is NotImplemented else base ** self

    def __abs__(self):
        return -self if self.sign() < 0 else self

    # ----- order and equality ---------------------------------------------
    def sign(self) -> int:
        """-1, 0 or 1, decided exactly (never from a rounded float alone)."""
        if self._t is not None:
            if not self._t:
                return 0
            if self.is_rational():
                q = self.as_fraction()
                return (q > 0) - (q < 0)
            # A non-zero canonical polynomial in independent transcendentals is
            # non-zero; high precision only tells its sign.
            value = self.decimal(_SIGN_DIGITS)
            if abs(value) < Decimal(10) ** (-_SIGN_DIGITS + 15):
                raise EngineError(f"cannot decide the sign of {self}")
            return 1 if value > 0 else -1
        return _sympy_sign(self._s)

    def __eq__(self, other):
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        if self._t is not None and other._t is not None:
            return self._t == other._t
        return (self - other).sign() == 0

    def __hash__(self):
        if self._t is None:
            return hash(self._s)
        if self.is_rational():
            return hash(self.as_fraction())
        return hash(frozenset(self._t.items()))

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
    def decimal(self, digits: int = 30) -> Decimal:
        """The value to `digits` significant digits."""
        if self._t is None:
            return Decimal(str(self._s.evalf(digits + 5)))
        with localcontext() as ctx:
            ctx.prec = digits + 10
            total = Decimal(0)
            for mono, c in self._t.items():
                term = Decimal(c.numerator) / Decimal(c.denominator)
                for atom, k in mono:
                    term *= _atom_decimal(atom, digits + 10) ** k
                total += term
            return +total

    def __float__(self):
        if self.is_rational():
            return float(self.as_fraction())
        return float(self.decimal(20))

    def __int__(self):
        return int(self.as_fraction())

    def __repr__(self):
        return f"Exact({self})"

    def __str__(self):
        from examsolver.render.values import plain

        return plain(self)



def _coerce(value):
    if isinstance(value, Exact):
        return value
    if isinstance(value, (int, Fraction)):
        return Exact(value)
    return NotImplemented


def exact(value) -> Exact:
    """int, Fraction or Exact → Exact."""
    result = _coerce(value)
    if result is NotImplemented:
        raise TypeError(f"not an exact number: {value!r}")
    return result


# ----- monomials -----------------------------------------------------------
def _mono_mul(a: Mono, b: Mono) -> tuple[Fraction, Mono]:
    """Product of two monomials as (rational factor, canonical monomial)."""
    powers: dict = dict(a)
    for atom, k in b:
        powers[atom] = powers.get(atom, 0) + k
    factor = Fraction(1)
    radicand = 1
    for atom in [x for x in powers if x[0] == "sqrt"]:
        k = powers.pop(atom)
        factor *= Fraction(atom[1]) ** (k // 2)
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
    return dict(_factorize_cached(n))


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


@lru_cache(maxsize=256)
def _atom_decimal(atom: Atom, prec: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = prec + 5
        kind = atom[0]
        if kind == "ln":
            value = Decimal(atom[1]).ln()
        elif kind == "sqrt":
            value = Decimal(atom[1]).sqrt()
        elif kind == "e":
            value = Decimal(1).exp()
        else:
            value = _pi(prec + 5)
        return +value


def _pi(prec: int) -> Decimal:
    """π by Machin's formula, π/4 = 4 arctan(1/5) − arctan(1/239)."""

    def arctan_inv(x: int) -> Decimal:
        total, term, n, sign = Decimal(0), Decimal(1) / x, 1, 1
        x2 = x * x
        while term > Decimal(10) ** -(prec + 2):
            total += sign * term / n
            term /= x2
            n += 2
            sign = -sign
        return total

    with localcontext() as ctx:
        ctx.prec = prec + 5
        return 4 * (4 * arctan_inv(5) - arctan_inv(239))


E = Exact.atom(("e",))
PI = Exact.atom(("pi",))


def ln_prime(p: int) -> Exact:
    return Exact.atom(("ln", p))


# ----- functions -------------------------------------------------------------
def _symbolic(name: str, x: Exact) -> Exact:
    import sympy

    return Exact._sympy(getattr(sympy, name)(x.sympy()))


def exp(x) -> Exact:
    """e^x, exact when x is an integer plus rational multiples of ln p."""
    x = exact(x)
    if x._t is not None:
        result = _exp_fast(x._t)
        if result is not None:
            return result
    _check_exp_argument(x)
    return _symbolic("exp", x)


def _check_exp_argument(x: Exact) -> None:
    """Before sympy holds e^x: e^(2^64) stalls every later sign decision, e^(10^18) aborts inside GMP."""
    from examsolver.spec.limits import check_exp_argument

    check_exp_argument(x)


def _exp_fast(terms: dict) -> Exact | None:
    result = Exact(1)
    for mono, c in terms.items():
        if mono == ():
            if c.denominator != 1 or abs(c) > _MAX_POWER:
                return None
            result = result * Exact.atom(("e",), int(c))
        elif len(mono) == 1 and mono[0][0][0] == "ln" and mono[0][1] == 1:
            p = mono[0][0][1]
            if c.denominator not in (1, 2) or abs(c) > _MAX_POWER:
                return None
            whole = c.numerator // c.denominator
            result = result * Fraction(p) ** whole
            if c.denominator == 2:
                result = result * Exact.atom(("sqrt", p))
        else:
            return None
    return result


def log(x) -> Exact:
    """Natural logarithm; exact for products of rationals, √n and powers of e."""
    x = exact(x)
    if x.sign() <= 0:
        raise EngineError(f"logarithm of a non-positive number ({x})")
    if x._t is not None and len(x._t) == 1:
        (mono, c), = x._t.items()
        try:
            return _log_fast(mono, c)
        except _TooLarge:
            pass
    return _symbolic("log", x)


def _log_fast(mono: Mono, c: Fraction) -> Exact:
    result = _log_rational(c)
    for atom, k in mono:
        if atom[0] == "e":
            result = result + k
        elif atom[0] == "sqrt":
            result = result + _log_rational(Fraction(atom[1])) * Fraction(k, 2)
        else:
            raise _TooLarge
    return result


def _log_rational(q: Fraction) -> Exact:
    result = Exact(0)
    for p, k in factorize(q.numerator).items():
        result = result + ln_prime(p) * k
    for p, k in factorize(q.denominator).items():
        result = result - ln_prime(p) * k
    return result


def sqrt(x) -> Exact:
    """Square root; exact (a rational times √n) for non-negative rationals."""
    x = exact(x)
    if x.sign() < 0:
        raise EngineError(f"square root of a negative number ({x})")
    if x.is_rational():
        q = x.as_fraction()
        try:
            s, t = _split_square(q.numerator * q.denominator)
        except _TooLarge:
            return _symbolic("sqrt", x)
        root = Exact(Fraction(s, q.denominator))
        return root * Exact.atom(("sqrt", t)) if t > 1 else root
    return _symbolic("sqrt", x)


def _rational_exp(x: Exact) -> Exact | None:
    """e^x when it is rational, else None."""
    if x._t is None:
        return None
    value = _exp_fast(x._t)
    return value if value is not None and value.is_rational() else None


def tanh(x) -> Exact:
    x = exact(x)
    e2x = _rational_exp(x * 2)
    if e2x is not None:
        return (e2x - 1) / (e2x + 1)
    _check_exp_argument(x)
    return _symbolic("tanh", x)


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
        return Exact(1) / (e + 1)
    _check_exp_argument(x)
    import sympy

    return Exact._sympy(1 / (1 + sympy.exp(-x.sympy())))


def softplus(x) -> Exact:
    return log(exp(x) + 1)


# ----- sympy bridge -----------------------------------------------------------
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
            return _log_rational(Fraction(int(expr.args[0])))
        except _TooLarge:
            return None
    if expr.is_Add or expr.is_Mul:
        parts = [_from_sympy(a) for a in expr.args]
        if any(p is None for p in parts):
            return None
        result = parts[0]
        for p in parts[1:]:
            result = result + p if expr.is_Add else result * p
        return result
    if expr.is_Pow and expr.exp.is_Integer and abs(int(expr.exp)) <= _MAX_POWER:
        base = _from_sympy(expr.base)
        if base is None or (base._t is not None and len(base._t) > 1 and expr.exp < 0):
            return None
        return base ** int(expr.exp)
    if expr.is_Pow and expr.exp == sympy.Rational(1, 2) and expr.base.is_Rational and expr.base >= 0 \
            and expr.base.p * expr.base.q <= _FACTOR_LIMIT:     # beyond it sqrt() hands back to sympy: a loop
        return sqrt(Fraction(int(expr.base.p), int(expr.base.q)))
    if isinstance(expr, sympy.exp):
        arg = _from_sympy(expr.args[0])
        if arg is not None and arg._t is not None:
            return _exp_fast(arg._t)
    return None


def _sympy_sign(expr) -> int:
    import sympy

    value = expr.evalf(_SIGN_DIGITS)
    if not value.is_real:
        if value.is_number and abs(sympy.im(value)) < sympy.Float(10) ** -40:
            value = sympy.re(value)
        else:
            raise EngineError(f"cannot decide the sign of {expr}")
    if abs(value) > sympy.Float(10) ** (-_SIGN_DIGITS + 15):
        return 1 if value > 0 else -1
    if sympy.simplify(expr) == 0:
        return 0
    raise EngineError(f"cannot decide the sign of {expr}")
