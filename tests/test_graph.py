"""The computation graph: one reverse pass for a whole problem, checked against PyTorch autograd.

Models are written as specs (the user's path: YAML → graph → values and gradients)
and rebuilt in torch from the same spec by torch_problems.network (which reads the spec
itself), so every value and gradient the engine reports is compared with autograd's.  A property
test draws random valid graphs (chains, residual sums, products, concatenations),
random minibatches and random `wrt` lists.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torch_problems
from examsolver.engine.graph import Graph, GraphOp
from examsolver.pipeline import solve_document
from examsolver.engine.tensor import to_float
from examsolver.errors import SpecError
from examsolver.spec.load import load_text


def solve_spec(spec: dict):
    return solve_document(load_text(yaml.safe_dump(spec, sort_keys=False), "spec.yaml"), with_alternatives=False)


def number(text) -> float:
    return float(Fraction(str(text)))


def as_t(value, grad=False) -> torch.Tensor:
    array = np.vectorize(number, otypes=[float])(np.array(value, dtype=object))
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def check_against_torch(spec: dict, wrt: list):
    """The batch gradients of `wrt`, the loss and the named nodes against torch_problems.network, which
    reads the same spec on its own (its tables: PyTorch's defaults and the conventions' meanings)."""
    spec = {**spec, "tasks": [{"gradient": {"wrt": wrt, "method": "batch"}}]}
    results = solve_spec(spec).results
    expected = torch_problems.network(spec)
    for key in ["loss"] + [f"{w}.grad" for w in wrt]:
        assert key in results and key in expected, f"{key}: engine {sorted(results)}, oracle {sorted(expected)}"
    for key, value in expected.items():
        if key in results:
            assert_close(results[key], value, key)


def assert_close(engine, expected, what):
    np.testing.assert_allclose(np.asarray(to_float(engine), dtype=float), expected.detach().numpy()
                               if isinstance(expected, torch.Tensor) else expected, rtol=1e-9, atol=1e-12, err_msg=what)


# ----- the graph itself -------------------------------------------------------------------
class Scale(GraphOp):
    """y = a·x for a leaf a and a batch-free x (a tiny op for the graph's own tests)."""

    def forward(self, values):
        return values[0] * values[1]

    def vjp(self, values, out, g, needs):
        return [g * values[1], g * values[0]]


def test_shared_leaf_accumulates_and_keeps_parts():
    graph = Graph()
    a, x = graph.leaf("a", Fraction(3)), graph.leaf("x", Fraction(2), role="input")
    y1 = graph.apply(Scale(), [a, x], "y1")
    y2 = graph.apply(Scale(), [a, y1], "y2")          # y2 = a·(a·x): a is used twice
    grads = graph.backward({y2: Fraction(1)})
    assert y2.value == 18
    assert grads[a] == 2 * 3 * 2                      # ∂(a²x)/∂a = 2ax
    assert sorted(part for _, part in grads.parts[a]) == [6, 6]
    assert grads.through(a, y1) == 6 and grads.through(a, y2) == 6
    assert grads[x] == 9


def test_backward_limited_to_wanted_nodes():
    graph = Graph()
    a, b, x = (graph.leaf(n, Fraction(k)) for n, k in (("a", 2), ("b", 5), ("x", 7)))
    y = graph.apply(Scale(), [a, x], "y")
    z = graph.apply(Scale(), [b, y], "z")
    grads = graph.backward({z: Fraction(1)}, wanted=[b])
    assert grads[b] == 14 and grads[a] is None and grads[x] is None


# ----- problems through the graph ---------------------------------------------------------
RESIDUAL = {
    "id": "residual",
    "model": [{"linear": {"name": "fc1", "W": [[1, 0], [1, -1]], "b": [0, 1]}},
              {"relu": {"name": "h"}},
              {"add": {"name": "r", "inputs": ["h", "x"]}},
              {"linear": {"name": "head", "W": [["1/2", 2], [1, -1]], "b": [0, "1/3"]}}],
    "loss": "mse",
    "data": [{"x": [1, 2], "y": [0, 1]}, {"x": ["1/2", -1], "y": [1, 0]}],
}


def test_residual_block_batch_gradients():
    check_against_torch(RESIDUAL, ["fc1.W", "fc1.b", "head.W", "x", "h", "r"])


def test_batchnorm_full_backward_of_batch_loss_with_gamma_beta():
    """∂L/∂X of the batch loss has batchnorm's cross-example terms (the per-example passes miss them)."""
    spec = {"id": "bn", "model": [
        {"linear": {"name": "fc1", "W": [[1, "1/2"], [-1, 2]], "b": [0, 1]}},
        {"batchnorm": {"name": "bn", "gamma": [2, "1/2"], "beta": ["1/4", -1], "eps": "1/10"}},
        {"linear": {"name": "fc2", "W": [[1, -1]], "b": [0]}}],
        "loss": "mse",
        "data": [{"x": [1, 2], "y": [1]}, {"x": [0, -1], "y": [0]}, {"x": [2, "1/2"], "y": [-1]}]}
    check_against_torch(spec, ["fc1.W", "bn.gamma", "bn.beta", "x", "fc1"])


def test_given_upstream_gradient_seeds_the_reverse_pass():
    spec = {"id": "up", "model": [{"linear": {"name": "fc1", "W": [[1, 2], [3, -1]], "b": [0, 0]}},
                                  {"tanh": {"name": "h"}}],
            "data": {"x": [1, -1]},
            "tasks": [{"gradient": {"wrt": ["fc1.W", "x"], "upstream": {"fc1": ["1/2", -2]}}}]}
    results = solve_spec(spec).results
    W = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    (W @ x).backward(torch.tensor([0.5, -2.0], dtype=torch.float64))
    assert_close(results["fc1.W.grad"], W.grad, "fc1.W.grad")
    assert_close(results["x.grad"], x.grad, "x.grad")


def test_named_inputs_are_checked():
    spec = {**RESIDUAL, "model": RESIDUAL["model"][:2] + [{"add": {"name": "r", "inputs": ["h", "nope"]}}]}
    with pytest.raises(SpecError, match="unknown input 'nope'"):
        solve_spec(spec)
    spec = {**RESIDUAL, "model": RESIDUAL["model"][:2] + [{"add": {"name": "r"}}]}
    with pytest.raises(SpecError, match="name them in `inputs:`"):
        solve_spec(spec)


def test_per_example_results_unchanged_by_graph_wiring():
    """The slides' per-example passes: ∂L⁽ⁿ⁾/∂θ for each example, their mean as θ.grad."""
    spec = {**RESIDUAL, "tasks": [{"gradient": {"wrt": ["fc1.W"]}}]}
    results = solve_spec(spec).results
    batch = solve_spec({**RESIDUAL, "tasks": [{"gradient": {"wrt": ["fc1.W"], "method": "batch"}}]}).results
    mean = (results["fc1.W.grad(1)"] + results["fc1.W.grad(2)"]) / 2
    assert (mean == results["fc1.W.grad"]).all() and (mean == batch["fc1.W.grad"]).all()


# ----- random graphs ----------------------------------------------------------------------
@st.composite
def random_network(draw):
    """A random valid graph: linear layers, activations, residual sums, products, concatenations."""
    rand = random.Random(draw(st.integers(0, 10**6)))

    def frac():
        return str(Fraction(rand.randint(-6, 6), rand.choice([1, 2, 3, 4])))

    d = draw(st.integers(1, 3))
    widths = {"x": d}
    model, names = [], ["x"]
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["linear", "linear", "relu", "add", "mul", "concat"]))
        name = f"n{i}"
        last = names[-1]
        if kind == "linear":
            out = draw(st.integers(1, 3))
            model.append({"linear": {"name": name, "W": [[frac() for _ in range(widths[last])] for _ in range(out)],
                                     "b": [frac() for _ in range(out)]}})
            widths[name] = out
        elif kind == "relu":
            model.append({"relu": {"name": name}})
            widths[name] = widths[last]
        else:
            same = [n for n in names if widths[n] == widths[last]]
            other = draw(st.sampled_from(same if kind != "concat" else names))
            model.append({kind: {"name": name, "inputs": [last, other]}})
            widths[name] = widths[last] + widths[other] if kind == "concat" else widths[last]
        names.append(name)
    out = widths[names[-1]]
    n = draw(st.integers(1, 3))
    data = [{"x": [frac() for _ in range(d)], "y": [frac() for _ in range(out)]} for _ in range(n)]
    params = [f"{m[k]['name']}.{w}" for m in model for k in m if k == "linear" for w in ("W", "b")]
    wrt = draw(st.lists(st.sampled_from(params + names[1:] + ["x"]), min_size=1, max_size=4, unique=True))
    return {"id": "random", "model": model, "loss": "mse", "data": data}, wrt


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_network())
def test_random_graphs_match_torch(case):
    spec, wrt = case
    check_against_torch(spec, wrt)


