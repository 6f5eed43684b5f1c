"""The symbolic kind: the safe sympy parser, derived results against hand derivations, validation."""

import math

import pytest
import sympy as sp

from examsolver.pipeline import solve_document
from examsolver.errors import ExprError, SpecError
from examsolver.spec.expr import parse_symbolic
from examsolver.spec.load import load_file, load_text

X, Y, Z = sp.symbols("x y z")
NAMES = {"x": X, "y": Y, "z": Z}


def _solve(problems_dir, name):
    return solve_document(load_file(problems_dir / f"{name}.yaml"), answers={})


def _same(a, b):
    difference = sp.Matrix(a) - sp.Matrix(b) if isinstance(a, sp.MatrixBase) else a - b
    entries = list(difference) if isinstance(difference, sp.MatrixBase) else [difference]
    return all(sp.simplify(d) == 0 for d in entries)


# ----- parser ------------------------------------------------------------------------
def test_parse_symbolic_builds_exact_sympy():
    assert parse_symbolic("1.3*x", NAMES) == sp.Rational(13, 10) * X
    assert parse_symbolic("sigmoid(z)", NAMES) == 1 / (1 + sp.exp(-Z))
    assert parse_symbolic("softplus(x)", NAMES) == sp.log(1 + sp.exp(X))
    assert parse_symbolic("max(x, y)", NAMES) == sp.Max(X, Y)
    assert parse_symbolic("[[x, 0], [0, y]]", NAMES) == sp.Matrix([[X, 0], [0, Y]])
    assert parse_symbolic("e**x", NAMES) == sp.exp(X)


@pytest.mark.parametrize("text", [
    "__import__('os').system('ls')", "x.real", "x[0]", "w", "f(x)", "lambda: 1", "x**y", "'a'", "True",
    "1^2", "x if y else z", "[x, [y]]", "((9**64)**64)**64", "1/0", "9" * 60, "exp(x, y)", "max(x)",
    "{1: 2}", "x < y",
])
def test_parse_symbolic_refuses_everything_else(text):
    with pytest.raises(ExprError):
        parse_symbolic(text, NAMES)


# ----- derived results ---------------------------------------------------------------------
def test_softplus_derivative_and_diagonal_jacobian(problems_dir):
    results = _solve(problems_dir, "2022_z4").results
    assert _same(results["softplus'"], sp.exp(X) / (1 + sp.exp(X)))
    xs = sp.symbols("x1:5")
    J = results["jacobian"]
    assert J.shape == (4, 4)
    assert _same(J, sp.diag(*[1 / (1 + sp.exp(-v)) for v in xs]))


def test_sigmoid_losses_gradients_and_saturation(problems_dir):
    results = _solve(problems_dir, "000_t1").results
    s = 1 / (1 + sp.exp(-Z))
    assert _same(results["dL_sq/dz"], 2 * (s - Y) * s * (1 - s))      # hand derivation
    assert _same(results["dL_nll/dz"], s - Y)
    sig = 1 / (1 + math.exp(10))            # σ(−10)
    assert math.isclose(float(results["dL_sq/dz(z=-10,y=1)"]), 2 * (sig - 1) * sig * (1 - sig), rel_tol=1e-12)
    assert math.isclose(float(results["dL_nll/dz(z=-10,y=1)"]), sig - 1, rel_tol=1e-12)
    assert abs(float(results["dL_sq/dz(z=-10,y=1)"])) < 1e-4 < abs(float(results["dL_nll/dz(z=-10,y=1)"]))
    # for y ∈ {0, 1} the gradients agree at no finite z (only σ(z) = y, reached in the limit)
    assert results["equal_gradients|y=0"] == sp.EmptySet
    assert results["equal_gradients|y=1"] == sp.EmptySet


