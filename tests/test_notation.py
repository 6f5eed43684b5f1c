"""Other courses' notations as conventions (issue 10, item 4): weights stored input × output with
z = Wᵀx + b, checked against torch; sizes given as letters in counting."""

import numpy as np
import pytest

from examsolver.engine.tensor import to_float
from examsolver.pipeline import solve_document
from examsolver.spec.load import load_text

torch = pytest.importorskip("torch")



def _network(W1, W2, layout: str) -> str:
    text = lambda a: "[" + ", ".join("[" + ", ".join(str(v) for v in row) + "]" for row in a) + "]"
    return f"""
id: layout
kind: network
model:
  - linear: {{name: fc1, W: {text(W1)}, b: [0, 0.5, -1]}}
  - tanh
  - linear: {{name: fc2, W: {text(W2)}, b: [0.25, -0.5]}}
loss: mse
data:
  - {{x: [1, 2], y: [1, 0]}}
  - {{x: [-0.5, 1.5], y: [0, 1]}}
conventions: {{weights: {layout}}}
tasks:
  - gradient: {{wrt: [fc1.W, fc1.b, fc2.W, fc2.b], method: batch}}
  - train_step: {{lr: 0.1}}
"""


def test_the_same_network_in_both_layouts_gives_transposed_weight_gradients():
    """z = Wx + b with W out × in (PyTorch) and z = Wᵀx + b with W in × out (Ng / MIT 6.036): the same
    function, so the losses agree and every weight's gradient and update is the other's transpose;
    both against torch.nn.Linear with autograd."""
    A = np.array([[1, -1], [0.5, 2], [0.25, 0]])       # fc1: 2 → 3, out × in
    B = np.array([[1, -0.5, 2], [0.5, 1, -1]])          # fc2: 3 → 2
    out_in = solve_document(load_text(_network(A, B, "out_in"), "a.yaml"))
    in_out = solve_document(load_text(_network(A.T, B.T, "in_out"), "b.yaml"))
    assert out_in.results["loss"] == in_out.results["loss"]
    for key in ("fc1.W.grad", "fc2.W.grad"):
        assert (np.asarray(out_in.results[key]).T == np.asarray(in_out.results[key])).all(), key
    assert (np.asarray(out_in.results["fc1.b.grad"]) == np.asarray(in_out.results["fc1.b.grad"])).all()
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(A))
        net[0].bias.copy_(torch.tensor([0, 0.5, -1]))
        net[2].weight.copy_(torch.tensor(B))
        net[2].bias.copy_(torch.tensor([0.25, -0.5]))
    x = torch.tensor([[1, 2], [-0.5, 1.5]], dtype=torch.float64)
    y = torch.tensor([[1, 0], [0, 1]], dtype=torch.float64)
    loss = ((net(x) - y) ** 2).sum(1).mean()
    loss.backward()
    assert np.isclose(float(in_out.results["loss"]), loss.item())
    np.testing.assert_allclose(np.asarray(to_float(in_out.results["fc1.W.grad"]), dtype=float), net[0].weight.grad.numpy().T)
    np.testing.assert_allclose(np.asarray(to_float(in_out.results["fc2.W.grad"]), dtype=float), net[2].weight.grad.numpy().T)
    new = np.asarray(to_float(in_out.results["fc1.W.updated"]), dtype=float)
    np.testing.assert_allclose(new, (net[0].weight - 0.1 * net[0].weight.grad).detach().numpy().T)
    assert any(p.key == "convention.weights_in_out" for p in in_out.conventions)
    assert not any(p.key == "convention.weights_in_out" for p in out_in.conventions)


def test_an_in_out_weight_of_the_wrong_shape_is_located():
    from examsolver.errors import SpecError

    text = _network(np.array([[1, -1], [0.5, 2], [0.25, 0]]), np.array([[1, -0.5, 2], [0.5, 1, -1]]), "in_out")
    with pytest.raises(SpecError, match="fc"):
        solve_document(load_text(text, "c.yaml"))


# ----- sizes as letters in counting ----------------------------------------------------------------
def _count(layers: str):
    return solve_document(load_text(f"id: c\nkind: counting\narchitectures:\n  - layers: {layers}\n", "c.yaml"))


def test_sizes_given_as_letters_are_carried_through_shapes_and_counts():
    """n**2 inputs, m and d: the count is a polynomial in the letters; at numbers it is torch's numel."""
    import sympy

    s = _count("[{linear: {in_features: n**2, out_features: m}}, {lstm: {input_size: m, hidden_size: d, num_layers: 2}},"
               " {linear: {in_features: 2*d, out_features: d, bias: false}}]")
    n, m, d = sympy.symbols("n m d")
    total = s.results["params.total"]
    assert total.free_symbols == {n, m, d}
    for values in ({n: 3, m: 5, d: 4}, {n: 1, m: 2, d: 7}):
        modules = [torch.nn.Linear(values[n] ** 2, values[m]), torch.nn.LSTM(values[m], values[d], num_layers=2),
                   torch.nn.Linear(2 * values[d], values[d], bias=False)]
        assert total.subs(values) == sum(p.numel() for mod in modules for p in mod.parameters())
    # the letters are the spec's own, in the formulas and in the shapes (not the default d_x, d_h)
    from examsolver.render.output import render_solution

    text = render_solution(s, "md", "en", to_terminal=False)
    assert "d_{h}" not in text and "d_{x}" not in text
    assert "4 d \\times m" in text and "n^{2}" in text


@pytest.mark.parametrize("size", ["n/2", "sqrt(n)", "1+1", "2**n", "__import__('os')", "n.real", "n" * 120, "(n"])
def test_size_expressions_outside_polynomials_in_letters_are_refused(size):
    from examsolver.errors import SpecError

    with pytest.raises(SpecError, match="not a size"):
        _count(f"[{{linear: {{in_features: {size!r}, out_features: 2}}}}]")
