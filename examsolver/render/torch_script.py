"""The PyTorch check script of a problem: the slides' "kod u torchu za provjeru".

Built from the problem's ops through their PyTorch references (`Layer.torch`,
`Loss.torch`, a cell's `torch_step`, an optimizer's `torch`), so the conventions
the solution states are applied by the ops themselves.  The script recomputes
the results with autograd in float64 and prints them under the names of the
JSON results (`loss`, `fc1.W.grad(2)`, `h.grad`, `f2.grad`, `w.updated(3)`), one
`name = [numbers]` line each.  A problem without a PyTorch equivalent gets one
comment line that says why (`torch_text`).

Names, ids and all other text of a spec are a stranger's: they reach the script as string literals
(`Script.show`, the PROBLEM line), never as code or a docstring, in a comment only when they are plain
identifiers; the script's variables are identifiers made here (`Script.var`).  See examsolver.pysource.
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np

from examsolver.errors import ExprError
from examsolver.pysource import comment, identifier, is_plain_name, literal

HEADER = '''\
"""PyTorch check of the examsolver problem PROBLEM: recomputes its results with autograd."""
import json

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
PROBLEM = {id}


def show(name, value, n=None):
    """Prints name = [numbers]; name(n) for the n-th example or step."""
    name = name if n is None else f"{{name}}({{n}})"
    name = name if name.isprintable() else repr(name)
    print(name, "=", json.dumps(value.detach().tolist()))

'''

HELPERS = {      # written into a script that calls them
    "show_each": '''
def show_each(name, value):
    """One line per example of the minibatch: name(1), name(2), …"""
    for n, row in enumerate(value, 1):
        show(name, row, n)

''',
    "grad": '''
def grad(t):
    """The gradient autograd left in t (zeros where the loss does not depend on t)."""
    return t.grad if t.grad is not None else torch.zeros_like(t)

''',
}

# problem kinds with nothing for autograd to recompute, and why
WITHOUT = {
    "counting": "it counts parameters and shapes; there is nothing for autograd to compute",
    "retrieval": "it ranks given scores and counts hits (precision, recall, AP); nothing is differentiated",
}


BEYOND_FLOAT64 = "beyond the range of float64 (±1.8·10³⁰⁸), in which PyTorch checks the results"


class NoScript(Exception):
    """Why a problem has no PyTorch check; the message is the comment written in its place."""


def torch_script(solution) -> str | None:
    """The script, or None when the problem has no PyTorch equivalent."""
    return _build(solution)[0]


def torch_text(solution) -> str:
    """The script, or one comment line that names the reason there is none."""
    script, reason = _build(solution)
    return script or comment(f"{solution.problem_id}: no PyTorch check: {reason}") + "\n"


def _build(solution) -> tuple[str | None, str]:
    doc = getattr(solution, "document", None)
    kind = doc.data.get("kind", "network") if doc is not None and isinstance(doc.data, dict) else None
    if kind in WITHOUT:
        return None, WITHOUT[kind]
    builder = BUILDERS.get(kind)
    if builder is None:
        return None, f"the {kind or 'unknown'} problem kind has no PyTorch equivalent"
    try:
        return builder(solution), ""
    except NoScript as why:
        return None, str(why)
    except OverflowError:           # a number the script would write is beyond float64
        return None, _beyond_float64(doc)


class Script:
    """The lines of a script being written; variables named after the problem's, never clashing.  The
    spec's text enters only through `var` (an identifier made of it) and `show` (a string literal)."""

    RESERVED = {"json", "torch", "F", "show", "show_each", "grad", "n", "t", "x", "y", "loss", "losses", "loss_n",
                "optimizer", "params", "batch", "out", "outputs", "model", "layer", "below", "PROBLEM"}

    def __init__(self, problem_id: str):
        self.header = HEADER.format(id=literal(problem_id))
        self.lines = []
        self.taken = set(self.RESERVED)

    def var(self, name: str) -> str:
        return identifier(name, self.taken)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    @staticmethod
    def show(label: str, value: str, index: str | None = None, each: bool = False) -> str:
        """The line that prints value (an expression of the script) under label (a result's name), as
        label(index) when the script's variable index numbers it, one line per example when each."""
        return f"{'show_each' if each else 'show'}({literal(label)}, {value}{f', {index}' if index else ''})"

    def tensor(self, var: str, value, grad: bool = False, integer: bool = False, note: str = "") -> None:
        flag = ", requires_grad=True" if grad else ""
        self.add(f"{var} = torch.tensor({_numbers(value, integer)}{flag})" + (f"  # {note}" if note else ""))

    def text(self) -> str:
        body = "\n".join(self.lines) + "\n"
        helpers = "".join(code for name, code in HELPERS.items() if re.search(rf"\b{name}\(", body))
        return self.header + helpers + "\n" + body


