"""A one-entry tensor is written as the number it holds (a 1-dimensional embedding, a 1 × 1 weight):
4, not [4]ᵀ or [[[4]]]; the norm of a one-entry difference as an absolute value, |4 − 2|."""

from __future__ import annotations

import math
from fractions import Fraction
import numpy as np

from examsolver.engine.scalar import Exact
from examsolver.mathnodes import Neg, Norm, Op, Power, Sym, Transpose, Value
from examsolver.pipeline import solve_document
from examsolver.render.math import LatexPrinter, PlainPrinter
from examsolver.render.output import render_document
from examsolver.spec.load import load_text


def arr(*values, shape=None):
    return np.array([Exact(v) for v in values], dtype=object).reshape(shape or (len(values),))


o, y = Sym("o", bold=True), Sym("y", bold=True)


def test_one_entry_tensors_print_as_numbers():
    for shape in ((1,), (1, 1), (1, 1, 1)):
        assert PlainPrinter().print(Value(arr(4, shape=shape))) == "4"
        assert LatexPrinter().print(Value(arr(4, shape=shape))) == "4"
    assert PlainPrinter().print(Value(arr(4, 2))) == "[4, 2]ᵀ"           # two entries stay a vector


def test_norm_of_a_one_entry_difference_is_an_absolute_value():
    bound = {o: Value(arr(4)), y: Value(arr(2))}
    loss = Power(Norm(Op("-", (o, y))), 2)
    assert PlainPrinter(bound).print(loss) == "|4 − 2|²"
    assert LatexPrinter(bound).print(loss) == "{\\left|4 - 2\\right|}^{2}"
    assert PlainPrinter().print(loss) == "‖o − y‖²"                       # the formula keeps its norm
    wide = {o: Value(arr(4, 1)), y: Value(arr(2, 0))}
    assert PlainPrinter(wide).print(Norm(Op("-", (o, y)))).startswith("‖")


def test_numbers_put_in_keep_their_signs_and_products_apart():
    g, x = Sym("g", bold=True), Sym("x", bold=True)
    assert PlainPrinter({g: Value(arr(-4))}).print(Neg(g)) == "−(−4)"
    assert PlainPrinter({g: Value(arr(4)), x: Value(arr(2))}).print(Op("mul", (Transpose(g), Transpose(x)))) == "4 · 2"


ONE_DIMENSIONAL = """
id: one_dim
model:
  - linear: {name: fc, W: [[2]], b: [0]}
loss: mse
data:
  - {x: [2], y: [2]}
tasks:
  - forward
  - gradient: {wrt: [fc.W, fc.b, x]}
"""


def test_a_network_with_one_dimensional_outputs_prints_no_brackets_in_any_format():
    solution = solve_document(load_text(ONE_DIMENSIONAL, "one_dim.yaml"), with_alternatives=False)
    for fmt, norm in (("term", "|4 − 2|²"), ("md", "\\left|4 - 2\\right|"), ("tex", "\\left|4 - 2\\right|")):
        text = render_document([solution], fmt, "en")
        assert "[4]" not in text and "[[2]]" not in text and "bmatrix" not in text, fmt
        assert norm in text, fmt
    assert "<mtable" not in render_document([solution], "html", "en")       # MathML: no matrices either


def test_a_minibatch_of_one_example_has_no_mean_of_one_loss():
    """data: a list of one example: the loss is that example's loss, not 1/1 · (L⁽¹⁾)."""
    from examsolver.pipeline import solve_document
    from examsolver.render.output import render_document
    from examsolver.spec.load import load_text

    solution = solve_document(load_text("""
id: one
model: [{linear: {W: [[1, 2], [0, 1]], b: [0, 0]}}, softmax]
loss: cross_entropy
data: [{x: [1, 1], y: 0}]
tasks: [forward]
"""))
    text = render_document([solution], "md", "en")
    assert "1/1" not in text and "\\frac{1}{1}" not in text
    assert abs(float(solution.results["loss"]) - math.log(1 + math.exp(-2))) < 1e-12    # −ln softmax([3, 1])₀


def test_a_number_written_as_a_sum_is_parenthesized_as_a_factor():
    """σ(11) − 1 put into ∂L/∂s · h is (σ(11) − 1) · 11/2, never σ(11) − 1 · 11/2 (nor ln 3 − ln 2 · x)."""
    from examsolver.engine import scalar

    s, h = Sym("s"), Sym("h")
    for value, text in [(scalar.sigmoid(Exact(11)) - 1, "σ(11) − 1"), (scalar.ln_prime(3) - scalar.ln_prime(2), "ln 3 − ln 2")]:
        bound = {s: Value(np.array([value], dtype=object)), h: Value(arr(Fraction(11, 2)))}
        assert PlainPrinter(bound).print(Op("mul", (Transpose(s), Transpose(h)))) == f"({text}) · 11/2"
        assert PlainPrinter(bound).print(Op("mul", (h, s))) == f"11/2 · ({text})"
        assert PlainPrinter(bound).print(Neg(s)) == f"−({text})"
        assert PlainPrinter(bound).print(Op("+", (h, s))) == f"11/2 + {text}"     # a sum's term needs none
    signed = {s: Value(arr(Fraction(-1, 9))), h: Value(arr(2))}
    assert PlainPrinter(signed).print(Op("mul", (s, h))) == "−1/9 · 2"               # a sign is not a sum


def test_rational_factors_of_a_closed_form_are_folded():
    """2 · (2 (σ(11) − 1)) is written 4 (σ(11) − 1), not 2 2 (σ(11) − 1)."""
    from examsolver.engine import scalar

    inner = 2 * (scalar.sigmoid(Exact(11)) - 1)
    assert PlainPrinter().print(Value(np.array([3 * inner], dtype=object))) == "6 (σ(11) − 1)"
    assert PlainPrinter().print(Value(np.array([-inner / 4], dtype=object))) == "−(σ(11) − 1)/2"


def test_a_quotient_scaled_by_a_rational_is_one_fraction():
    """(1/(1 + 2e))/2 — a softmax entry in a minibatch mean — is written 1/(2 (1 + 2 e)), and 0 − x is −x."""
    from examsolver.engine import scalar

    p = 1 / (1 + 2 * scalar.E)                  # outside the ring: a certified quotient
    assert PlainPrinter().print(Value(np.array([p / 2], dtype=object))) == "1/(2 (1 + 2 e))"
    assert PlainPrinter().print(Value(np.array([Exact(0) - p / 4], dtype=object))) == "−1/(4 (1 + 2 e))"
    assert "\\frac{1}{2 \\left(1 + 2 e\\right)}" in LatexPrinter().print(Value(np.array([p / 2], dtype=object)))


def test_a_one_row_matrix_is_written_as_a_row():
    """A 1 × n weight is [1, −1, 1/2] (as the slides write W₂ = [1, 1]), not [[1, −1, 1/2]]; two rows stay nested."""
    assert PlainPrinter().print(Value(arr(1, -1, Fraction(1, 2), shape=(1, 3)))) == "[1, −1, 1/2]"
    assert PlainPrinter().print(Value(arr(1, 2, 3, 4, shape=(2, 2)))) == "[[1, 2], [3, 4]]"
