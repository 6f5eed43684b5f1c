"""Seed 003 (lecture 3): derived formulas evaluated with numpy against PyTorch autograd."""

import math

import numpy as np
import pytest
import sympy as sp

from examsolver.engine import backprop
from examsolver.pipeline import solve_document
from examsolver.errors import EngineError
from examsolver.spec.load import load_file, load_text

torch = pytest.importorskip("torch")


def _solve(problems_dir, name):
    return solve_document(load_file(problems_dir / f"{name}.yaml"), answers={}).results


def _numeric(expr, values: dict):
    """A sympy result (scalar or Matrix) evaluated with numpy at the given symbol values."""
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    missing = [s.name for s in symbols if s.name not in values]
    assert not missing, missing
    f = sp.lambdify(symbols, expr, "numpy")
    return np.array(f(*[values[s.name] for s in symbols]), dtype=float)


# ----- (i) MLP backprop ---------------------------------------------------------------------
MLP = """
id: mlp
kind: symbolic
tasks:
  - backprop:
      input: x
      size: D
      layers:
        - linear: {{W: W1, b: b1, out: a, size: H}}
        - relu: {{out: h}}
        - linear: {{W: W2, b: b2, out: z, size: K}}
        - softmax: {{out: o}}
      loss: cross_entropy
      target: g
      instance: {{D: {D}, H: {H}, K: {K}}}
      check: {check}
"""


def _entries(prefix, array):
    if array.ndim == 1:
        return {f"{prefix}{i + 1}": float(v) for i, v in enumerate(array)}
    return {f"{prefix}_{i + 1}{j + 1}": float(array[i, j]) for i in range(array.shape[0]) for j in range(array.shape[1])}


def _mlp_against_torch(results, D, H, K, seed):
    rng = np.random.default_rng(seed)
    x, W1, b1 = rng.normal(size=D), rng.normal(size=(H, D)), rng.normal(size=H)
    W2, b2 = rng.normal(size=(K, H)), rng.normal(size=K)
    g = rng.random(K)
    g /= g.sum()                                             # a target distribution
    a = W1 @ x + b1                                          # our own numpy forward pass
    h = np.maximum(a, 0)
    z = W2 @ h + b2
    o = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    values = {}
    for prefix, array in (("x", x), ("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2), ("g", g),
                          ("a", a), ("h", h), ("z", z), ("o", o), ("ma", (a > 0).astype(float))):
        values.update(_entries(prefix, array))
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2))}
    logits = params["W2"] @ torch.relu(params["W1"] @ torch.tensor(x) + params["b1"]) + params["b2"]
    loss = -(torch.tensor(g) * torch.log_softmax(logits, 0)).sum()
    loss.backward()
    for name, p in params.items():
        got = _numeric(results[f"dL/d{name}"], values).reshape(p.shape)
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("D, H, K, seed", [(2, 3, 2, 0), (4, 2, 3, 1), (3, 5, 4, 2), (1, 1, 2, 3)])
def test_mlp_gradients_match_torch_for_random_sizes(D, H, K, seed):
    results = solve_document(load_text(MLP.format(D=D, H=H, K=K, check="false"), "mlp.yaml"), answers={}).results
    assert results["dL/dW1"].shape == (H, D) and results["dL/dW2"].shape == (K, H)
    assert results["dL/db1"].shape == (H, 1) and results["dL/db2"].shape == (K, 1)
    _mlp_against_torch(results, D, H, K, seed)


def test_mlp_problem_is_checked_and_matches_torch(problems_dir):
    solution = solve_document(load_file(problems_dir / "003_mlp_backprop.yaml"), answers={})
    texts = [b.key for s in solution.sections for b in s.blocks if hasattr(b, "key")]
    assert "symbolic.backprop.checked_distribution" in texts               # the engine's own symbolic check ran
    _mlp_against_torch(solution.results, 3, 4, 2, seed=7)


def test_backprop_check_catches_a_wrong_formula(monkeypatch):
    """The symbolic check is not a formality: a wrong ∂L/∂W₁ (no ReLU mask) is refused."""
    original = backprop.Derivation.backward

    def without_mask(self):
        original(self)
        self.results["W1"] = self.results["W1"].subs({m: 1 for m in self.named["ma"]})

    monkeypatch.setattr(backprop.Derivation, "backward", without_mask)
    with pytest.raises(EngineError, match="backprop check failed"):
        solve_document(load_text(MLP.format(D=2, H=2, K=2, check="true"), "mlp.yaml"), answers={})