def _reference(expression: str | None, op) -> str:
    """An op's PyTorch expression; without one, the reason: none declared, or none for these settings."""
    from examsolver.engine.ops.base import Layer, Loss

    if expression is None:
        what = f"the {op.kind} op ({getattr(op, 'name', op.kind)})"
        if getattr(type(op), "torch", None) in (Layer.torch, Loss.torch):
            raise NoScript(f"{what} declares no PyTorch reference yet")
        raise NoScript(f"{what} has no PyTorch equivalent with its settings and the problem's conventions")
    return expression


# ----- network problems ------------------------------------------------------------------
def _network(solution) -> str:
    from examsolver.engine.network import _tasks, result_name
    from examsolver.engine.shapes import prepare_inputs
    from examsolver.render.names import network_of
    from examsolver.solution import Solution

    net = network_of(solution)
    prepare_inputs(net.spec, net, Solution(problem_id="torch", title={}))     # sparse inputs → tensors
    fwd = net.forward()
    tasks = _tasks(net.spec, net, fwd)
    if net.loss is None and not tasks.upstream:
        raise NoScript("no loss and no given gradient: nothing to differentiate")
    s = Script(solution.problem_id)
    nodes_asked = {net.node_names(fwd)[name]: name for name in tasks.nodes}
    upstream = {fwd.index(node): G for node, G in tasks.upstream.items()}
    s.tensor("x", np.stack(net.xs), grad=tasks.want_x, note="the examples, one per row")
    if net.loss is not None and not tasks.upstream:
        y = np.stack([np.asarray(v, dtype=object) for v in net.ys])
        s.tensor("y", y, integer=net.loss.class_index_targets and y.ndim == 1)
    params, variables, forward = _model(s, net, fwd, set(nodes_asked))
    out = variables[-1]
    if net.loss is not None and not tasks.upstream:
        reduction = tasks.reduction if net.batched else "sum"
        forward += [f"losses = {_reference(net.loss.torch(out, 'y'), net.loss)}  # L(n) of each example",
                    f"loss = losses.{reduction}()"]
    s.add("", *forward, "")
    row = (lambda v: v) if net.batched else (lambda v: f"{v}[0]")
    shown = set()
    for j, var in enumerate(variables):
        names = [result_name(fwd.syms[j])] + ([net.layers[j - 1].p.name] if j and net.layers[j - 1].p.name else [])
        for name in dict.fromkeys(names):
            if name not in shown:
                shown.add(name)
                s.add(s.show(name, row(var), each=net.batched))
    weight_names = {key: f"{net.layers[key[0]].name}.{key[1]}" for key in sorted(tasks.wanted)}
    inputs = (["x"] if tasks.want_x else []) + [variables[fwd.index(node)] for node in nodes_asked]
    input_names = (["x"] if tasks.want_x else []) + list(nodes_asked.values())
    tracked = ", ".join([params[k] for k in weight_names] + inputs)
    if tasks.upstream:
        s.add("", "# the given upstream gradients seed the reverse pass")
        given = [(variables[j], G) for j, G in upstream.items()]
        s.add(f"torch.autograd.backward([{', '.join(v for v, _ in given)}], "
              f"[{', '.join(f'torch.tensor({_numbers(np.stack(G))})' for _, G in given)}])")
        _show_grads(s, params, weight_names, inputs, input_names, "" if net.batched else "[0]")
        return s.text()
    s.add(s.show("loss", "loss"))
    if net.batched:
        s.add(s.show("loss", "losses", each=True))
    per_example = net.batched and tasks.any and tasks.method != "batch" and tasks.training is None
    if per_example:
        s.add("", "# each example's own loss L(n), as the slides backpropagate it",
              "for n, loss_n in enumerate(losses, 1):",
              f"    for t in [{tracked}]:", "        t.grad = None",
              "    loss_n.backward(retain_graph=True)")
        for key, name in weight_names.items():
            s.add("    " + s.show(f"{name}.grad", f"grad({params[key]})", "n"))
        for var, name in zip(inputs, input_names):
            s.add("    " + s.show(f"{name}.grad", f"grad({var})[n - 1]", "n"))
        s.add(f"for t in [{tracked}]:", "    t.grad = None")
    if tasks.any or tasks.train is not None:
        s.add("", f"loss.backward(retain_graph=True)  # the {'minibatch ' if net.batched else ''}loss")
        named_inputs = ([], []) if per_example else (inputs, input_names)
        _show_grads(s, params, weight_names, *named_inputs, "" if net.batched else "[0]")
    if tasks.train is not None:
        lr = _number(tasks.train.lr)
        for key, name in weight_names.items():
            s.add(s.show(f"{name}.updated", f"{params[key]} - {lr} * {params[key]}.grad"))
    if tasks.training is not None:
        _training(s, net, tasks.training, params, forward, solution.results)
    return s.text()


