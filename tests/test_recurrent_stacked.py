"""Stacked and bidirectional RNN/LSTM/GRU (PyTorch's num_layers, bidirectional, bias), and one or two
biases: forward values and BPTT gradients (weights, inputs, initial states) against torch.nn modules."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from examsolver.engine.tensor import to_float
from examsolver.errors import SpecError
from examsolver.pipeline import solve_document
from examsolver.spec.load import load_text


MODULES = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
INPUT_WEIGHT = {"rnn": "W_xh", "gru": "W_ih", "lstm": "W_ih"}


def _text(a) -> str:
    """A tensor as YAML with exact fractions (the values are quarters)."""
    if np.ndim(a) == 0:
        return str(Fraction(float(a)).limit_denominator(64))
    return "[" + ", ".join(_text(v) for v in a) + "]"


def _units(layers: int, bidirectional: bool):
    """(our unit name, PyTorch's parameter suffix) in PyTorch's order."""
    return [(f"layer{k + 1}{'_reverse' if r else ''}", f"_l{k}{'_reverse' if r else ''}")
            for k in range(layers) for r in ((False, True) if bidirectional else (False,))]


def _case(kind, layers, bidirectional, bias=True, H=1, d=2, T=2, seed=0, with_loss=True, flat=False):
    """A random problem (quarters) and the torch module holding the same numbers; flat: one unit's
    weights given beside the options, not in `layers:`."""
    rng = np.random.default_rng(seed)
    net = MODULES[kind](d, H, num_layers=layers, bidirectional=bidirectional, bias=bias, batch_first=True,
                        dtype=torch.float64)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.tensor(np.round(rng.uniform(-1, 1, tuple(p.shape)) * 4) / 4))
    units = _units(layers, bidirectional)
    h0 = np.round(rng.uniform(-1, 1, (len(units), H)) * 4) / 4
    c0 = np.round(rng.uniform(-1, 1, (len(units), H)) * 4) / 4
    x = np.round(rng.uniform(-1, 1, (T, d)) * 4) / 4
    entries = []
    for k, (_, suffix) in enumerate(units):
        P = lambda name: getattr(net, name + suffix).detach().numpy()
        entry = {INPUT_WEIGHT[kind]: P("weight_ih"), "W_hh": P("weight_hh"), "h0": h0[k]}
        if bias:
            entry.update(b_ih=P("bias_ih"), b_hh=P("bias_hh"))
        if kind == "lstm":
            entry["c0"] = c0[k]
        entries.append(", ".join(f"{key}: {_text(v)}" for key, v in entry.items()))
    out = 2 * H if bidirectional else H
    targets = np.round(rng.uniform(-1, 1, (T, out)) * 4) / 4
    wanted = [f"{name}.{key}" for name, _ in units for key in (INPUT_WEIGHT[kind], "W_hh", "b_ih", "b_hh", "h0")
              if bias or not key.startswith("b")] + [f"x{t}" for t in range(1, T + 1)]
    if kind == "lstm":
        wanted += [f"{name}.c0" for name, _ in units]
    if flat:
        wanted = [w.removeprefix("layer1.") for w in wanted]
    given = entries[0] if flat else "layers: [" + ", ".join("{" + e + "}" for e in entries) + "]"
    loss = f"""loss: mse
loss_over: sum
targets: {_text(targets)}
tasks: [{{gradient: {{wrt: [{", ".join(wanted)}]}}}}]""" if with_loss else ""
    spec = f"""
id: stacked
kind: recurrent
cell: {{{kind}: {{num_layers: {layers}, bidirectional: {str(bidirectional).lower()}, bias: {str(bias).lower()}, {given}}}}}
inputs: {_text(x)}
{loss}
"""
    return spec, net, units, (x, h0, c0, targets)


def _torch_run(kind, net, units, data):
    x, h0, c0, targets = data
    xt = torch.tensor(x[None], requires_grad=True)
    h0t = torch.tensor(h0[:, None, :], requires_grad=True)
    c0t = torch.tensor(c0[:, None, :], requires_grad=True)
    out, _ = net(xt, (h0t, c0t) if kind == "lstm" else h0t)
    ((out[0] - torch.tensor(targets)) ** 2).sum().backward()
    return out[0].detach().numpy(), xt, h0t, c0t


def stacked_in_torch(kind, net, units, data, bias=True) -> dict:
    """The torch module's outputs, loss and gradients under the results' names (`layer2_reverse.W_hh.grad`)."""
    out, xt, h0t, c0t = _torch_run(kind, net, units, data)
    T, H = out.shape[0], net.hidden_size
    values = {f"h{t + 1}": out[t] for t in range(T)}
    top = units[-2:] if len(units) > 1 and units[-1][0].endswith("_reverse") else units[-1:]
    for j, (name, _) in enumerate(top):             # the top layer's units' states are the output's halves
        values.update({f"{name}.h{t + 1}": out[t, j * H:(j + 1) * H] for t in range(T)})
    values["loss"] = ((out - data[3]) ** 2).sum()                   # loss_over: sum
    values.update({f"loss({t + 1})": ((out[t] - data[3][t]) ** 2).sum() for t in range(T)})
    for k, (name, suffix) in enumerate(units):
        for ours, theirs in ((INPUT_WEIGHT[kind], "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"),
                             ("b_hh", "bias_hh")):
            if bias or not ours.startswith("b"):
                values[f"{name}.{ours}.grad"] = getattr(net, theirs + suffix).grad.numpy()
        values[f"{name}.h0.grad"] = h0t.grad[k, 0].numpy()
        if kind == "lstm":
            values[f"{name}.c0.grad"] = c0t.grad[k, 0].numpy()
    values.update({f"x{t + 1}.grad": xt.grad[0, t].numpy() for t in range(T)})
    return values


def _close(actual, expected, what):
    np.testing.assert_allclose(np.asarray(to_float(actual), dtype=float).reshape(-1),
                               np.asarray(expected, dtype=float).reshape(-1), rtol=1e-9, atol=1e-12, err_msg=what)


CASES = [("rnn", 2, True, True), ("gru", 1, True, True), ("lstm", 2, False, True), ("gru", 2, True, False),
         ("lstm", 1, True, False), ("rnn", 3, False, True)]


@pytest.mark.parametrize("kind,layers,bidirectional,bias", CASES)
def test_stacked_cells_match_torch(kind, layers, bidirectional, bias):
    """Values of every unit's states and the output, the loss, and the gradients w.r.t. every unit's
    weights and initial states and the inputs, against torch.nn.RNN/GRU/LSTM with autograd."""
    spec, net, units, data = _case(kind, layers, bidirectional, bias, seed=layers + 3 * bidirectional)
    s = solve_document(load_text(spec, "stacked.yaml"))
    expected = stacked_in_torch(kind, net, units, data, bias)
    for name, value in expected.items():
        _close(s.results[name], value, name)


def test_stacked_forward_without_loss_and_a_wider_state():
    spec, net, units, data = _case("gru", 2, True, H=2, T=3, seed=5, with_loss=False)
    s = solve_document(load_text(spec, "stacked.yaml"))
    out = net(torch.tensor(data[0][None]), torch.tensor(data[1][:, None, :]))[0][0].detach().numpy()
    for t in range(3):
        _close(s.results[f"h{t + 1}"], out[t], f"h{t + 1}")
    # the lower layer's output y_1(t) stacks its two units' states
    _close(s.results["layer1.y2"], np.concatenate([to_float(s.results["layer1.h2"]),
                                                  to_float(s.results["layer1_reverse.h2"])]), "layer1.y2")


def test_a_stack_is_a_layer_of_a_network_too():
    """forward_one and vjp_one (the network kind's view) of a stacked bidirectional LSTM against torch."""
    from examsolver.engine.ops import LAYERS
    from examsolver.engine.tensor import tensor
    from examsolver.spec.model import Conventions

    rng = np.random.default_rng(7)
    net = torch.nn.LSTM(2, 2, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.tensor(np.round(rng.uniform(-1, 1, tuple(p.shape)) * 4) / 4))
    layers = [{key: [[str(Fraction(v)) for v in row] if np.ndim(row) else str(Fraction(row)) for row in
                     getattr(net, f"{theirs}{suffix}").detach().numpy()]
               for key, theirs in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh"))}
              for _, suffix in _units(2, True)]
    params = LAYERS["lstm"].Params.model_validate({"num_layers": 2, "bidirectional": True, "layers": layers})
    cell = LAYERS["lstm"](params, 0, Conventions())
    x = np.round(rng.uniform(-1, 1, (3, 2)) * 4) / 4
    g = np.round(rng.uniform(-1, 1, (3, 4)) * 4) / 4
    exact = lambda a: tensor([[Fraction(v) for v in row] for row in a])
    y = cell.forward_one(exact(x))
    xt = torch.tensor(x[None], requires_grad=True)
    out, _ = net(xt)
    (out[0] * torch.tensor(g)).sum().backward()
    _close(y, out[0].detach().numpy(), "output")
    gx, grads = cell.vjp_one(exact(x), y, exact(g))
    _close(gx, xt.grad[0].numpy(), "x")
    for name, suffix in _units(2, True):
        _close(grads[f"{name}.W_hh"], getattr(net, "weight_hh" + suffix).grad.numpy(), name)


# ----- one or two biases, and the spec's forms -------------------------------------------------------
def test_rnn_with_two_biases_is_pytorchs_rnn():
    spec, net, units, data = _case("rnn", 1, False, seed=11, flat=True)
    s = solve_document(load_text(spec, "rnn.yaml"))
    out, xt, h0t, _ = _torch_run("rnn", net, units, data)
    _close(s.results["h2"], out[1], "h2")
    _close(s.results["b_hh.grad"], net.bias_hh_l0.grad.numpy(), "b_hh")
    _close(s.results["h0.grad"], h0t.grad[0, 0].numpy(), "h0")
    assert any(p.key == "convention.rnn_two_biases" for p in s.conventions)


def test_one_bias_per_gate_is_pytorchs_b_ih_with_b_hh_zero():
    """LSTM with one bias b: the same as PyTorch's two with b_ih = b, b_hh = 0; b's gradient is b_ih's."""
    torch.manual_seed(0)
    net = torch.nn.LSTM(1, 1, dtype=torch.float64)
    W_ih, W_hh, b = [[1], ["-1/2"], ["1/2"], [-1]], [["1/3"], [1], [1], ["1/2"]], ["1/2", "1/4", 0, "-1/4"]
    s = solve_document(load_text(f"""
id: one_bias
kind: recurrent
cell: {{lstm: {{W_ih: {W_ih}, W_hh: {W_hh}, b: {b}}}}}
inputs: [[1], [-1/2]]
loss: mse
targets: [null, [1/2]]
tasks: [{{gradient: {{wrt: [b, W_hh]}}}}]
""".replace("'", ""), "b.yaml"))
    value = lambda rows: torch.tensor([[float(Fraction(str(v))) for v in r] for r in rows], dtype=torch.float64)
    with torch.no_grad():
        net.weight_ih_l0.copy_(value(W_ih))
        net.weight_hh_l0.copy_(value(W_hh))
        net.bias_ih_l0.copy_(value([b])[0])
        net.bias_hh_l0.zero_()
    out, _ = net(torch.tensor([[1.0], [-0.5]], dtype=torch.float64))
    ((out[-1] - 0.5) ** 2).sum().backward()
    _close(s.results["h2"], out[1].detach().numpy(), "h2")
    _close(s.results["b.grad"], net.bias_ih_l0.grad.numpy(), "b")
    _close(s.results["W_hh.grad"], net.weight_hh_l0.grad.numpy(), "W_hh")
    assert any(p.key == "convention.gated_one_bias" for p in s.conventions)


@pytest.mark.parametrize("cell,message", [
    ("{gru: {bidirectional: true, W_ih: [[1], [1], [1]], W_hh: [[1], [1], [1]]}}", "layers:"),
    ("{gru: {num_layers: 2, layers: [{W_ih: [[1], [1], [1]], W_hh: [[1], [1], [1]]}]}}", "2"),
    ("{gru: {W_ih: [[1], [1], [1]], W_hh: [[1], [1], [1]], b: [0, 0, 0], b_ih: [0, 0, 0]}}", "not both"),
    ("{rnn: {W_xh: [[1]], W_hh: [[1]], bias: false, b_h: [1]}}", "bias: false"),
    ("{lstm: {num_layers: 2, layers: [{W_ih: [[1], [1], [1], [1]], W_hh: [[1], [1], [1], [1]]}, "
     "{W_ih: [[1, 1], [1, 1], [1, 1], [1, 1]], W_hh: [[1], [1], [1], [1]]}]}}", "input"),
    ("{gru: {layers: [{W_ih: [[1], [1], [1]]}]}}", "W_hh"),
])
def test_malformed_stacks_are_located_spec_errors(cell, message):
    with pytest.raises(SpecError, match=message) as err:
        solve_document(load_text(f"id: t\nkind: recurrent\ncell: {cell}\ninputs: [[1]]\n", "t.yaml"))
    assert "t.yaml:3:" in str(err.value)


def bidirectional_gru_in_torch() -> dict:
    """problems/extra_bidirectional_gru.yaml read into torch.nn.GRU(bidirectional=True): the results by name."""
    import yaml

    import pytorch_reference as R
    from conftest import PROBLEMS

    spec = yaml.safe_load((PROBLEMS / "extra_bidirectional_gru.yaml").read_text(encoding="utf-8"))
    units = spec["cell"]["gru"]["layers"]
    net = torch.nn.GRU(1, 1, bidirectional=True, dtype=torch.float64)
    with torch.no_grad():
        for entry, (_, suffix) in zip(units, _units(1, True)):
            for ours, theirs in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh")):
                getattr(net, theirs + suffix).copy_(R.tensor(entry[ours]))
    x = R.tensor(spec["inputs"]).requires_grad_()
    h0 = torch.stack([R.tensor(u.get("h0", [0])) for u in units]).requires_grad_()   # h0: zeros unless given
    out, _ = net(x, h0)
    loss = ((out[-1] - R.tensor(spec["targets"][-1])) ** 2).sum()
    loss.backward()
    values = {"layer1.h1": out[0, :1], "layer1_reverse.h1": out[0, 1:], "h1": out[0], "h2": out[1], "h3": out[2],
              "loss": loss, "loss(3)": loss, "layer1.W_hh.grad": net.weight_hh_l0.grad,
              "layer1_reverse.W_hh.grad": net.weight_hh_l0_reverse.grad, "layer1.h0.grad": h0.grad[0],
              "layer1_reverse.h0.grad": h0.grad[1], "x1.grad": x.grad[0]}
    return {name: value.detach().numpy() for name, value in values.items()}


def test_bidirectional_gru_problem_key_matches_torch():
    """problems/extra_bidirectional_gru.yaml: its answer key against torch.nn.GRU(bidirectional=True)."""
    import yaml

    from conftest import PROBLEMS
    from examsolver.pipeline import solve_file

    path = PROBLEMS / "extra_bidirectional_gru.yaml"
    key = yaml.safe_load(path.read_text(encoding="utf-8"))["answers"]
    expected = bidirectional_gru_in_torch()
    assert set(key) <= set(expected), set(key) - set(expected)
    for name in key:
        np.testing.assert_allclose(np.array(key[name], dtype=float).reshape(-1), expected[name].reshape(-1),
                                   atol=5e-5, err_msg=name)
    s = solve_file(path)
    assert s.checks and all(c.status == "match" for c in s.checks)
    for name, value in expected.items():
        _close(s.results[name], value, name)
