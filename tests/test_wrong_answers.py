"""Answers that were confidently wrong, and inputs that ended in an internal error (issue 21, item 7),
each checked against PyTorch or against sympy worked by hand, never against the engine itself."""

import numpy as np
import pytest

from examsolver.engine.tensor import to_float
from examsolver.errors import SpecError
from examsolver.pipeline import solve_document
from examsolver.render.output import render_solution
from examsolver.spec.load import load_text

torch = pytest.importorskip("torch")
sympy = pytest.importorskip("sympy")


def _solve(text: str):
    return solve_document(load_text(text, "spec.yaml"))


def _floats(value) -> np.ndarray:
    return np.asarray(to_float(value), dtype=float)


def _text(solution, lang: str) -> str:
    return render_solution(solution, "md", lang, to_terminal=False)


# ----- dropout in evaluation mode ------------------------------------------------------------------
DROPOUT_EVAL = """
id: dropout_eval
model:
  - linear: {{name: fc1, W: [[1, 0], [0, 2], [1, -1]], b: [0, 1, -1/2]}}
  - dropout: {{name: drop, p: 1/4, train: false}}
  - linear: {{name: fc2, W: [[1, -1, 2]], b: [1/2]}}
loss: mse
data: [{{x: [1, 2], y: [1]}}, {{x: [-1, 1/2], y: [0]}}]
conventions: {{dropout: {convention}}}
tasks:
  - forward
  - gradient: {{wrt: [fc1.W, fc2.W, x], method: batch}}
"""


def _dropout_torch(scale: float):
    """The same network in PyTorch: nn.Dropout in eval mode (the identity), times `scale` after it."""
    fc1, fc2 = torch.nn.Linear(2, 3).double(), torch.nn.Linear(3, 1).double()
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[1, 0], [0, 2], [1, -1]]))
        fc1.bias.copy_(torch.tensor([0, 1, -0.5]))
        fc2.weight.copy_(torch.tensor([[1, -1, 2]]))
        fc2.bias.copy_(torch.tensor([0.5]))
    drop = torch.nn.Dropout(0.25).eval()
    x = torch.tensor([[1, 2], [-1, 0.5]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1], [0]], dtype=torch.float64)
    o = fc2(drop(fc1(x)) * scale)
    loss = ((o - y) ** 2).sum(1).mean()
    loss.backward()
    return o, loss, fc1, fc2, x


@pytest.mark.parametrize("convention, scale", [("inverted", 1.0), ("plain", 0.75)])
def test_dropout_in_evaluation_mode_is_the_identity_or_the_textbook_scale(convention, scale):
    """train: false used to end in KeyError 'forward_eval.dropout'.  PyTorch's (inverted) dropout in
    eval mode is the identity; the textbook form scales by 1 − p at inference."""
    s = _solve(DROPOUT_EVAL.format(convention=convention))
    o, loss, fc1, fc2, x = _dropout_torch(scale)
    assert np.isclose(float(s.results["loss"]), loss.item())
    np.testing.assert_allclose(_floats(s.results["o(1)"]), o[0].detach().numpy())
    np.testing.assert_allclose(_floats(s.results["fc1.W.grad"]), fc1.weight.grad.numpy())
    np.testing.assert_allclose(_floats(s.results["fc2.W.grad"]), fc2.weight.grad.numpy())
    np.testing.assert_allclose(_floats(s.results["x.grad"]), x.grad.numpy())
    en, hr = _text(s, "en"), _text(s, "hr")
    if convention == "inverted":
        assert "evaluation mode is the identity" in en and "evaluacije je identiteta" in hr
    else:
        assert "scaled by 1 − p" in en and "skalira s 1 − p" in hr


# ----- symbolic minimize: coupled parameters updated at once -----------------------------------------
COUPLED = """
id: coupled
kind: symbolic
symbols: [a, b]
define:
  f: "(a*b - 1)**2"
tasks:
  - minimize: {of: f, wrt: [a, b], optimizer: sgd, steps: 2}
"""