def _model(s: Script, net, fwd, retain: set) -> tuple[dict, list, list]:
    """The parameters as tensors; (their variables, each node's variable, the forward pass's lines) with
    every layer written by its PyTorch reference over the batch x, the nodes in `retain` keeping their grad."""
    params = {}
    for i, layer in enumerate(net.layers):
        for key, value in layer.weights.items():
            params[(i, key)] = s.var(f"{layer.name}_{key}")
            s.tensor(params[(i, key)], value, grad=True)
    variables, forward = ["x"], []
    for i, layer in enumerate(net.layers):
        reads = [variables[fwd.index(node)] for node in fwd.ins[i]]
        weights = {key: params[(i, key)] for key in layer.weights}
        expression = _reference(layer.torch(reads[0] if layer.arity == 1 else reads, weights), layer)
        variables.append(s.var(layer.name))
        forward.append(f"{variables[-1]} = {expression}")
        if fwd.nodes[i + 1] in retain:
            forward.append(f"{variables[-1]}.retain_grad()")
    return params, variables, forward


def _show_grads(s: Script, params: dict, weight_names: dict, inputs: list, input_names: list, row: str) -> None:
    for key, name in weight_names.items():
        s.add(s.show(f"{name}.grad", f"grad({params[key]})"))
    for var, name in zip(inputs, input_names):
        s.add(s.show(f"{name}.grad", f"grad({var}){row}"))


def _training(s: Script, net, training, params: dict, forward: list, results: dict) -> None:
    """torch.optim over the steps, each on the minibatch loss at the parameters it starts from."""
    from examsolver.engine import optim

    optimizer = optim.build(training)
    names = {key: f"{net.layers[key[0]].name}.{key[1]}" for key in sorted(params)}
    variables = "[" + ", ".join(params[key] for key in names) + "]"
    _optimizer_loop(s, optimizer, training, variables, {params[k]: n for k, n in names.items()},
                    ["    " + line for line in forward], "loss", results)