def test_backprop_check_is_proved_in_polynomials_without_together(monkeypatch):
    """Every entry of the 003 MLP is proved equal to sympy's derivative by engine/identity.py alone."""
    def refuse(*args, **kwargs):
        raise AssertionError("together called")

    monkeypatch.setattr(sp, "together", refuse)
    solution = solve_document(load_text(MLP.format(D=3, H=4, K=2, check="true"), "mlp.yaml"), answers={})
    texts = [b.key for s in solution.sections for b in s.blocks if hasattr(b, "key")]
    assert "symbolic.backprop.checked_distribution" in texts


def test_backprop_check_catches_a_gradient_wrong_by_one_part_in_a_billion(monkeypatch):
    original = backprop.Derivation.backward

    def nearly(self):
        original(self)
        self.results["b2"] = self.results["b2"] * (1 + sp.Rational(1, 10 ** 9))

    monkeypatch.setattr(backprop.Derivation, "backward", nearly)
    with pytest.raises(EngineError, match="backprop check failed for ∂L/∂b21"):
        solve_document(load_text(MLP.format(D=2, H=2, K=2, check="true"), "mlp.yaml"), answers={})


def test_backprop_refuses_a_softmax_before_the_end():
    text = MLP.format(D=2, H=2, K=2, check="false").replace("- relu: {out: h}", "- softmax: {out: h}")
    with pytest.raises(Exception) as err:
        solve_document(load_text(text, "bad.yaml"), answers={})
    assert "bad.yaml" in str(err.value) and "softmax" in str(err.value)


# ----- (ii)–(v) single losses and L2 ------------------------------------------------------------
def test_mse_value_and_gradient_match_torch(problems_dir):
    results = _solve(problems_dir, "003_mse")
    o = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.mse_loss(o, torch.tensor(1.0, dtype=torch.float64))
    loss.backward()
    assert math.isclose(float(results["L(o=0.7,g=1)"]), loss.item(), rel_tol=1e-12)
    assert math.isclose(float(results["dL/do(o=0.7,g=1)"]), o.grad.item(), rel_tol=1e-12)
    assert float(_numeric(results["dL/do"], {"o": 0.3, "g": -2.0})) == pytest.approx(2 * (0.3 + 2.0))


@pytest.mark.parametrize("z, g", [(-3.0, 1.0), (0.4, 0.0), (2.5, 0.3)])
def test_sigmoid_bce_gradient_matches_torch(problems_dir, z, g):
    results = _solve(problems_dir, "003_sigmoid_bce")
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(g, dtype=torch.float64)).backward()
    assert float(_numeric(results["dL/dz"], {"z": z, "g": g})) == pytest.approx(zt.grad.item(), rel=1e-12)
    assert results["claim(sigmoid(z) - g)"] == sp.false       # the seed's single-term −g log o


def test_softmax_ce_gradient_matches_torch_and_needs_a_distribution(problems_dir):
    results = _solve(problems_dir, "003_softmax_ce")
    rng = np.random.default_rng(3)
    z = rng.normal(size=3)
    for g in (np.array([0.2, 0.5, 0.3]), np.array([0.7, 0.9, 0.4])):   # a distribution, then not
        zt = torch.tensor(z, requires_grad=True)
        (-(torch.tensor(g) * torch.log_softmax(zt, 0)).sum()).backward()
        values = {"z1": z[0], "z2": z[1], "z3": z[2], "g1": g[0], "g2": g[1], "g3": g[2]}
        general = _numeric(results["dL/dz(any g)"], values).ravel()
        np.testing.assert_allclose(general, zt.grad.numpy(), rtol=1e-12)
        o = np.exp(z) / np.exp(z).sum()
        assert np.allclose(general, o - g) == math.isclose(g.sum(), 1.0)
    # with g3 = 1 − g1 − g2 the gradient is o − g
    g = np.array([0.2, 0.5, 0.3])
    values = {"z1": z[0], "z2": z[1], "z3": z[2], "g1": g[0], "g2": g[1]}
    np.testing.assert_allclose(_numeric(results["dL/dz"], values).ravel(), np.exp(z) / np.exp(z).sum() - g)