def test_two_sgd_steps_on_coupled_parameters_use_both_previous_values():
    """f(a, b) = (ab − 1)²: a⁽²⁾ = a⁽¹⁾ − η ∂f/∂a(a⁽¹⁾, b⁽¹⁾) with both a⁽¹⁾ and b⁽¹⁾ put in at once.  One
    after another (b⁽¹⁾ substituted into the a⁽¹⁾ just put in) gave η⁵ and η⁶ terms that do not exist."""
    s = _solve(COUPLED)
    a, b, eta = sympy.symbols("a b eta")

    def grad(p, q):                  # ∂f/∂a, ∂f/∂b by hand; a Python call substitutes simultaneously
        return 2 * q * (p * q - 1), 2 * p * (p * q - 1)

    a1, b1 = a - eta * grad(a, b)[0], b - eta * grad(a, b)[1]
    a2, b2 = a1 - eta * grad(a1, b1)[0], b1 - eta * grad(a1, b1)[1]
    for key, expected in (("a.updated(1)", a1), ("b.updated(1)", b1), ("a.updated(2)", a2), ("b.updated(2)", b2)):
        assert sympy.expand(sympy.sympify(s.results[key]) - expected) == 0, key
    assert sympy.degree(sympy.expand(sympy.sympify(s.results["a.updated(2)"])), eta) == 4
    # and at numbers, torch.optim.SGD on the same function
    for start, lr in (((0.5, 1.5), 0.1), ((2.0, -1.0), 0.05)):
        p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.SGD([p], lr=lr)
        for _ in range(2):
            optimizer.zero_grad()
            ((p[0] * p[1] - 1) ** 2).backward()
            optimizer.step()
        point = {a: start[0], b: start[1], eta: lr}
        got = [float(sympy.sympify(s.results[k]).subs(point)) for k in ("a.updated(2)", "b.updated(2)")]
        np.testing.assert_allclose(got, p.detach().numpy())


def test_evaluating_at_a_point_puts_every_coordinate_in_at_once():
    """at (a, b) = (b, a), a − 2b is b − 2a (a Lambda called there), not −a (a then b put in)."""
    s = _solve("id: swap\nkind: symbolic\nsymbols: [a, b]\ntasks:\n"
               "  - evaluate: {of: ['a - 2*b'], at: {a: b, b: a}, names: [v]}\n")
    a, b = sympy.symbols("a b")
    assert sympy.expand(sympy.sympify(s.results["v"]) - sympy.Lambda((a, b), a - 2 * b)(b, a)) == 0


# ----- minimize of an unspecified function ---------------------------------------------------------
UNSPECIFIED = """
id: unspecified
kind: symbolic
symbols: [theta]
functions: {{J: [theta]}}
tasks:
  - minimize: {{of: J, {start}, optimizer: {optimizer}, steps: 2}}
"""


def test_sgd_on_an_unspecified_function_writes_its_gradient_at_each_point():
    """J(θ) unspecified (TypeError before): θ⁽¹⁾ = θ − η J′(θ), θ⁽²⁾ = θ⁽¹⁾ − η J′(θ⁽¹⁾), checked with a
    sympy Function J differentiated by hand, and at a concrete J against torch.optim.SGD."""
    s = _solve(UNSPECIFIED.format(start="wrt: [theta]", optimizer="sgd"))
    theta, eta = sympy.symbols("theta eta")
    dJ = sympy.Function("dJ")
    theta1 = theta - eta * dJ(theta)
    theta2 = theta1 - eta * dJ(theta1)

    def concrete(e, derivative=lambda v: sympy.sin(v) + v ** 3):
        """∂J/∂θ (the result's symbol dJ_dtheta, or dJ_dtheta(point)) made J′ = sin θ + θ³."""
        e = e.replace(lambda n: getattr(n, "func", None).__name__ in ("dJ", "dJ_dtheta") and bool(n.args),
                      lambda n: derivative(n.args[0]))
        return e.subs(sympy.Symbol("dJ_dtheta"), derivative(theta))

    assert sympy.expand(concrete(s.results["theta.updated(1)"]) - concrete(theta1)) == 0
    assert sympy.simplify(concrete(s.results["theta.updated(2)"]) - concrete(theta2)) == 0
    assert sympy.simplify(concrete(s.results["theta.grad(2)"]) - concrete(dJ(theta1))) == 0
    # J(θ) = θ⁴/4 − cos θ has J′ = θ³ + sin θ: torch.optim.SGD from θ = 0.7 with lr 0.1
    p = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        (p ** 4 / 4 - torch.cos(p)).backward()
        optimizer.step()
    assert np.isclose(float(concrete(s.results["theta.updated(2)"]).subs({theta: 0.7, eta: 0.1})), p.item())
    # the steps write g⁽²⁾ = ∂J/∂θ at θ⁽¹⁾, the point after it
    assert "\\frac{\\partial J}{\\partial \\theta}\\left(- \\eta" in _text(s, "en")


