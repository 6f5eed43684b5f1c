"""The exact scalar type and the allow-list expression parser."""

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from examsolver.engine import scalar
from examsolver.engine.scalar import Exact
from examsolver.errors import ExprError
from examsolver.spec.expr import parse_number, parse_value


@pytest.mark.parametrize("text, expected", [
    ("1.3", Exact(Fraction(13, 10))),
    ("1/3", Exact(Fraction(1, 3))),
    ("2**-3", Exact(Fraction(1, 8))),
    ("ln(4)", scalar.ln_prime(2) * 2),
    ("log(2)", scalar.ln_prime(2)),
    ("-ln(2)/9", -scalar.ln_prime(2) / 9),
    ("ln(sqrt(2))", scalar.ln_prime(2) / 2),
    ("sqrt(8)", scalar.sqrt(2) * 2),
    ("exp(2*ln(3))", Exact(9)),
    ("tanh(ln(2))", Exact(Fraction(3, 5))),
    ("sigmoid(0)", Exact(Fraction(1, 2))),
])
def test_parses_exactly(text, expected):
    assert parse_number(text) == expected


def test_symbolic_fallback_stays_exact():
    value = parse_number("tanh(1)")
    assert value.is_symbolic
    assert abs(float(value) - 0.7615941559557649) < 1e-15


@pytest.mark.parametrize("text", [
    "__import__('os').system('x')", "(1).real", "x", "open('f')", "[1, [2]]", "1^2", "2**100000",
    "ln(-1)", "1/0", "lambda: 1", "9" * 60, "'a'", "True",
])
def test_rejects_everything_else(text):
    with pytest.raises(ExprError):
        parse_value(text)


@given(st.fractions(max_denominator=50), st.fractions(max_denominator=50))
def test_rational_arithmetic_matches_fractions(a, b):
    assert Exact(a) + Exact(b) == Exact(a + b)
    assert Exact(a) * Exact(b) == Exact(a * b)
    if b:
        assert Exact(a) / Exact(b) == Exact(a / b)


@given(st.integers(-20, 20), st.integers(-20, 20), st.fractions(max_denominator=9))
def test_sign_of_log_combinations_agrees_with_floats(a, b, c):
    value = scalar.ln_prime(2) * a + scalar.ln_prime(3) * b + c
    as_float = float(value)
    if abs(as_float) > 1e-9:
        assert value.sign() == (1 if as_float > 0 else -1)


def test_decisions_are_exact_where_floats_fail():
    # 0.1 + 0.2 − 0.3 is 0 exactly; in floats it is 5.6e-17 and a ReLU would fire.
    value = parse_number("0.1") + parse_number("0.2") - parse_number("0.3")
    assert value.sign() == 0