def _optimizer_loop(s: Script, optimizer, training, variables: str, names: dict, recompute: list,
                    objective: str, results: dict) -> None:
    expression = optimizer.torch("params")
    if expression is None:
        raise NoScript(f"the {optimizer.name} rule under the problem's conventions is not torch.optim's")
    clip_norm, clip_value = training.clip_grad_norm, training.clip_grad_value
    if clip_norm is not None and training.conventions.clip_norm != "pytorch":
        raise NoScript("gradient clipping by the exact norm is not torch's clip_grad_norm_ (which adds 10⁻⁶)")
    s.add("", "# the optimizer over the steps", f"params = {variables}", f"optimizer = {expression}",
          f"for t in range(1, {training.steps} + 1):", "    optimizer.zero_grad()", *recompute,
          f"    {objective}.backward()")
    for var, name in names.items():
        s.add("    " + s.show(f"{name}.grad", f"grad({var})", "t"))
    if clip_norm is not None:
        clip = f"torch.nn.utils.clip_grad_norm_(params, {_number(clip_norm.max_norm)})"
        s.add("    " + s.show("grad_norm", clip, "t"))
    if clip_value is not None:
        s.add(f"    torch.nn.utils.clip_grad_value_(params, {_number(clip_value.clip_value)})")
    s.add("    optimizer.step()")
    for var, name in names.items():
        s.add("    " + s.show(f"{name}.updated", var, "t"))
        for key, torch_key in optimizer.torch_state.items():
            if f"{name}.{key}(1)" in results:          # the state the engine's rule keeps
                s.add("    " + s.show(f"{name}.{key}", f"optimizer.state[{var}][{literal(torch_key)}]", "t"))


# ----- recurrent problems ----------------------------------------------------------------
def _recurrent(solution) -> str:
    from examsolver.engine.recurrent import Problem
    from examsolver.engine.solve import parse_spec

    doc = solution.document
    problem = Problem(parse_spec(doc), doc)
    cell, spec = problem.cell, problem.spec
    if cell.units:
        return _recurrent_stack(solution, problem)
    if cell.bias_form:
        raise NoScript(f"the {cell.kind} cell's check script writes the cell's usual biases; this one has others")
    wanted = [w for task in spec.tasks if not isinstance(task, str) for w in task.gradient.wrt]
    s = Script(solution.problem_id)
    s.taken |= {f"{name}{t}" for t in range(problem.T + 1) for name in ("a", "h", "c", *getattr(cell, "gate_names", ()))}
    s.tensor("x", problem.xs, note="one row per time step")
    weights = {key: s.var(key) for key in cell.weights}
    for key, var in weights.items():
        s.tensor(var, cell.weights[key], grad=True)
    state = {}
    for key, value in cell.initial().items():
        state[key] = f"{key}0"
        s.tensor(state[key], value, grad=True, note="the initial state")
    out = problem.output
    if out is not None:
        weights_out = {"W_hy": s.var("W_hy"), "b_y": s.var("b_y")}
        s.tensor(weights_out["W_hy"], out.W, grad=True)
        s.tensor(weights_out["b_y"], out.b, grad=True)
    s.add("")
    results = []                    # (result name, variable)
    outputs, retained = [], {}
    for t in range(1, problem.T + 1):
        for name, expression in cell.torch_step(f"x[{t - 1}]", state, weights, t):
            s.add(f"{name} = {expression}")
            if name in wanted:
                s.add(f"{name}.retain_grad()")
                retained[name] = name
            clash = out is not None and name[:-len(str(t))] in ("o", "p")
            results.append((f"{cell.name}.{name}" if clash else name, name))
        state = {key: f"{key}{t}" for key in state}
        if out is not None:
            o, p = s.var(f"o_{t}"), s.var(f"p_{t}")
            s.add(f"{o} = {weights_out['W_hy']} @ h{t} + {weights_out['b_y']}")
            results.append((f"o{t}", o))
            if out.act is not None:
                s.add(f"{p} = {_reference(out.act.torch(o, {}), out.act)}")
                results.append((f"p{t}", p))
            outputs.append(p if out.act is not None else o)
        else:
            outputs.append(f"h{t}")
    module = cell.torch("batch", {**weights, **{f"{k}0": f"{k}0" for k in state}})
    if module is not None:
        hs = ", ".join(f"h{t}" for t in range(1, problem.T + 1))
        s.add("", f"# PyTorch's own {type(cell).__name__} module gives the same hidden states",
              "batch = x.unsqueeze(0)  # a batch of one sequence", f"assert torch.allclose(torch.stack([{hs}]), {module}[0])")
    s.add("", *[s.show(name, var) for name, var in results])
    if problem.loss is not None:
        _sequence_loss(s, problem, lambda steps: f"torch.stack([{', '.join(outputs[t] for t in steps)}])")
    if wanted:
        s.add("", "loss.backward()  # backpropagation through time")
        variables = {**weights, **(weights_out if out is not None else {}), **retained}
        s.add(*[s.show(f"{key}.grad", f"grad({variables[key]})") for key in wanted if key in variables])
        s.add(*[s.show(f"{key}0.grad", f"grad({key}0)") for key in state])
    return s.text()


