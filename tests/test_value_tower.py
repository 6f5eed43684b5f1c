"""The value tower: exact in the ring, certified beyond it.

Decisions at near-ties (10⁻⁴⁰ and closer), certified decimals against mpmath at a much higher
precision, size budgets, refusals.  (The seed problems' results as the engine before the tower gave them
are a snapshot, compared in tests/test_snapshots.py.)
"""

import json
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest

from examsolver.engine import scalar
from examsolver.engine.scalar import Exact
from examsolver.pipeline import solve_file
from examsolver.errors import EngineError, ExprError
from examsolver.notation import values as V
from examsolver.spec.expr import parse_value

ROOT = Path(__file__).resolve().parent.parent
q = lambda a, b=1: Exact(Fraction(a, b))
TINY = q(1, 10**40)


def _softmax_entry(x):
    e = scalar.exp(x)
    return e / (e + 1)


# ----- decisions -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [scalar.tanh(q(3, 5)), _softmax_entry(q(1, 2)), scalar.log(scalar.sigmoid(q(7, 3)))])
@pytest.mark.parametrize("gap", [TINY, q(1, 10**70), q(1, 10**300)])
def test_near_ties_are_decided_correctly(value, gap):
    above, below = value + gap, value - gap
    assert (above - value).sign() == 1 and (below - value).sign() == -1
    assert above > value > below and max([below, above, value]) is above
    assert sorted([above, below, value], key=lambda v: v - value) == [below, value, above]
    # a ReLU mask on the difference: on for the positive one, off for the negative one
    assert [(v - value).sign() > 0 for v in (above, below)] == [True, False]


def test_ring_signs_near_a_tie_are_decided_correctly():
    ln2 = scalar.ln_prime(2)
    close = q(693147180559945309417232121458176568075500134360255254120680, 10**60)   # ln 2 to 60 digits, truncated
    assert (ln2 - close).sign() == 1 and (close - ln2).sign() == -1
    assert (scalar.E * scalar.PI - scalar.PI * scalar.E).sign() == 0
    assert (q(-1, 9) * ln2 / scalar.sqrt(q(3))).sign() == -1   # terms of one sign: decided without bounds