def test_equation_layer_gradients(problems_dir):
    results = _solve(problems_dir, "000_t3").results
    p1, p2, w1, w2 = sp.symbols("p1 p2 w1 w2")
    at = {p1: 1, p2: 2, w1: 3, w2: 4}
    q1 = w1 * p1 * p2 + w2 * sp.Max(p1, p2)
    q2 = w1 * p1 ** 2 + w2 * p2 ** 2
    for key, wrt in (("dq/dw", (w1, w2)), ("dq/dp", (p1, p2))):
        expected = sp.Matrix([[sp.diff(q, v).subs(at) for v in wrt] for q in (q1, q2)])   # away from the tie
        assert results[key].subs(at) == expected
    assert [int(v) for v in results["dq/dp(p=(1,2),w=(3,4))"].flat] == [6, 7, 6, 16]


def test_vector_derivatives(problems_dir):
    results = _solve(problems_dir, "004_t1").results
    assert results["df/dx"] == sp.eye(3)
    assert results["dg/dx"] == 2 * sp.Matrix(sp.symbols("x1:4"))


def test_tanh_gradient_vanishes(problems_dir):
    results = _solve(problems_dir, "004_t2").results
    values = [float(results[f"tanh'({z})"]) for z in (0, 2, 5, 10)]
    for z, v in zip((0, 2, 5, 10), values):
        assert math.isclose(v, 1 - math.tanh(z) ** 2, rel_tol=1e-9, abs_tol=1e-15)
    assert values == sorted(values, reverse=True) and values[-1] < 1e-8


def test_softmax_cross_entropy_gradient_is_yhat_minus_p(problems_dir):
    results = _solve(problems_dir, "004_t3").results
    grad = [float(v) for v in results["dCE/dz(z=0, p=annotators)"].flat]
    expected = [0.1] * 10
    expected[1] -= 0.75
    expected[7] -= 0.25
    assert all(math.isclose(a, b) for a, b in zip(grad, expected))


# ----- validation -------------------------------------------------------------------------
SEED_P = """
id: t
kind: symbolic
vectors: {u: 10, t: 10}
distributions: [t]
define:
  yhat: {softmax: u}
tasks:
  - evaluate: {of: ["yhat - t"], at: {u: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], t: %s}}
"""


@pytest.mark.parametrize("p, message", [
    ("[0, 3/4, 0, 0, 0, 0, 1/4, 0, 0]", "t has 10 entries, the value given has 9"),   # the seed's vector
    ("[0, 3/4, 0, 0, 0, 0, 0, 1/2, 0, 0]", "sum to 1"),
])
def test_distributions_are_validated(p, message):
    with pytest.raises(SpecError) as err:
        solve_document(load_text(SEED_P % p, "seed.yaml"), answers={})
    assert message in str(err.value)


def test_unknown_names_are_located_errors():
    text = "id: t\nkind: symbolic\nsymbols: [x]\ndefine:\n  f: \"x + __import__('os')\"\ntasks:\n  - simplify: {of: f}\n"
    with pytest.raises(SpecError) as err:
        solve_document(load_text(text, "bad.yaml"), answers={})
    assert "bad.yaml:5" in str(err.value) and "unknown function" in str(err.value)


def test_glorot_variance_is_a_squared_over_three_not_one_over_n(problems_dir):
    results = _solve(problems_dir, "003_glorot").results
    m, n = sp.symbols("m n", positive=True)        # layer sizes, declared `positive:` in the spec
    a = sp.sqrt(6 / (m + n))
    assert _same(results["glorot.variance"], a ** 2 / 3)          # variance of U[−a, a]
    assert _same(results["glorot.variance"], 2 / (m + n))
    assert results["glorot.mean"] == 0
    assert results["claim(1/n)"] == sp.false                      # the seed's 1/n