def _sequence_loss(s: Script, problem, outputs) -> None:
    """The targets of the steps with a loss, their losses and the sum; outputs(steps) is the expression
    of those steps' outputs, one row each."""
    steps = problem.loss_steps()
    targets = np.stack([np.asarray(problem.target(t), dtype=object) for t in steps])
    integer = problem.loss.class_index_targets and targets.ndim == 1
    s.tensor("y", targets, integer=integer, note="the targets of the steps with a loss")
    s.add(f"outputs = {outputs(steps)}",
          f"losses = {_reference(problem.loss.torch('outputs', 'y'), problem.loss)}", "loss = losses.sum()")
    s.add(*[s.show(f"loss({t + 1})", f"losses[{k}]") for k, t in enumerate(steps)], s.show("loss", "loss"))


_TORCH_KEYS = {"W_ih": "weight_ih", "W_xh": "weight_ih", "W_hh": "weight_hh", "b_ih": "bias_ih", "b_h": "bias_ih",
               "b": "bias_ih", "b_hh": "bias_hh"}


def _recurrent_stack(solution, problem) -> str:
    """A stacked or bidirectional cell: PyTorch's own module (num_layers, bidirectional) with every unit's
    weights under PyTorch's names; the stack's outputs, every layer's states (each layer of a stack run
    alone on the outputs of the one below, asserted to agree with the stack), the loss and the gradients."""
    cell, spec = problem.cell, problem.spec
    units = cell.units
    if getattr(cell.p, "activation", "tanh") == "identity" or problem.output is not None:
        raise NoScript(f"the stacked {cell.kind} check script covers PyTorch's module as it is (tanh or ReLU, no "
                       "output layer); this one differs")
    wanted = [w for task in spec.tasks if not isinstance(task, str) for w in task.gradient.wrt]
    s = Script(solution.problem_id)
    T, H, layers = problem.T, cell.hidden, cell.p.num_layers
    s.tensor("x", problem.xs, grad=any(w.startswith("x") for w in wanted), note="one row per time step")
    weights, params, initial = {}, [], {}
    alone: dict = {}                # layer → its units' weights under a one-layer module's names
    for unit in units:
        layer, reverse = int(unit.tag.rstrip("r")), "_reverse" if unit.tag.endswith("r") else ""
        named = []
        for key, value in unit.weights.items():
            var = weights[f"{unit.short}.{key}"] = s.var(f"{unit.short}.{key}")
            s.tensor(var, value, grad=True)
            named.append((_TORCH_KEYS[key], var))
        if {"b_h", "b"} & set(unit.weights):       # one bias (the slides', or one per gate): PyTorch's second is 0
            named.append(("bias_hh", f"torch.zeros({unit.weights['W_hh'].shape[0]})"))
        params += [f"'{name}_l{layer - 1}{reverse}': {var}" for name, var in named]
        alone.setdefault(layer, []).extend(f"'{name}_l0{reverse}': {var}" for name, var in named)
        for key, value in unit.initial().items():
            var = initial.setdefault(key, {})[unit.short] = s.var(f"{unit.short}.{key}0")
            s.tensor(var, value, grad=True, note="an initial state")
    bias = any(k.startswith("b") for k in units[0].weights)

    def module(inputs, num_layers) -> str:
        return (f"torch.nn.{cell.torch_class}({inputs}, {H}, num_layers={num_layers}, bidirectional="
                f"{bool(cell.p.bidirectional)}, bias={bias}, batch_first=True{cell.torch_options()})")

    def state(of_units) -> str:
        states = [f"torch.stack([{', '.join(initial[key][u.short] for u in of_units)}]).unsqueeze(1)" for key in initial]
        return states[0] if len(states) == 1 else f"({', '.join(states)})"

    s.add("", f"model = {module(cell.input_size, layers)}",
          f"params = {{{', '.join(params)}}}",
          f"out = torch.func.functional_call(model, params, (x.unsqueeze(0), {state(units)}))[0][0]  # (T, directions·H)")
    s.add(*[s.show(f"h{t}", f"out[{t - 1}]") for t in range(1, T + 1)])
    below, directions = "x.unsqueeze(0)", 2 if cell.p.bidirectional else 1
    if layers > 1:
        s.add("", "# every layer's states: each layer alone, fed the outputs of the layer below")
    for layer in range(1, layers + 1):
        of_layer = [u for u in units if int(u.tag.rstrip("r")) == layer]
        if layers > 1:
            inputs = cell.input_size if layer == 1 else directions * H
            s.add(f"layer = {module(inputs, 1)}",
                  f"below = torch.func.functional_call(layer, {{{', '.join(alone[layer])}}}, ({below}, "
                  f"{state(of_layer)}))[0]")
            below = "below"
        rows = "out" if layers == 1 else "below[0]"
        for t in range(1, T + 1):
            s.add(*[s.show(f"{u.short}.h{t}", f"{rows}[{t - 1}, {k * H}:{(k + 1) * H}]")
                    for k, u in enumerate(of_layer)])
    if layers > 1:
        s.add("assert torch.allclose(below[0], out)  # PyTorch's stacked module agrees, layer by layer")
    if problem.loss is not None:
        _sequence_loss(s, problem, lambda steps: f"out[{list(steps)}]")
    if wanted and problem.loss is not None:
        s.add("", "loss.backward()  # backpropagation through time, through every layer and direction")
        for key in wanted:
            unit, _, name = key.rpartition(".")
            if key in weights:
                s.add(s.show(f"{key}.grad", f"grad({weights[key]})"))
            elif name[:-1] in initial and name.endswith("0") and unit in initial[name[:-1]]:
                s.add(s.show(f"{key}.grad", f"grad({initial[name[:-1]][unit]})"))
            elif re.fullmatch(r"x\d+", key):
                s.add(s.show(f"{key}.grad", f"grad(x)[{int(key[1:]) - 1}]"))
    return s.text()


