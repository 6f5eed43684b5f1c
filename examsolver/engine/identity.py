"""An exact, fast proof that an expression is identically zero, for equality checks.

Why: sympy's simplify and together/expand on expression trees take from tenths of a second to
seconds on the course's formulas (a softmax's exponentials, an MLP's gradients), and they are
asked only to confirm an equality.  Here the expression is read as a rational function of
*atoms* — every subterm that is not a sum, a product, an integer power or a rational number:
a symbol, exp(…), ln(…), max(…), 𝟙[…], an unspecified function — and its numerator is expanded
in sympy's sparse polynomial ring.  A zero numerator is a proof: a rational-function identity
in independent variables stays one whatever values the atoms take.  Atoms that are in truth
related (ln(ab) and ln(a) + ln(b)) are only treated as unrelated, so a true identity may go
unproved, never a false one proved; the callers then fall back to sympy's own simplification.

Two relations that are always true are used so that the course's forms meet: exp of a sum is a
product of exp's, exp(k·u) = exp(u)ᵏ (k an integer; exp(u/q) for a rational k = p/q); tanh(u)
= (e^{2u} − 1)/(e^{2u} + 1); b^{p/q} = (b^{1/q})ᵖ.  Denominators are kept as a product of the
polynomials they came from (never multiplied out, no gcd needed), each one checked non-zero.
"""

from __future__ import annotations

import math

MAX_WORK = 100_000          # products of terms one proof may multiply out (under 0.1 s), else it gives up
MAX_BITS = 100_000          # nor a coefficient raised to more bits than this


class _Unproven(Exception):
    """The expression is outside what this proof reads, or too large for it."""


def proves_zero(expr) -> bool:
    """True only when expr is identically 0 (a Matrix: every entry); False means "not shown"."""
    import sympy as sp

    entries = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
    try:
        return all(_numerator(e, sp) == 0 for e in entries)
    except (_Unproven, RecursionError):                     # too deep to read: left to the slow path
        return False


def _numerator(expr, sp):
    """The numerator of expr as a polynomial in its atoms (0 exactly when expr is)."""
    if not isinstance(expr, sp.Expr) or not expr.is_commutative:
        raise _Unproven
    if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise _Unproven
    atoms: dict = {}
    _collect(expr, sp, atoms, set())
    if not atoms:
        return expr
    from sympy.polys.domains import QQ
    from sympy.polys.rings import ring

    R, *gens = ring([f"a{i}" for i in range(len(atoms))], QQ)
    reader = _Reader(sp, R, QQ, {key: gens[i] for key, i in atoms.items()})
    return reader.read(expr)[0]


def _parts(e, sp):
    """How e is read: ('number', q), ('terms'|'factors', args), ('power', base, k) for an integer k,
    or ('atoms', [(key, exponent), …]) — e as a product of integer powers of atoms."""
    if e.is_Rational:
        return "number", e
    if e.is_Add:
        return "terms", e.args
    if e.is_Mul:
        return "factors", e.args
    if e.is_Pow and e.exp.is_Integer:
        return "power", e.base, int(e.exp)
    if e.is_Pow and e.exp.is_Rational:                       # b^{p/q} = (b^{1/q})^p
        return "atoms", [(("root", e.base, e.exp.q), int(e.exp.p))]
    if e is sp.E:
        return "atoms", [(("exp", sp.S.One), 1)]
    if isinstance(e, sp.exp):
        return "atoms", [_exp_atom(term, sp) for term in sp.Add.make_args(e.args[0])]
    if isinstance(e, sp.tanh):                               # (X² − 1)/(X² + 1), X = e^u
        x = sp.exp(e.args[0])
        return "factors", (x ** 2 - 1, sp.Pow(x ** 2 + 1, -1, evaluate=False))
    return "atoms", [(e, 1)]


def _exp_atom(term, sp):
    """exp(term) as (atom key, exponent): exp(k·u) = exp(u)^k, exp((p/q)·u) = exp(u/q)^p."""
    c, rest = term.as_coeff_Mul()
    if not c.is_Rational:
        return ("exp", term), 1
    return ("exp", rest / c.q if c.q != 1 else rest), int(c.p)


