"""A new op is one class in its own module plus its phrases: registered here, in the test only, it
must work in every problem kind that differentiates (a network with a residual branch, a siamese
pair) and in counting, with no edit anywhere else.  The numbers are checked against autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from examsolver.engine.ops import LAYERS
from examsolver.engine.ops.activation import Elementwise
from examsolver.engine.ops.base import layer
from examsolver.engine.tensor import to_float
from examsolver.locales import catalog
from examsolver.pipeline import solve_document
from examsolver.spec.load import load_text


class Cube(Elementwise):
    """y = x³ (a test-only op)."""

    kind = "cube_for_test"
    fn_name = "cube"

    def f(self, v):
        return v * v * v

    def df(self, x, y):
        return 3 * x * x

    def derivative_node(self, x_sym, y_sym):
        from examsolver.mathnodes import Const, Op, Power

        return Op("mul", (Const(3), Power(x_sym, Const(2))))

    def sympy_f(self, v, exp):            # matrix calculus (the symbolic kind's backprop task)
        return v ** 3

    def sympy_df(self, x, y):
        return 3 * x ** 2


@pytest.fixture
def cube_op():
    layer(Cube)
    for lang in ("hr", "en"):
        catalog(lang).update({"forward.cube_for_test": "x³:", "backward.cube_for_test": "(x³)′:"})
    yield
    del LAYERS["cube_for_test"]
    for lang in ("hr", "en"):
        for key in ("forward.cube_for_test", "backward.cube_for_test"):
            catalog(lang).pop(key)


def solve(spec: dict):
    return solve_document(load_text(yaml.safe_dump(spec, sort_keys=False), "new_op.yaml"),
                          with_alternatives=False).results


def t(values, grad=False):
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


def test_new_op_in_a_network_with_a_residual_branch(cube_op):
    spec = {"id": "cube", "model": [{"linear": {"name": "fc", "W": [[1, -0.5], [0.25, 2]], "b": [0, 0.5]}},
                                    {"cube_for_test": {"name": "c"}},
                                    {"add": {"name": "r", "inputs": ["c", "x"]}}],
            "loss": "mse", "data": [{"x": [1, -1], "y": [0, 1]}, {"x": [0.5, 2], "y": [1, 0]}],
            "tasks": [{"gradient": {"wrt": ["fc.W", "x"], "method": "batch"}}]}
    results = solve(spec)
    W, b, X = t([[1, -0.5], [0.25, 2]], True), t([0, 0.5]), t([[1, -1], [0.5, 2]], True)
    out = (X @ W.T + b) ** 3 + X
    ((out - t([[0, 1], [1, 0]])) ** 2).sum(dim=1).mean().backward()
    np.testing.assert_allclose(to_float(results["fc.W.grad"]), W.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_float(results["x.grad"]), X.grad.numpy(), rtol=1e-12)


def test_new_op_in_a_siamese_pair(cube_op):
    spec = {"id": "cube_pair", "kind": "siamese",
            "model": [{"linear": {"name": "fc", "W": [[1, -0.5], [0.25, 2]], "b": [0, 0.5]}}, "cube_for_test"],
            "loss": {"contrastive": {"margin": 2}},
            "inputs": {"a": [1, -1], "b": [0.5, 0.25]}, "pairs": [{"inputs": ["a", "b"], "label": "positive"}],
            "tasks": ["forward", {"gradient": {"wrt": ["fc.W"]}}]}
    results = solve(spec)
    W, b = t([[1, -0.5], [0.25, 2]], True), t([0, 0.5])
    ea, eb = ((t(x) @ W.T + b) ** 3 for x in ([1, -1], [0.5, 0.25]))
    ((ea - eb) ** 2).sum().backward()
    np.testing.assert_allclose(to_float(results["fc.W.grad"]), W.grad.numpy(), rtol=1e-12)


def test_new_op_counts_no_parameters(cube_op):
    spec = {"id": "cube_count", "kind": "counting",
            "architectures": [{"name": "net",
                               "layers": [{"linear": {"in_features": 4, "out_features": 3}}, "cube_for_test"]}]}
    results = solve(spec)
    assert results["net.params.total"] == 15, results


def test_new_op_in_a_symbolic_backprop_derivation(cube_op):
    """The chain-rule derivation writes ∂L/∂a = ∂L/∂h ⊙ 3a² from the op's own rules; its formulas are
    checked by the engine against sympy and here, evaluated at random numbers, against autograd."""
    import sympy as sp

    spec = {"id": "cube_backprop", "kind": "symbolic",
            "tasks": [{"backprop": {"input": "x", "size": "D",
                                    "layers": [{"linear": {"W": "W1", "b": "b1", "out": "a", "size": "H"}},
                                               {"cube_for_test": {"out": "h"}},
                                               {"linear": {"W": "W2", "out": "z", "size": "K"}}],
                                    "loss": "mse", "target": "g", "instance": {"D": 3, "H": 2, "K": 2}}}]}
    results = solve(spec)
    rng = np.random.default_rng(5)
    x, W1, b1, W2, g = (rng.normal(size=s) for s in ((3,), (2, 3), (2,), (2, 2), (2,)))
    a = W1 @ x + b1
    h = a ** 3
    values = {}
    for name, array in (("x", x), ("b1", b1), ("g", g), ("a", a), ("h", h), ("z", W2 @ h)):
        values.update({f"{name}{i + 1}": v for i, v in enumerate(array)})
    for name, array in (("W1", W1), ("W2", W2)):
        values.update({f"{name}_{i + 1}{j + 1}": array[i, j] for i in range(2) for j in range(array.shape[1])})
    tW1, tb1, tW2 = t(W1, True), t(b1, True), t(W2, True)
    ((tW2 @ (tW1 @ t(x) + tb1) ** 3 - t(g)) ** 2).sum().backward()
    for name, param in (("W1", tW1), ("b1", tb1), ("W2", tW2)):
        expr = results[f"dL/d{name}"]
        got = np.array(expr.subs(values).evalf(), dtype=float).reshape(param.shape)
        np.testing.assert_allclose(got, param.grad.numpy(), rtol=1e-10, err_msg=name)
    assert results["dL/da"].free_symbols <= set(sp.symbols("a1 a2 h1 h2 z1 z2 g1 g2 W2_11 W2_12 W2_21 W2_22"))