def test_an_unspecified_function_from_numbers_is_refused_at_the_task():
    with pytest.raises(SpecError, match=r"spec.yaml:7:\d+: J is an unspecified function.*`wrt`"):
        _solve(UNSPECIFIED.format(start="from: {theta: 1}", optimizer="{sgd: {lr: 1/10}}"))


# ----- a missing bias is no bias ----------------------------------------------------------------------
def _train(model: str, optimizer: str, steps: int, data: str = "{x: [1], y: [0]}"):
    return _solve(f"id: nobias\nmodel:\n{model}\nloss: mse\ndata: {data}\n"
                  f"tasks:\n  - train: {{optimizer: {optimizer}, steps: {steps}}}\n")


def test_a_linear_layer_given_no_b_has_no_bias_to_train():
    """w₂w₁x with SGD (lr 1) against nn.Linear(bias=False): the weights oscillate 1 → −1 → 1; the zero bias
    once added took gradients and updates (−2, 0, −10) and drove W₂ to 5."""
    s = _train("  - linear: {name: fc1, W: [[1]]}\n  - linear: {name: fc2, W: [[1]]}", "{sgd: {lr: 1}}", 3)
    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)).double()
    with torch.no_grad():
        for layer in net:
            layer.weight.fill_(1)
    optimizer = torch.optim.SGD(net.parameters(), lr=1)
    x, y = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    for t in (1, 2, 3):
        optimizer.zero_grad()
        ((net(x) - y) ** 2).sum().backward()
        optimizer.step()
        for name, layer in zip(("fc1", "fc2"), net):
            np.testing.assert_allclose(_floats(s.results[f"{name}.W.updated({t})"]), layer.weight.detach().numpy())
    assert not [key for key in s.results if ".b." in key or key.endswith(".b")]
    assert "nn.Linear(bias=False)" in _text(s, "en") and "nema pomaka" in _text(s, "hr")
    printed = _run_torch_script(s)                  # the check script has no bias either
    assert not [key for key in printed if ".b." in key] and printed["fc2.W.updated(3)"] == [[-1.0]]


def _run_torch_script(solution) -> dict:
    """The exported check script run, its `name = value` lines read."""
    import contextlib
    import io
    import json

    from examsolver.render.torch_script import torch_script

    out, dtype = io.StringIO(), torch.get_default_dtype()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(torch_script(solution), "check.py", "exec"), {"__name__": "__main__"})
    finally:
        torch.set_default_dtype(dtype)
    return {name: json.loads(value) for name, _, value in (line.partition(" = ") for line in out.getvalue().splitlines())}