# ----- siamese and triplet problems --------------------------------------------------------------
def _siamese(solution) -> str:
    """The shared model on every named input at once (one row each), then each pair's or triplet's loss."""
    from examsolver.engine.siamese import Siamese, _label, _wanted
    from examsolver.engine.solve import parse_spec

    doc = solution.document
    model = Siamese(parse_spec(doc), doc)
    net, fwd = model.net, model.net.forward()
    wanted, inputs = _wanted(model.spec, net, model.names)
    s = Script(solution.problem_id)
    named = ", ".join(model.names) if all(map(is_plain_name, model.names)) else "in the order given"
    s.tensor("x", np.stack(net.xs), grad=bool(inputs), note=f"the inputs {named}, one per row")
    params, variables, forward = _model(s, net, fwd, set())
    e = s.var("e")
    s.add("", *forward, f"{e} = {variables[-1]}  # the embeddings, one per row",
          *([f"{e}.retain_grad()"] if wanted or inputs else []), "")
    s.add(*[s.show(f"e{m + 1}", f"{e}[{m}]") for m in range(len(model.names))])
    count, losses = len(model.groups), []
    for k, group in enumerate(model.groups):
        suffix = f"({_label(k, count)})" if count > 1 else ""
        loss = s.var(f"L{k + 1}")
        if model.contrastive:
            d = s.var(f"d{k + 1}")
            s.add(f"{d} = {model.loss.torch_distance(f'{e}[{group[0]}]', f'{e}[{group[1]}]')}",
                  f"{loss} = {model.loss.torch_pair(d, model.spec.pairs[k].label == 'positive')}",
                  s.show(f"d{suffix}", d))
        else:
            a, p, n = group
            d_ap, d_an, z = s.var(f"d_ap{k + 1}"), s.var(f"d_an{k + 1}"), s.var(f"z{k + 1}")
            z_expression, hinge = model.loss.torch_hinge(d_ap, d_an, z)
            s.add(f"{d_ap} = {model.loss.torch_distance(f'{e}[{a}]', f'{e}[{p}]')}",
                  f"{d_an} = {model.loss.torch_distance(f'{e}[{a}]', f'{e}[{n}]')}",
                  f"{z} = {z_expression}",
                  f"{loss} = {_reference(hinge, SimpleNamespace(kind='triplet', name='loss'))}",
                  s.show(f"d_ap{suffix}", d_ap), s.show(f"d_an{suffix}", d_an))
        s.add(s.show(f"loss{suffix}", loss))
        losses.append(loss)
    names = {params[key]: f"{net.layers[key[0]].name}.{key[1]}" for key in sorted(wanted)}
    tracked = ", ".join(list(names) + ([e] if wanted or inputs else []) + (["x"] if inputs else []))
    for k, (group, loss) in enumerate(zip(model.groups, losses)):
        if not (wanted or inputs):
            break
        suffix = f"({_label(k, count)})" if count > 1 else ""
        s.add("", f"for t in [{tracked}]:", "    t.grad = None", f"{loss}.backward(retain_graph=True)")
        s.add(*[s.show(f"e{m + 1}.grad{suffix}", f"grad({e})[{m}]") for m in sorted(set(group))])
        s.add(*[s.show(f"{name}.grad{suffix}", f"grad({var})") for var, name in names.items()])
        s.add(*[s.show(f"{model.names[m]}.grad{suffix}", f"grad(x)[{m}]") for m in sorted(set(group))
                if model.names[m] in inputs])
    if count > 1 and model.reduction != "none":
        total = f"torch.stack([{', '.join(losses)}]).{model.reduction}()"
        s.add("", f"loss = {total}  # over the {'pairs' if model.contrastive else 'triplets'}", s.show("loss", "loss"))
        if wanted or inputs:
            s.add(f"for t in [{tracked}]:", "    t.grad = None", "loss.backward()",
                  *[s.show(f"{name}.grad", f"grad({var})") for var, name in names.items()],
                  *[s.show(f"{name}.grad", f"grad(x)[{m}]") for m, name in enumerate(model.names) if name in inputs])
    return s.text()