def test_nodes_by_their_symbols():
    """∂L/∂o asked by the symbol the solution writes (o, s, p, h2), not only by a layer's name."""
    results = solve_spec({**RESIDUAL, "tasks": [{"gradient": {"wrt": ["o", "h"], "method": "batch"}}]}).results
    for m, y in enumerate(([0, 1], [1, 0]), 1):
        o = np.asarray(to_float(results[f"o({m})"]))
        np.testing.assert_allclose(to_float(results["o.grad"])[m - 1], 2 * (o - y) / 2)
    assert np.shape(to_float(results["h.grad"])) == (2, 2)


# ----- training a network with an optimizer over steps --------------------------------------
TRAIN_NET = {"id": "train", "model": [{"linear": {"name": "fc1", "W": [[1, 0], [1, -1]], "b": [0, 1]}},
                                      {"relu": {"name": "h"}},
                                      {"linear": {"name": "fc2", "W": [[1, 2]], "b": [0]}}],
             "loss": "mse", "data": [{"x": [1, 2], "y": [1]}, {"x": [0, -1], "y": [0]}]}


@pytest.mark.parametrize("optimizer, steps, clip, torch_optimizer", [
    ({"sgd": {"lr": "1/10", "momentum": "9/10"}}, 3, None, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ({"adam": {"lr": "1/10"}}, 2, None, lambda p: torch.optim.Adam(p, lr=0.1)),
    ({"sgd": {"lr": "1/2"}}, 2, {"max_norm": 1}, lambda p: torch.optim.SGD(p, lr=0.5)),
])
def test_network_training_matches_torch_optim(optimizer, steps, clip, torch_optimizer):
    """Each step's gradient is a reverse pass of the graph at the parameters the step starts from."""
    task = {"optimizer": optimizer, "steps": steps, **({"clip_grad_norm": clip} if clip else {})}
    results = solve_spec({**TRAIN_NET, "tasks": [{"train": task}]}).results
    params = {"fc1.W": as_t([[1, 0], [1, -1]], True), "fc1.b": as_t([0, 1], True),
              "fc2.W": as_t([[1, 2]], True), "fc2.b": as_t([0], True)}
    opt = torch_optimizer(list(params.values()))
    X, Y = as_t([[1, 2], [0, -1]]), as_t([[1], [0]])
    for t in range(1, steps + 1):
        opt.zero_grad()
        h = torch.relu(X @ params["fc1.W"].T + params["fc1.b"])
        loss = ((h @ params["fc2.W"].T + params["fc2.b"] - Y) ** 2).sum(dim=1).mean()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(list(params.values()), clip["max_norm"])
        opt.step()
        for name, p in params.items():
            assert_close(results[f"{name}.updated({t})"], p, f"{name} after step {t}")


def test_training_task_refuses_unknown_optimizer_option():
    with pytest.raises(SpecError, match=r"spec.yaml:\d+:\d+: .*momentom"):
        solve_spec({**TRAIN_NET, "tasks": [{"train": {"optimizer": {"sgd": {"lr": 1, "momentom": 1}}}}]})


def test_batchnorm_backward_step_shows_numbers_that_give_its_result():
    """∂L/∂x = (∂L/∂x̂ − mean ∂L/∂x̂ − x̂ ⊙ mean(∂L/∂x̂ ⊙ x̂)) ⊘ σ: the bound numbers reproduce the result."""
    from examsolver.solution import Step

    spec = {"id": "bn", "model": [
        {"linear": {"name": "fc1", "W": [[1, "1/2"], [-1, 2]], "b": [0, 1]}},
        {"batchnorm": {"name": "bn", "gamma": [2, "1/2"], "beta": ["1/4", -1], "eps": "1/10"}},
        {"linear": {"name": "fc2", "W": [[1, -1]], "b": [0]}}],
        "loss": "mse", "data": [{"x": [1, 2], "y": [1]}, {"x": [0, -1], "y": [0]}, {"x": [2, "1/2"], "y": [-1]}],
        "tasks": [{"gradient": {"wrt": ["x"], "method": "batch"}}]}
    solution = solve_spec(spec)
    steps = [b for s in solution.sections for b in s.blocks
             if isinstance(b, Step) and b.forms and getattr(b.forms[0], "op", None) == "oslash" and len(b.bindings) == 5]
    assert len(steps) == 3
    for step in steps:
        d, mean, xhat, spread, sigma = (np.asarray(to_float(v.value), dtype=float) for v in step.bindings.values())
        np.testing.assert_allclose((d - mean - xhat * spread) / sigma, np.asarray(to_float(step.result), dtype=float))


def test_a_plain_sum_is_a_loss():
    spec = {"id": "sum", "model": [{"linear": {"name": "fc1", "W": [[1, 2], [3, -1]], "b": [0, 1]}},
                                   {"relu": {"name": "h"}}],
            "loss": "sum", "data": {"x": ["1/2", -1]}, "tasks": [{"gradient": {"wrt": ["fc1.W", "x"]}}]}
    results = solve_spec(spec).results
    W, x = as_t([[1, 2], [3, -1]], True), as_t(["1/2", -1], True)
    torch.relu(W @ x + as_t([0, 1])).sum().backward()
    assert_close(results["fc1.W.grad"], W.grad, "fc1.W.grad")
    assert_close(results["x.grad"], x.grad, "x.grad")


def test_a_node_read_twice_shows_each_share_under_its_own_name_then_their_sum():
    """x read by the skip and by fc1: each reader's share is ∂L/∂x|via (its output), not ∂L/∂x, and the
    sum step names the shares it adds; the shares are the engine's parts and they add up to ∂L/∂x."""
    from examsolver.mathnodes import Deriv, Op, Through
    from examsolver.render.output import render_document

    spec = {**RESIDUAL, "tasks": [{"gradient": {"wrt": ["x"], "method": "batch"}}]}
    solution = solve_spec(spec)
    steps = [b for s in solution.sections for b in s.blocks if hasattr(b, "lhs")]
    shares = [s for s in steps if isinstance(s.lhs, Through)]
    sums = [s for s in steps if isinstance(s.lhs, Deriv) and s.forms and isinstance(s.forms[0], Op)
            and all(isinstance(a, Through) for a in s.forms[0].args)]
    assert len(shares) == 4 and len(sums) == 2                   # two readers, two examples
    for total in sums:
        parts = [total.bindings[a].value for a in total.forms[0].args]
        assert {a for a in total.forms[0].args} <= {s.lhs for s in shares}
        np.testing.assert_array_equal(to_float(sum(parts[1:], parts[0])), to_float(total.result))
    en, hr = (render_document([solution], "term", lang) for lang in ("en", "hr"))
    assert "∂L/∂x⁽¹⁾|via h₃ + ∂L/∂x⁽¹⁾|via h₁" in en and "∂L/∂x⁽¹⁾|kroz h₃" in hr
    assert "\\right|_{\\text{via}\\ \\mathbf{h}_{1}}" in render_document([solution], "md", "en")


# ----- a loss's own reduction (PyTorch's option) ----------------------------------------------------
LOSS_REDUCTION = """
id: reduction
model:
  - linear: {{name: fc, W: [[1, -1], [1/2, 2]], b: [0, 1/2]}}
  - softmax
loss: {{cross_entropy: {{reduction: {reduction}}}}}
data:
  - {{x: [1, 2], y: 0}}
  - {{x: [-1, 1/2], y: 1}}
tasks:
  - {task}
"""


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_a_losss_reduction_is_the_minibatchs(reduction):
    """loss: {cross_entropy: {reduction: sum}} is torch.nn.CrossEntropyLoss(reduction='sum'): the batch loss
    and one SGD step (the slides' per-example passes, reduced as the loss says)."""
    import torch

    from examsolver.pipeline import solve_document
    from examsolver.spec.load import load_text

    solution = solve_document(load_text(LOSS_REDUCTION.format(reduction=reduction, task="train_step: {lr: 1/2}"),
                                         "r.yaml"))
    W = torch.tensor([[1, -1], [0.5, 2]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0, 0.5], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[1, 2], [-1, 0.5]], dtype=torch.float64)
    loss = torch.nn.CrossEntropyLoss(reduction=reduction)(x @ W.T + b, torch.tensor([0, 1]))
    loss.backward()
    assert abs(float(solution.results["loss"]) - loss.item()) < 1e-12
    expected = (W - 0.5 * W.grad).detach().numpy()
    assert np.allclose(np.vectorize(float)(np.asarray(solution.results["fc.W.updated"], dtype=object)), expected,
                       atol=1e-12)


def test_a_task_contradicting_the_losss_reduction_is_refused():
    from examsolver.errors import SpecError
    from examsolver.pipeline import solve_document
    from examsolver.spec.load import load_text

    text = LOSS_REDUCTION.format(reduction="sum", task="train_step: {lr: 1/2, reduction: mean}")
    with pytest.raises(SpecError, match=r"r.yaml:11:5: reduction 'mean' here, but the loss says 'sum'"):
        solve_document(load_text(text, "r.yaml"))