def test_adamw_leaves_a_bias_free_layer_without_bias():
    """AdamW's decoupled decay and step on W only (the phantom zero bias moved to 1/10)."""
    s = _train("  - linear: {name: fc, W: [[1, 2]]}", "{adamw: {lr: 1/10, eps: 0}}", 2, "{x: [1, -1], y: [0]}")
    fc = torch.nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 2.0]]))
    optimizer = torch.optim.AdamW(fc.parameters(), lr=0.1, eps=0)
    x = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    for t in (1, 2):
        optimizer.zero_grad()
        (fc(x) ** 2).sum().backward()
        optimizer.step()
        np.testing.assert_allclose(_floats(s.results[f"fc.W.updated({t})"]), fc.weight.detach().numpy())
    assert "fc.b.updated(1)" not in s.results


def test_a_bias_free_layer_refuses_a_gradient_of_its_bias():
    with pytest.raises(SpecError, match=r"unknown parameter 'fc\.b'"):
        _solve("id: nb\nmodel:\n  - linear: {name: fc, W: [[1, 2]]}\nloss: mse\ndata: {x: [1, 1], y: [0]}\n"
               "tasks:\n  - gradient: {wrt: [fc.b]}\n")


RECURRENT = """
id: cell
kind: recurrent
cell:
  {kind}: {{W_ih: [[1], [-1/2], [1/2], [-1]], W_hh: [[1/3], [1], [1], [1/2]], h0: [1/2], c0: [-1]{more}}}
inputs: [[1], [-1/2]]
loss: mse
loss_over: sum
targets: [[1/2], [-1]]
tasks:
  - gradient: {{wrt: [{wrt}]}}
"""


def _lstm_torch(bias: bool):
    """nn.LSTM(1, 1, bias=…) with the cell's weights (zero biases when it has them), its loss backpropagated.
    Its float64 kernel is off by ~2e-10 here (∂L/∂W_ih[3]: mpmath's central difference at 50 digits gives
    the engine's −0.000377939471424424, torch −0.000377939641830), hence the absolute tolerance."""
    net = torch.nn.LSTM(1, 1, bias=bias).double()
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.tensor([[1], [-0.5], [0.5], [-1]]))
        net.weight_hh_l0.copy_(torch.tensor([[1 / 3], [1], [1], [0.5]]))
        if bias:
            net.bias_ih_l0.zero_()
            net.bias_hh_l0.zero_()
    state = (torch.tensor([[[0.5]]], dtype=torch.float64), torch.tensor([[[-1.0]]], dtype=torch.float64))
    out, _ = net(torch.tensor([[[1.0]], [[-0.5]]], dtype=torch.float64), state)
    ((out[:, 0] - torch.tensor([[0.5], [-1.0]], dtype=torch.float64)) ** 2).sum().backward()
    return net


def test_a_cell_given_no_biases_has_none():
    """An LSTM given no b_ih, b_hh is nn.LSTM(bias=False): the same states and gradients, and no bias to
    ask a gradient of (PyTorch's two zero biases were added before, and reported)."""
    s = _solve(RECURRENT.format(kind="lstm", more="", wrt="W_ih, W_hh"))
    net = _lstm_torch(bias=False)
    np.testing.assert_allclose(_floats(s.results["W_ih.grad"]), net.weight_ih_l0.grad.numpy(), atol=1e-9)
    np.testing.assert_allclose(_floats(s.results["W_hh.grad"]), net.weight_hh_l0.grad.numpy(), atol=1e-9)
    assert not [key for key in s.results if key.startswith("b")]
    with pytest.raises(SpecError, match="b_ih"):
        _solve(RECURRENT.format(kind="lstm", more="", wrt="W_ih, b_ih"))


def test_bias_true_adds_the_usual_biases_at_zero_and_says_so():
    """`bias: true` (PyTorch's default written out): b_ih and b_hh start at zero and are parameters, their
    gradients PyTorch's; the conventions say which were not given."""
    s = _solve(RECURRENT.format(kind="lstm", more=", bias: true", wrt="W_ih, b_ih, b_hh"))
    net = _lstm_torch(bias=True)
    for ours, theirs in (("W_ih", net.weight_ih_l0), ("b_ih", net.bias_ih_l0), ("b_hh", net.bias_hh_l0)):
        np.testing.assert_allclose(_floats(s.results[f"{ours}.grad"]), theirs.grad.numpy(), atol=1e-9)
    assert "not given: they start at zero" in _text(s, "en")
    assert "nisu zadani: počinju od nule" in _text(s, "hr")