# ----- formulas minimised by an optimizer ----------------------------------------------------
def _symbolic(solution) -> str:
    """A formula minimised from given numbers (`minimize: {from: …}`): the objective in torch, torch.optim."""
    from examsolver.engine import minimize
    from examsolver.engine.solve import parse_spec
    from examsolver.engine.symbolic import Solver

    doc = solution.document
    spec = parse_spec(doc)
    tasks = [(i, getattr(entry, "minimize", None)) for i, entry in enumerate(spec.tasks)]
    if not tasks or any(task is None or task.from_ is None for _, task in tasks):
        raise NoScript("its formulas are derived symbolically (sympy); only minimising a formula from given "
                       "numbers has a PyTorch counterpart")
    solver = Solver(spec, doc)
    s = Script(solution.problem_id)
    for i, task in tasks:
        loc = ("tasks", i, "minimize")
        entries, start = minimize._exact_start(solver, task, loc)
        prefix = f"{task.name}." if task.name else ""
        variables = {name: s.var(prefix + name) for name in entries}
        for name, var in variables.items():
            s.tensor(var, start[name], grad=True)
        try:
            f = _torch_formula(solver.expr(task.of, loc + ("of",)), entries, start, variables)
        except OverflowError:
            raise NoScript(str(doc.problem(loc + ("of",), f"a constant of the formula is {BEYOND_FLOAT64}"))) from None
        fname = task.name or (task.of if isinstance(task.of, str) and task.of in solver.scope.names else "f")
        objective = s.var(f"objective_{fname}")
        s.add("", "", f"def {objective}():", f"    return {f}", "", "", s.show(f"{fname}(0)", f"{objective}()"))
        optimizer = minimize._optimizer(solver, task, loc, False)
        _optimizer_loop(s, optimizer, task, "[" + ", ".join(variables.values()) + "]",
                        {var: prefix + name for name, var in variables.items()}, [], f"{objective}()",
                        solution.results)
        s.add("    " + s.show(fname, f"{objective}()", "t"))
    return s.text()


