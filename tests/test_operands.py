"""Operands put into a formula keep its meaning: a tensor written with its common factor is one operand
right of ⋆, ⊙ or ⊘ (as the 2022 slides write x ⋆ (ln 2/9 · [1, 0, 1])), and a value that opens with a
minus sign is parenthesized after an operator (a − (−√6/2 · [1, 1]) ⊙ v, n ⊙ (−1/2) with n used twice)."""

from fractions import Fraction

import numpy as np

from examsolver.engine import scalar
from examsolver.engine.scalar import Exact
from examsolver.mathnodes import Op, Sym, Value
from examsolver.render.math import LatexPrinter, PlainPrinter
from examsolver.render.mathml import MathMLPrinter


def vec(*values):
    return Value(np.array([v if isinstance(v, Exact) else Exact(Fraction(v)) for v in values], dtype=object), "row")


x, g, a, n = Sym("x"), Sym("g"), Sym("a"), Sym("n")
LN2_9 = scalar.ln_prime(2) / 9


def test_a_factored_tensor_right_of_an_entrywise_operator_is_one_operand():
    bound = {x: vec(4, -1, 2), g: vec(LN2_9, 0, LN2_9)}
    assert PlainPrinter(bound).print(Op("star", (x, g))) == "[4, −1, 2] ⋆ (ln 2/9 · [1, 0, 1])"
    assert PlainPrinter(bound).print(Op("oslash", (x, g))) == "[4, −1, 2] ⊘ (ln 2/9 · [1, 0, 1])"
    assert "\\star \\left(\\frac{\\ln 2}{9}" in LatexPrinter(bound).print(Op("star", (x, g)))
    assert PlainPrinter(bound).print(Op("star", (g, x))) == "ln 2/9 · [1, 0, 1] ⋆ [4, −1, 2]"   # first: none
    assert PlainPrinter(bound).print(Op("mul", (x, g))) == "[4, −1, 2] · ln 2/9 · [1, 0, 1]"   # a product: none


def test_an_operand_opening_with_a_minus_is_parenthesized_after_an_operator():
    half = -scalar.sqrt(Exact(6)) / 2
    bound = {a: vec(1, 2), x: vec(half, half), g: vec(3, 4)}
    formula = Op("-", (a, Op("odot", (x, g))))
    assert PlainPrinter(bound).print(formula) == "[1, 2] − (−√6/2 · [1, 1] ⊙ [3, 4])"
    mathml = MathMLPrinter(bound).print(formula)
    assert mathml.count('fence="true"') >= 2 and "&#x2212;</mo><mrow><mo fence" in mathml     # for every printer
    assert PlainPrinter(bound).print(Op("odot", (x, g))) == "−√6/2 · [1, 1] ⊙ [3, 4]"       # it opens: none


def test_the_same_node_twice_is_parenthesized_where_it_is_not_first():
    bound = {n: Value(np.array([Exact(Fraction(-1, 2))], dtype=object))}
    assert PlainPrinter(bound).print(Op("odot", (n, n))) == "−1/2 ⊙ (−1/2)"


def test_a_sum_whose_value_is_put_in_is_that_value():
    """𝟙[h > 0] + 1/10 · (1 − 𝟙[h > 0]) bound to [1/10, 1] is written ⊙ [1/10, 1], not ⊙ ([1/10, 1]);
    a sum bound to a number written as a sum keeps its parentheses."""
    from examsolver.engine import scalar

    total = Op("+", (a, x))
    assert PlainPrinter({g: vec(3, 4), total: vec(Fraction(1, 10), 1)}).print(Op("odot", (g, total))) == \
        "[3, 4] ⊙ [1/10, 1]"
    near = Value(np.array([scalar.sigmoid(Exact(11)) - 1], dtype=object))
    assert PlainPrinter({g: vec(3), total: near}).print(Op("mul", (g, total))) == "3 · (σ(11) − 1)"


def test_a_fraction_put_into_an_inline_denominator_is_parenthesized():
    """(h − μ)/σ with σ = √6/3 is ([1, 2, 3] − 2)/(√6/3) on the terminal, never …/√6/3 (read as (…/√6)/3)."""
    from examsolver.mathnodes import Frac

    s6 = scalar.sqrt(Exact(6)) / 3
    sigma, h, mu = Sym("sigma"), Sym("h"), Sym("mu")
    bound = {sigma: Value(np.array([s6], dtype=object)), h: vec(1, 2, 3), mu: Value(np.array([Exact(2)], dtype=object))}
    assert PlainPrinter(bound).print(Frac(Op("-", (h, mu)), sigma)) == "([1, 2, 3] − 2)/(√6/3)"
    assert PlainPrinter({sigma: Value(np.array([Exact(3)], dtype=object)), h: vec(1, 2)}).print(Frac(h, sigma)) == \
        "[1, 2]/3"                                                         # a plain number needs none