def test_one_bias_of_pytorchs_pair_alone_is_refused_at_the_cell():
    with pytest.raises(SpecError, match=r"spec.yaml:5:\d+: .*b_hh without its pair"):
        _solve(RECURRENT.format(kind="lstm", more=", b_hh: [0, 0, 0, 1]", wrt="W_ih"))


def test_layernorm_without_gamma_and_beta_starts_at_pytorchs_values_and_says_so():
    """The documented default (γ = 1, β = 0, nn.LayerNorm's initial values) is kept and now stated."""
    s = _solve("id: ln\nmodel:\n  - layernorm: {name: ln, eps: 0}\n  - linear: {name: fc, W: [[1, 0, -1]], b: [0]}\n"
               "loss: mse\ndata: {x: [1, 2, 4], y: [1]}\ntasks:\n  - gradient: {wrt: [ln.gamma, ln.beta]}\n")
    ln = torch.nn.LayerNorm(3, eps=0).double()
    fc = torch.tensor([[1.0, 0.0, -1.0]], dtype=torch.float64)
    (((ln(torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)) @ fc.T) - 1) ** 2).sum().backward()
    np.testing.assert_allclose(_floats(s.results["ln.gamma.grad"]), ln.weight.grad.numpy())
    np.testing.assert_allclose(_floats(s.results["ln.beta.grad"]), ln.bias.grad.numpy())
    assert "not given start at PyTorch's initial values" in _text(s, "en")
    assert "nezadani γ, β počinju od početnih vrijednosti" in _text(s, "hr")


# ----- the weights' layout read by every op with weight matrices --------------------------------------
ATTENTION = """
id: attention_layout
model:
  - attention: {{name: attn, W_q: {W_q}, W_k: {W_k}, W_v: {W_v}, b_v: [1/2, 0, -1]}}
loss: mse
data:
  - {{x: [[1, 0], [0, 1], [1, -1]], y: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}}
conventions: {{weights: {layout}}}
tasks:
  - forward
  - gradient: {{wrt: [attn.W_q, attn.W_v, attn.b_v, x]}}
"""
W_Q = np.array([[1, 2], [0, 1]])           # out × in, as nn.Linear: d_k = 2, d_model = 2
W_K = np.array([[1, 0], [1, 1]])
W_V = np.array([[1, -1], [0, 2], [1, 1]])  # d_v = 3


def _yaml(a) -> str:
    return "[" + ", ".join("[" + ", ".join(str(v) for v in row) + "]" for row in a) + "]"


def _attention(layout: str):
    laid = (lambda W: W.T) if layout == "in_out" else (lambda W: W)
    return _solve(ATTENTION.format(layout=layout, W_q=_yaml(laid(W_Q)), W_k=_yaml(laid(W_K)), W_v=_yaml(laid(W_V))))