def test_glorot_bound_is_printed_in_closed_form(problems_dir):
    """√(6/(m + n)) of positive sizes is √6/√(m + n), never √6·√(1/(m + n)) (which overflowed a slide)."""
    from examsolver.render.math import LatexPrinter, PlainPrinter

    solution = _solve(problems_dir, "003_glorot")
    bound = solution.sections[0].blocks[0].extra_forms[-1]
    assert PlainPrinter().print(bound) == "√(6)/√(m + n)"
    assert LatexPrinter().print(bound) == r"\frac{\sqrt{6}}{\sqrt{m + n}}"


def test_positive_names_only_declared_symbols():
    spec = "id: t\nkind: symbolic\nsymbols: [x]\npositive: [x, y]\ndefine: {f: 'x**2'}\ntasks:\n  - derivative: {of: f, wrt: x}\n"
    with pytest.raises(SpecError, match=r"t\.yaml:4:\d+: .*not a declared symbol: 'y'"):
        solve_document(load_text(spec, "t.yaml"))


def test_a_positive_symbol_is_solved_for_and_substituted():
    """`solve: for` and `cases` find the declared symbol with its assumption, not a new plain one."""
    spec = "id: t\nkind: symbolic\nsymbols: [n]\npositive: [n]\ntasks:\n  - solve: {equation: ['n**2', '4'], for: n}\n"
    results = solve_document(load_text(spec, "t.yaml"), answers={}).results
    assert 2 in results["solve(n)"]        # a new plain n would not occur in the equation: no solution


@pytest.mark.parametrize("name", ["import", "lambda", "numpy", "np"])
def test_symbol_names_that_would_break_generated_code_are_refused(name):
    from examsolver.errors import SpecError
    from examsolver.spec.load import load_text
    from examsolver.pipeline import solve_document

    spec = f"id: t\nkind: symbolic\nsymbols: [{name}]\ndefine: {{f: '{name}**2'}}\ntasks:\n  - derivative: {{of: f, wrt: {name}}}\n"
    with pytest.raises(SpecError, match="cannot be a symbol name"):
        solve_document(load_text(spec, "t.yaml"))


def test_a_result_name_written_twice_is_refused_where_written():
    """An evaluate named like an earlier gradient used to replace it silently."""
    spec = """
id: twice
kind: symbolic
vectors: {x: 3}
define:
  g: "x1**2 + x2**2 + x3**2"
tasks:
  - gradient: {of: g, wrt: x, name: "dg"}
  - evaluate: {of: [g], at: {x1: 1, x2: 2, x3: 3}, names: ["dg"]}
"""
    with pytest.raises(SpecError, match=r"t\.yaml:9:\d+: .*'dg' is already computed"):
        solve_document(load_text(spec, "t.yaml"))


CLAIMS = """
id: claims
kind: symbolic
symbols: [z, g]
define:
  d: "-(g*ln(sigmoid(z)) + (1 - g)*ln(1 - sigmoid(z)))"
tasks:
  - derivative: {of: d, wrt: z, as: dd, equals: ["sigmoid(z) - g", "exp(z)/(1 + exp(z)) - g"]}
  - claim: {of: dd, claimed: "(exp(z) - g*(1 + exp(z)))/(1 + exp(z))"}
  - claim: {of: dd, claimed: "sigmoid(z)*(1 - g) - g"}
"""


def test_claims_and_equals_are_settled_without_the_slow_fallback(monkeypatch):
    """A true claim is proved in polynomials (engine/identity.py), a false one refuted at a point:
    Solver.equal's last resort (together, cancel, then simplify) is not reached for either."""
    def refuse(*args, **kwargs):
        raise AssertionError("together called")

    monkeypatch.setattr(sp, "together", refuse)
    solution = solve_document(load_text(CLAIMS, "claims.yaml"), answers={})
    said = [b.key for s in solution.sections for b in s.blocks if hasattr(b, "key")]
    assert said.count("symbolic.claim_holds") == 1 and said.count("symbolic.claim_fails") == 1
    assert "symbolic.not_equal" not in said
    assert solution.results["claim(sigmoid(z)*(1 - g) - g)"] == sp.false