def test_l2_gradient_and_weight_decay_match_torch(problems_dir):
    results = _solve(problems_dir, "003_l2")
    theta, lam, alpha = 0.8, 0.05, 0.1
    t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    (torch.sin(3 * t) + lam * t ** 2).backward()                      # J(θ) = sin 3θ as an example
    values = {"theta": theta, "lam": lam, "alpha": alpha, "dJ_dtheta": 3 * math.cos(3 * theta)}
    assert float(_numeric(results["dJreg/dtheta"], values)) == pytest.approx(t.grad.item(), rel=1e-12)
    step = float(_numeric(results["theta_updated"], values))
    assert step == pytest.approx(theta - alpha * t.grad.item(), rel=1e-12)
    assert step == pytest.approx((1 - 2 * alpha * lam) * theta - alpha * 3 * math.cos(3 * theta), rel=1e-12)
    assert "claim((1 - 2*alpha*lam)*theta - alpha*dJ_dtheta)" not in results   # the claim held


# ----- (vi) label smoothing ------------------------------------------------------------------------
def test_label_smoothing_matches_torch(problems_dir):
    results = _solve(problems_dir, "003_label_smoothing")
    q = [v.as_fraction() for v in results["q"]]
    from fractions import Fraction
    assert q == [Fraction(1, 40), Fraction(37, 40), Fraction(1, 40), Fraction(1, 40)]
    assert sum(v.as_fraction() for v in results["q_alt"]) == 1
    logits = torch.tensor([[0.3, -1.2, 2.0, 0.5]], dtype=torch.float64)
    smoothed = torch.nn.functional.cross_entropy(logits, torch.tensor([1]), label_smoothing=0.1)
    target = torch.tensor([[float(v) for v in q]], dtype=torch.float64)
    assert smoothed.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item(), rel=1e-12)
    assert float(results["g_sigmoid(g=1)"]) == pytest.approx(0.95)
    assert float(results["g_sigmoid(g=0)"]) == pytest.approx(0.05)


# ----- #10: a generic activation f, its derivative written f′ ----------------------------------------
GENERIC = MLP.replace("- relu: {{out: h}}", "- activation: {{f: f, out: h}}")


def test_a_generic_activation_is_derived_through_f_prime_and_matches_torch_for_tanh():
    """∂L/∂W₁ written through f′(a): checked by the engine for any f, and here with f = tanh
    (f′(a) = 1 − tanh²(a)) evaluated against autograd."""
    solution = solve_document(load_text(GENERIC.format(D=3, H=2, K=2, check="true"), "f.yaml"), answers={})
    texts = [b.key for s in solution.sections for b in s.blocks if hasattr(b, "key")]
    assert "symbolic.backprop.checked_distribution" in texts
    from examsolver.render.output import render_document
    assert "f′(a)" in render_document([solution], "term", "en")
    rng = np.random.default_rng(11)
    x, W1, b1, W2, b2 = rng.normal(size=3), rng.normal(size=(2, 3)), rng.normal(size=2), rng.normal(size=(2, 2)), \
        rng.normal(size=2)
    g = rng.random(2)
    g /= g.sum()
    a = W1 @ x + b1
    h = np.tanh(a)
    z = W2 @ h + b2
    o = np.exp(z) / np.exp(z).sum()
    values = {}
    for prefix, array in (("x", x), ("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2), ("g", g), ("a", a), ("h", h),
                          ("z", z), ("o", o)):
        values.update(_entries(prefix, array))
    prime = {sp.Function("f'")(sp.Symbol(f"a{i + 1}")): 1 - np.tanh(v) ** 2 for i, v in enumerate(a)}
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2))}
    logits = params["W2"] @ torch.tanh(params["W1"] @ torch.tensor(x) + params["b1"]) + params["b2"]
    (-(torch.tensor(g) * torch.log_softmax(logits, 0)).sum()).backward()
    for name, p in params.items():
        got = _numeric(solution.results[f"dL/d{name}"].subs(prime), values).reshape(p.shape)
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_the_fused_softmax_rule_is_written_with_the_specs_own_names():
    """Softmax input s2, output p, target y: the rule reads ∂L/∂s₂,ⱼ = Σₖ yₖ (pⱼ − δⱼₖ), not z, o, g."""
    from examsolver.render.output import render_document

    solution = solve_document(load_text("""
id: bp
kind: symbolic
tasks:
  - backprop:
      input: x
      size: D
      layers: [{linear: {W: W1, b: b1, out: s2, size: K}}, {softmax: {out: p}}]
      loss: cross_entropy
      target: y
      instance: {D: 2, K: 2}
"""))
    tex = render_document([solution], "tex", "en")
    assert r"\partial L/\partial s_{2,j} = \sum_k y_{k} (p_{j} - \delta_{jk})" in tex
    assert "z_j" not in tex and "o_j" not in tex