def test_attention_reads_the_in_out_layout_of_its_projections():
    """Q = X W_q (W_q in × out) is nn.Linear with weight W_qᵀ: the same output and loss as PyTorch's layout,
    ∂L/∂W_q = Xᵀ ∂L/∂Q the transpose of torch's weight.grad.  Before, in × out weights were read as out × in
    without a word (a square W_q gave another answer; a rectangular one a wrong shape error)."""
    s = _attention("in_out")
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]], dtype=torch.float64, requires_grad=True)
    W = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in (("q", W_Q), ("k", W_K), ("v", W_V))}
    b_v = torch.tensor([0.5, 0.0, -1.0], dtype=torch.float64, requires_grad=True)
    Y = torch.nn.functional.scaled_dot_product_attention(
        torch.nn.functional.linear(X, W["q"]), torch.nn.functional.linear(X, W["k"]),
        torch.nn.functional.linear(X, W["v"], b_v))
    loss = ((Y - torch.eye(3, dtype=torch.float64)) ** 2).sum()
    loss.backward()
    np.testing.assert_allclose(_floats(s.results["attn(1)"]), Y.detach().numpy())
    assert np.isclose(float(s.results["loss"]), loss.item())
    np.testing.assert_allclose(_floats(s.results["attn.W_q.grad"]), W["q"].grad.numpy().T)
    np.testing.assert_allclose(_floats(s.results["attn.W_v.grad"]), W["v"].grad.numpy().T)
    np.testing.assert_allclose(_floats(s.results["attn.b_v.grad"]), b_v.grad.numpy())
    np.testing.assert_allclose(_floats(s.results["x.grad(1)"]), X.grad.numpy())
    printed = _run_torch_script(s)
    np.testing.assert_allclose(printed["attn.W_q.grad"], W["q"].grad.numpy().T)
    en, hr = _text(s, "en"), _text(s, "hr")
    assert "projection weights stored input × output" in en and "spremljene su kao ulaz × izlaz" in hr
    out_in = _attention("out_in")                      # the same function in PyTorch's layout
    np.testing.assert_allclose(_floats(out_in.results["attn.W_q.grad"]), W["q"].grad.numpy())


def test_a_recurrent_cell_refuses_the_in_out_layout_it_cannot_read():
    with pytest.raises(SpecError, match=r"spec.yaml:3:\d+: .*weights: in_out.* not implemented for recurrent"):
        _solve("id: r\nkind: recurrent\ncell: {rnn: {W_hh: [[1/2]], W_xh: [[1, 2]], b_h: [0]}}\n"
               "inputs: [[1, 0], [0, 1]]\nconventions: {weights: in_out}\n")
    with pytest.raises(SpecError, match=r"spec.yaml:4:\d+: .*not implemented for recurrent"):
        _solve("id: r\nmodel:\n  - linear: {name: fc, W: [[1], [2]]}\n  - rnn: {W_hh: [[1/2]], W_xh: [[1]]}\n"
               "loss: mse\ndata: {x: [[1, 0]], y: [[1]]}\nconventions: {weights: in_out}\ntasks: [forward]\n")


def test_convolution_kernels_and_embeddings_keep_their_layout_and_say_so():
    """Kernels stay c_out × c_in × k (F.conv1d), an embedding's W one row per token (F.embedding)."""
    s = _solve("id: c\nmodel:\n  - conv1d: {name: conv, kernels: [[1, 0, -1], [1, 1, 1]]}\n  - global_avg_pool\n"
               "  - linear: {name: fc, W: [[1], [-1]], b: [0]}\nloss: mse\ndata: {x: [1, 2, 0, -1], y: [1]}\n"
               "conventions: {weights: in_out}\ntasks:\n  - gradient: {wrt: [conv.W, fc.W]}\n")
    K = torch.tensor([[[1.0, 0.0, -1.0]], [[1.0, 1.0, 1.0]]], dtype=torch.float64, requires_grad=True)
    W = torch.tensor([[1.0], [-1.0]], dtype=torch.float64, requires_grad=True)       # in × out: z = Wᵀh
    h = torch.nn.functional.conv1d(torch.tensor([[[1.0, 2.0, 0.0, -1.0]]], dtype=torch.float64), K).mean(-1)
    ((h @ W - 1) ** 2).sum().backward()
    np.testing.assert_allclose(_floats(s.results["conv.W.grad"]), K.grad.numpy()[:, 0])
    np.testing.assert_allclose(_floats(s.results["fc.W.grad"]), W.grad.numpy())
    assert "one kernel per output channel" in _text(s, "en") and "jedna jezgra po izlaznom kanalu" in _text(s, "hr")
    e = _solve("id: e\nmodel:\n  - embedding: {name: emb, W: [[1, 2], [0, -1], [3, 1]]}\n"
               "  - linear: {name: fc, W: [[1], [1]]}\nloss: mse\ndata: {x: 2, y: [1]}\n"
               "conventions: {weights: in_out}\ntasks: [forward]\n")
    table = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]], dtype=torch.float64)
    expected = torch.nn.functional.embedding(torch.tensor(2), table) @ torch.ones(2, 1, dtype=torch.float64)
    np.testing.assert_allclose(_floats(e.results["o"]), expected.numpy())
    assert "one row per token" in _text(e, "en") and "jedan redak po tokenu" in _text(e, "hr")


