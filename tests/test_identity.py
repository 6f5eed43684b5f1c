"""engine/identity.py: the exact zero proof and the refutation at a sample point that equality checks use
before sympy's simplify.  A proof must never accept a false identity; giving up is always allowed."""

import pytest
import sympy as sp

from examsolver.engine.identity import differs_somewhere, proves_zero

x, y, z, g1 = sp.symbols("x y z g1")
a = sp.symbols("a1:6")
S = sp.exp(x) + sp.exp(y) + sp.exp(z)


@pytest.mark.parametrize("expr", [
    sp.diff(-g1 * sp.log(sp.exp(x) / S), x) - g1 * (sp.exp(x) / S - 1),     # softmax cross-entropy gradient
    1 / (1 + sp.exp(-x)) - sp.exp(x) / (1 + sp.exp(x)),                      # σ written two ways
    sp.tanh(x) - (sp.exp(2 * x) - 1) / (sp.exp(2 * x) + 1),
    sp.diff(sp.tanh(x), x) - 4 / (sp.exp(x) + sp.exp(-x)) ** 2,             # 1 − tanh² = sech²
    sp.exp(x + y) - sp.exp(x) * sp.exp(y),
    sp.exp(2 * x / 3) * sp.exp(x / 3) - sp.exp(x),
    sp.E * sp.exp(x) - sp.exp(x + 1),
    x ** sp.Rational(3, 2) - x * sp.sqrt(x),
    sp.Max(0, x) * sp.Heaviside(x) / (1 + sp.exp(x)) - sp.Max(0, x) * sp.Heaviside(x) * sp.exp(-x) / (1 + sp.exp(-x)),
    sp.Matrix([sp.exp(x + y) - sp.exp(x) * sp.exp(y), (x ** 2 - 1) / (x - 1) - x - 1]),
])
def test_true_identities_are_proved(expr):
    assert proves_zero(expr)


@pytest.mark.parametrize("expr", [
    sp.exp(x) - sp.exp(y),
    sp.exp(x / 2) - sp.sqrt(sp.exp(x)),               # false for complex x: the proof must not use it
    sp.tanh(x) - (sp.exp(x) - 1) / (sp.exp(x) + 1),
    sp.Heaviside(x) ** 2 - sp.Heaviside(x),           # H(0) = 1/2 in sympy
    (x ** 2 - 1) / (x - 1) - x,
    sp.Matrix([0, sp.exp(x + y) - sp.exp(x) * sp.exp(y) + sp.Rational(1, 10 ** 30)]),
    sp.zoo * x,
    sp.log(x * y) - sp.log(x) - sp.log(y),            # true for positive x, y only: left to simplify
])
def test_false_or_unprovable_identities_are_not_proved(expr):
    assert not proves_zero(expr)


def test_what_would_be_too_large_to_expand_is_given_up():
    s = sum(a)
    assert not proves_zero(sp.Mul(s ** 29, s, evaluate=False) - s ** 30)       # 40 920 terms: not expanded
    assert not proves_zero(sp.Mul(sp.Pow(2 * x, 10 ** 6, evaluate=False), x, evaluate=False)
                           - x * sp.Pow(2 * x, 10 ** 6, evaluate=False))       # 2^1000000: not computed


def test_a_sample_point_refutes_only_with_a_finite_certain_value():
    assert differs_somewhere(sp.exp(x) - sp.exp(y))
    assert differs_somewhere(sp.Matrix([0, x * sp.Rational(1, 10 ** 15)]))
    assert not differs_somewhere(x * sp.Rational(1, 10 ** 30))                  # too close to 0 to say
    assert not differs_somewhere(1 / ((x - sp.Rational(3, 7)) * (x - sp.Rational(4, 11))))   # poles at both points
    assert not differs_somewhere(sp.tanh(x) - (sp.exp(2 * x) - 1) / (sp.exp(2 * x) + 1))