def _torch_formula(expr, entries: dict, start: dict, variables: dict) -> str:
    """The objective as a torch expression of the script's parameters (entries of a vector indexed): every
    symbol one of them, every number within float64."""
    import sympy as sp
    from sympy.printing.codeprinter import PrintMethodNotImplementedError
    from sympy.printing.pytorch import torch_code

    names = {x: sp.Symbol(variables[name] + (f"[{k}]" if start[name].ndim else ""))
             for name, xs in entries.items() for k, x in enumerate(xs)}
    expr = expr.xreplace(names)
    if not expr.free_symbols <= set(names.values()):
        raise NoScript("the objective has symbols without a starting value")
    # constants such as √2 to the nearest float64 (the printer writes torch.sqrt(2), which needs a tensor)
    expr = expr.replace(lambda e: e.is_number and not e.is_Rational, lambda e: e.evalf(17))
    for number in expr.atoms(sp.Number):
        _number(number)             # OverflowError beyond float64
    try:
        return torch_code(expr)
    except PrintMethodNotImplementedError:
        raise NoScript("the objective has a function PyTorch does not know") from None


BUILDERS = {"network": _network, "recurrent": _recurrent, "siamese": _siamese, "symbolic": _symbolic}


def _numbers(array, integer: bool = False) -> str:
    """Nested lists of floats (ints for class labels): exact values to the nearest float64."""
    array = np.asarray(array, dtype=object)
    if array.ndim == 0:
        return str(int(array[()])) if integer else _number(array[()])
    return "[" + ", ".join(_numbers(a, integer) for a in array) + "]"


def _number(value) -> str:
    """An exact value to the nearest float64, as Python source; OverflowError beyond float64's range."""
    x = float(value)
    if not math.isfinite(x):        # an irrational value's float is ±inf past the range
        raise OverflowError(value)
    return repr(x)


def _beyond_float64(doc) -> str:
    """Why a script cannot be written: a value beyond float64, located at the first such number the spec
    gives (its answers aside: the script does not read them)."""
    where = next(_numbers_beyond_float64(doc.data, ()), None) if doc is not None else None
    if where is None:
        return f"a value is {BEYOND_FLOAT64}"
    return str(doc.problem(where, f"this number is {BEYOND_FLOAT64}"))


def _numbers_beyond_float64(data, path: tuple):
    """The paths of the spec's numbers (or lists of numbers written as one text) beyond float64."""
    from examsolver.spec.expr import parse_value

    if isinstance(data, dict):
        for key, value in data.items():
            if path or key != "answers":
                yield from _numbers_beyond_float64(value, path + (key,))
    elif isinstance(data, list):
        for k, value in enumerate(data):
            yield from _numbers_beyond_float64(value, path + (k,))
    elif isinstance(data, (int, str)) and not isinstance(data, bool):
        try:
            numbers = np.asarray(parse_value(data), dtype=object).flat
        except ExprError:
            return
        if not all(map(_within_float64, numbers)):
            yield path


def _within_float64(value) -> bool:
    try:
        _number(value)
    except OverflowError:
        return False
    return True
