"""Recurrent problems: seed values, and PyTorch autograd as the oracle for forward passes and BPTT."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from examsolver.pipeline import solve_document, solve_file
from examsolver.engine.tensor import to_float
from examsolver.errors import SpecError
from examsolver.spec.load import load_text

from conftest import PROBLEMS


def _solve(text: str):
    return solve_document(load_text(text, "test.yaml"))


def _yaml_matrix(a) -> str:
    return "[" + ", ".join("[" + ", ".join(str(Fraction(v).limit_denominator(1000)) for v in row) + "]" for row in a) + "]"


def _yaml_vector(v) -> str:
    return "[" + ", ".join(str(Fraction(x).limit_denominator(1000)) for x in v) + "]"


# ----- seed 001, task 5 ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def z5():
    return solve_file(PROBLEMS / "2022_z5.yaml")


def test_z5_states_match_slides(z5):
    assert [int(v) for v in z5.results["h1"]] == [11000, 5000, 6000]     # slides (71)
    assert [int(v) for v in z5.results["h2"]] == [8500, 5000, 3500]      # slides (73)
    assert [int(v) for v in z5.results["h3"]] == [4500, 5000, 0]         # slides (75), labelled h(2) there


def test_z5_states_match_torch():
    rnn = torch.nn.RNN(2, 3, nonlinearity="relu", bias=False, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.tensor([[1., 0, 0], [0, 1, 0], [1, -1, 0]]))
        rnn.weight_ih_l0.copy_(torch.tensor([[1., -1], [0, 0], [1, -1]]))
    x = torch.tensor([[[1000., 0], [1000, 3500], [0, 4000]]], dtype=torch.float64)
    out, _ = rnn(x, torch.tensor([[[10000., 5000, 765]]], dtype=torch.float64))
    z5 = solve_file(PROBLEMS / "2022_z5.yaml")
    for t in range(3):
        assert np.allclose(to_float(z5.results[f"h{t + 1}"]), out[0, t].detach().numpy())


def test_z5_behaviour_check(z5):
    assert all(c.status == "match" for c in z5.checks), [(c.name, c.status) for c in z5.checks]
    assert z5.results["behaviour.seq4.first_failure"] == 2
    assert z5.results["behaviour.failures"] == 1


def test_a_broken_design_is_caught_at_its_first_wrong_step():
    # W_xh without the withdrawal column: the available total ignores x2, wrong as soon as x2 ≠ 0
    text = """
id: t
kind: recurrent
cell: {rnn: {W_hh: [[1, 0, 0], [0, 1, 0], [1, -1, 0]], W_xh: [[1, 0], [0, 0], [1, -1]], h0: [100, 50, 1], activation: relu}}
inputs: [[10, 0], [0, 0], [0, 30]]
behaviour:
  rules: [{equals: "h1 + x1 - x2"}, {equals: "h2"}, {positive_iff: "h1 + x1 - x2 - h2 >= 0"}]
  sequences:
    - {inputs: [[1, 0]], expected: [[101, 50, 51]]}
"""
    s = _solve(text)
    assert s.results["behaviour.seq1.first_failure"] == 3
    assert s.results["behaviour.seq2.first_failure"] == 0


def test_rules_with_unknown_names_are_spec_errors():
    text = """
id: t
kind: recurrent
cell: {rnn: {W_hh: [[1]], W_xh: [[1]], activation: identity}}
inputs: [1, 2]
behaviour: {rules: [{equals: "__import__('os')"}]}
"""
    with pytest.raises(SpecError):
        _solve(text)


def test_seed000_task5_exact():
    s = solve_file(PROBLEMS / "000_t5.yaml")
    assert list(s.results["h1"]) == [Fraction(3, 5), Fraction(3, 5)]       # tanh(ln 2) = 3/5 exactly
    import math

    assert np.allclose(to_float(s.results["h2"]), [math.tanh(1)] * 2)
    assert all(c.status == "match" for c in s.checks)


# ----- BPTT against autograd -------------------------------------------------------------------
RNG = np.random.default_rng(7)


def _rnn_case(activation: str, loss_over: str, output: bool):
    # exact tanh of non-special numbers nests symbolically (tanh(tanh(…))): keep its case small
    H, d, T, K = (2, 2, 2, 2) if activation == "tanh" else (3, 2, 3, 3)
    q = lambda *shape: np.round(RNG.uniform(-1, 1, shape) * 4) / 8     # multiples of 1/8
    W_hh, W_xh, b, h0, xs = q(H, H), q(H, d), q(H), q(H), q(T, d)
    W_hy, b_y = q(K, H), q(K)
    targets = [int(RNG.integers(0, K)) for _ in range(T)]
    text = f"""