def _collect(e, sp, atoms: dict, seen: set) -> None:
    """Every atom key of e, numbered in order of appearance."""
    if e in seen:
        return
    seen.add(e)
    kind, *rest = _parts(e, sp)
    if kind in ("terms", "factors"):
        for a in rest[0]:
            _collect(a, sp, atoms, seen)
    elif kind == "power":
        _collect(rest[0], sp, atoms, seen)
    elif kind == "atoms":
        for key, _ in rest[0]:
            atoms.setdefault(key, len(atoms))


class _Reader:
    """Subexpression → (numerator polynomial, denominator {key: (polynomial, exponent)}), memoized:
    the denominator is the product of its polynomials' powers, kept factored."""

    def __init__(self, sp, R, QQ, gens: dict):
        self.sp, self.R, self.QQ, self.gens = sp, R, QQ, gens
        self.memo: dict = {}
        self.work = 0                                        # term products so far (MAX_WORK)

    def read(self, e):
        if e not in self.memo:
            self.memo[e] = self._read(e)
        return self.memo[e]

    def _read(self, e):
        kind, *rest = _parts(e, self.sp)
        if kind == "number":
            return self.R(self.QQ(int(rest[0].p), int(rest[0].q))), {}
        if kind == "terms":
            return self._add([self.read(a) for a in rest[0]])
        if kind == "factors":
            return self._mul([self.read(a) for a in rest[0]])
        if kind == "power":
            base, k = rest
            return self._power(self.read(base), k, base)
        factors = []
        for key, k in rest[0]:
            factors.append(self._power((self.gens[key], {}), k, key))
        return self._mul(factors)

    def _add(self, terms):
        keys = {}
        for _, den in terms:
            for key, (p, k) in den.items():
                keys[key] = (p, max(k, keys.get(key, (p, 0))[1]))
        total = self.R.zero
        for num, den in terms:
            for key, (p, k) in keys.items():
                missing = k - den.get(key, (p, 0))[1]
                if missing:
                    num = self._times(num, self._pow(p, missing))
            total += num
        return total, keys

    def _mul(self, factors):
        num, den = self.R.one, {}
        for n, d in factors:
            num = self._times(num, n)
            for key, (p, k) in d.items():
                den[key] = (p, k + den.get(key, (p, 0))[1])
        return num, den

    def _power(self, value, k: int, key):
        """value^k; a negative k inverts: the numerator becomes a denominator polynomial (named key)."""
        num, den = value
        if k < 0:
            if not num:
                raise _Unproven                              # 1/0: undefined, nothing to prove
            inverted = self.R.one
            for p, j in den.values():
                inverted = self._times(inverted, self._pow(p, j))
            num, den, k = inverted, ({key: (num, 1)} if num != 1 else {}), -k
        return self._pow(num, k), {key2: (p, j * k) for key2, (p, j) in den.items()}

    def _times(self, a, b):
        self._spend(len(a) * len(b))
        return a * b

    def _pow(self, p, k: int):
        if k == 1:
            return p
        if len(p) == 1:                                      # a monomial: its coefficient's digits
            c = p.LC
            if k * (c.numerator.bit_length() + c.denominator.bit_length()) > MAX_BITS:
                raise _Unproven
            return p ** k
        self._spend(math.comb(len(p) + k - 1, k) * len(p))   # at most the expansion's terms, each len(p) times
        return p ** k

    def _spend(self, products: int) -> None:
        self.work += products
        if self.work > MAX_WORK:
            raise _Unproven


def differs_somewhere(difference) -> bool:
    """True when the difference is certainly non-zero at a sample point: evaluated to 30 digits that sympy
    guarantees (strict evalf), finite and far from 0.  A wrong answer or claim is then refuted at once;
    sympy's simplify (seconds on exp/tanh expressions) is left to what neither test settles.  A point where
    the expression is undefined (a pole) refutes nothing."""
    import sympy

    entries = list(difference) if isinstance(difference, sympy.MatrixBase) else [difference]
    symbols = sorted(set().union(*(getattr(e, "free_symbols", set()) for e in entries)), key=str)
    for k in range(2):
        point = {s: sympy.Rational(3 + 2 * i + k, 7 + 4 * k) for i, s in enumerate(symbols)}
        for entry in entries:
            try:
                value = entry.xreplace(point).evalf(30, strict=True)
                if value.is_number and value.is_finite and abs(value) > sympy.Float("1e-20"):
                    return True
            except (ArithmeticError, TypeError, ValueError, AttributeError, sympy.core.evalf.PrecisionExhausted):
                continue
    return False
