"""The sigmoid and softplus as sympy functions, and a pass that finds them in plain formulas.

Why: sympy writes σ(z) as 1/(1 + e^{−z}), so the derivative of (σ(z) − y)² comes
out as a tangle of exponentials.  As functions with their own derivative rules
(σ′ = σ(1 − σ), softplus′ = σ) they keep formulas in the form the course writes,
and the code generator prints them in numerically stable numpy.  Results handed
to answer-key checks are rewritten back to plain exp/log (`plain`), so they are
comparable with expressions read by spec.expr.parse_symbolic.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def functions():
    """(Sigmoid, Softplus) classes; built on first use so sympy loads only when needed."""
    import sympy as sp

    class Sigmoid(sp.Function):
        nargs = 1

        @classmethod
        def eval(cls, u):
            if u.is_zero:
                return sp.Rational(1, 2)
            if u.could_extract_minus_sign():   # canonical: σ(−u) = 1 − σ(u)
                return 1 - cls(-u)
            return None

        def fdiff(self, argindex=1):
            return self * (1 - self)

        def _eval_rewrite_as_exp(self, u, **kwargs):
            return 1 / (1 + sp.exp(-u))

        def _latex(self, printer, exp=None):
            text = r"\sigma\left(%s\right)" % printer._print(self.args[0])
            return text if exp is None else r"%s^{%s}" % (text, exp)

        def _sympystr(self, printer):
            return "σ(%s)" % printer._print(self.args[0])

    class Softplus(sp.Function):
        nargs = 1

        def fdiff(self, argindex=1):
            return Sigmoid(self.args[0])

        def _eval_rewrite_as_exp(self, u, **kwargs):
            return sp.log(1 + sp.exp(u))

        def _latex(self, printer, exp=None):
            text = r"\operatorname{softplus}\left(%s\right)" % printer._print(self.args[0])
            return text if exp is None else r"%s^{%s}" % (text, exp)

        def _sympystr(self, printer):
            return "softplus(%s)" % printer._print(self.args[0])

    return Sigmoid, Softplus


def plain(expr):
    """Sigmoid/Softplus back to exp and log (what parse_symbolic builds)."""
    import sympy as sp

    Sigmoid, Softplus = functions()
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(plain)
    if not hasattr(expr, "has") or not expr.has(Sigmoid, Softplus):
        return expr
    return expr.replace(Sigmoid, lambda u: 1 / (1 + sp.exp(-u))).replace(Softplus, lambda u: sp.log(1 + sp.exp(u)))


def recognize(expr):
    """Plain exp/log patterns → σ and softplus, bottom-up.

    log(1 + e^u) → softplus(u); 1/(1 + e^u) → σ(−u); e^u/(1 + e^u) → σ(u);
    log σ(u) → −softplus(−u); log(1 − σ(u)) → −softplus(u).
    """
    import sympy as sp

    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(recognize)
    return _visit(expr, sp, *functions())


def _visit(e, sp, Sigmoid, Softplus):
    if not isinstance(e, sp.Basic) or e.is_Atom:
        return e
    if e.is_Mul:
        e = _sigmoid_ratio(e, sp, Sigmoid)
        if not e.is_Mul:
            return _visit(e, sp, Sigmoid, Softplus)
    args = [_visit(a, sp, Sigmoid, Softplus) for a in e.args]
    if isinstance(e, sp.Piecewise):   # its args are (expr, cond) pairs: rebuild as pairs
        e = sp.Piecewise(*[(_visit(x, sp, Sigmoid, Softplus), c) for x, c in e.args])
    elif args != list(e.args):
        e = e.func(*args)
    if isinstance(e, sp.log):
        return _log_rule(e.args[0], sp, Sigmoid, Softplus) or e
    if e.is_Pow and e.exp == -1:
        u = _one_plus_exp(e.base, sp)
        if u is not None:
            return Sigmoid(-u)
    return e


def _one_plus_exp(e, sp):
    """u when e is 1 + e^u, else None."""
    if e.is_Add and len(e.args) == 2 and sp.S.One in e.args:
        other = e.args[0] if e.args[1] == 1 else e.args[1]
        if isinstance(other, sp.exp):
            return other.args[0]
    return None


def _sigmoid_ratio(e, sp, Sigmoid):
    """e^u · (1 + e^u)^−1 · rest → σ(u) · rest."""
    factors = list(e.args)
    for i, f in enumerate(factors):
        if isinstance(f, sp.exp):
            u = f.args[0]
            for j, g in enumerate(factors):
                if g.is_Pow and g.exp == -1 and _one_plus_exp(g.base, sp) == u:
                    rest = [h for k, h in enumerate(factors) if k not in (i, j)]
                    return sp.Mul(Sigmoid(u), *rest)
    return e


def _log_rule(arg, sp, Sigmoid, Softplus):
    u = _one_plus_exp(arg, sp)
    if u is not None:
        return Softplus(u)
    if isinstance(arg, Sigmoid):
        return -Softplus(-arg.args[0])
    if arg.is_Add and len(arg.args) == 2 and sp.S.One in arg.args:   # 1 − σ(u)
        other = arg.args[0] if arg.args[1] == 1 else arg.args[1]
        if other.is_Mul and len(other.args) == 2 and sp.S.NegativeOne in other.args:
            inner = other.args[0] if other.args[1] == -1 else other.args[1]
            if isinstance(inner, Sigmoid):
                return -Softplus(inner.args[0])
    return None


def tidy(expr):
    """The shortest of the expression, its expansion and its factorization."""
    import sympy as sp

    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(tidy)
    candidates = [expr]
    for transform in (sp.expand, sp.factor, sp.cancel):
        try:
            candidates.append(transform(expr))
        except Exception:   # sympy may refuse a transform on some expressions; keep the others
            continue
    return _shortest(candidates)


def _shortest(candidates: list):
    """The first of the fewest operations, then of the shortest text: printed only on a tie in operations
    (printing a large expression costs more than counting its operations)."""
    import sympy as sp

    ops = [sp.count_ops(c) for c in candidates]
    fewest = [c for c, n in zip(candidates, ops) if n == min(ops)]
    return fewest[0] if len(fewest) == 1 else min(fewest, key=lambda c: len(str(c)))