id: bptt
kind: recurrent
cell: {{rnn: {{W_hh: {_yaml_matrix(W_hh)}, W_xh: {_yaml_matrix(W_xh)}, b_h: {_yaml_vector(b)}, h0: {_yaml_vector(h0)}, activation: {activation}}}}}
inputs: {_yaml_matrix(xs)}
loss_over: {loss_over}
tasks: [forward, {{gradient: {{wrt: [W_hh, W_xh, b_h{", W_hy, b_y" if output else ""}]}}}}]
"""
    if output:
        text += f"output: {{W_hy: {_yaml_matrix(W_hy)}, b_y: {_yaml_vector(b_y)}, activation: softmax}}\n"
        text += f"loss: cross_entropy\ntargets: {targets}\n"
    else:
        ys = q(T, H)
        text += f"loss: mse\ntargets: {_yaml_matrix(ys)}\n"
        targets = ys
    return text, (W_hh, W_xh, b, h0, xs, W_hy, b_y, targets)


def _torch_grads(activation, loss_over, output, values):
    W_hh, W_xh, b, h0, xs, W_hy, b_y, targets = values
    t = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)
    P = {"W_hh": t(W_hh), "W_xh": t(W_xh), "b_h": t(b), "W_hy": t(W_hy), "b_y": t(b_y)}
    f = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda v: v}[activation]
    h = torch.tensor(h0, dtype=torch.float64)
    losses = []
    for step, x in enumerate(xs):
        h = f(P["W_hh"] @ h + P["W_xh"] @ torch.tensor(x) + P["b_h"])
        if output:
            o = P["W_hy"] @ h + P["b_y"]
            losses.append(torch.nn.functional.cross_entropy(o[None], torch.tensor([targets[step]])))
        else:
            losses.append(((h - torch.tensor(targets[step])) ** 2).sum())
    loss = sum(losses) if loss_over == "sum" else losses[-1]
    loss.backward()
    return float(loss.detach()), {k: v.grad for k, v in P.items()}


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("loss_over", ["last", "sum"])
@pytest.mark.parametrize("output", [True, False])
def test_bptt_matches_autograd(activation, loss_over, output):
    text, values = _rnn_case(activation, loss_over, output)
    s = _solve(text)
    loss, grads = _torch_grads(activation, loss_over, output, values)
    assert np.isclose(float(s.results["loss"]), loss)
    keys = ["W_hh", "W_xh", "b_h"] + (["W_hy", "b_y"] if output else [])
    for key in keys:
        assert np.allclose(to_float(s.results[f"{key}.grad"]), grads[key].numpy()), key


# ----- LSTM and GRU forward against torch ----------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gated_cells_match_torch(kind):
    H, d, T = 2, 2, 2
    g = 4 if kind == "lstm" else 3
    rng = np.random.default_rng(3)
    q = lambda *shape: np.round(rng.uniform(-1, 1, shape) * 4) / 4
    W_ih, W_hh, b_ih, b_hh, xs = q(g * H, d), q(g * H, H), q(g * H), q(g * H), q(T, d)
    text = f"""
id: g
kind: recurrent
cell: {{{kind}: {{W_ih: {_yaml_matrix(W_ih)}, W_hh: {_yaml_matrix(W_hh)}, b_ih: {_yaml_vector(b_ih)}, b_hh: {_yaml_vector(b_hh)}}}}}
inputs: {_yaml_matrix(xs)}
"""
    s = _solve(text)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    net = cls(d, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, value in (("weight_ih_l0", W_ih), ("weight_hh_l0", W_hh), ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
            getattr(net, name).copy_(torch.tensor(value))
    out, _ = net(torch.tensor(xs[None]))
    for t in range(T):
        assert np.allclose(to_float(s.results[f"h{t + 1}"]), out[0, t].detach().numpy())


GATED_CASES = {
    # two steps, hidden size 1: the gates' exact values nest (σ of tanh of …) and stay small enough
    "lstm": ({"W_ih": [1, "-1/2", "1/2", -1], "W_hh": ["1/3", 1, 1, "1/2"], "b_ih": [0, "1/4", 0, 0],
              "b_hh": ["1/2", 0, 0, "-1/4"], "h0": ["1/2"], "c0": [-1]}, ["W_ih", "W_hh", "b_ih", "b_hh", "h0", "c0", "f2", "c1"]),
    "gru": ({"W_ih": [1, "-1/2", "1/2"], "W_hh": ["1/3", 1, 1], "b_ih": [0, "1/4", 0], "b_hh": ["1/2", 0, "-1/4"],
             "h0": ["1/2"]}, ["W_ih", "W_hh", "b_ih", "b_hh", "h0", "n2", "r1"]),
}


def _torch_gated(kind: str, values: dict, xs: list) -> dict:
    """PyTorch's LSTM/GRU equations for hidden size 1, every named node kept for its gradient."""
    h, c, nodes = values["h0"], values.get("c0"), {}

    def pre(k, x, h):
        return values["W_ih"][k] * x + values["b_ih"][k], values["W_hh"][k] * h + values["b_hh"][k]

    for t, x in enumerate(xs, 1):
        if kind == "lstm":
            (i1, i2), (f1, f2), (g1, g2), (o1, o2) = (pre(k, x, h) for k in range(4))
            f = torch.sigmoid(f1 + f2)
            c = f * c + torch.sigmoid(i1 + i2) * torch.tanh(g1 + g2)
            h = torch.sigmoid(o1 + o2) * torch.tanh(c)
            nodes.update({f"f{t}": f, f"c{t}": c})
        else:
            (r1, r2), (z1, z2), (n1, n2) = (pre(k, x, h) for k in range(3))
            r, z = torch.sigmoid(r1 + r2), torch.sigmoid(z1 + z2)
            n = torch.tanh(n1 + r * n2)
            h = (1 - z) * n + z * h
            nodes.update({f"r{t}": r, f"n{t}": n})
        nodes[f"h{t}"] = h
    for node in nodes.values():
        node.retain_grad()
    return nodes