def test_a_solve_inside_the_ring_needs_no_arb():
    """Ring values are bounded by MPFR (gmpy2, already loaded): arb's library is loaded only past the ring."""
    import subprocess
    import sys

    argv = [sys.executable, "-X", "importtime", "-m", "examsolver", "solve", "problems/2022_z3.yaml", "--lang", "en"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "≈ [0.0770, 0.0770, 0.0770]" in done.stdout      # certified decimals of ln 2/9 printed
    assert "examsolver.engine.scalar" in done.stderr and "| flint" not in done.stderr


def test_an_exact_tie_between_different_computations_is_found_exactly():
    a = scalar.exp(q(1, 3))
    left = (a + 1) * 2
    right = a * 2 + 2           # the same number by another route: no ball can tell, the exact test does
    assert (left - right).sign() == 0 and left == right
    assert scalar.tanh(q(3, 5)) - scalar.tanh(q(3, 5)) == 0


def test_the_same_computation_twice_is_equal_without_sympy():
    def chain():
        h = q(0)
        for x in (q(1, 10), q(-3, 10), q(2, 5)):
            h = scalar.tanh(h * q(1, 2) + x)
        return h

    a, b = chain(), chain()
    assert a is not b and a == b and (a - b).sign() == 0


def test_the_same_operation_on_the_same_operands_is_one_node():
    a, w = scalar.tanh(q(1, 3)), q(3, 10)       # certified: outside the ring
    entries = [a, scalar.sigmoid(q(1, 2))]
    assert a * w is a * w and a - w is a - w and a / a is a / a
    assert scalar.dot(entries, [w, w]) is scalar.dot(entries, [w, w])
    assert a * w is not a * q(3, 10)            # another operand object: another node, the same value
    assert a * w == a * q(3, 10)
    before = a * w
    scalar.forget_nodes()                       # a solve starts afresh
    after = a * w
    assert after is not before and after == before


def test_decisions_never_come_from_float64_alone():
    v = scalar.tanh(q(1, 3))
    near = v + TINY
    assert float(near) == float(v)            # float64 cannot see the gap
    assert near != v and near > v


# ----- certified decimals ------------------------------------------------------------------------
def _cases():
    e = scalar.exp(q(1, 2))
    return {
        "tanh(3/5)": (scalar.tanh(q(3, 5)), lambda: mpmath.tanh(mpmath.mpf(3) / 5)),
        "softmax": (e / (e + 1), lambda: mpmath.e ** mpmath.mpf(0.5) / (mpmath.e ** mpmath.mpf(0.5) + 1)),
        "log sigmoid": (scalar.log(scalar.sigmoid(q(-7, 3))), lambda: -mpmath.log(1 + mpmath.e ** (mpmath.mpf(7) / 3))),
        "ring": (scalar.ln_prime(2) * scalar.PI - scalar.E, lambda: mpmath.log(2) * mpmath.pi - mpmath.e),
        "sqrt": (scalar.sqrt(q(7)) / 3, lambda: mpmath.sqrt(7) / 3),
        # a ring value's bounds come from MPFR, not arb: reciprocal atoms and a near-cancellation
        "ring reciprocal": (scalar.ln_prime(3) / scalar.ln_prime(2) - scalar.sqrt(q(2)) / scalar.PI,
                            lambda: mpmath.log(3) / mpmath.log(2) - mpmath.sqrt(2) / mpmath.pi),
        "ring cancel": (scalar.ln_prime(2) - q(693147180559945309417232121458, 10**30),
                        lambda: mpmath.log(2) - mpmath.mpf(693147180559945309417232121458) / 10**30),
        "tiny": (scalar.tanh(q(1, 10**6)) - q(1, 10**6), lambda: mpmath.tanh(mpmath.mpf(1) / 10**6) - mpmath.mpf(1) / 10**6),
        "rnn": (_rnn(), lambda: _rnn(mpmath.tanh, mpmath.mpf)),
    }


def _rnn(tanh=scalar.tanh, num=lambda k: q(k)):
    h = num(0)
    for x in (3, -1, 4, 1, -5, 9, 2, -6, 5, 3, -5, 8):
        h = tanh(h * num(7) / num(10) + num(x) / num(10))
    return h


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("digits", [4, 15, 40])
def test_certified_digits_match_mpmath(name, digits):
    value, reference = _cases()[name]
    with mpmath.workdps(digits + 60):
        expected = Decimal(mpmath.nstr(reference(), digits, strip_zeros=False, min_fixed=-1e9, max_fixed=1e9))
    text = V.decimal_text(value, places=digits, significant=True).replace("−", "-")
    assert Decimal(text) == expected, (name, text, expected)


# ----- budgets and refusals --------------------------------------------------------------------
def test_a_rational_past_its_budget_is_certified():
    x = q(1, 3)
    for _ in range(14):           # the denominator squares: 3^(2^14) has ~26,000 bits
        x = x * x + q(1, 7)
    assert not x.has_exact_form() and x.is_symbolic
    assert 0 < float(x) < 1
    assert V.decimal_text(x, places=10, significant=True)      # certified digits, computed quickly


def test_a_huge_power_keeps_a_short_closed_form():
    x = q(3, 7) ** 5000
    assert x.is_symbolic and x.has_exact_form()
    assert V.code(x) == "(3/7)**5000" and V.plain(x) == "(3/7)⁵⁰⁰⁰"
    assert x.sign() == 1


@pytest.mark.parametrize("make", [lambda: scalar.exp(q(10**7)), lambda: q(2) ** (10**7),
                                  lambda: scalar.exp(scalar.exp(q(20)))])
def test_an_overflowing_exponent_is_refused(make):
    with pytest.raises(EngineError, match="too large|larger than"):
        make()


def test_an_overflowing_exponent_in_a_spec_is_a_located_error():
    with pytest.raises(ExprError, match="larger than"):
        parse_value("exp(exp(20))")


# ----- output ------------------------------------------------------------------------------------
def test_exact_strings_never_carry_decimals():
    assert V.code(q(1, 2)) == "1/2" and V.plain(q(3, 2)) == "3/2" and V.code(q(-3, 8)) == "-3/8"
    assert V.code(scalar.ln_prime(3) * 2 - q(3, 8)) == "2*ln(3) - 3/8"


def test_closed_forms_read_back_exactly():
    e = scalar.exp(q(1, 2))
    for value in (scalar.tanh(q(3, 5)), e / (1 + e), scalar.sigmoid(q(-2, 3)) * scalar.ln_prime(2) / 3):
        assert parse_value(V.code(value)) == value


def test_json_marks_certified_results(tmp_path):
    spec = tmp_path / "t.yaml"
    spec.write_text("""
id: t
model: [{linear: {name: fc, W: [[1/2, -1/3], [1/5, 1]], b: [0, 1/7]}}, tanh, {linear: {name: fc2, W: [[1, 2], [3, 1]]}}, softmax]
loss: cross_entropy
data: {x: [1, 2], y: 0}
tasks: [forward, {gradient: {wrt: [fc.W]}}]
""", encoding="utf-8")
    from examsolver.render.jsonout import result_entry

    results = solve_file(spec).results
    tanh_out = result_entry(results["h2"] if "h2" in results else next(iter(results.values())))
    grad = result_entry(results["fc.W.grad"])
    assert "exact" not in grad and np.shape(grad["digits"]) == (2, 2)
    assert all(re.fullmatch(r"-?\d\.\d+(e[-+]\d+)?|-?0\.\d+|-?\d+\.\d+", d) for d in np.ravel(grad["digits"]))
    assert "value" in tanh_out


# ----- a network full of ties, against an independent computation ---------------------------------
def test_cnn_with_ties_matches_exact_decisions_and_mpmath(tmp_path):
    """ReLU zeros and max-pool ties by the dozen (integers / 10): the engine's certified kernel gradient
    equals one computed here with Fraction decisions (first maximum, ReLU′(0) = 0) and mpmath.  The seed
    makes two windows' first maximum a pre-activation of exactly 0, where ReLU′(0) decides the gradient."""
    rng = np.random.default_rng(19)
    x, K = rng.integers(0, 4, (8, 8)), rng.integers(-2, 3, (2, 3, 3))
    W, y = rng.integers(-3, 4, (3, 18)), 1
    text = lambda a: json.dumps(np.vectorize(lambda k: f"{k}/10", otypes=[object])(a).tolist())
    spec = tmp_path / "ties.yaml"
    spec.write_text(f"""
id: ties
model: [{{conv2d: {{name: conv1, kernels: {text(K)}}}}}, relu, {{max_pool2d: {{name: pool1, kernel_size: 2, stride: 2}}}},
        flatten, {{linear: {{name: fc2, W: {text(W)}}}}}, softmax]
loss: cross_entropy
data: {{x: {text(x)}, y: {y}}}
tasks: [forward, {{gradient: {{wrt: [conv1.W]}}}}]
""", encoding="utf-8")
    got = solve_file(spec).results["conv1.W.grad"]

    F = lambda a: np.vectorize(lambda k: Fraction(int(k), 10), otypes=[object])(a)
    xq, Kq, Wq = F(x), F(K), F(W)
    h1 = np.array([[[sum(Kq[c, a, b] * xq[i + a, j + b] for a in range(3) for b in range(3)) for j in range(6)]
                    for i in range(6)] for c in range(2)], dtype=object)
    h2 = np.where(h1 > 0, h1, Fraction(0))
    ties = at_zero = 0
    pooled, where = np.empty((2, 3, 3), dtype=object), {}
    for c, i, j in np.ndindex(2, 3, 3):
        window = [(h2[c, 2 * i + a, 2 * j + b], (2 * i + a, 2 * j + b)) for a in range(2) for b in range(2)]
        best = max(v for v, _ in window)
        ties += sum(v == best for v, _ in window) > 1
        pooled[c, i, j], where[(c, i, j)] = best, next(p for v, p in window if v == best)
        at_zero += h1[(c,) + where[(c, i, j)]] == 0         # the winner sits on ReLU's kink
    mpmath.mp.dps = 50
    s = Wq.dot(pooled.reshape(-1))
    e = [mpmath.exp(mpmath.mpf(v.numerator) / v.denominator) for v in s]
    g = [v / sum(e) - (k == y) for k, v in enumerate(e)]
    gf = [sum(g[k] * mpmath.mpf(Wq[k, n].numerator) / Wq[k, n].denominator for k in range(3)) for n in range(18)]
    gh = {}
    for (c, i, j), (a, b) in where.items():
        if h1[c, a, b] > 0:
            gh[(c, a, b)] = gf[(c * 3 + i) * 3 + j]
    assert ties > 0 and at_zero == 2                          # the case is degenerate, as intended
    for c, a, b in np.ndindex(2, 3, 3):
        expected = sum(v * mpmath.mpf(xq[i + a, j + b].numerator) / xq[i + a, j + b].denominator for (cc, i, j), v in gh.items() if cc == c)
        assert abs(mpmath.mpf(V.decimal_text(got[c, a, b], places=30, significant=True).replace("−", "-"))
                   - expected) <= mpmath.mpf(10) ** -28 * (1 + abs(expected))