def test_counting_in_the_in_out_layout_transposes_every_weight_matrix():
    """The shapes of torch's parameters, each weight matrix transposed (in × out); the counts unchanged."""
    s = _solve("id: c\nkind: counting\nconventions: {weights: in_out}\narchitectures:\n  - layers: [\n"
               "      {linear: {name: fc, in_features: 3, out_features: 5}},\n"
               "      {attention: {name: attn, embed_dim: 4, d_k: 2}},\n"
               "      {lstm: {name: lstm, input_size: 3, hidden_size: 2, num_layers: 2}},\n"
               "      {rnn: {name: rnn, input_size: 3, hidden_size: 4}},\n"
               "      {conv1d: {name: conv, in_channels: 3, out_channels: 8, kernel_size: 3}},\n"
               "      {embedding: {name: emb, num_embeddings: 10, embedding_dim: 4}}]\n")
    modules = {"fc": torch.nn.Linear(3, 5), "lstm": torch.nn.LSTM(3, 2, num_layers=2), "rnn": torch.nn.RNN(3, 4),
               "conv": torch.nn.Conv1d(3, 8, 3), "emb": torch.nn.Embedding(10, 4)}
    ours = {"weight": "W", "weight_ih_l0": "layer1.W_ih", "weight_hh_l0": "layer1.W_hh", "bias_ih_l0": "layer1.b_ih",
            "bias_hh_l0": "layer1.b_hh", "weight_ih_l1": "layer2.W_ih", "weight_hh_l1": "layer2.W_hh",
            "bias_ih_l1": "layer2.b_ih", "bias_hh_l1": "layer2.b_hh", "bias": "b"}
    matrices = {("fc", "weight"), ("lstm", "weight_ih_l0"), ("lstm", "weight_hh_l0"), ("lstm", "weight_ih_l1"),
                ("lstm", "weight_hh_l1"), ("rnn", "weight_ih_l0"), ("rnn", "weight_hh_l0")}
    for name, module in modules.items():
        for key, p in module.named_parameters():
            if name == "rnn":            # the slides' rnn: W_xh, W_hh and one bias b_h (PyTorch's two added)
                if key == "bias_hh_l0":
                    continue
                key = {"weight_ih_l0": "W_xh", "weight_hh_l0": "W_hh", "bias_ih_l0": "b_h"}[key]
                shape = tuple(p.shape)[::-1] if key.startswith("W") else tuple(p.shape)
            else:
                shape = tuple(p.shape)[::-1] if (name, key) in matrices else tuple(p.shape)
                key = ours[key]
            assert tuple(int(d) for d in s.results[f"shape.{name}.{key}"]) == shape, (name, key)
    # attention's projections as nn.Linear(embed_dim, d_k) weights, transposed
    assert tuple(int(d) for d in s.results["shape.attn.W_q"]) == (4, 2)
    assert tuple(int(d) for d in s.results["shape.attn.W_v"]) == (4, 4)
    assert int(s.results["params.total"]) == sum(p.numel() for m in modules.values() for p in m.parameters()) \
        - 4 + (4 * 2 * 2 + 4 * 4 + 2 * 2 + 4)      # the rnn's second bias; attention's W_q, W_k, W_v, biases
    assert "input × output" in _text(s, "en") and "ulaz × izlaz" in _text(s, "hr")


def test_counting_refuses_a_convention_it_does_not_read():
    with pytest.raises(SpecError, match="convolution"):
        _solve("id: c\nkind: counting\nconventions: {convolution: convolution}\narchitectures:\n"
               "  - layers: [{linear: {in_features: 3, out_features: 5}}]\n")