@pytest.mark.parametrize("kind", sorted(GATED_CASES))
def test_gated_cell_backpropagation_through_time_matches_torch(kind):
    """LSTM/GRU BPTT comes from the gate equations' graph: parameters, initial states and gates vs autograd."""
    params, wanted = GATED_CASES[kind]
    column = {k: [[v] for v in vs] if k.startswith("W") else vs for k, vs in params.items()}
    cell = ", ".join(f"{k}: {v}".replace("'", "") for k, v in column.items())
    s = _solve(f"""
id: g
kind: recurrent
cell: {{{kind}: {{{cell}}}}}
inputs: [[1], [-1/2]]
loss: mse
loss_over: sum
targets: [[1/2], [-1]]
tasks: [{{gradient: {{wrt: [{", ".join(wanted)}]}}}}]
""")
    values = {k: torch.tensor([float(Fraction(str(v))) for v in vs], dtype=torch.float64, requires_grad=True)
              for k, vs in params.items()}
    nodes = _torch_gated(kind, values, [1.0, -0.5])
    ((nodes["h1"] - 0.5) ** 2 + (nodes["h2"] + 1) ** 2).sum().backward()
    for name in wanted:
        expected = (values[name] if name in values else nodes[name]).grad.detach().numpy()
        actual = np.asarray(to_float(s.results[f"{name}.grad"]), dtype=float)
        np.testing.assert_allclose(actual.reshape(-1), expected.reshape(-1), rtol=1e-9, atol=1e-12, err_msg=name)


def test_shape_mismatch_is_a_located_spec_error():
    text = """
id: t
kind: recurrent
cell: {rnn: {W_hh: [[1, 0], [0, 1]], W_xh: [[1, 1, 1], [1, 1, 1]]}}
inputs: [[1, 2]]
"""
    with pytest.raises(SpecError, match="inputs"):
        _solve(text)


def test_rnn_is_a_layer_of_a_network_too():
    from examsolver.engine.ops import LAYERS
    from examsolver.engine.ops.recurrent import RNNParams
    from examsolver.spec.model import Conventions
    from examsolver.engine.tensor import tensor

    params = RNNParams.model_validate({"W_hh": [["1/2"]], "W_xh": [[1]], "activation": "identity"})
    cell = LAYERS["rnn"](params, 0, Conventions())
    x = tensor([[1], [2], [3]])
    H = cell.forward_one(x)
    assert [v for v in H.flat] == [1, Fraction(5, 2), Fraction(17, 4)]
    gx, grads = cell.vjp_one(x, H, tensor([[0], [0], [1]]))
    # L = h3 = 1/4 x1 + 1/2 x2 + x3 → ∂L/∂x = [1/4, 1/2, 1]
    assert [v for v in gx.flat] == [Fraction(1, 4), Fraction(1, 2), 1]
    # ∂L/∂a(t) = 1/4, 1/2, 1 for t = 1, 2, 3; ∂L/∂W_hh = Σ ∂L/∂a(t) h(t−1) = 1/4·0 + 1/2·1 + 1·5/2 = 3
    assert grads["W_hh"][0, 0] == 3


def test_a_value_known_only_in_decimals_is_approximately_equal_to_them():
    """A GRU's second step outgrows every closed form: its state is written ≈ 0.5520 (all places), never
    '= 0.552', which would claim an exact value."""
    from examsolver.render.output import render_document

    solution = _solve("""
id: gru_two_steps
kind: recurrent
title: {en: "A GRU over two steps"}
cell:
  gru: {W_ih: [[1], [-1], [1/2]], W_hh: [[1/2], [1], [-1]], b_ih: [0, 0, 0], b_hh: [0, 1/2, 0], h0: [0]}
inputs: [[1], [2]]
loss: mse
targets: [[1/2], [0]]
tasks:
  - gradient: {wrt: [W_ih]}
""")
    text = render_document([solution], "term", "en")
    h2 = next(line for line in text.splitlines() if "≈ 0.5520" in line)
    assert "= 0.552" not in text and h2.lstrip().startswith("≈")
    assert "|0.5520 − 0|² ≈ 0.3047" in text                  # put into a formula with its places too
    assert "−(−0.2794 ⊙ tanh(1/2))" in text                   # a negated operand opening with a minus
